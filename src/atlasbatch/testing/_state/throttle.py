"""A clone of Django REST Framework's ``SimpleRateThrottle`` (sliding log of accepted requests)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass

from .._rates import Rate

__all__ = ["SlidingWindowThrottle", "ThrottleDecision", "throttled_detail"]


@dataclass(frozen=True, slots=True)
class ThrottleDecision:
    """The outcome of one check: accepted, or refused with DRF's ``wait`` (seconds, or None)."""

    accepted: bool
    wait: float | None = None
    in_window: int = 0

    @property
    def retry_after(self) -> int | None:
        """``Retry-After`` as DRF sends it: ``ceil(wait)``, or None when no wait is computable."""
        return None if self.wait is None else math.ceil(self.wait)


def throttled_detail(retry_after: int | None) -> str:
    """DRF's 429 ``detail`` text, singular for one second."""
    if retry_after is None:
        return "Request was throttled."
    unit = "second" if retry_after == 1 else "seconds"
    return f"Request was throttled. Expected available in {retry_after} {unit}."


class SlidingWindowThrottle:
    """Per-key sliding window of the timestamps of *accepted* requests.

    Like DRF: a request is refused when ``num_requests`` accepted ones already lie in the last
    ``duration`` seconds; refused requests are not recorded; the wait is the time until the
    oldest recorded request leaves the window. Not thread-safe: the caller holds the lock.
    """

    def __init__(self, rate: Rate | None) -> None:
        self.rate = rate
        self._history: dict[Hashable, deque[float]] = {}

    def check(self, key: Hashable, now: float) -> ThrottleDecision:
        """Accept (and record) or refuse one request made at ``now``."""
        if self.rate is None:
            return ThrottleDecision(accepted=True)
        history = self._history.setdefault(key, deque())
        self._prune(history, now)
        if len(history) >= self.rate.num_requests:
            return ThrottleDecision(accepted=False, wait=self._wait(history, now))
        history.append(now)
        return ThrottleDecision(accepted=True, in_window=len(history))

    def count(self, key: Hashable, now: float) -> int:
        """How many accepted requests of ``key`` lie in the window ending at ``now``."""
        history = self._history.get(key)
        if history is None or self.rate is None:
            return 0
        self._prune(history, now)
        return len(history)

    def _prune(self, history: deque[float], now: float) -> None:
        assert self.rate is not None
        while history and history[0] <= now - self.rate.duration:
            history.popleft()

    def _wait(self, history: deque[float], now: float) -> float | None:
        assert self.rate is not None
        remaining = self.rate.duration - (now - history[0]) if history else self.rate.duration
        available = self.rate.num_requests - len(history) + 1
        if available <= 0:
            return None
        return remaining / available
