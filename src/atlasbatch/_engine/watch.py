"""Watching our tasks on the server: when to poll, what changed, what vanished.

One :class:`Watch` per run. Each look reads the started tasks (one page per hundred, ETag),
every fifth look also the user's count of unstarted tasks, and hands what it learned to the
pipeline through two callbacks: ``apply`` (state changes) and ``vanished`` (a task of ours
the server no longer has: deleted on the web page, or purged). The pace of looks is
:class:`~atlasbatch._engine.pace.Pace`'s plan.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from atlasbatch._engine.book import Book
from atlasbatch._engine.pace import Pace
from atlasbatch._engine.poller import Poller, TaskUpdate, classify
from atlasbatch._http.client import AtlasClient
from atlasbatch._models import FINAL_STATES, State

__all__ = ["Watch"]

log = logging.getLogger(__name__)

Apply = Callable[[list[TaskUpdate]], Awaitable[None]]
Vanished = Callable[[int, int], Awaitable[None]]

_COUNT_EVERY = 5  # looks between two reads of the unstarted count ("within a few polls")
_SUSPECTS = 20  # per-task reads one look may spend on tasks that may be gone
_STRAGGLERS = 5


class Watch:
    """Polls for the pipeline; ``pace`` is public for progress displays and the submitter."""

    def __init__(
        self, client: AtlasClient, book: Book, *, apply: Apply, vanished: Vanished
    ) -> None:
        settings = client.settings
        rate = settings.read_rate
        # Never more than read_share of the read budget, never faster than poll_min_interval.
        share = rate.seconds / (rate.requests * settings.read_share)
        floor = max(settings.poll_min_interval, share)
        self.pace = Pace(prior=settings.task_prior, floor=floor, ceiling=settings.poll_max_interval)
        self._client = client
        self._book = book
        self._poller = Poller(client)
        self._apply = apply
        self._vanished = vanished
        self._looks = 0
        self._others: int | None = None  # unstarted tasks of this user that are not ours

    def delay(self) -> float:
        """Seconds until the next look is due."""
        return self.pace.next_delay(active=len(self._book.waiting))

    async def look(self) -> None:
        """One poll: the unstarted count now and then, the started tasks, stragglers."""
        book = self._book
        count, expected = None, set()
        if book.unstarted and self._looks % _COUNT_EVERY == 0:
            expected = set(book.unstarted)  # what the count should cover, taken with it
            count = await self._poller.unstarted_count()  # before the listing: see below
        self._looks += 1
        updates, seen = await self._poller.poll(book.waiting)
        ours = [u for u in updates if u.task_id in book.waiting]
        done = [u for u in ours if u.state in FINAL_STATES or u.state is State.FINISHED]
        started = sum(u.task_id in book.unstarted and u.state is not State.QUEUED for u in ours)
        await self._apply(ours)
        self.pace.observe(
            completions=len(done),
            runtimes=[u.runtime for u in done if u.runtime is not None],
            running=sum(u.state is State.RUNNING for u in ours),
            started=started,
        )
        if seen is not None:
            await self._check_stragglers(seen)
        if count is not None:
            await self._check_unstarted(count, expected & book.unstarted)

    async def _check_stragglers(self, seen: set[int]) -> None:
        """A running task missing from the listing: read it alone (it may be gone)."""
        book = self._book
        missing = [tid for tid, line in book.waiting.items()
                   if book.state.get(line) is State.RUNNING and tid not in seen]  # fmt: skip
        for task_id in missing[:_STRAGGLERS]:
            await self._read_task(task_id)

    async def _check_unstarted(self, count: int, expected: set[int]) -> None:
        """Fewer unstarted tasks on the server than we account for: find which are gone.

        ``expected``: our tasks that were unstarted when the count was read and still are,
        by the listing read after it; a task starting in between is counted, never missed,
        so a shortfall means tasks left the queue unstarted. Tasks created meanwhile are in
        neither. The user's other scripts may own some of the count (``_others``); a drop
        in theirs costs one walk of the unstarted pages, and each suspect is read alone.
        """
        others = count - len(expected)
        if others >= 0 and (self._others is None or others >= self._others):
            self._others = others
            return
        if not expected:
            return
        present = await self._poller.unstarted_ids(min(expected))
        suspects = sorted(expected - present)
        for task_id in suspects[:_SUSPECTS]:
            await self._read_task(task_id)
        self._others = len(present - self._book.unstarted)

    async def _read_task(self, task_id: int) -> None:
        book = self._book
        task = await self._client.task(task_id)
        if task_id not in book.waiting:
            return
        if task is None:
            await self._vanished(task_id, book.waiting[task_id])
        else:
            await self._apply([classify(task)])
