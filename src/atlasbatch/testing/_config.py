"""Everything that shapes one emulator run (frozen, keyword-only, validated).

Defaults are the real server's wherever ``atlas_api.md`` gives a value: 60/min writes,
600/min reads, a 500-task queue cap, 16 runner slots with one running task per user, about a
minute per task, the runner's 5 s idle / 0.5 s busy poll, the 1.2 s it leaves between one
user's tasks, its 15 s cancel check, and the 31-day retention. Tests compress time:
:meth:`EmulatorConfig.scaled` multiplies every duration, and :data:`TEST_TIMING` (what the
pytest fixtures use) makes the runner react at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Final, Literal, TypedDict

from ._fault_settings import Faults
from ._rates import (
    Rate,
    check_fraction,
    check_optional_seconds,
    check_seconds,
    parse_rate,
    scale_rate,
)

__all__ = ["TEST_TIMING", "EmulatorConfig", "OutageMode", "OutageWindow", "RunnerTiming"]

OutageMode = Literal["503", "drop"]
"""``"503"``: every request gets Apache's HTML 503 page; ``"drop"``: no answer at all."""

OutageWindow = tuple[float, float, OutageMode]
"""``(start, end, mode)``: an outage from ``start`` to ``end`` seconds after the start."""

DAY: Final = 86400.0


class RunnerTiming(TypedDict):
    """The runner's pauses, as keyword arguments of :class:`EmulatorConfig`."""

    runner_idle_poll: float
    runner_busy_poll: float
    user_gap: float
    cancel_check: float


TEST_TIMING: Final[RunnerTiming] = {
    "runner_idle_poll": 0.0,
    "runner_busy_poll": 0.0,
    "user_gap": 0.0,
    "cancel_check": 0.0,
}
"""Runner timing for tests: dispatch the moment a task may start (no poll, gap or check)."""


def _check_outages(outages: tuple[OutageWindow, ...]) -> None:
    for window in outages:
        if len(window) != 3:
            msg = f"an outage is (start, end, mode), got {window!r}"
            raise ValueError(msg)
        start, end, mode = window
        if not (0 <= start < end):
            msg = f"an outage needs 0 <= start < end, got {window!r}"
            raise ValueError(msg)
        if mode not in ("503", "drop"):
            msg = f"an outage's mode is '503' or 'drop', got {mode!r}"
            raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, slots=True)
class EmulatorConfig:
    """Everything that shapes one emulator run; every duration is in (emulator) seconds.

    Throttle and queue (API §9, §10): ``write_rate``/``read_rate`` in DRF's syntax (see
    :func:`parse_rate`; ``None`` switches a scope off), ``max_queued``.

    Runner (API §11, §19): ``slots`` in all, ``user_slots`` per user, dispatched round-robin.

    * Task time: median ``task_seconds``, times ``1 ± task_jitter`` (uniform), times a
      log-normal factor ``exp(task_sigma · N(0, 1))`` (0: fixed; about 0.6 gives the real
      spread, 2 s to several minutes, mean ≈ 1.2 × median), and a ``long_task_rate`` fraction
      of tasks runs ``long_task_factor`` times longer. Drawn per task and attempt from
      ``seed``, so a run's times do not depend on thread scheduling.
    * ``runner_idle_poll`` / ``runner_busy_poll``: the runner wakes every 0.5 s while any task
      is queued or running and every 5 s after a wake-up that found nothing, so a task sent
      to an idle server waits 0-5 s for the next wake-up even with free slots.
    * ``user_gap``: after a task finishes, its slot and its user stay taken this long (the
      runner reaps the process at its next poll and spawns the next one: 1.2 s measured
      from one finish to the same user's next start, the poll included).
    * ``cancel_check``: a deleted *running* task vanishes at once, but the runner notices only
      at its next check (every 15 s of the task's run, or when the job ends, if sooner), so
      its slot and user stay taken until then, plus ``user_gap``.
    * ``background_users``: other accounts that always keep a task queued (each run in turn
      for ``background_task_seconds``, default ``task_seconds``), sharing the slots
      round-robin with everyone else, so queue waits exist; their tasks appear in no listing.
    * ``image_task_seconds``: the median time of an image request (an IMGZIP task, API §14),
      drawn like ``task_seconds``; the real server's take about 15 minutes (§11).

    ``purge_after``: seconds after finishing when a finished (or user-deleted) task is
    hard-deleted (31 days; ``None``: never). ``observations_per_day``: expected exposures per
    filter and day in the synthetic light curves. ``outages``: ``(start, end, mode)`` windows
    relative to the emulator's start (see :meth:`Emulator.outage` for switching by hand).
    ``request_log_size``: how many requests :meth:`Emulator.requests` keeps (the newest).
    ``username``/``password``/``token``: the default user (``token=None``: random).
    """

    write_rate: str | None = "60/min"
    read_rate: str | None = "600/min"
    max_queued: int = 500
    slots: int = 16
    user_slots: int = 1
    task_seconds: float = 60.0
    task_jitter: float = 0.0
    task_sigma: float = 0.0
    long_task_rate: float = 0.0
    long_task_factor: float = 20.0
    runner_idle_poll: float = 5.0
    runner_busy_poll: float = 0.5
    user_gap: float = 1.2
    cancel_check: float = 15.0
    background_users: int = 0
    background_task_seconds: float | None = None
    image_task_seconds: float = 900.0
    seed: int = 0
    purge_after: float | None = 31 * DAY
    observations_per_day: float = 0.5
    faults: Faults = field(default_factory=Faults)
    outages: tuple[OutageWindow, ...] = ()
    request_log_size: int = 10_000
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "atlas"
    password: str = "atlas-password"
    token: str | None = None

    def __post_init__(self) -> None:
        for rate in (self.write_rate, self.read_rate):
            if rate is not None:
                parse_rate(rate)
        for name in ("max_queued", "background_users", "request_log_size"):
            if getattr(self, name) < 0:
                msg = f"{name} must be >= 0"
                raise ValueError(msg)
        if self.slots < 1 or self.user_slots < 1:
            msg = "slots and user_slots must be >= 1"
            raise ValueError(msg)
        self._check_timing()
        check_optional_seconds("purge_after", self.purge_after)
        if not self.observations_per_day >= 0:
            msg = "observations_per_day must be >= 0"
            raise ValueError(msg)
        _check_outages(self.outages)
        windows = tuple((float(start), float(end), mode) for start, end, mode in self.outages)
        object.__setattr__(self, "outages", windows)  # lists from a caller become hashable
        if not 0 <= self.port <= 65535:
            msg = "port must be between 0 and 65535"
            raise ValueError(msg)
        if self.token is not None and not self.token.strip():
            msg = "token must be a non-empty string"
            raise ValueError(msg)

    def _check_timing(self) -> None:
        for name in (
            "task_seconds", "image_task_seconds", "runner_idle_poll", "runner_busy_poll",
            "user_gap",
        ):  # fmt: skip
            check_seconds(name, getattr(self, name))
        check_seconds("cancel_check", self.cancel_check)
        if self.background_task_seconds is not None:
            check_seconds("background_task_seconds", self.background_task_seconds)
        check_fraction("task_jitter", self.task_jitter)
        check_fraction("long_task_rate", self.long_task_rate)
        if not (0 <= self.task_sigma <= 5):
            msg = f"task_sigma must be between 0 and 5, got {self.task_sigma!r}"
            raise ValueError(msg)
        if not (self.long_task_factor >= 1 and math.isfinite(self.long_task_factor)):
            msg = f"long_task_factor must be a finite number >= 1, got {self.long_task_factor!r}"
            raise ValueError(msg)

    @property
    def write(self) -> Rate | None:
        """The parsed write-scope rate (POST, PUT, PATCH, DELETE)."""
        return None if self.write_rate is None else parse_rate(self.write_rate)

    @property
    def read(self) -> Rate | None:
        """The parsed read-scope rate (GET, HEAD, OPTIONS)."""
        return None if self.read_rate is None else parse_rate(self.read_rate)

    def scaled(self, factor: float, *, rates: bool = True) -> EmulatorConfig:
        """A copy running ``factor`` times as fast or slow: every duration times ``factor``.

        Scaled: the throttle windows (``60/min`` at 0.1 becomes ``60/6s``; ``rates=False``
        keeps them), task times, the runner's polls, gap and cancel check, ``purge_after``,
        the outage windows, and the faults' ``slow_seconds`` and ``expire_after``. Counts,
        fractions and the synthetic light curves (real MJDs) stay. Benchmarks run the real
        defaults as ``EmulatorConfig().scaled(0.1)``.
        """
        if not (factor > 0 and math.isfinite(factor)):
            msg = f"the scale factor must be a finite number > 0, got {factor!r}"
            raise ValueError(msg)
        background = self.background_task_seconds
        return replace(
            self,
            write_rate=scale_rate(self.write_rate, factor) if rates else self.write_rate,
            read_rate=scale_rate(self.read_rate, factor) if rates else self.read_rate,
            task_seconds=self.task_seconds * factor,
            image_task_seconds=self.image_task_seconds * factor,
            runner_idle_poll=self.runner_idle_poll * factor,
            runner_busy_poll=self.runner_busy_poll * factor,
            user_gap=self.user_gap * factor,
            cancel_check=self.cancel_check * factor,
            background_task_seconds=None if background is None else background * factor,
            purge_after=None if self.purge_after is None else self.purge_after * factor,
            faults=self.faults.scaled(factor),
            outages=tuple((start * factor, end * factor, m) for start, end, m in self.outages),
        )
