"""The pipeline's in-memory mirror of the ledger, and the snapshot it shows to displays."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atlasbatch._engine.line_states import LineStates
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import FINAL_STATES, State, Target

if TYPE_CHECKING:  # numpy underneath: not imported by `--help` or `status`
    from atlasbatch._engine.pending import Pending

__all__ = ["Book", "Progress"]

_ON_SERVER = (State.QUEUED, State.RUNNING, State.FINISHED)


@dataclass(frozen=True, slots=True)
class Progress:
    """A snapshot for progress displays."""

    counts: dict[State, int]
    tasks_deleted: int
    tasks_on_server: int
    writes_in_window: int
    reads_in_window: int
    throttled: int
    task_seconds: float | None  # median runtime measured; None: still estimating
    eta_seconds: float | None  # None: still estimating
    polled_ago: float | None = None  # seconds since the poll the counts come from
    unreachable_since: dt.datetime | None = None  # the server stopped answering then
    next_try_in: float = 0.0  # seconds until the next try while unreachable
    undeletable: int = 0  # tasks the server refused to delete (left for cleanup)


def _pending() -> Pending:
    from atlasbatch._engine.pending import Pending  # noqa: PLC0415 (numpy: once a run starts)

    return Pending()


@dataclass
class Book:
    """In-memory mirror of what the ledger knows, for the hot paths."""

    state: LineStates = field(default_factory=LineStates)  # representative line -> state
    members: dict[int, list[int]] = field(default_factory=lambda: defaultdict(list))
    pending: Pending = field(default_factory=_pending)  # lines to send, in order
    open: int = 0  # queries not final: kept as a count, the done test runs on every change
    waiting: dict[int, int] = field(default_factory=dict)  # task id -> line (queued/running)
    unstarted: set[int] = field(default_factory=set)
    undeleted: set[int] = field(default_factory=set)
    deleted: int = 0
    downloading: int = 0
    images: int = 0  # tasks the image stage holds (images.py): their image work is not over
    # Input rows per state, kept as states change: a live display asks four times a second,
    # and counting 100,000 queries each time cost ~40 ms.
    _rows: Counter[State] = field(default_factory=Counter)

    def set(self, line: int, state: State) -> None:
        """Move a query to ``state``, keeping the counts of open queries and of rows."""
        before = self.state.get(line)
        self.open += (state not in FINAL_STATES) - (
            before is not None and before not in FINAL_STATES
        )
        rows = 1 + len(self.members.get(line, ()))
        if before is not None:
            self._rows[before] -= rows
        self._rows[state] += rows
        self.state[line] = state

    def load(self, ledger: Ledger) -> None:
        """Fill the mirror from the ledger (start of a run or a resume)."""
        for line, rep, state in ledger.iter_lines():
            if rep is None or rep == line:  # invalid rows (no rep) are their own, final
                self.set(line, state)
            else:
                self.members[rep].append(line)
                if (shared := self.state.get(rep)) is not None:  # else counted when it comes
                    self._rows[shared] += 1
        tasks = ledger.open_tasks()
        for task in tasks:
            self.undeleted.add(task.task_id)
            if task.state in (State.QUEUED, State.RUNNING):
                self.waiting[task.task_id] = task.line
                if task.state is State.QUEUED:
                    self.unstarted.add(task.task_id)
        # A crash between "task gone" and "ask again" leaves a query waiting on no task.
        held = {task.line for task in tasks}
        for line, state in list(self.state.items()):
            if state in _ON_SERVER and line not in held:
                ledger.set_state(line, State.PENDING, error="its task was gone; asked again")
                self.set(line, State.PENDING)
        self.pending = _pending()
        self.pending.load(ledger.iter_queries_in(State.PENDING))

    def done(self) -> bool:
        """Every query final, every task deleted, no download or image request in flight."""
        return not self.open and not self.undeleted and not self.downloading and not self.images

    def counts(self) -> dict[State, int]:
        """Input rows per state (duplicates share their representative's)."""
        return {state: rows for state, rows in self._rows.items() if rows}

    def created(self, batch: Sequence[Target], task_ids: Sequence[int]) -> None:
        """The server holds a queued task for each target of ``batch``."""
        for target, task_id in zip(batch, task_ids, strict=True):
            self.set(target.line, State.QUEUED)
            self.waiting[task_id] = target.line
            self.unstarted.add(task_id)
            self.undeleted.add(task_id)

    def requeue(self, targets: Sequence[Target]) -> None:
        """Targets to be sent (again), after those already waiting."""
        for target in targets:
            self.set(target.line, State.PENDING)
        self.pending.extend(targets)
