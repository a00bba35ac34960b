"""The task runner: slots, per-user limit, round-robin order, advanced lazily from the clock.

There is no background loop. Every request and every handle call first calls
:meth:`Runner.advance` with the current time, which replays, in time order, everything that
happened since the last call: the runner's wake-ups, tasks finishing (or being lost), slots
coming free, result files expiring, finished tasks being purged. The outcome depends only on
the request times and the seed, never on thread scheduling.

Timing is the real runner's (see :class:`~atlasbatch.testing.EmulatorConfig`): a new task is
picked up at the runner's next poll (:class:`~._state.timing.PollGrid`); a finished task keeps its
slot and its user for ``user_gap``; a deleted running task keeps them until the runner's next
cancel check. The order is :mod:`._state.ordering`'s round-robin.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Literal

from .._config import EmulatorConfig
from .._sky.lightcurve import Job, has_data, motion_of
from .._state.clock import Clock
from .._state.images import image_outcome, is_image
from .._state.ordering import Queue
from .._state.stats import Stats
from .._state.tasks import Task, User
from .._state.timing import PollGrid, cancel_noticed_at, task_duration

__all__ = ["Runner"]

EventKind = Literal["finish", "expire", "purge", "tick", "release"]
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
        spawn: Callable[[User], Task],
    ) -> None:
        self.config = config
        self.faults = config.faults
        self._clock = clock
        self._stats = stats
        self._lookup = lookup
        self._purge = purge
        self._spawn = spawn
        self.time = clock.now()
        self.queue = Queue(user_slots=config.user_slots)
        self._holds: dict[int, int] = {}  # hold id -> user id: a slot not yet free again
        self._held_per_user: Counter[int] = Counter()
        self._events: list[tuple[float, int, EventKind, int]] = []
        self._sequence = itertools.count()
        self._tick_at: float | None = None
        phase = random.Random(f"{config.seed}:phase").random() * config.runner_idle_poll
        self._grid = PollGrid(
            idle=config.runner_idle_poll,
            busy=config.runner_busy_poll,
            start=self.time,
            phase=phase,
        )
        self._lose_rng = random.Random(config.seed + 1)

    # -- queue contents -------------------------------------------------------------------

    def enqueue(self, task: Task) -> None:
        """Add a new (or lost) task to its owner's waiting line; the next poll sees it."""
        self.queue.add(task)
        self._wake(self._grid.next_tick(self.time))

    def keep_busy(self, user: User) -> None:
        """Make ``user`` background load: it always has a task waiting from now on."""
        self.enqueue(self._spawn(user))

    def remove(self, task: Task) -> None:
        """Forget a deleted queued or running task (a running job holds its slot a while)."""
        if self.queue.is_running(task):
            self.queue.stop(task)
            assert task.started_at is not None
            assert task.run_until is not None
            noticed = cancel_noticed_at(
                started_at=task.started_at,
                run_until=task.run_until,
                deleted_at=self.time,
                cancel_check=self.config.cancel_check,
            )
            self._hold(task.user.id, until=noticed + self.config.user_gap)
        else:
            self.queue.discard(task)
            self._check_idle()

    def unstarted_count(self, user_id: int) -> int:
        """The user's tasks that never started (what the queue cap counts)."""
        return self.queue.unstarted_count(user_id)

    def unfinished_ids(self, user_id: int) -> list[int]:
        """Ids of the user's unfinished tasks (waiting or running)."""
        return self.queue.unfinished_ids(user_id)

    def counts(self, *, include_background: bool = True) -> tuple[int, int]:
        """(waiting, running) task counts."""
        return self.queue.counts(include_background=include_background)

    def positions(self) -> dict[int, int]:
        """``queuepos`` of every unfinished task (0 = the running task started last)."""
        return self.queue.positions()

    def running(self) -> Iterator[Task]:
        """The running tasks (for inspection)."""
        return self.queue.running()

    # -- time -----------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Replay everything that happened up to ``now`` (monotonic seconds)."""
        now = max(now, self.time)
        while self._events and self._events[0][0] <= now:
            when, _, kind, ident = heapq.heappop(self._events)
            self.time = max(self.time, when)
            self._handle(kind, ident, when)
        self.time = now

    def _schedule(self, when: float, kind: EventKind, ident: int) -> None:
        heapq.heappush(self._events, (when, next(self._sequence), kind, ident))

    def _wake(self, tick: float) -> None:
        if self._tick_at is None or tick < self._tick_at:
            self._tick_at = tick
            self._schedule(tick, "tick", 0)

    def _has_work(self) -> bool:
        return bool(self._holds) or self.queue.has_unfinished()

    def _check_idle(self) -> None:
        if not self._has_work():
            self._grid.mark_idle(self.time)

    def _hold(self, user_id: int, *, until: float) -> None:
        """Keep a slot and the user's turn taken until ``until`` (process exit and respawn)."""
        hold_id = next(self._sequence)
        self._holds[hold_id] = user_id
        self._held_per_user[user_id] += 1
        self._schedule(max(until, self.time), "release", hold_id)

    def _dispatch(self) -> None:
        while len(self.queue.running_ids) + len(self._holds) < self.config.slots:
            task = self.queue.next_candidate(self._held_per_user)
            if task is None:
                break
            self._start(task)
        self._check_idle()

    def _start(self, task: Task) -> None:
        self.queue.start(task)
        background = task.user.background
        task.attempt_count += 1
        duration = task_duration(
            self.config, task_id=task.id, attempt=task.attempt_count, background=background,
            image=is_image(task),
        )  # fmt: skip
        fields = task.fields
        task.state = "running"
        task.started_at = self.time
        task.starttimestamp = self._clock.epoch_seconds(self.time)
        task.run_until = self.time + duration
        task.lose_attempt = not background and self._lose_rng.random() < self.faults.lose_rate
        task.job = Job(
            ra=_as_float(fields["ra"]),
            dec=_as_float(fields["dec"]),
            mpc_name=fields["mpc_name"] if isinstance(fields["mpc_name"], str) else None,
            mjd_min=_as_float(fields["mjd_min"]),
            end_mjd=math.inf,
            use_reduced=bool(fields["use_reduced"]),
            observations_per_day=self.config.observations_per_day,
            **motion_of(fields),
        )
        task.touch()
        self._schedule(task.run_until, "finish", task.id)
        if background:
            self.enqueue(self._spawn(task.user))

    def _handle(self, kind: EventKind, ident: int, when: float) -> None:
        if kind == "tick":
            self._on_tick(when)
        elif kind == "release":
            self._held_per_user[self._holds.pop(ident)] -= 1
            self._dispatch()  # the release includes the runner's wake-up (see user_gap)
        elif kind == "purge":
            self._purge(ident)
        else:
            task = self._lookup(ident)
            if task is None:
                return
            if kind == "expire":
                self._expire(task)
            elif self.queue.is_running(task) and task.run_until == when:
                self._finish(task, when)

    def _on_tick(self, when: float) -> None:
        if self._tick_at is not None and self._tick_at <= when:
            self._tick_at = None
        if self._has_work():
            self._grid.mark_busy(when)
        self._dispatch()

    def _expire(self, task: Task) -> None:
        if task.state == "finished" and task.file_present:
            task.file_present = False
            task.touch()
            self._stats.files_expired += 1

    def _finish(self, task: Task, when: float) -> None:
        self.queue.stop(task)
        self._hold(task.user.id, until=when + self.config.user_gap)
        task.run_until = None
        task.touch()
        if task.user.background:
            self._purge(task.id)  # load only: nobody downloads or lists it
            return
        if task.lose_attempt:
            # an "indefinite failure" (ssh error, runner restart): the task stays unfinished,
            # keeps its old starttimestamp and is dispatched again, with no retry limit
            task.lose_attempt = False
            task.state = "queued"
            self.queue.requeue(task)
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
        elif is_image(task):
            task.error_msg, task.file_present = image_outcome(task)
        elif has_data(task.job):
            task.error_msg, task.file_present = None, True
        else:
            # the header-only file stays on disk: data.txt still serves it
            task.error_msg, task.file_present = NO_DATA, True


def _as_float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
