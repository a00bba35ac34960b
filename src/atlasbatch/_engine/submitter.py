"""Submission: radeclist batches within the queue cap, and what to do when a POST fails.

Targets sharing one MJD window and mode go out together, up to 100 per POST, and only
while the user's unstarted tasks leave room under the cap (the cap counts unstarted
tasks, so it frees as tasks start). A lost answer is settled by the batch's tag; a queue
full answer pauses; a batch the server refuses is halved until the row at fault is found.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

from atlasbatch._engine.book import Book
from atlasbatch._engine.reconcile import settle_batch
from atlasbatch._exceptions import (
    STOPS_RUN,
    AtlasBatchError,
    QueueFullError,
    RequestRejectedError,
    SubmissionUncertainError,
)
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target

__all__ = ["Submitter"]

log = logging.getLogger(__name__)

#: Tasks of ours on the server that no longer wait to run (results to download, tasks to
#: delete) above which nothing more is sent. Sending more would not speed a run whose
#: downloads or deletes lag (they are its bottleneck), only grow the server's list of our
#: tasks and this process's queues: at 100,000 instant tasks, 20 MB of queued jobs (issue
#: 12). A run against the real server, whose tasks take seconds each, never comes near it.
BACKLOG = 1000

Failed = Callable[[Target, str], Awaitable[None]]


class Submitter:
    """Sends the book's pending targets; the pipeline wakes it when the cap frees up."""

    def __init__(
        self,
        client: AtlasClient,
        ledger: Ledger,
        book: Book,
        *,
        notify: Callable[[], None],
        on_refused: Failed,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._book = book
        self._notify = notify
        self._on_refused = on_refused
        self._cap = client.settings.max_queued
        self._batch_size = client.settings.batch_size
        # Room the server itself reported in its last "too many queued tasks" answer: it
        # counts other scripts of this user too. None: trust our own count.
        self._server_free: int | None = None
        self.enabled = True

    def next_batch(self) -> list[Target] | None:
        """The next targets to POST together, if the queue cap has room for them."""
        book = self._book
        if not self.enabled or not book.pending:
            return None
        # Tasks the image stage holds wait on the server's image pace (five at a time, minutes
        # each), not on this run's: they must not hold back the light curves.
        if len(book.undeleted) - len(book.waiting) - book.images >= BACKLOG:
            return None  # wait for downloads and deletes to catch up
        group = book.pending.batch(self._batch_size)  # lines; Targets only for a POST
        free = self._cap - len(book.unstarted)
        if self._server_free is not None:  # share the cap with another script: fill the room
            size = min(len(group), free, self._server_free)
            return self._ledger.queries_at(group[:size]) if size >= 1 else None
        # A whole batch, or as much of one as the cap can ever hold (a cap below the batch
        # size, ours or the server's, would otherwise wait for room that never comes).
        want = min(len(group), self._cap)
        if free < want:
            return None  # wait for tasks to start
        return self._ledger.queries_at(group[:want])

    async def submit(self, batch: list[Target], *, pause: float) -> None:
        """POST one batch and record what the server made of it."""
        number, tag = self._ledger.start_batch([t.line for t in batch])
        for target in batch:
            self._book.pending.remove(target.line)
            self._book.set(target.line, State.SUBMITTING)
        try:
            created = await self._client.submit(batch, comment=tag)
        except SubmissionUncertainError as exc:
            log.warning("batch %d: %s; looking for tag %s", number, exc, tag)
            await self.settle(number, tag, batch)
        except QueueFullError as exc:
            self._queue_full(number, batch, exc)
            if not self._server_free:  # no room at all: let tasks start, then ask again
                await anyio.sleep(pause)
                self._server_free = None
        except RequestRejectedError as exc:
            await self._rejected(number, batch, exc)
        except STOPS_RUN:
            raise
        except AtlasBatchError as exc:  # any other answer: the POST may have been committed
            log.warning("batch %d: %s; looking for tag %s", number, exc, tag)
            await self.settle(number, tag, batch)
        else:
            self._record(number, batch, created)

    async def settle(self, number: int, tag: str, batch: list[Target]) -> None:
        """After a lost answer: adopt the batch's tasks if the server made them, else retry.

        Until the task list can be read, nothing about the batch is known: keep asking (an
        outage may last; Ctrl-C and a later resume settle it just the same).
        """
        for attempt in itertools.count():
            try:
                pairs = await settle_batch(self._client, self._ledger, number, tag, batch)
                break
            except STOPS_RUN:
                raise
            except AtlasBatchError as exc:
                log.warning("batch %d: cannot read the task list yet (%s)", number, exc)
                await anyio.sleep(min(60.0, 2.0**attempt))
        adopted = [t for t in batch if t.line in pairs]
        if adopted:
            self._created(adopted, [pairs[t.line] for t in adopted])
        missing = [t for t in batch if t.line not in pairs]
        if missing:
            self._book.requeue(missing)
            self._notify()

    def _record(self, number: int, batch: list[Target], created: list[dict[str, Any]]) -> None:
        task_ids = [int(task["id"]) for task in created]
        self._ledger.batch_submitted(
            number, list(zip((t.line for t in batch), task_ids, strict=True))
        )
        username = created[0].get("username")
        if isinstance(username, str):  # the account the run's tasks belong to (resume check)
            self._ledger.set_account(username)
        self._created(batch, task_ids)

    def _created(self, batch: list[Target], task_ids: list[int]) -> None:
        self._book.created(batch, task_ids)
        self._server_free = None
        self._notify()

    def _queue_full(self, number: int, batch: list[Target], exc: QueueFullError) -> None:
        """The cap is reached (maybe by another script of this user): wait for starts."""
        self._ledger.batch_abandoned(number)
        self._book.requeue(batch)
        if exc.cap is not None:
            self._cap = exc.cap
        known = exc.queued is not None and exc.cap is not None
        self._server_free = max(0, self._cap - (exc.queued or 0)) if known else 0
        log.info("queue cap reached (%s); room for %d", exc.detail, self._server_free)

    async def _rejected(self, number: int, batch: list[Target], exc: RequestRejectedError) -> None:
        """A batch the server refuses: halve it to find the rows at fault; fail only those."""
        self._ledger.batch_abandoned(number)
        if len(batch) == 1:
            await self._on_refused(batch[0], f"server refused: {exc.detail}")
            return
        half = len(batch) // 2
        for part in (batch[:half], batch[half:]):
            number, tag = self._ledger.start_batch([t.line for t in part])
            try:
                created = await self._client.submit(part, comment=tag)
            except RequestRejectedError as inner:
                await self._rejected(number, part, inner)
            except (SubmissionUncertainError, QueueFullError):
                await self.settle(number, tag, part)
            else:
                self._record(number, part, created)
