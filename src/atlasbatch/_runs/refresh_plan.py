"""What a refresh (``fetch --since-last``) asks: per query, only what can exist now.

From what the previous run got (its ledger, read before it is archived) and the light curve
stored on disk, each distinct query is:

- ``after_epoch``: a stored light curve; asked from just after its last epoch (+1e-5 d, under
  a second: the file rounds MJD to 1e-6 d and two exposures lie 30 s or more apart) to the
  row's ``mjd_max``;
- ``after_window``: no light curve because the last run found no data; asked from the end of
  that run's window (the row's ``mjd_max``, or the time it was asked when it has none);
- ``closed``: not asked at all: its window closed before the last run asked it (``mjd_max``
  earlier than that), or the stored curve already reaches ``mjd_max``. It keeps its
  outcome (downloaded or no_data, with the task its data came from) and a note saying so;
- ``whole``: anything else (failed, cancelled, never asked, a changed row, a lost file):
  the row's whole window again.

"Covered" carries this across generations: the MJD up to which the server's answers for a
query are complete. A query asked and answered (downloaded or no data) is covered up to the
end of the window it was asked; one not asked keeps what it had.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._ledger.ledger import Ledger, QueryRecord
from atlasbatch._ledger.schema import identity
from atlasbatch._models import State, Target
from atlasbatch._outputs.epoch_origins import EpochOrigins, Origin
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.lightcurve_merge import lightcurve_path, stored_last_mjd

if TYPE_CHECKING:  # the target parser imports pandas: `status` and `cancel` need none
    from atlasbatch._targets.read import TargetList

__all__ = [
    "PLAN_KEY",
    "Ask",
    "LinePlan",
    "PreviousRun",
    "RefreshPlan",
    "asked_targets",
    "format_mjd",
    "plan_refresh",
]

#: The ledger meta key holding a refresh generation's plan.
PLAN_KEY = "since_last"
_VERSION = 2
_AFTER = 1e-5  # days: "just after" the last stored epoch (see the module docstring)
_MJD_UNIX_EPOCH = 40587.0


class Ask(StrEnum):
    """How a refresh asks one query (see the module docstring)."""

    AFTER_EPOCH = "after_epoch"
    AFTER_WINDOW = "after_window"
    WHOLE = "whole"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True, kw_only=True)
class LinePlan:
    """The plan of one query (by its representative line)."""

    ask: Ask
    start: float | None = None  # the lower MJD asked (after_epoch, after_window)
    covered: float | None = None  # answers complete up to this MJD before this run
    state: State | None = None  # closed: the outcome it keeps
    task_id: int | None = None  # closed: the task its stored data came from
    path: str | None = None  # closed: its stored light curve
    note: str | None = None  # closed: why it is not asked


@dataclass(frozen=True, slots=True)
class RefreshPlan:
    """The plan of a refresh generation, stored in its ledger."""

    previous_run: str | None
    lines: dict[int, LinePlan]
    legacy: bool = False  # written by atlasbatch 0.1, whose ledgers hold the asked windows

    def to_json(self) -> str:
        """The plan as stored in the ledger."""
        lines = {
            str(line): {k: v for k, v in dataclasses.asdict(plan).items() if v is not None}
            for line, plan in sorted(self.lines.items())
        }
        raw = {"version": _VERSION, "previous_run": self.previous_run, "lines": lines}
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RefreshPlan:
        """Read a stored plan back."""
        raw = json.loads(text)
        if "version" not in raw:
            return cls._legacy(raw)
        lines = {}
        for line, values in raw["lines"].items():
            state = values.pop("state", None)
            lines[int(line)] = LinePlan(
                **{**values, "ask": Ask(values["ask"])},
                state=None if state is None else State(state),
            )
        return cls(previous_run=raw.get("previous_run"), lines=lines)

    @classmethod
    def _legacy(cls, raw: dict[str, dict[str, object]]) -> RefreshPlan:
        """A plan of atlasbatch 0.1 (lower MJDs by line, complete files by line): enough to
        settle, clean up and plan the next refresh; such a refresh cannot be resumed."""
        lines = {int(k): LinePlan(ask=Ask.AFTER_EPOCH, start=float(str(v)))
                 for k, v in raw.get("windows", {}).items()}  # fmt: skip
        for k, v in raw.get("complete", {}).items():
            note = "not asked again: the stored light curve reaches the window's end"
            lines[int(k)] = LinePlan(ask=Ask.CLOSED, state=State.DOWNLOADED, path=str(v), note=note)
        return cls(previous_run=None, lines=lines, legacy=True)

    def of(self, line: int) -> LinePlan:
        """The plan of one query (the whole window when the plan does not name it)."""
        return self.lines.get(line, LinePlan(ask=Ask.WHOLE))

    def starts(self) -> dict[int, float]:
        """The new lower MJD of every query asked from later than its own window."""
        return {line: p.start for line, p in self.lines.items() if p.start is not None}

    def counts(self) -> Counter[Ask]:
        """Queries per way of asking."""
        return Counter(plan.ask for plan in self.lines.values())


@dataclass(frozen=True, slots=True)
class PreviousRun:
    """What the last run of a directory knew, read from its ledger before it is archived."""

    run_id: str
    rows: dict[int, Target]  # line -> the row as the user gave it
    records: dict[int, QueryRecord]
    plan: RefreshPlan | None
    origins: EpochOrigins

    @classmethod
    def of_ledger(cls, ledger: Ledger) -> PreviousRun:
        """Read a (finished) run's ledger."""
        stored = ledger.meta(PLAN_KEY)
        return cls(
            run_id=ledger.run_id,
            rows={row.target.line: row.target for row in ledger.outcomes()},
            records=ledger.query_records(),
            plan=None if stored is None else RefreshPlan.from_json(stored),
            origins=EpochOrigins.of_ledger(ledger),
        )


def plan_refresh(
    out_dir: Path, targets: TargetList, previous: PreviousRun | None
) -> tuple[RefreshPlan, EpochOrigins]:
    """The plan of a refresh of ``out_dir`` and the origins of its stored light curves."""
    names = FileNames(t.name for t in targets.targets)  # the run's valid rows, as its ledger
    lines: dict[int, LinePlan] = {}
    origins: dict[str, tuple[Origin, ...]] = {}
    for target in targets.unique:
        path = lightcurve_path(out_dir, target.name, names)
        known = _known(target, str(path.relative_to(out_dir)), stored_last_mjd(path), previous)
        lines[target.line] = _plan_query(target, known)
        if known.kept:
            origins[known.path] = known.kept
    run_id = previous.run_id if previous is not None else None
    return RefreshPlan(previous_run=run_id, lines=lines), EpochOrigins(origins)


@dataclass(frozen=True, slots=True)
class _Known:
    """What is known of one query when a refresh is planned."""

    path: str  # its light curve, relative to the run directory
    last: float | None  # the last stored epoch; None: no light curve
    record: QueryRecord | None  # what the previous run got; None: a new or changed row
    covered: float | None  # see the module docstring
    kept: tuple[Origin, ...]  # the origins of the stored epochs

    def closed(self, why: str) -> LinePlan:
        """Not asked again: the query keeps its outcome and says why."""
        stored = self.last is not None
        task_id = self.kept[-1].task_id if self.kept else None
        if task_id is None and self.record is not None:
            task_id = self.record.task_id
        return LinePlan(
            ask=Ask.CLOSED,
            covered=self.covered,
            state=State.DOWNLOADED if stored else State.NO_DATA,
            task_id=task_id,
            path=self.path if stored else None,
            note=f"not asked again: {why}",
        )


def _known(target: Target, path: str, last: float | None, previous: PreviousRun | None) -> _Known:
    record = _record(target, previous)
    if record is not None and record.state is State.DOWNLOADED and last is None:
        return _Known(path, None, None, None, ())  # its light curve was deleted: start over
    kept = previous.origins.get(path) if previous is not None and last is not None else ()
    if record is not None and last is not None:
        kept = _with_last_task(kept, record, last)  # true whatever window was asked
    if (
        record is None
        or previous is None
        or identity(previous.rows[target.line]) != identity(target)
    ):
        return _Known(path, last, None, None, kept)  # another window: nothing is covered
    covered = _covered(record, _earlier_plan(target.line, previous), target.mjd_max)
    return _Known(path, last, record, covered, kept)


def _plan_query(target: Target, known: _Known) -> LinePlan:
    """How one query is asked (see the module docstring)."""
    end = target.mjd_max
    if end is not None and known.covered is not None and known.covered >= end:
        return known.closed(
            f"window closed (mjd_max {format_mjd(end)}) before the last run asked it"
        )
    if known.last is not None:
        ask, start = Ask.AFTER_EPOCH, round(known.last + _AFTER, 6)
    elif known.covered is not None:
        ask, start = Ask.AFTER_WINDOW, known.covered
    else:
        return LinePlan(ask=Ask.WHOLE)
    if target.mjd_min is not None:
        start = max(start, target.mjd_min)
    if end is not None and start >= end:
        return known.closed(f"the stored light curve reaches the window's end ({format_mjd(end)})")
    return LinePlan(ask=ask, start=start, covered=known.covered)


def _record(target: Target, previous: PreviousRun | None) -> QueryRecord | None:
    """The previous run's record of this query, if it asked for the same target (its window
    may differ: a new ``--mjd-max``)."""
    then = previous.rows.get(target.line) if previous is not None else None
    if previous is None or then is None or _what(then) != _what(target):
        return None
    return previous.records.get(target.line)


def _what(target: Target) -> tuple[object, ...]:
    """What is measured, whatever the window: the same epochs for the same values."""
    return (target.name, target.ra, target.dec, target.mpc_name, target.use_reduced)


def _earlier_plan(line: int, previous: PreviousRun | None) -> LinePlan | None:
    """The previous run's own plan of the query, when it was a refresh too."""
    if previous is None or previous.plan is None:
        return None
    return previous.plan.of(line)


def _covered(
    record: QueryRecord | None, earlier: LinePlan | None, end: float | None
) -> float | None:
    """The MJD up to which the server's answers for the query are complete."""
    answered = record is not None and record.state in (State.DOWNLOADED, State.NO_DATA)
    if record is not None and answered and record.asked_at is not None:
        # Rounded down (to 1e-5 d, as the server rounds its own default): asking a second
        # more is harmless, asking a second less could miss an epoch.
        asked = math.floor((record.asked_at / 86400.0 + _MJD_UNIX_EPOCH) * 1e5) / 1e5
        return asked if end is None else min(end, asked)
    return earlier.covered if earlier is not None else None


def _with_last_task(
    kept: tuple[Origin, ...], record: QueryRecord, last: float
) -> tuple[Origin, ...]:
    """The stored rows up to ``last`` came from the previous run's task, when it stored any."""
    asked = record.asked_at is not None and record.state is State.DOWNLOADED
    if not asked or (kept and last <= kept[-1].upto):
        return kept
    return (*kept, Origin(upto=last, task_id=record.task_id, stored_at=record.stored_at))


def format_mjd(value: float) -> str:
    """An MJD as the user would write it: no trailing zeros."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


def asked_targets(targets: TargetList, plan: RefreshPlan) -> TargetList:
    """The targets as the refresh asks them: closed queries left out, windows moved."""
    unique = tuple(
        t if (start := plan.of(t.line).start) is None else dataclasses.replace(t, mjd_min=start)
        for t in targets.unique
        if plan.of(t.line).ask is not Ask.CLOSED
    )
    return dataclasses.replace(targets, unique=unique)
