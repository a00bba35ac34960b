"""Frozen settings: rates, polling, retries; defaults mirror the real server (API §9, §10)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from atlasbatch._exceptions import InputError

__all__ = ["PRODUCTION_URL", "Rate", "Settings"]

PRODUCTION_URL = "https://fallingstar-data.com/forcedphot"

_UNITS = {"s": 1.0, "sec": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "hour": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*$")


@dataclass(frozen=True, slots=True)
class Rate:
    """``requests`` per sliding window of ``seconds``, as DRF counts them."""

    requests: int
    seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Read DRF's syntax, ``60/min`` or ``10/s``, plus scaled windows such as ``60/6s``."""
        match = _RATE.match(text.lower())
        if match is None or match.group(3) not in _UNITS:
            raise InputError(f"rate {text!r} is not of the form N/unit, e.g. '60/min' or '60/6s'")
        count, multiple, unit = match.groups()
        seconds = float(multiple or 1) * _UNITS[unit]
        if int(count) < 1 or seconds <= 0:
            raise InputError(f"rate {text!r} must allow at least one request per positive window")
        return cls(int(count), seconds)

    def __str__(self) -> str:
        return f"{self.requests}/{self.seconds:g}s"


_POSITIVE_SECONDS = ("poll_max_interval", "timeout", "retry_max_wait", "downloads_per_second")


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    """Every knob of a run; the defaults are right for the real server.

    ``window_margin`` widens our mirror of the server's sliding window: the server stamps a
    request when it arrives, we stamp it when we send, and network jitter between the two
    must never let one request too many into a window.

    Nothing about task times is configured as a fact: ``expected_task_seconds`` is only the
    starting guess of the pacer, which learns the real times from the server's timestamps
    (None: one write window, i.e. the real server's "about a minute", and scaled with the
    limits when they are scaled). A transient failure (5xx, timeout, connection refused) is
    waited out: ``retry_total_seconds`` and ``retry_attempts`` bound one request's patience
    (unbounded by default, because a bulk run outlives outages of hours) and
    ``retry_max_wait`` caps the full-jitter backoff between two tries.
    """

    base_url: str = PRODUCTION_URL
    write_rate: Rate = Rate(60, 60.0)
    read_rate: Rate = Rate(600, 60.0)
    window_margin: float = 0.25
    max_queued: int = 500
    batch_size: int = 100
    read_share: float = 0.1
    # The read share alone sets the polls' floor (1 s at 600/min); this only adds to it.
    poll_min_interval: float = 0.0
    # Mid-run polls aim at ten completions each: with minute-long tasks that is ten minutes.
    poll_max_interval: float = 1800.0
    expected_task_seconds: float | None = None
    timeout: float = 60.0
    retry_attempts: int | None = None
    retry_total_seconds: float = math.inf
    retry_max_wait: float = 120.0
    download_concurrency: int = 4
    downloads_per_second: float = 20.0
    # Far above any real result file (a full history is a few MB): a guard, not a filter.
    max_result_bytes: int = 1 << 28

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 100:
            raise InputError("batch_size must be between 1 and 100 (the server's radeclist limit)")
        if self.max_queued < 1:
            raise InputError("max_queued must be at least 1")
        if self.window_margin < 0 or not math.isfinite(self.window_margin):
            raise InputError("window_margin must be a finite number of seconds >= 0")
        attempts = self.retry_attempts
        if self.download_concurrency < 1 or (attempts is not None and attempts < 1):
            raise InputError("download_concurrency and retry_attempts must be at least 1")
        if self.max_result_bytes < 1:
            raise InputError("max_result_bytes must be at least 1")
        if not self.retry_total_seconds > 0:
            raise InputError("retry_total_seconds must be positive (math.inf: no limit)")
        prior = self.expected_task_seconds
        if prior is not None and not (math.isfinite(prior) and prior > 0):
            raise InputError(f"expected_task_seconds must be a positive number, not {prior!r}")
        if not 0 < self.read_share <= 1:
            raise InputError("read_share must be in (0, 1]")
        if not 0 <= self.poll_min_interval < math.inf:
            raise InputError("poll_min_interval must be a finite number of seconds >= 0")
        if self.poll_max_interval < self.poll_min_interval:
            raise InputError("poll_max_interval must not be below poll_min_interval")
        for name in _POSITIVE_SECONDS:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise InputError(f"{name} must be a positive number of seconds, not {value!r}")

    @property
    def task_prior(self) -> float:
        """The pacer's starting guess of a task's time (see the class docstring)."""
        return self.expected_task_seconds or self.write_rate.seconds
