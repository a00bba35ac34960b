"""The runner's clockwork: task-time draws, its poll ticks, and when it notices a cancel."""

from __future__ import annotations

import math
import random

from .._config import EmulatorConfig

__all__ = ["PollGrid", "cancel_noticed_at", "task_duration"]

_EPSILON = 1e-9  # float slack, so an instant computed as a + k·p counts as on the grid


def task_duration(
    config: EmulatorConfig,
    *,
    task_id: int,
    attempt: int,
    background: bool = False,
    image: bool = False,
) -> float:
    """How long one attempt of one task runs (deterministic per seed, task and attempt).

    A median ``task_seconds`` (or ``background_task_seconds``, or ``image_task_seconds`` for
    an image request), times ``1 ± task_jitter``,
    times ``exp(task_sigma · N(0, 1))``, times ``long_task_factor`` for a ``long_task_rate``
    fraction. Each attempt has its own generator, seeded from its identity, so the times do
    not depend on the order in which the (lazy) runner happens to start tasks.
    """
    median = config.task_seconds
    if background and config.background_task_seconds is not None:
        median = config.background_task_seconds
    if image:
        median = config.image_task_seconds
    rng = random.Random(f"{config.seed}:{task_id}:{attempt}")
    seconds = median * (1.0 + config.task_jitter * (2.0 * rng.random() - 1.0))
    if config.task_sigma > 0:
        seconds *= math.exp(config.task_sigma * rng.gauss(0.0, 1.0))
    if config.long_task_rate > 0 and rng.random() < config.long_task_rate:
        seconds *= config.long_task_factor
    return max(0.0, seconds)


def cancel_noticed_at(
    *, started_at: float, run_until: float, deleted_at: float, cancel_check: float
) -> float:
    """When the runner notices that the running task it runs was deleted.

    It checks every ``cancel_check`` seconds of the run (and once more when the job ends), so
    the answer is the first check at or after the deletion, or the job's end if sooner.
    """
    if cancel_check <= 0:
        return deleted_at
    checks = math.ceil((deleted_at - started_at) / cancel_check - _EPSILON)
    next_check = started_at + max(checks, 1) * cancel_check
    return max(deleted_at, min(next_check, run_until))


class PollGrid:
    """When the runner wakes up: every ``busy`` seconds while it has work, else every ``idle``.

    The ticks of the current mode lie on ``anchor + k · period``. A wake-up that finds work
    after an idle spell starts the busy grid there; the moment the runner runs out of work it
    goes back to idle polling, from that moment. At construction the runner has been idle for
    a while: ``phase`` (seconds since its last wake-up, from ``[0, idle)``) places the grid.
    """

    def __init__(self, *, idle: float, busy: float, start: float, phase: float) -> None:
        self.idle_period = idle
        self.busy_period = busy
        self.anchor = start - phase
        self.period = idle
        self.idle = True

    def next_tick(self, at: float) -> float:
        """The first wake-up at or after ``at``."""
        if self.period <= 0 or at <= self.anchor:
            return max(at, self.anchor)
        steps = math.ceil((at - self.anchor) / self.period - _EPSILON)
        return self.anchor + steps * self.period

    def mark_busy(self, tick: float) -> None:
        """A wake-up at ``tick`` found work: poll at the busy rate from here."""
        if self.idle:
            self.idle, self.anchor, self.period = False, tick, self.busy_period

    def mark_idle(self, at: float) -> None:
        """The runner ran out of work at ``at``: poll at the idle rate from here."""
        if not self.idle:
            self.idle, self.anchor, self.period = True, at, self.idle_period
