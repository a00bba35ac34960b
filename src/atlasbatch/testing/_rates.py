"""DRF throttle rates (``"60/min"``) and the small value checks every settings class shares."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "Rate",
    "check_fraction",
    "check_optional_seconds",
    "check_seconds",
    "parse_rate",
    "scale_rate",
]

_UNIT_SECONDS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?|\.\d+)?\s*([smhd])[a-z]*\s*$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Rate:
    """A DRF throttle rate: at most ``num_requests`` accepted in any ``duration`` seconds."""

    num_requests: int
    duration: float

    def __str__(self) -> str:
        return f"{self.num_requests}/{_plain_number(self.duration)}s"


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


def scale_rate(rate: str | None, factor: float) -> str | None:
    """The same number of requests per a window ``factor`` times as long (``None`` stays)."""
    if rate is None:
        return None
    parsed = parse_rate(rate)
    return str(Rate(parsed.num_requests, parsed.duration * factor))


def _plain_number(value: float) -> str:
    # no exponent: the client's rate parser (and DRF's syntax) only knows plain decimals
    text = repr(float(value))
    if "e" in text or "E" in text:
        text = f"{value:.15f}".rstrip("0").rstrip(".")
    return text.removesuffix(".0")


def check_fraction(name: str, value: float) -> None:
    """Refuse a fraction outside [0, 1] (NaN included)."""
    if not 0.0 <= value <= 1.0:
        msg = f"{name} must be between 0 and 1, got {value!r}"
        raise ValueError(msg)


def check_seconds(name: str, value: float) -> None:
    """Refuse a negative, NaN or infinite duration."""
    if not (value >= 0 and math.isfinite(value)):
        msg = f"{name} must be a finite number of seconds >= 0, got {value!r}"
        raise ValueError(msg)


def check_optional_seconds(name: str, value: float | None) -> None:
    """Refuse a negative or NaN duration (``None`` means "never"; infinity is allowed)."""
    if value is not None and not value >= 0:
        msg = f"{name} must be None or >= 0 seconds, got {value!r}"
        raise ValueError(msg)
