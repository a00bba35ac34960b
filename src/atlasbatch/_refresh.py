"""Incremental refresh (``fetch --since-last``): ask only for new epochs, merge, never duplicate.

A refresh is a new *generation* of a run directory: the finished ledger moves to
``DIR/history/`` and a fresh one starts, so every remote task of the refresh has its own run
tag and the old outcomes stay on record. Each target is asked only from the last MJD of its
stored light curve (inclusive: the server's window is closed, so the last stored epoch comes
back and the (MJD, Obs) de-duplication drops it; an exclusive bound would risk losing an
epoch to float rounding). The windows are stored in the new ledger, so a refresh interrupted
half-way resumes with the same windows even though some files already hold new rows.

:class:`MergingSaver` is the pipeline's result saver for a refresh: it merges a downloaded
file into the stored one line by line (the server's own format, bytes kept as they were),
de-duplicating on (MJD, Obs) with the new row winning, sorted by MJD. Merging is idempotent,
so a crash between writing a merged file and recording it costs nothing on resume.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from atlasbatch._exceptions import RunError
from atlasbatch._ledger import Ledger
from atlasbatch._models import State, Target
from atlasbatch._photometry import merge_new_epochs
from atlasbatch._results import parse_result, safe_filename, write_atomic
from atlasbatch._rundir import LEDGER_NAME
from atlasbatch._targets import TargetList

__all__ = [
    "META_KEY",
    "MergingSaver",
    "RefreshPlan",
    "apply_plan",
    "archive_ledger",
    "lightcurve_path",
    "mark_complete",
    "merge_result_text",
    "plan_refresh",
    "run_finished",
    "settle_unchanged",
    "start_generation",
    "stored_last_mjd",
]

log = logging.getLogger(__name__)

META_KEY = "since_last"
HISTORY = "history"
_LINE = "_line"


def lightcurve_path(out_dir: Path, name: str) -> Path:
    """Where a target's light curve lives (the pipeline's default saver uses the same)."""
    return out_dir / "lightcurves" / f"{safe_filename(name)}.txt"


# --- merging ---------------------------------------------------------------------------


def _rows(text: str, source: str) -> tuple[list[str], list[str], pd.DataFrame]:
    """(header names, data lines, parsed frame) of a result file; rows align with lines."""
    frame = parse_result(text, source=source)
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or not lines[0].startswith("###"):
        return [], [], frame
    data = [line for line in lines[1:] if line.strip()]
    return lines[0][3:].split(), data, frame


def _keyed(frame: pd.DataFrame, lines: list[str]) -> pd.DataFrame:
    keys = frame[["MJD"]].copy()
    keys["Obs"] = frame["Obs"] if "Obs" in frame.columns else pd.NA
    keys[_LINE] = lines
    return keys


def _rerender(lines: list[str], names: Sequence[str], union: Sequence[str]) -> list[str]:
    """Rows of a file with header ``names`` rewritten for the header ``union``."""
    out = []
    for line in lines:
        values = dict(zip(names, line.split(), strict=False))
        out.append(" ".join(values.get(name, "nan") for name in union))
    return out


def merge_result_text(old: str, new: str, *, source: str = "result") -> str:
    """Merge two result files of one target: de-duplicated on (MJD, Obs), sorted by MJD.

    Rows keep their exact text. When the headers differ (a newer server writes ``PA_DEG``),
    the merged file has the new header plus any column only the old one had, and missing
    values are written as ``nan``.
    """
    old_names, old_lines, old_frame = _rows(old, f"{source} (stored)")
    new_names, new_lines, new_frame = _rows(new, source)
    if not old_lines:
        return new
    if not new_names:  # an empty download: nothing to add
        return old
    union = [*new_names, *(n for n in old_names if n not in new_names)]
    if union != old_names:
        old_lines = _rerender(old_lines, old_names, union)
    if union != new_names:
        new_lines = _rerender(new_lines, new_names, union)
    merged = merge_new_epochs(_keyed(old_frame, old_lines), _keyed(new_frame, new_lines))
    header = new.splitlines()[0] if union == new_names else "###" + " ".join(union)
    return "\n".join([header, *merged[_LINE].tolist()]) + "\n"


class MergingSaver:
    """The result saver of a refresh: merges each download into the stored light curve."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir

    def __call__(self, target: Target, data: bytes) -> str:
        path = lightcurve_path(self.out_dir, target.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        new = data.decode("utf-8", "replace")
        try:
            old = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            old = ""
        merged = merge_result_text(old, new, source=str(path.relative_to(self.out_dir)))
        write_atomic(path, merged.encode("utf-8"))
        return str(path.relative_to(self.out_dir))

    def merge_back(self, path: Path, old: bytes) -> None:
        """Put rows of an older copy back into ``path`` (after a plain overwrite)."""
        merged = merge_result_text(old.decode("utf-8", "replace"), path.read_text("utf-8"))
        write_atomic(path, merged.encode("utf-8"))


# --- planning --------------------------------------------------------------------------


def stored_last_mjd(path: Path) -> float | None:
    """The last MJD of a stored light curve, or None when there is none (or it is unusable)."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or not lines[0].startswith("###"):
        return None
    names = lines[0][3:].split()
    if "MJD" not in names:
        return None
    column = names.index("MJD")
    latest: float | None = None
    for line in lines[1:]:
        fields = line.split()
        try:
            value = float(fields[column])
        except (IndexError, ValueError):
            continue
        latest = value if latest is None else max(latest, value)
    return latest


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """What a refresh asks: a new lower MJD per query line; lines already complete."""

    windows: dict[int, float]
    complete: dict[int, str]  # query line -> stored file (its window holds nothing new)

    def to_json(self) -> str:
        """The plan as stored in the ledger."""
        return json.dumps({"windows": self.windows, "complete": self.complete}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RefreshPlan:
        """Read a stored plan back."""
        raw = json.loads(text)
        return cls(
            windows={int(k): float(v) for k, v in raw.get("windows", {}).items()},
            complete={int(k): str(v) for k, v in raw.get("complete", {}).items()},
        )


def plan_refresh(out_dir: Path, targets: TargetList) -> RefreshPlan:
    """Per distinct query: ask from its stored last MJD, or not at all when nothing can be new."""
    windows: dict[int, float] = {}
    complete: dict[int, str] = {}
    for target in targets.unique:
        path = lightcurve_path(out_dir, target.name)
        last = stored_last_mjd(path)
        if last is None:
            continue  # nothing stored (no data last time, or failed): ask the whole window
        if target.mjd_max is not None and last >= target.mjd_max:
            complete[target.line] = str(path.relative_to(out_dir))
        elif target.mjd_min is None or last > target.mjd_min:
            windows[target.line] = last
    return RefreshPlan(windows=windows, complete=complete)


def apply_plan(targets: TargetList, plan: RefreshPlan) -> TargetList:
    """The target list with each refreshed query's (and its duplicates') lower MJD moved."""
    rep = {t.line: targets.duplicate_of.get(t.line, t.line) for t in targets.targets}

    def moved(target: Target) -> Target:
        start = plan.windows.get(rep.get(target.line, target.line))
        return target if start is None else dataclasses.replace(target, mjd_min=start)

    return dataclasses.replace(
        targets,
        targets=tuple(moved(t) for t in targets.targets),
        unique=tuple(moved(t) for t in targets.unique),
    )


# --- generations -----------------------------------------------------------------------


def run_finished(ledger: Ledger) -> bool:
    """True when no query is open and no remote task of the run is left."""
    return (
        ledger.unfinished_queries() == 0
        and ledger.undeleted_count() == 0
        and not ledger.open_batches()
    )


def archive_ledger(out_dir: Path, ledger: Ledger) -> Path:
    """Close a finished ledger and move it (and outcomes.csv) to ``DIR/history/``."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    stem = f"{stamp}-{ledger.run_id}"
    ledger.close()
    folder = out_dir / HISTORY
    folder.mkdir(exist_ok=True)
    target = folder / f"{stem}.sqlite3"
    os.replace(out_dir / LEDGER_NAME, target)
    for suffix in ("-wal", "-shm"):  # normally gone after close; never leave them behind
        side = out_dir / f"{LEDGER_NAME}{suffix}"
        if side.exists():
            os.replace(side, folder / f"{stem}.sqlite3{suffix}")
    outcomes = out_dir / "outcomes.csv"
    if outcomes.exists():
        write_atomic(folder / f"{stem}-outcomes.csv", outcomes.read_bytes())
    return target


def start_generation(
    out_dir: Path, ledger: Ledger, targets: TargetList, *, base_url: str, since_last: bool
) -> tuple[Ledger, TargetList]:
    """The ledger to work with and the targets to record in it, for fetch with or without
    ``--since-last``. A new generation replaces ``ledger`` (closed and archived) when a
    finished run is refreshed; an unfinished refresh resumes with its stored windows.
    """
    if ledger.lines():
        stored = ledger.meta(META_KEY)
        finished = run_finished(ledger)
        if since_last and finished:
            previous = ledger.run_id
            archived = archive_ledger(out_dir, ledger)
            log.info("previous run %s moved to %s", previous, archived)
            ledger = Ledger(out_dir / LEDGER_NAME)
            ledger.bind_server(base_url)
            ledger.set_meta("previous_run", previous)
        elif since_last and stored is None:
            raise RunError(
                f"the run in {out_dir} is unfinished ({ledger.unfinished_queries()} queries "
                f"open, {ledger.undeleted_count()} tasks on the server): finish it first with "
                "the same fetch command without --since-last, or stop it with "
                f"`atlasbatch cancel {out_dir}`"
            )
        elif stored is not None:
            return ledger, apply_plan(targets, RefreshPlan.from_json(stored))
        else:
            return ledger, targets
    if not since_last:
        return ledger, targets
    plan = plan_refresh(out_dir, targets)
    ledger.set_meta(META_KEY, plan.to_json())
    return ledger, apply_plan(targets, plan)


def mark_complete(ledger: Ledger) -> int:
    """Queries whose stored window is complete end downloaded at once (nothing to ask)."""
    stored = ledger.meta(META_KEY)
    if stored is None:
        return 0
    states = {line: state for line, _rep, state in ledger.lines()}
    done = 0
    for line, path in RefreshPlan.from_json(stored).complete.items():
        if states.get(line) is State.PENDING:
            ledger.set_state(line, State.DOWNLOADED, path=path)
            done += 1
    return done


def settle_unchanged(ledger: Ledger, out_dir: Path) -> int:
    """After a refresh, a query with no new epoch keeps its stored light curve: downloaded.

    The server answers "No data returned" when a window holds no epoch; for a target whose
    file is on disk that means "unchanged", and its light curve must stay in the outputs.
    """
    stored = ledger.meta(META_KEY)
    if stored is None:
        return 0
    plan = RefreshPlan.from_json(stored)
    settled = 0
    for line, _rep, state in ledger.lines():
        if line not in plan.windows or state is not State.NO_DATA:
            continue
        path = lightcurve_path(out_dir, ledger.target(line).name)
        if path.exists():
            ledger.set_state(line, State.DOWNLOADED, path=str(path.relative_to(out_dir)))
            settled += 1
    return settled
