"""The pace of our tasks, learned from what the server reports, and when to look next.

Nothing about task times is known in advance: on the real server a task takes seconds (a
short window, no data) or many minutes (a full history while the runner's slots are shared
round-robin by every user), and the same run sees both. So the pacer trusts only what it
observes and keeps the starting guess (the prior) for one thing: the longest probe step.

* **Before any task of ours has finished** it probes on a growing schedule, each wait a
  quarter of the time since our oldest task could have started, 1.5 read floors at least
  (pyvo's UWS ``wait`` grows the same way): a task that takes S seconds is seen within
  max(2 s, S/4) of its end, and an hour-long task costs a few dozen reads, not one a second.
* **Then** two robust measures: the median runtime of recently finished tasks (the server's
  ``runtime`` field: the run time alone, heavy tails and all), and the cycle, the time per
  completion of ours as we observe it (runtime plus the runner's gaps and other users' turns,
  divided by how many of ours run at once). The first poll of a process is never counted in
  the cycle: on resume it finds every completion made while we were away.
* **Mid-run** the next poll is due when about ten completions are expected (one read per ten
  tasks); **at the tail** when the last task is expected to end; a poll that finds nothing
  new starts the growing probe again from the last news. Always within the read share
  (``floor``) and ``ceiling``.
"""

from __future__ import annotations

import statistics
import time
from collections import deque
from collections.abc import Callable, Iterable

__all__ = ["Pace"]

_PER_POLL = 10  # completions a mid-run poll aims to find
_GROWTH = 0.25  # a probe waits this fraction of the time already waited
# Read floors between the first probes: 1.5 s at the real limits, so that a first result is
# stored within 2 s of its task's end, the download included.
_FIRST_PROBES = 1.5
_RUNTIMES = 51  # recent runtimes kept for the median
_POLLS = 16  # recent polls kept for the cycle


class Pace:
    """Learns our tasks' runtime and cycle from polls; plans the next poll; estimates ETA."""

    def __init__(
        self,
        *,
        prior: float,
        floor: float,
        ceiling: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.prior = prior
        self.floor = floor
        self.ceiling = ceiling
        self._clock = clock
        self._runtimes: deque[float] = deque(maxlen=_RUNTIMES)
        self._polls: deque[tuple[float, int]] = deque(maxlen=_POLLS)  # (time, completions so far)
        self._completions = 0
        self._concurrency = 1  # most tasks of ours seen running at once
        self._finished_at = clock()  # last poll that found a completion (or work began)
        self._started_at = -float("inf")  # about when our newest running task started
        self.last_poll: float | None = None

    # --- what the server said -------------------------------------------------------

    def created(self, *, idle: bool) -> None:
        """Tasks were just created; ``idle``: none of ours was waiting before."""
        if idle:
            self._finished_at = self._clock()

    def observe(
        self, *, completions: int, runtimes: Iterable[float], running: int, started: int
    ) -> None:
        """One poll: how many of ours finished, their runtimes, how many run, newly started."""
        now = self._clock()
        previous = self.last_poll
        self._runtimes.extend(r for r in runtimes if r >= 0)
        self._concurrency = max(self._concurrency, running)
        self.last_poll = now
        if completions:
            self._finished_at = now
        if started and previous is not None:  # it started since the last look: halfway
            self._started_at = (previous + now) / 2
        if previous is None:  # what finished while nobody looked says nothing about pace
            self._polls.append((now, 0))
            return
        self._completions += completions
        self._polls.append((now, self._completions))

    # --- estimates ------------------------------------------------------------------

    @property
    def runtime(self) -> float | None:
        """Median runtime of recently finished tasks; None until one finished."""
        return statistics.median(self._runtimes) if self._runtimes else None

    @property
    def cycle(self) -> float | None:
        """Seconds per completion of ours; None until something finished."""
        if len(self._polls) >= 2:
            (t0, n0), (t1, n1) = self._polls[0], self._polls[-1]
            if n1 - n0 >= 2 and t1 > t0:
                return (t1 - t0) / (n1 - n0)
        runtime = self.runtime
        return None if runtime is None else max(runtime, 1e-3) / self._concurrency

    def eta(self, remaining: int) -> float | None:
        """Seconds until ``remaining`` more tasks are done; None while estimating."""
        cycle = self.cycle
        return None if cycle is None else remaining * cycle

    # --- the plan -------------------------------------------------------------------

    def next_delay(self, *, active: int) -> float:
        """Seconds from now to the next poll, with ``active`` of our tasks unfinished."""
        now = self._clock()
        if active <= 0:
            return self.ceiling
        waited = now - max(self._finished_at, self._started_at)
        cycle = self.cycle
        probe = max(_GROWTH * waited, _FIRST_PROBES * self.floor)
        if cycle is None:  # nothing finished yet: probe, growing, up to the prior
            return self._clamp(probe, self.prior)
        due = self._finished_at + min(_PER_POLL, active) * cycle - now
        if due <= 0:  # overdue: the estimate was optimistic; probe from the last news
            return self._clamp(probe, self.ceiling)
        return self._clamp(due, self.ceiling)

    def _clamp(self, seconds: float, ceiling: float) -> float:
        return min(max(seconds, self.floor), max(ceiling, self.floor))
