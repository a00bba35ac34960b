"""One poller for all tasks: pages of ``GET /queue/?started=true`` with ETag.

A page of 100 covers 100 tasks for one read and a 304 says nothing changed, so the cost is
a few reads per hundred targets. Our own tasks run in submission order, newest first in
the listing, so walking stops at the first page that reaches below the oldest task still
unfinished. When to poll is :mod:`atlasbatch._engine.pace`'s business.

Queued tasks never appear in that listing, so a queued task deleted on the web page would go
unnoticed until the queue reached it. The user's count of unstarted tasks
(``?started=false&pagesize=1``: one small read) tells: fewer than ours means some of ours
are gone, and only then are the unstarted pages walked to find which.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from atlasbatch._http.client import AtlasClient
from atlasbatch._models import State

__all__ = ["Poller", "TaskUpdate", "classify"]

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
    runtime_s = _runtime(task)
    if not task.get("finishtimestamp"):
        state = State.RUNNING if task.get("starttimestamp") else State.QUEUED
        return TaskUpdate(task_id, state, None, None, None)
    if error:
        state = State.NO_DATA if str(error).strip() == NO_DATA else State.FAILED
        return TaskUpdate(task_id, state, None, str(error), runtime_s)
    # Finished without error but no result_url: the file is gone (expired); the caller decides.
    url = task.get("result_url")
    return TaskUpdate(task_id, State.FINISHED, str(url) if url else None, None, runtime_s)


def _runtime(task: dict[str, Any]) -> float | None:
    """The task's run time: the server's ``runtime`` (0.1 s), else from its timestamps."""
    runtime = task.get("runtime")
    if isinstance(runtime, int | float) and not isinstance(runtime, bool):
        return float(runtime)
    try:  # older servers: whole-second timestamps are all there is
        start = dt.datetime.fromisoformat(str(task["starttimestamp"]))
        finish = dt.datetime.fromisoformat(str(task["finishtimestamp"]))
    except (KeyError, TypeError, ValueError):
        return None
    return max(0.0, (finish - start).total_seconds())


class Poller:
    """Reads the task list and reports what changed for the tasks we wait on."""

    def __init__(self, client: AtlasClient) -> None:
        self._client = client
        self._etag: str | None = None
        self._count_etag: str | None = None

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

    async def unstarted_count(self) -> int | None:
        """How many of the user's tasks have not started (every script's); None: unchanged."""
        page = await self._client.list_page(started=False, pagesize=1, etag=self._count_etag)
        if page is None:
            return None
        self._count_etag = page.etag
        return page.count

    async def unstarted_ids(self, lowest: int) -> set[int]:
        """Ids of the user's unstarted tasks down to ``lowest`` (newest first, bounded)."""
        found: set[int] = set()
        async for task in self._client.iter_tasks(started=False):
            task_id = int(task["id"])
            found.add(task_id)
            if task_id <= lowest:
                break
        return found
