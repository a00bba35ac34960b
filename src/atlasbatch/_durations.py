"""Durations in words, for people: ``"45 s"``, ``"12 min"``, ``"3 h 05 min"``, ``"2 d 04 h"``.

Shared by the run display, the dry run's plan and the target list's image estimate, which
sit in different layers; it needs nothing but ``math``.
"""

from __future__ import annotations

import math

__all__ = ["format_duration"]


def format_duration(seconds: float | None) -> str:
    """``"45 s"``, ``"12 min"``, ``"3 h 05 min"``, ``"2 d 04 h"``; ``"unknown"`` for None."""
    if seconds is None or not math.isfinite(seconds):
        return "unknown"
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
