"""The scenarios and the two plans (``--quick`` and full).

Times are scaled 10x like the rates (``60/6s`` is the real ``60/min``): a 0.2 s task stands
for a 2 s one, the guide's 10 s poll becomes 1 s. The seed and naive clients get a cap on
targets (the seed needs about one poll interval per target, so a few are enough to show its
rate) and a time limit; a row whose client hit the limit is marked in the table.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FULL", "QUICK", "Plan", "Scenario", "make_targets", "mjd_now"]

_MJD_UNIX_EPOCH = 40587.0
REAL_RATES: dict[str, Any] = {"write_rate": "60/6s", "read_rate": "600/6s", "max_queued": 500}


def mjd_now() -> float:
    """The current Modified Julian Date (the emulator's result windows are in real MJD)."""
    return time.time() / 86400.0 + _MJD_UNIX_EPOCH


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One emulator set-up and size. ``name`` is ``family-size`` (the size asked for)."""

    family: str
    size: int
    emulator: dict[str, Any]
    time_scale: float = 0.1
    window_days: float = 30.0
    caps: dict[str, int] = field(default_factory=dict)
    time_limit: float = 600.0
    downloads_per_second: float | None = None  # atlasbatch's pace; None: default, scaled

    @property
    def name(self) -> str:
        return f"{self.family}-{self.size}"

    def targets_for(self, client: str) -> int:
        """How many targets ``client`` gets here (its cap, or the full size)."""
        return min(self.size, self.caps.get(client, self.size))


@dataclass(frozen=True, slots=True)
class Plan:
    """Scenarios, the clients to run on each, and the optional 100k scale run."""

    scenarios: list[Scenario]
    clients: tuple[str, ...] = ("atlasbatch", "seed", "naive")
    scale_targets: int | None = None


def server_bound(size: int, caps: dict[str, int], time_limit: float) -> Scenario:
    """One running task per user, as the real server: the runner is the bottleneck."""
    emulator = {**REAL_RATES, "slots": 16, "user_slots": 1, "task_seconds": 0.2}
    return Scenario(
        family="server-bound", size=size, emulator=emulator, caps=caps, time_limit=time_limit
    )


def rate_bound(size: int, caps: dict[str, int], time_limit: float) -> Scenario:
    """Sixteen running tasks per user and very short tasks: the write budget is the bottleneck."""
    emulator = {**REAL_RATES, "slots": 16, "user_slots": 16, "task_seconds": 0.01}
    return Scenario(
        family="rate-bound", size=size, emulator=emulator, caps=caps, time_limit=time_limit
    )


def scale(size: int) -> Scenario:
    """Client cost at scale: generous slots, relaxed rates, tiny result files."""
    emulator = {
        "write_rate": "20000/1s",
        "read_rate": "20000/1s",
        "max_queued": 500,
        "slots": 64,
        "user_slots": 64,
        "task_seconds": 0.001,
        "observations_per_day": 0.2,
    }
    return Scenario(
        family="scale",
        size=size,
        emulator=emulator,
        window_days=10.0,
        time_limit=3600.0,
        downloads_per_second=20000.0,
    )


def make_targets(count: int) -> list[dict[str, float | str]]:
    """``count`` distinct positions 0.1 deg apart on a band of the northern sky."""
    per_row = 3600
    return [
        {
            "name": f"t{i:06d}",
            "ra": round((i % per_row) * 0.1, 6),
            "dec": round(10.0 + (i // per_row) * 0.1, 6),
        }
        for i in range(count)
    ]


_QUICK_CAPS = {"seed": 8, "naive": 100}
_QUICK_RATE_CAPS = {"seed": 8, "naive": 60}
_FULL_CAPS = {"seed": 30, "naive": 1000}

QUICK = Plan(
    scenarios=[
        server_bound(20, _QUICK_CAPS, 30.0),
        server_bound(100, _QUICK_CAPS, 30.0),
        rate_bound(100, _QUICK_RATE_CAPS, 30.0),
        rate_bound(200, _QUICK_RATE_CAPS, 30.0),
    ]
)
FULL = Plan(
    scenarios=[
        server_bound(300, _FULL_CAPS, 600.0),
        server_bound(1000, _FULL_CAPS, 600.0),
        rate_bound(1000, _FULL_CAPS, 600.0),
        rate_bound(3000, _FULL_CAPS, 600.0),
    ],
    scale_targets=100_000,
)
TINY = Plan(
    scenarios=[
        server_bound(4, {"seed": 2}, 20.0),
        rate_bound(6, {}, 20.0),
    ]
)


def expected_seconds(scenario: Scenario) -> float:
    """A rough makespan for atlasbatch (for progress messages only)."""
    s = float(scenario.emulator["task_seconds"])
    slots = int(scenario.emulator["user_slots"])
    writes = math.ceil(scenario.size / 100) + scenario.size
    return max(math.ceil(scenario.size / slots) * s, (writes - 1) // 60 * 6.0)
