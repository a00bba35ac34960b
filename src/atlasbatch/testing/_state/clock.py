"""The emulator's time: a monotonic clock for ordering, mapped onto UTC for timestamps."""

from __future__ import annotations

import datetime as dt
import math
import time
from collections.abc import Callable

__all__ = ["Clock", "format_timestamp"]

_MJD_UNIX_EPOCH = 40587.0


def format_timestamp(epoch_seconds: int) -> str:
    """ISO 8601 UTC with ``Z`` and whole seconds, as DRF renders the server's timestamps."""
    moment = dt.datetime.fromtimestamp(epoch_seconds, tz=dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class Clock:
    """Monotonic seconds (``now``) plus the wall-clock time of any monotonic instant.

    The wall time of an instant is fixed when the clock is made, so events processed lazily
    (a task that finished between two requests) get the timestamp of when they happened.
    """

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._monotonic = monotonic
        self._origin = monotonic()
        self._wall_origin = wall()
        self.zero = self._origin
        """The instant the emulator's own clock reads 0 (set again when it starts serving)."""

    def now(self) -> float:
        """Monotonic seconds."""
        return self._monotonic()

    def elapsed(self, instant: float) -> float:
        """A monotonic instant on the emulator's clock: seconds since :attr:`zero`."""
        return instant - self.zero

    def wall(self, instant: float) -> float:
        """Unix time of a monotonic instant."""
        return self._wall_origin + (instant - self._origin)

    def epoch_seconds(self, instant: float) -> int:
        """Unix time of a monotonic instant, truncated to the second (the server truncates)."""
        return math.floor(self.wall(instant))

    def mjd(self, instant: float) -> float:
        """Modified Julian Date of a monotonic instant."""
        return self.wall(instant) / 86400.0 + _MJD_UNIX_EPOCH
