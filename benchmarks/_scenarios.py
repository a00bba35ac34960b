"""The scenarios and the plans (``--quick``, full, and the tiny one of the smoke test).

Every scenario runs the *realistic* emulator: ``EmulatorConfig(...).scaled(f)`` of the real
server's defaults (60/min writes, 600/min reads, the runner's 5 s idle poll, 0.5 s busy poll,
1.2 s gap between one user's tasks, 15 s cancel check), so the clients meet the pauses a real
runner makes. What varies is the task time, relative to the prior atlasbatch starts from
(one write window: 60 s at the real limits), and how many tasks of one user run at once.

The time scale ``f`` is per regime: 0.1 where tasks are short, 0.01 or 0.002 where a run
of real-length tasks would otherwise take hours. Every duration of the server (windows,
polls, gap, task times) is multiplied by ``f``; so is every duration atlasbatch is given.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace
from typing import Final

from atlasbatch.testing import TEST_TIMING, EmulatorConfig

__all__ = [
    "FULL",
    "QUICK",
    "REGIMES",
    "TINY",
    "Plan",
    "Regime",
    "Scenario",
    "make_targets",
    "mjd_now",
]

_MJD_UNIX_EPOCH = 40587.0
PRIOR_SECONDS: Final = 60.0  # atlasbatch's default guess: one write window at 60/min
MAIN_CLIENTS: Final = ("atlasbatch", "seed", "naive")
CLI_CLIENTS: Final = ("cli", "cli-told")
# Room for every request of a row (naive polls hard), so the first download stays in the log.
_REQUEST_LOG: Final = 400_000


def mjd_now() -> float:
    """The current Modified Julian Date (the emulator's result windows are in real MJD)."""
    return time.time() / 86400.0 + _MJD_UNIX_EPOCH


@dataclass(frozen=True, slots=True)
class Regime:
    """Task times in *real* seconds: median ``task_seconds``, log-normal spread ``sigma``,
    run at time scale ``scale``."""

    name: str
    task_seconds: float
    sigma: float
    scale: float


REGIMES: Final = {
    # 20x shorter than the prior: tasks end long before the first probe the prior suggests
    "short": Regime("short", PRIOR_SECONDS / 20, 0.0, 0.1),
    "equal": Regime("equal", PRIOR_SECONDS, 0.0, 0.01),
    "long": Regime("long", PRIOR_SECONDS * 5, 0.0, 0.002),
    # median 36 s, sigma 1: mean = the prior (36 e^0.5 = 59 s), 5 s to 4.5 min within 2 sigma
    "heavy": Regime("heavy", 36.0, 1.0, 0.01),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    """One emulator set-up and size; ``config`` is already scaled by ``time_scale``.

    ``name`` is ``family-regime-size`` (the size asked for; ``targets_for`` gives what each
    client really runs). ``clients``: who runs it.
    """

    family: str
    regime: str
    size: int
    config: EmulatorConfig
    time_scale: float
    window_days: float = 30.0
    caps: dict[str, int] = field(default_factory=dict)
    time_limit: float = 600.0
    downloads_per_second: float | None = None  # atlasbatch's pace; None: default, scaled
    clients: tuple[str, ...] = MAIN_CLIENTS

    @property
    def name(self) -> str:
        parts = (self.family, self.regime, str(self.size))
        return "-".join(part for part in parts if part)

    @property
    def median_task_seconds(self) -> float:
        """The emulator's median task time (scaled seconds)."""
        return self.config.task_seconds

    def targets_for(self, client: str) -> int:
        """How many targets ``client`` gets here (its cap, or the full size)."""
        return min(self.size, self.caps.get(client, self.size))


@dataclass(frozen=True, slots=True)
class Plan:
    """Scenarios (each with its clients) and the optional 100k scale run."""

    scenarios: list[Scenario]
    scale_targets: int | None = None


def realistic(*, user_slots: int, regime: Regime) -> EmulatorConfig:
    """The real server's defaults with this regime's task times, scaled by its factor."""
    real = EmulatorConfig(
        slots=16,
        user_slots=user_slots,
        task_seconds=regime.task_seconds,
        task_sigma=regime.sigma,
        request_log_size=_REQUEST_LOG,
    )
    return real.scaled(regime.scale)


def server_bound(regime: str, size: int, caps: dict[str, int], time_limit: float) -> Scenario:
    """One running task per user, as the real server: the runner is the bottleneck."""
    chosen = REGIMES[regime]
    return Scenario(
        family="server-bound", regime=regime, size=size,
        config=realistic(user_slots=1, regime=chosen), time_scale=chosen.scale,
        caps=caps, time_limit=time_limit,
    )  # fmt: skip


def rate_bound(regime: str, size: int, caps: dict[str, int], time_limit: float) -> Scenario:
    """Sixteen running tasks per user: the write budget binds where tasks are short, the
    runner (16 at a time) where they are not; T* says which."""
    chosen = REGIMES[regime]
    return Scenario(
        family="rate-bound", regime=regime, size=size,
        config=realistic(user_slots=16, regime=chosen), time_scale=chosen.scale,
        caps=caps, time_limit=time_limit,
    )  # fmt: skip


def cli_pair(task_seconds: float, size: int, time_limit: float = 300.0) -> Scenario:
    """The CLI not told vs told the task time: real rates x10, ``task_seconds`` scaled."""
    config = replace(EmulatorConfig(request_log_size=_REQUEST_LOG).scaled(0.1),
                     task_seconds=task_seconds)  # fmt: skip
    return Scenario(
        family="cli", regime=f"{task_seconds:g}s", size=size, config=config, time_scale=0.1,
        time_limit=time_limit, clients=CLI_CLIENTS,
    )  # fmt: skip


def scale(size: int) -> Scenario:
    """Client cost at scale: generous slots, relaxed rates, tiny result files, an instant
    runner (this row measures the client's CPU and memory, not the runner's pauses)."""
    config = EmulatorConfig(
        write_rate="20000/1s", read_rate="20000/1s", max_queued=500, slots=64, user_slots=64,
        task_seconds=0.001, observations_per_day=0.2, **TEST_TIMING,
    )  # fmt: skip
    return Scenario(
        family="scale", regime="", size=size, config=config, time_scale=1.0, window_days=10.0,
        time_limit=3600.0, downloads_per_second=20000.0, clients=("atlasbatch",),
    )  # fmt: skip


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


_QUICK_CAPS = {"seed": 6, "naive": 100}
_QUICK_RATE_CAPS = {"seed": 6, "naive": 60}
_FULL_CAPS = {"seed": 20, "naive": 1000}
_ORDER = ("short", "equal", "long", "heavy")

QUICK = Plan(
    scenarios=[
        *(server_bound(r, 20, _QUICK_CAPS, 60.0) for r in _ORDER),
        *(rate_bound(r, 100, _QUICK_RATE_CAPS, 60.0) for r in _ORDER),
        cli_pair(0.05, 40),
    ]
)
FULL = Plan(
    scenarios=[
        *(server_bound(r, 100, _FULL_CAPS, 900.0) for r in _ORDER),
        server_bound("short", 300, _FULL_CAPS, 900.0),
        *(rate_bound(r, 300, _FULL_CAPS, 900.0) for r in _ORDER),
        rate_bound("short", 1000, _FULL_CAPS, 900.0),
        cli_pair(0.3, 60),
        cli_pair(0.05, 40),
    ],
    scale_targets=100_000,
)
TINY = Plan(
    scenarios=[
        server_bound("short", 4, {"seed": 2}, 20.0),
        rate_bound("equal", 6, {"seed": 2}, 20.0),
        cli_pair(0.05, 2, 30.0),
    ]
)


def expected_seconds(scenario: Scenario) -> float:
    """A rough makespan for atlasbatch (for progress messages only)."""
    config = scenario.config
    mean = config.task_seconds * math.exp(config.task_sigma**2 / 2)
    rounds = math.ceil(scenario.size / config.user_slots)
    write = config.write
    window = write.duration if write is not None else 0.0
    writes = math.ceil(scenario.size / 100) + scenario.size
    per_window = write.num_requests if write is not None else writes
    return max(rounds * (mean + config.user_gap), (writes - 1) // per_window * window)
