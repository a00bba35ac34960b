"""Incremental refresh (``fetch --since-last``): ask only what can exist now, merge, keep history.

A refresh is a new *generation* of a run directory: the finished ledger moves to
``DIR/history/`` and a fresh one starts, so every remote task of the refresh has its own run
tag and the old outcomes stay on record. What each query asks is planned from the previous
ledger and the stored light curves (:mod:`._runs.refresh_plan`); the plan and the origins of the
stored epochs (:mod:`._outputs.epoch_origins`) are kept in the new ledger, so a refresh interrupted
half-way resumes with the same windows even though some files already hold new rows.

The new ledger records the rows as the user gave them (outcomes.csv shows their own
windows); the narrower windows the refresh asks are its query windows. The downloads are
merged into the stored files by ``_outputs.lightcurve_merge`` (its saver and merge are re-exported
here, where the CLI looks for everything a refresh needs).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._exceptions import RunError
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State
from atlasbatch._outputs.epoch_origins import ORIGINS_KEY, EpochOrigins
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.lightcurve_merge import (
    MergingSaver,
    lightcurve_path,
    merge_result_text,
    stored_last_mjd,
)
from atlasbatch._outputs.results import write_atomic
from atlasbatch._runs.refresh_plan import (
    PLAN_KEY,
    Ask,
    PreviousRun,
    RefreshPlan,
    asked_targets,
    format_mjd,
    plan_refresh,
)
from atlasbatch._runs.rundir import LEDGER_NAME

if TYPE_CHECKING:  # the target parser imports pandas: `status` and `cancel` need none
    from atlasbatch._targets.read import TargetList

__all__ = [
    "META_KEY",
    "MergingSaver",
    "RefreshPlan",
    "apply_refresh",
    "archive_ledger",
    "asked_targets",
    "describe_plan",
    "lightcurve_path",
    "merge_result_text",
    "preview_refresh",
    "run_finished",
    "settle_unchanged",
    "start_generation",
    "stored_last_mjd",
    "stored_plan",
]

log = logging.getLogger(__name__)

META_KEY = PLAN_KEY
HISTORY = "history"


def run_finished(ledger: Ledger) -> bool:
    """True when no query is open and no remote task of the run is left."""
    return (
        ledger.unfinished_queries() == 0
        and ledger.undeleted_count() == 0
        and not ledger.open_batches()
    )


def stored_plan(ledger: Ledger) -> RefreshPlan | None:
    """The refresh plan of the ledger's generation; None for a run that is no refresh."""
    stored = ledger.meta(PLAN_KEY)
    return None if stored is None else RefreshPlan.from_json(stored)


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


def _store(ledger: Ledger, plan: RefreshPlan, origins: EpochOrigins) -> None:
    ledger.set_meta(ORIGINS_KEY, origins.to_json())
    ledger.set_meta(PLAN_KEY, plan.to_json())  # last: its presence marks a refresh


def start_generation(
    out_dir: Path, ledger: Ledger, targets: TargetList, *, base_url: str, since_last: bool
) -> Ledger:
    """The ledger to work with, for fetch with or without ``--since-last``.

    A refresh of a finished run plans from its ledger, then archives it and returns a new
    one holding the plan; an unfinished refresh resumes with its stored plan; a refresh of
    an unfinished plain run is refused. Call :func:`apply_refresh` once the rows are in.
    """
    if ledger.lines():
        stored = stored_plan(ledger)
        if since_last and run_finished(ledger):
            plan, origins = plan_refresh(out_dir, targets, PreviousRun.of_ledger(ledger))
            previous = ledger.run_id
            archived = archive_ledger(out_dir, ledger)
            log.info("previous run %s moved to %s", previous, archived)
            ledger = Ledger(out_dir / LEDGER_NAME)
            ledger.bind_server(base_url)
            ledger.set_meta("previous_run", previous)
            _store(ledger, plan, origins)
        elif stored is not None and stored.legacy:  # its rows hold the windows it asked
            then = (
                "refresh it again with --since-last"
                if run_finished(ledger)
                else f"finish it with that version, or `atlasbatch cancel {out_dir}` it"
            )
            raise RunError(f"the refresh in {out_dir} was made by an older atlasbatch: {then}")
        elif since_last and stored is None:
            raise RunError(
                f"the run in {out_dir} is unfinished ({ledger.unfinished_queries()} queries "
                f"open, {ledger.undeleted_count()} tasks on the server): finish it first with "
                "the same fetch command without --since-last, or stop it with "
                f"`atlasbatch cancel {out_dir}`"
            )
    elif since_last and stored_plan(ledger) is None:  # files but no ledger: plan from files
        plan, origins = plan_refresh(out_dir, targets, None)
        _store(ledger, plan, origins)
    return ledger


def apply_refresh(ledger: Ledger) -> int:
    """Give a refresh generation's queries their windows; close those not asked again (they
    keep their outcome, with a note saying why). Idempotent; the number closed now."""
    plan = stored_plan(ledger)
    if plan is None:
        return 0
    ledger.set_query_starts(plan.starts())
    states = {line: state for line, _rep, state in ledger.lines()}
    closed = 0
    for line, query in plan.lines.items():
        if query.ask is Ask.CLOSED and query.state and states.get(line) is State.PENDING:
            ledger.set_state(line, query.state, task_id=query.task_id, error=query.note,
                             path=query.path)  # fmt: skip
            closed += 1
    return closed


def preview_refresh(out_dir: Path, targets: TargetList) -> RefreshPlan | str:
    """What ``--since-last`` would ask now (for ``--dry-run``), read without the lock; or
    why a real run would refuse."""
    path = out_dir / LEDGER_NAME
    if not path.is_file():
        return plan_refresh(out_dir, targets, None)[0]
    ledger = Ledger(path)
    try:
        stored = stored_plan(ledger)
        if not ledger.lines() or not run_finished(ledger):
            if stored is not None:
                return stored  # an unfinished refresh: the real run resumes it
            if ledger.lines():
                return f"the run in {out_dir} is unfinished: finish or cancel it first"
        return plan_refresh(out_dir, targets, PreviousRun.of_ledger(ledger))[0]
    finally:
        ledger.close()


def settle_unchanged(ledger: Ledger, out_dir: Path) -> int:
    """After a refresh, a query with no new epoch keeps its stored light curve: downloaded.

    The server answers "No data returned" when a window holds no epoch; for a target whose
    file is on disk that means "unchanged", and its light curve must stay in the outputs.
    """
    plan = stored_plan(ledger)
    if plan is None:
        return 0
    names = FileNames.of_ledger(ledger)
    settled = 0
    for line, _rep, state in ledger.lines():
        if plan.of(line).ask is not Ask.AFTER_EPOCH or state is not State.NO_DATA:
            continue
        path = lightcurve_path(out_dir, ledger.target(line).name, names)
        if path.exists():
            ledger.set_state(line, State.DOWNLOADED, path=str(path.relative_to(out_dir)))
            settled += 1
    return settled


_SAYS = {
    Ask.AFTER_EPOCH: "asked from just after their last stored epoch",
    Ask.AFTER_WINDOW: "asked from the end of the last run's window (it found no data)",
    Ask.WHOLE: "asked over their whole window (nothing usable from the last run)",
    Ask.CLOSED: "not asked again (their window closed before the last run, or is complete)",
}


def describe_plan(plan: RefreshPlan, targets: TargetList, *, limit: int = 20) -> str:
    """The plan in words: counts per way of asking, then the first ``limit`` queries."""
    of = f" of run {plan.previous_run}" if plan.previous_run else ""
    counts = plan.counts()
    lines = [f"--since-last plan (a refresh{of}):"]
    lines += [f"  {counts[ask]:>7}  {says}" for ask, says in _SAYS.items() if counts[ask]]
    for target in targets.unique[:limit]:
        line = plan.of(target.line)
        if line.ask is Ask.CLOSED:
            what = line.note or "not asked again"
        else:
            low = line.start if line.start is not None else target.mjd_min
            high = "now" if target.mjd_max is None else format_mjd(target.mjd_max)
            what = f"MJD {'start of survey' if low is None else format_mjd(low)} to {high}"
        lines.append(f"  line {target.line:>6}  {target.name}: {what}")
    if len(targets.unique) > limit:
        lines.append(f"  … and {len(targets.unique) - limit} more queries")
    return "\n".join(lines)
