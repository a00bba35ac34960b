"""One poller for all tasks: pages of ``GET /queue/?started=true`` with ETag, timed by need.

A page of 100 covers 100 tasks for one read and a 304 says nothing changed, so the cost is
a few reads per hundred targets. Our own tasks run in submission order, newest first in
the listing, so walking stops at the first page that reaches below the oldest task still
unfinished. The interval follows the measured completion rate: long enough that one poll
finds several completions, short at the tail so the last result is not left waiting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from atlasbatch._client import AtlasClient
from atlasbatch._config import Settings
from atlasbatch._models import State

__all__ = ["PollPacer", "Poller", "TaskUpdate"]

NO_DATA = "No data returned"


@dataclass(frozen=True, slots=True)
class TaskUpdate:
    """A change the server reports for one of our tasks."""

    task_id: int
    state: State  # RUNNING, FINISHED, NO_DATA or FAILED
    result_url: str | None
    error_msg: str | None
    runtime: float | None


def classify(task: dict[str, Any]) -> TaskUpdate:
    """The state of a task JSON as our states name it."""
    task_id = int(task["id"])
    error = task.get("error_msg")
    runtime = task.get("runtime")
    runtime_s = float(runtime) if isinstance(runtime, int | float) else None
    if not task.get("finishtimestamp"):
        state = State.RUNNING if task.get("starttimestamp") else State.QUEUED
        return TaskUpdate(task_id, state, None, None, None)
    if error:
        state = State.NO_DATA if str(error).strip() == NO_DATA else State.FAILED
        return TaskUpdate(task_id, state, None, str(error), runtime_s)
    # Finished without error but no result_url: the file is gone (expired); the caller decides.
    url = task.get("result_url")
    return TaskUpdate(task_id, State.FINISHED, str(url) if url else None, None, runtime_s)


class PollPacer:
    """When to poll next, from the measured completion rate and what is still out there."""

    def __init__(self, settings: Settings, *, clock: Any = time.monotonic) -> None:
        rate = settings.read_rate
        # Never more than read_share of the read budget, never faster than poll_min_interval.
        share = rate.seconds / (rate.requests * settings.read_share)
        self.floor = max(settings.poll_min_interval, share)
        self.ceiling = settings.poll_max_interval
        self.task_seconds = settings.expected_task_seconds
        self._clock = clock
        self._rate: float | None = None  # completions per second (EWMA)
        self._last = clock()

    def observe(self, completions: int, runtimes: Iterable[float]) -> None:
        """Feed one poll's findings."""
        now = self._clock()
        elapsed = max(now - self._last, 1e-6)
        self._last = now
        for runtime in runtimes:
            self.task_seconds = 0.8 * self.task_seconds + 0.2 * max(runtime, 0.01)
        if completions:
            sample = completions / elapsed
            self._rate = sample if self._rate is None else 0.7 * self._rate + 0.3 * sample

    def interval(self, *, active: int) -> float:
        """Seconds to the next poll with ``active`` tasks unfinished on the server."""
        if active <= 0:
            return self.ceiling
        rate = self._rate or 1.0 / self.task_seconds
        wanted = min(10, active) / rate  # aim for about ten completions per poll mid-run
        if active <= 2:  # the tail: don't let the last result wait a whole task time
            wanted = self.task_seconds / 4
        return min(max(wanted, self.floor), self.ceiling)


class Poller:
    """Reads the task list and reports what changed for the tasks we wait on."""

    def __init__(self, client: AtlasClient) -> None:
        self._client = client
        self._etag: str | None = None

    async def poll(self, waiting: Iterable[int]) -> tuple[list[TaskUpdate], set[int] | None]:
        """Updates for tasks in ``waiting``, and the ids seen (None when nothing changed)."""
        waiting = set(waiting)
        if not waiting:
            return [], None
        lowest = min(waiting)
        page = await self._client.list_page(started=True, etag=self._etag)
        if page is None:
            return [], None
        self._etag = page.etag
        updates: list[TaskUpdate] = []
        seen: set[int] = set()
        while True:
            ids = [int(t["id"]) for t in page.tasks]
            seen.update(ids)
            updates += [classify(t) for t in page.tasks if int(t["id"]) in waiting]
            if page.next_url is None or not ids or min(ids) < lowest:
                return updates, seen
            next_page = await self._client.list_page(url=page.next_url)
            if next_page is None:
                return updates, seen
            page = next_page
