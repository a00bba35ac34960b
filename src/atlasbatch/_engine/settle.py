"""How a target's query ends: the ledger first, then its outcome, then its task's DELETE.

Every path to an outcome goes through :class:`Settler`: a task that finished (stored, no
data, failed), one the server lost or whose result expired (asked once more, then failed),
one cancelled, and a row the server refused at submission. Once the book says "final",
the pipeline may end the run at once, so outcomes are handed out before the book changes.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from atlasbatch._engine.book import Book
from atlasbatch._engine.images import ImageStage
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Outcome, State, Target

if TYPE_CHECKING:  # only for annotations: a run keeps no frame unless asked
    import pandas as pd

__all__ = ["OutcomeHandler", "Settler"]

log = logging.getLogger(__name__)

OutcomeHandler = Callable[[Outcome], Awaitable[None]]


class Settler:
    """Turns what happened to a task (or a row) into the ledger's record and an outcome."""

    def __init__(
        self,
        ledger: Ledger,
        book: Book,
        images: ImageStage,
        *,
        on_outcome: OutcomeHandler | None,
        keep_data: bool,
        delete: Callable[[int], Awaitable[None]],
        notify: Callable[[], None],
    ) -> None:
        self._ledger = ledger
        self._book = book
        self._images = images
        self._on_outcome = on_outcome
        self._keep_data = keep_data
        self._delete = delete
        self._notify = notify

    async def task(
        self,
        task_id: int,
        line: int,
        state: State,
        *,
        error: str | None = None,
        path: str | None = None,
        data: pd.DataFrame | None = None,
    ) -> None:
        """A task's query is final: ledger first, then the outcome, then its DELETE."""
        self._ledger.task_done(task_id, line, state, error=error, path=path)
        await self.outcome(line, state, task_id=task_id, error=error, path=path, data=data)
        if not self._images.take(task_id, line, state):  # else deleted after its images
            await self._delete(task_id)

    async def refused(self, target: Target, reason: str) -> None:
        """The server refused the row at submission: a permanent answer."""
        self._ledger.set_state(target.line, State.FAILED, error=reason)
        await self.outcome(target.line, State.FAILED, error=reason)

    async def result_gone(self, task_id: int, line: int) -> None:
        """The result expired on the server (31-day retention): delete the task, ask again."""
        await self._delete(task_id)
        await self.expired(line, reason=f"result of task {task_id} expired on the server")

    async def expired(self, line: int, *, reason: str) -> None:
        """The task is lost to us: submit the row once more, or fail it the second time."""
        if self._ledger.resubmits(line) >= 1:
            reason = f"{reason} (already re-submitted once)"
            self._ledger.set_state(line, State.FAILED, error=reason)
            await self.outcome(line, State.FAILED, error=reason)
            return
        log.warning("line %d: %s; submitting it once more", line, reason)
        self._ledger.requeue(line, reason=reason)
        self._book.requeue([self._ledger.target(line)])
        self._notify()

    async def outcome(
        self,
        line: int,
        state: State,
        *,
        task_id: int | None = None,
        error: str | None = None,
        path: str | None = None,
        data: pd.DataFrame | None = None,
    ) -> None:
        """Hand out the outcome of ``line`` and of the rows it stands for, then mark it final."""
        # Outcomes first: once the book says "final", run() may end the task group at once.
        if self._on_outcome is not None:
            kept = data if self._keep_data else None
            for member in (line, *self._book.members.get(line, ())):
                target = self._ledger.target(member)
                outcome = Outcome(target=target, state=state, task_id=task_id, error=error,
                                  path=path, data=kept)  # fmt: skip
                await self._on_outcome(outcome)
        self._book.set(line, state)
        self._notify()
