"""The task runner: slots, per-user limit, round-robin order, advanced lazily from the clock.

There is no background loop. Every request and every handle call first calls
:meth:`Runner.advance` with the current time, which replays, in time order, everything that
happened since the last call: tasks finishing (or being lost), result files expiring, finished
tasks being purged, and queued tasks being dispatched into the slots they freed. The outcome
depends only on the request times and the seed, never on thread scheduling.

Ordering is the real ``calculate_queue_positions``: round-robin passes taking at most one task
per user; the most recently started unfinished task gets position 0; in the first pass only
users with a higher user id than that task's owner take part (when nothing is running, the owner
of the task started last: the server dispatches from positions numbered while it ran); later
passes go by user id. The dispatcher picks the lowest-positioned waiting task whose user has a
free per-user slot. Positions are recomputed on demand (cached until the queue changes), so
they are always current, where the server renumbers every few seconds.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import math
import random
from collections import Counter, deque
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Literal

from ._clock import Clock
from ._config import EmulatorConfig
from ._lightcurve import Job, has_data
from ._stats import Stats
from ._tasks import Task

__all__ = ["Runner"]

EventKind = Literal["finish", "expire", "purge"]
NO_DATA = "No data returned"
NO_STACK = "No image stack was produced."


class Runner:
    """Owns the unfinished tasks and the timed events; the store owns everything else."""

    def __init__(
        self,
        config: EmulatorConfig,
        clock: Clock,
        stats: Stats,
        *,
        lookup: Callable[[int], Task | None],
        purge: Callable[[int], None],
    ) -> None:
        self.config = config
        self.faults = config.faults
        self._clock = clock
        self._stats = stats
        self._lookup = lookup
        self._purge = purge
        self.time = clock.now()
        self._waiting: dict[int, deque[Task]] = {}
        self._requeued: dict[int, Task] = {}
        self._running: dict[int, Task] = {}
        self._running_per_user: Counter[int] = Counter()
        self._events: list[tuple[float, int, EventKind, int]] = []
        self._sequence = itertools.count()
        self._positions: dict[int, int] | None = None
        self._last_started_user: int | None = None
        self._duration_rng = random.Random(config.seed)
        self._lose_rng = random.Random(config.seed + 1)

    # -- queue contents -------------------------------------------------------------------

    def enqueue(self, task: Task) -> None:
        """Add a new (or lost) task to its owner's waiting line, in submission order."""
        line = self._waiting.setdefault(task.user.id, deque())
        if not line or line[-1].id < task.id:
            line.append(task)
        else:
            line.insert(bisect.bisect_left([t.id for t in line], task.id), task)
        self._positions = None

    def remove(self, task: Task) -> None:
        """Forget a queued or running task that was deleted (a running job stops at once)."""
        if self._running.pop(task.id, None) is not None:
            self._running_per_user[task.user.id] -= 1
        else:
            self._waiting[task.user.id].remove(task)
            self._requeued.pop(task.id, None)
        self._positions = None

    def unstarted_count(self, user_id: int) -> int:
        """The user's tasks that never started (what the queue cap counts)."""
        line = self._waiting.get(user_id, ())
        return sum(1 for task in line if task.starttimestamp is None)

    def unfinished_ids(self, user_id: int) -> list[int]:
        """Ids of the user's unfinished tasks (waiting or running)."""
        ids = [task.id for task in self._waiting.get(user_id, ())]
        ids.extend(task.id for task in self._running.values() if task.user.id == user_id)
        return ids

    def counts(self) -> tuple[int, int]:
        """(waiting, running) task counts."""
        return sum(len(line) for line in self._waiting.values()), len(self._running)

    # -- ordering -------------------------------------------------------------------------

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

    def _next_candidate(self) -> Task | None:
        latest, pivot = self._latest_started()
        best: tuple[int, int] | None = None
        chosen: Task | None = None
        for uid, line in self._waiting.items():
            if not line or self._running_per_user[uid] >= self.config.user_slots:
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

    # -- time -----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Replay everything that happened up to ``now`` (monotonic seconds)."""
        now = max(now, self.time)
        self._dispatch()
        while self._events and self._events[0][0] <= now:
            when, _, kind, task_id = heapq.heappop(self._events)
            self.time = max(self.time, when)
            self._handle(kind, task_id, when)
            self._dispatch()
        self.time = now

    def _schedule(self, when: float, kind: EventKind, task_id: int) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), kind, task_id))

    def _dispatch(self) -> None:
        while len(self._running) < self.config.slots:
            task = self._next_candidate()
            if task is None:
                return
            self._start(task)

    def _start(self, task: Task) -> None:
        self._waiting[task.user.id].popleft()
        self._requeued.pop(task.id, None)
        self._running[task.id] = task
        self._running_per_user[task.user.id] += 1
        jitter = self.config.task_jitter * (2.0 * self._duration_rng.random() - 1.0)
        duration = max(0.0, self.config.task_seconds * (1.0 + jitter))
        fields = task.fields
        self._last_started_user = task.user.id
        task.state = "running"
        task.started_at = self.time
        task.starttimestamp = self._clock.epoch_seconds(self.time)
        task.attempt_count += 1
        task.run_until = self.time + duration
        task.lose_attempt = self._lose_rng.random() < self.faults.lose_rate
        task.job = Job(
            ra=_as_float(fields["ra"]),
            dec=_as_float(fields["dec"]),
            mpc_name=fields["mpc_name"] if isinstance(fields["mpc_name"], str) else None,
            mjd_min=_as_float(fields["mjd_min"]),
            end_mjd=math.inf,
            use_reduced=bool(fields["use_reduced"]),
            observations_per_day=self.config.observations_per_day,
        )
        task.touch()
        self._positions = None
        self._schedule(task.run_until, "finish", task.id)

    def _handle(self, kind: EventKind, task_id: int, when: float) -> None:
        if kind == "purge":
            self._purge(task_id)
            return
        task = self._lookup(task_id)
        if task is None:
            return
        if kind == "expire":
            if task.state == "finished" and task.file_present:
                task.file_present = False
                task.touch()
                self._stats.files_expired += 1
        elif self._running.get(task_id) is task and task.run_until == when:
            self._finish(task, when)

    def _finish(self, task: Task, when: float) -> None:
        del self._running[task.id]
        self._running_per_user[task.user.id] -= 1
        self._positions = None
        task.run_until = None
        task.touch()
        if task.lose_attempt:
            # an "indefinite failure" (ssh error, runner restart): the task stays unfinished,
            # keeps its old starttimestamp and is dispatched again, with no retry limit
            task.lose_attempt = False
            task.state = "queued"
            self._requeued[task.id] = task
            self.enqueue(task)
            self._stats.tasks_lost += 1
            return
        task.state = "finished"
        task.finished_at = when
        task.finishtimestamp = self._clock.epoch_seconds(when)
        self._decide_outcome(task, when)
        if self.faults.expire_after is not None and task.file_present:
            self._schedule(when + self.faults.expire_after, "expire", task.id)
        if self.config.purge_after is not None:
            self._schedule(when + self.config.purge_after, "purge", task.id)

    def _decide_outcome(self, task: Task, when: float) -> None:
        assert task.job is not None
        mjd_max = _as_float(task.fields["mjd_max"])
        end_mjd = self._clock.mjd(when) if mjd_max is None else min(mjd_max, self._clock.mjd(when))
        task.job = replace(task.job, end_mjd=end_mjd)
        if task.fields["request_type"] == "SSOSTACK":
            task.error_msg, task.file_present = NO_STACK, False
        elif has_data(task.job):
            task.error_msg, task.file_present = None, True
        else:
            # the header-only file stays on disk: data.txt still serves it
            task.error_msg, task.file_present = NO_DATA, True

    def running(self) -> Iterator[Task]:
        """The running tasks (for inspection)."""
        return iter(list(self._running.values()))


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
