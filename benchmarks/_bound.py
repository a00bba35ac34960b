"""The physical bound T* of ``design.md`` ("Physical bound"), on a realistic runner.

Lower bounds on a run's makespan, each measured from the moment the client starts. With
N targets, B per POST, R writes per window D, W tasks of the user at once, the measured
task times S_i, the runner's gap g and its first wake-up t₀:

* ``F_j``, the earliest possible *j-th finish*: the runner's own schedule of these tasks
  had they all been queued at the client's start. An idle runner polls every 5 s, so the
  first task starts at its first tick t₀ after the client's start (see :func:`first_tick`);
  then it starts the tasks in submission order on W slots, each slot (and the user's turn)
  staying taken for g = 1.2 s after each task. The task times are the server's draw per
  task id, which no client can choose; for W = 1 this is ``t₀ + Σ_{i≤j} S_i + (j−1)·g``;
* ``runner``: the last finish ``F_N``, then L: the client hears of it, downloads, deletes;
* ``submit``: the last POST cannot be accepted before ``⌊(⌈N/B⌉−1)/R⌋·D``, and its tasks take
  at least the shortest task time, then L;
* ``queue_cap``: Little's law on the 500 unstarted tasks, ``N·(S_q+δ)/Q`` (negligible here);
* ``writes``: every client deletes every task it made, and a DELETE is a write like a POST.
  Of ``M = ⌈N/B⌉ + N`` writes at R per sliding window D, the m-th can come no sooner than
  D after the (m−R)-th; and the m-th write, of which at least m − ⌈N/B⌉ are deletes, no
  sooner than ``F_{m−⌈N/B⌉} + L``. So the last write is at least
  ``max_q (earliest(M − q·R) + q·D)``; with every write possible at 0 this is the design
  note's ``⌊(M−1)/R⌋·D``. Where the write budget binds, this term does.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass

__all__ = ["BoundInputs", "bound_seconds", "bound_terms", "first_tick"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BoundInputs:
    """What the bound depends on; times in (scaled) seconds as the emulator runs them.

    ``task_times``: the measured time of every task, in submission order (empty: ``targets``
    tasks of ``task_seconds``); ``user_gap`` g; ``first_start`` t₀; ``latency`` L (a loopback round
    trip times the trips a target needs after its task ends); ``user_slots`` W;
    ``queue_cap`` Q; ``queue_wait`` S_q (the shortest time a task spends unstarted: 0 with
    a free slot); ``refill_delay`` δ (the least time to hear of a start before refilling).
    """

    targets: int
    batch_size: int = 100
    write_requests: int = 60
    write_window: float = 60.0
    user_slots: int = 1
    task_seconds: float = 60.0
    task_times: tuple[float, ...] = ()
    user_gap: float = 0.0
    first_start: float = 0.0
    latency: float = 0.0
    queue_cap: int = 500
    queue_wait: float = 0.0
    refill_delay: float = 0.0


class _Finishes:
    """``F_j``: the runner's schedule of every task queued at the client's start."""

    def __init__(self, inputs: BoundInputs) -> None:
        times = list(inputs.task_times) or [inputs.task_seconds] * inputs.targets
        if len(times) < inputs.targets:  # tasks that never ran (a client that gave up)
            times += [sum(times) / len(times)] * (inputs.targets - len(times))
        free = [inputs.first_start] * max(1, min(inputs.user_slots, len(times)))
        finishes = []
        for seconds in times:  # submission order: a free slot takes the next task
            start = heapq.heappop(free)
            finishes.append(start + seconds)
            heapq.heappush(free, start + seconds + inputs.user_gap)
        self._sorted = sorted(finishes)

    def at(self, j: int) -> float:
        """The j-th finish (1-based)."""
        return self._sorted[min(j, len(self._sorted)) - 1]


def _writes(inputs: BoundInputs, finishes: _Finishes, posts: int) -> float:
    total = posts + inputs.targets
    r, d = inputs.write_requests, inputs.write_window
    best = 0.0
    for q in range((total - 1) // r + 1):
        index = total - q * r  # 1-based index of a write that is q windows before the last
        earliest = 0.0 if index <= posts else finishes.at(index - posts) + inputs.latency
        best = max(best, earliest + q * d)
    return best


def bound_terms(inputs: BoundInputs) -> dict[str, float]:
    """Each lower bound on the makespan, by name (see the module docstring)."""
    n = inputs.targets
    if n <= 0:
        return {"submit": 0.0, "runner": 0.0, "queue_cap": 0.0, "writes": 0.0}
    finishes = _Finishes(inputs)
    posts = math.ceil(n / inputs.batch_size)
    shortest = min(inputs.task_times, default=inputs.task_seconds)
    write_d = inputs.write_window
    return {
        "submit": ((posts - 1) // inputs.write_requests) * write_d + shortest + inputs.latency,
        "runner": finishes.at(n) + inputs.latency,
        "queue_cap": n * (inputs.queue_wait + inputs.refill_delay) / inputs.queue_cap,
        "writes": _writes(inputs, finishes, posts),
    }


def bound_seconds(inputs: BoundInputs) -> float:
    """T*: the largest of the lower bounds."""
    return max(bound_terms(inputs).values())


def first_tick(*, client_start: float, first_start: float | None, idle_poll: float) -> float:
    """Seconds from the client's start to the runner's first wake-up after it.

    The idle runner wakes on a grid ``idle_poll`` apart, and the first task of the run
    started on one of its ticks (``first_start``, same clock as ``client_start``), so the
    earliest tick at or after the client's start lies a whole number of periods before it.
    A client that posted at once could not have had its first task start sooner.
    """
    if first_start is None or idle_poll <= 0:
        return 0.0
    periods = math.floor((first_start - client_start) / idle_poll + 1e-9)
    return max(0.0, first_start - max(periods, 0) * idle_poll - client_start)
