"""The physical bound T* of ``design.md`` ("Physical bound"), plus the write-time term.

Every client in the table deletes every task it made, and a DELETE is a write: it spends the
same budget as the POSTs. So besides the three terms of the design note (submission + one
task time, the runner, the queue cap), no run can end before its last write is allowed:
``⌈N/B⌉ + N`` writes (POSTs of ``B`` targets plus one DELETE each) with at most ``R`` per
sliding window of ``D`` seconds leave the last one at ``⌊(⌈N/B⌉ + N − 1)/R⌋·D`` at the
earliest. On a rate-bound server that term is the binding one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["BoundInputs", "bound_seconds", "bound_terms"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BoundInputs:
    """What the bound depends on; times in (scaled) seconds as the emulator runs them.

    ``task_seconds`` is S (measured on the emulator), ``latency`` L (a loopback round trip,
    times the number of trips the last target needs after its task ends), ``user_slots``
    W_user, ``queue_cap`` Q, ``queue_wait`` S_q (the shortest time a task can spend unstarted:
    0 when the runner has a free slot) and ``refill_delay`` δ (how long, at the least, a client
    needs to hear of a start before it can refill the queue).
    """

    targets: int
    batch_size: int = 100
    write_requests: int = 60
    write_window: float = 60.0
    user_slots: int = 1
    task_seconds: float = 60.0
    latency: float = 0.0
    queue_cap: int = 500
    queue_wait: float = 0.0
    refill_delay: float = 0.0


def bound_terms(inputs: BoundInputs) -> dict[str, float]:
    """Each lower bound on the makespan, by name (see the module docstring)."""
    n = inputs.targets
    if n <= 0:
        return {"submit": 0.0, "runner": 0.0, "queue_cap": 0.0, "writes": 0.0}
    posts = math.ceil(n / inputs.batch_size)
    r, d = inputs.write_requests, inputs.write_window
    s = inputs.task_seconds
    return {
        "submit": ((posts - 1) // r) * d + s + inputs.latency,
        "runner": math.ceil(n / inputs.user_slots) * s,
        "queue_cap": n * (inputs.queue_wait + inputs.refill_delay) / inputs.queue_cap,
        "writes": ((posts + n - 1) // r) * d,
    }


def bound_seconds(inputs: BoundInputs) -> float:
    """T*: the largest of the lower bounds."""
    return max(bound_terms(inputs).values())
