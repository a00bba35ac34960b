"""The outage switch: when the whole site answers Apache's 503 page, or nothing at all."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from .._config import OutageMode, OutageWindow

__all__ = ["OUTAGE_PAGE", "OutageHandle", "OutageSwitch"]

OUTAGE_PAGE = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
    "<title>503 Service Unavailable</title>\n</head><body>\n<h1>Service Unavailable</h1>\n"
    "<p>The server is temporarily unable to service your\nrequest due to maintenance downtime "
    "or capacity\nproblems. Please try again later.</p>\n</body></html>\n"
)
"""Apache's own 503 page, as the front end serves it when the Django app is down."""


class OutageSwitch:
    """The configured outage windows plus a manual override; use under the store lock."""

    def __init__(self, windows: tuple[OutageWindow, ...]) -> None:
        self.windows = windows
        self.manual: OutageMode | None = None

    def mode(self, elapsed: float) -> OutageMode | None:
        """The outage in force ``elapsed`` seconds after the start, if any (manual first)."""
        if self.manual is not None:
            return self.manual
        for start, end, mode in self.windows:
            if start <= elapsed < end:
                return mode
        return None


class OutageHandle:
    """What :meth:`Emulator.outage` returns: ``with emu.outage("drop"): ...`` ends it on exit."""

    def __init__(self, end: Callable[[], None], mode: OutageMode) -> None:
        self._end = end
        self.mode = mode

    def end(self) -> None:
        """End the outage (same as :meth:`Emulator.end_outage`)."""
        self._end()

    def __enter__(self) -> OutageHandle:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.end()
