"""The unfinished tasks and their order: the real ``calculate_queue_positions`` round-robin.

Round-robin passes take at most one task per user; the most recently started unfinished task
gets position 0; in the first pass only users with a higher user id than that task's owner
take part (when nothing is running, the owner of the task started last: the server dispatches
from positions numbered while it ran); later passes go by user id. The dispatcher picks the
lowest-positioned waiting task whose user has a free per-user slot. Positions are recomputed
on demand (cached until the queue changes), so they are always current, where the server
renumbers every few seconds.
"""

from __future__ import annotations

import bisect
import itertools
from collections import Counter, deque
from collections.abc import Iterator, Mapping

from .._state.tasks import Task

__all__ = ["Queue"]


class Queue:
    """Waiting lines per user plus the running tasks; no notion of time."""

    def __init__(self, *, user_slots: int) -> None:
        self.user_slots = user_slots
        self._waiting: dict[int, deque[Task]] = {}
        self._requeued: dict[int, Task] = {}
        self._running: dict[int, Task] = {}
        self._running_per_user: Counter[int] = Counter()
        self._positions: dict[int, int] | None = None
        self._last_started_user: int | None = None

    # -- changes ----------------------------------------------------------------------------

    def add(self, task: Task) -> None:
        """Put a task in its owner's waiting line, in submission (id) order."""
        line = self._waiting.setdefault(task.user.id, deque())
        if not line or line[-1].id < task.id:
            line.append(task)
        else:
            line.insert(bisect.bisect_left([t.id for t in line], task.id), task)
        self._positions = None

    def requeue(self, task: Task) -> None:
        """A lost attempt: the task waits again, keeping its place as a started task."""
        self._requeued[task.id] = task
        self.add(task)

    def discard(self, task: Task) -> None:
        """Forget a waiting task (deleted)."""
        self._waiting[task.user.id].remove(task)
        self._requeued.pop(task.id, None)
        self._positions = None

    def start(self, task: Task) -> None:
        """Move the head of a waiting line into the running set."""
        self._waiting[task.user.id].popleft()
        self._requeued.pop(task.id, None)
        self._running[task.id] = task
        self._running_per_user[task.user.id] += 1
        self._last_started_user = task.user.id
        self._positions = None

    def stop(self, task: Task) -> None:
        """Take a running task out (finished, lost or deleted)."""
        del self._running[task.id]
        self._running_per_user[task.user.id] -= 1
        self._positions = None

    # -- questions --------------------------------------------------------------------------

    def is_running(self, task: Task) -> bool:
        """Whether this very task object is running now."""
        return self._running.get(task.id) is task

    @property
    def running_ids(self) -> Mapping[int, Task]:
        """The running tasks by id (read-only use)."""
        return self._running

    def running(self) -> Iterator[Task]:
        """The running tasks (a snapshot)."""
        return iter(list(self._running.values()))

    def has_unfinished(self) -> bool:
        """Whether anything waits or runs."""
        return bool(self._running) or any(self._waiting.values())

    def unstarted_count(self, user_id: int) -> int:
        """The user's tasks that never started (what the queue cap counts)."""
        line = self._waiting.get(user_id, ())
        return sum(1 for task in line if task.starttimestamp is None)

    def unfinished_ids(self, user_id: int) -> list[int]:
        """Ids of the user's unfinished tasks (waiting or running)."""
        ids = [task.id for task in self._waiting.get(user_id, ())]
        ids.extend(task.id for task in self._running.values() if task.user.id == user_id)
        return ids

    def counts(self, *, include_background: bool = True) -> tuple[int, int]:
        """(waiting, running) task counts, optionally without the background users' load."""
        waiting = sum(
            len(line)
            for line in self._waiting.values()
            if line and (include_background or not line[0].user.background)
        )
        running = sum(
            1 for t in self._running.values() if include_background or not t.user.background
        )
        return waiting, running

    # -- ordering ---------------------------------------------------------------------------

    def _latest_started(self) -> tuple[Task | None, int | None]:
        """The unfinished task started last, and the user the round-robin pass starts after.

        Without any started unfinished task, the pass still starts after the user whose task
        started last: on the server the positions used for the next dispatch were numbered
        while that task was running, so finishing it does not send the queue back to user 1.
        """
        started = itertools.chain(self._running.values(), self._requeued.values())
        latest = max(started, key=lambda t: (t.started_at or 0.0, t.id), default=None)
        return latest, self._last_started_user if latest is None else latest.user.id

    def _unfinished_by_user(self) -> dict[int, list[Task]]:
        groups: dict[int, list[Task]] = {uid: list(line) for uid, line in self._waiting.items()}
        for task in self._running.values():
            groups.setdefault(task.user.id, []).append(task)
        for tasks in groups.values():
            tasks.sort(key=lambda t: (t.timestamp, t.id))
        return groups

    def positions(self) -> dict[int, int]:
        """``queuepos`` of every unfinished task (0 = the running task started last)."""
        if self._positions is None:
            latest, pivot = self._latest_started()
            keyed: list[tuple[int, int, int]] = []
            for uid, tasks in self._unfinished_by_user().items():
                shift = 0 if pivot is None or uid > pivot else 1
                rest = [t for t in tasks if t is not latest]
                keyed.extend((shift + j, uid, t.id) for j, t in enumerate(rest))
            keyed.sort()
            first = 0 if latest is None else 1
            positions = {tid: first + i for i, (_, _, tid) in enumerate(keyed)}
            if latest is not None:
                positions[latest.id] = 0
            self._positions = positions
        return self._positions

    def next_candidate(self, held_per_user: Mapping[int, int]) -> Task | None:
        """The waiting task to start next, if any user with a waiting task has a free turn.

        ``held_per_user`` counts each user's slots still held by tasks that just ended.
        """
        latest, pivot = self._latest_started()
        best: tuple[int, int] | None = None
        chosen: Task | None = None
        for uid, line in self._waiting.items():
            taken = self._running_per_user[uid] + held_per_user.get(uid, 0)
            if not line or taken >= self.user_slots:
                continue
            head = line[0]
            if head is latest:
                return head
            shift = 0 if pivot is None or uid > pivot else 1
            ahead = sum(1 for t in self._running.values() if t.user.id == uid and t.id < head.id)
            if latest is not None and latest.user.id == uid and latest.id < head.id:
                ahead -= 1
            key = (shift + ahead, uid)
            if best is None or key < best:
                best, chosen = key, head
        return chosen
