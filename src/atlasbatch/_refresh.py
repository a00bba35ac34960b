"""Incremental refresh (``fetch --since-last``): ask only for new epochs, merge, never duplicate.

A refresh is a new *generation* of a run directory: the finished ledger moves to
``DIR/history/`` and a fresh one starts, so every remote task of the refresh has its own run
tag and the old outcomes stay on record. Each target is asked only from the last MJD of its
stored light curve (inclusive: the server's window is closed, so the last stored epoch comes
back and the (MJD, Obs) de-duplication drops it; an exclusive bound would risk losing an
epoch to float rounding). The windows are stored in the new ledger, so a refresh interrupted
half-way resumes with the same windows even though some files already hold new rows.

The downloads are merged into the stored files by ``_lightcurve_merge`` (its saver and merge
are re-exported here, where the CLI looks for everything a refresh needs).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from atlasbatch._exceptions import RunError
from atlasbatch._filenames import FileNames
from atlasbatch._ledger import Ledger
from atlasbatch._lightcurve_merge import MergingSaver, lightcurve_path, merge_result_text
from atlasbatch._models import State, Target
from atlasbatch._results import write_atomic
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
    names = FileNames(t.name for t in targets.targets)  # the run's valid rows, as its ledger
    for target in targets.unique:
        path = lightcurve_path(out_dir, target.name, names)
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
    names = FileNames.of_ledger(ledger)
    settled = 0
    for line, _rep, state in ledger.lines():
        if line not in plan.windows or state is not State.NO_DATA:
            continue
        path = lightcurve_path(out_dir, ledger.target(line).name, names)
        if path.exists():
            ledger.set_state(line, State.DOWNLOADED, path=str(path.relative_to(out_dir)))
            settled += 1
    return settled
