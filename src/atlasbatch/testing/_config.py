"""Settings of the emulator: rates, runner shape, faults (all frozen, keyword-only)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

__all__ = ["EmulatorConfig", "Faults", "Rate", "parse_rate"]

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?|\.\d+)?\s*([smhd])[a-z]*\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """A DRF throttle rate: at most ``num_requests`` accepted in any ``duration`` seconds."""

    num_requests: int
    duration: float

    def __str__(self) -> str:
        return f"{self.num_requests}/{self.duration:g}s"


def parse_rate(rate: str) -> Rate:
    """Parse a rate in Django REST Framework's syntax, e.g. ``"60/min"`` or ``"10/s"``.

    DRF reads only the first letter of the period (``s``, ``m``, ``h``, ``d``). As an extension
    for fast tests and benchmarks the period may carry a multiplier, as in ``"60/6s"`` (60
    requests per 6 seconds) or ``"5/0.5s"``.
    """
    match = _RATE_RE.match(rate)
    if match is None:
        msg = f"invalid rate {rate!r}: expected e.g. '60/min', '10/s' or '60/6s'"
        raise ValueError(msg)
    count_text, multiplier_text, unit = match.groups()
    multiplier = float(multiplier_text) if multiplier_text else 1.0
    duration = multiplier * _UNIT_SECONDS[unit.lower()]
    if duration <= 0 or not math.isfinite(duration):
        msg = f"invalid rate {rate!r}: the period must be positive"
        raise ValueError(msg)
    return Rate(int(count_text), duration)


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        msg = f"{name} must be between 0 and 1, got {value!r}"
        raise ValueError(msg)


def _check_optional_seconds(name: str, value: float | None) -> None:
    if value is not None and not value >= 0:
        msg = f"{name} must be None or >= 0 seconds, got {value!r}"
        raise ValueError(msg)


@dataclass(frozen=True, kw_only=True, slots=True)
class Faults:
    """Faults to inject; every one is off by default and drawn from the emulator's seeded RNG.

    * ``server_error_rate``: fraction of throttled-API requests answered 500/502/503 before
      anything else happens (not counted by the throttle, nothing changes).
    * ``drop_before_commit_rate`` / ``drop_after_commit_rate``: fraction of API POSTs and
      DELETEs whose TCP connection is aborted without any response, before the change was made
      resp. after it was committed (the "lost response").
    * ``html_error_rate``: fraction of throttled-API requests that reach the app (a write
      commits, a refusal is counted) but whose answer the proxy replaces with Apache's HTML
      502/503/504 page, as when mod_wsgi gives up on a slow backend.
    * ``garbage_json_rate``: fraction of 200 answers to API GETs (list and detail) whose JSON
      body is cut in half (``Content-Length`` matches the cut: a well-formed HTTP response).
    * ``slow_rate`` / ``slow_seconds``: fraction of requests whose response is held back.
    * ``truncate_rate``: fraction of result downloads that stop in the middle of a line.
    * ``expire_after``: seconds after a task finishes when its result file disappears while the
      task stays (``result_url`` then 404s and turns null in the task JSON).
    * ``lose_rate``: fraction of task attempts the runner loses: the task stays unfinished, is
      queued again and re-run, and its ``attempt_count`` grows.
    """

    server_error_rate: float = 0.0
    drop_before_commit_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    truncate_rate: float = 0.0
    expire_after: float | None = None
    lose_rate: float = 0.0
    html_error_rate: float = 0.0
    garbage_json_rate: float = 0.0

    def __post_init__(self) -> None:
        for name in (
            "server_error_rate",
            "drop_before_commit_rate",
            "drop_after_commit_rate",
            "slow_rate",
            "truncate_rate",
            "lose_rate",
            "html_error_rate",
            "garbage_json_rate",
        ):
            _check_fraction(name, getattr(self, name))
        if self.lose_rate >= 1.0:
            msg = "lose_rate must be below 1, or no task would ever finish"
            raise ValueError(msg)
        _check_optional_seconds("slow_seconds", self.slow_seconds)
        _check_optional_seconds("expire_after", self.expire_after)


@dataclass(frozen=True, kw_only=True, slots=True)
class EmulatorConfig:
    """Everything that shapes one emulator run.

    Rates use DRF's syntax (see :func:`parse_rate`); ``None`` switches a scope's throttle off.
    ``purge_after`` is the server's 31-day retention, scaled: seconds after finishing when a
    finished (or user-deleted) task is hard-deleted. ``observations_per_day`` is the expected
    number of exposures per filter (``c`` and ``o``) and day in the synthetic light curves.
    ``username``/``password``/``token`` describe the default user (``token=None``: random).
    """

    write_rate: str | None = "60/min"
    read_rate: str | None = "600/min"
    max_queued: int = 500
    slots: int = 16
    user_slots: int = 1
    task_seconds: float = 1.0
    task_jitter: float = 0.0
    seed: int = 0
    purge_after: float | None = None
    observations_per_day: float = 0.5
    faults: Faults = field(default_factory=Faults)
    host: str = "127.0.0.1"
    port: int = 0
    username: str = "atlas"
    password: str = "atlas-password"
    token: str | None = None

    def __post_init__(self) -> None:
        for rate in (self.write_rate, self.read_rate):
            if rate is not None:
                parse_rate(rate)
        if self.max_queued < 0:
            msg = "max_queued must be >= 0"
            raise ValueError(msg)
        if self.slots < 1 or self.user_slots < 1:
            msg = "slots and user_slots must be >= 1"
            raise ValueError(msg)
        if not self.task_seconds >= 0:
            msg = "task_seconds must be >= 0"
            raise ValueError(msg)
        _check_fraction("task_jitter", self.task_jitter)
        _check_optional_seconds("purge_after", self.purge_after)
        if not self.observations_per_day >= 0:
            msg = "observations_per_day must be >= 0"
            raise ValueError(msg)
        if not 0 <= self.port <= 65535:
            msg = "port must be between 0 and 65535"
            raise ValueError(msg)
        if self.token is not None and not self.token.strip():
            msg = "token must be a non-empty string"
            raise ValueError(msg)

    @property
    def write(self) -> Rate | None:
        """The parsed write-scope rate (POST, PUT, PATCH, DELETE)."""
        return None if self.write_rate is None else parse_rate(self.write_rate)

    @property
    def read(self) -> Rate | None:
        """The parsed read-scope rate (GET, HEAD, OPTIONS)."""
        return None if self.read_rate is None else parse_rate(self.read_rate)
