"""RA/Dec cells to degrees: decimal degrees or three-field sexagesimal, range-checked.

Only the three-field sexagesimal forms the server's radeclist reads are accepted. The
patterns here decide what counts as sexagesimal and give precise messages; astropy does
the conversion.
"""

from __future__ import annotations

import re
from typing import Final

import astropy.units as u
import numpy as np
from astropy.coordinates import Angle

from atlasbatch._target_file import Floats, is_nan_text, parse_numbers, show

__all__ = ["parse_angles"]

_FIELDS = r"([+-]?)(\d{{1,3}}){}(\d{{1,2}}){}(\d{{1,2}}(?:\.\d+)?){}"
_SEXA: Final = {
    is_ra: [re.compile(_FIELDS.format(*seps), re.I | re.A) for seps in forms]
    for is_ra, forms in (
        (True, [(":", ":", ""), (r"\s+", r"\s+", ""), (r"h\s*", r"m\s*", "s?")]),
        (False, [(":", ":", ""), (r"\s+", r"\s+", ""), (r"[d°]\s*", r"[m′']\s*", '[s″"]?')]),
    )
}
_EXAMPLE: Final = {True: "12:34:56.7, 12 34 56.7 or 12h34m56.7s", False: "-05:02:03 or -05d02m03s"}


def _sexagesimal(text: str, is_ra: bool) -> tuple[str, str]:
    """The text as 'd:m:s' for astropy, or '' and why it is not acceptable."""
    what = "RA" if is_ra else "Dec"
    match = next((m for p in _SEXA[is_ra] if (m := p.fullmatch(text))), None)
    if match is None:
        unit = "sexagesimal hours" if is_ra else "sexagesimal"
        return "", f"{what} {show(text)} is neither decimal degrees nor {unit} ({_EXAMPLE[is_ra]})"
    sign, whole, minutes, seconds = match.groups()
    if int(minutes) >= 60 or float(seconds) >= 60:
        return "", f"{what} {show(text)}: minutes and seconds must be below 60"
    if is_ra and (sign == "-" or int(whole) >= 24):
        return "", f"RA {show(text)}: hours must be in [0, 24) (sexagesimal RA is in hours)"
    return f"{sign}{whole}:{minutes}:{seconds}", ""


def parse_angles(texts: list[str], *, is_ra: bool) -> tuple[Floats, dict[int, str]]:
    """Degrees per cell (NaN where blank or bad) and the message for each bad cell.

    RA must lie in [0, 360] (360 becomes 0); Dec strictly inside (-90, 90).
    """
    texts = [s.replace("\u2212", "-") for s in texts]  # the minus sign of pasted web pages
    values, errors = parse_numbers(texts), {}
    what = "RA" if is_ra else "Dec"
    rows, sexa = [], []
    for i in np.flatnonzero(np.isnan(values)).tolist():
        if is_nan_text(texts[i]):
            errors[i] = f"{what} is NaN"
        elif texts[i]:
            normal, message = _sexagesimal(texts[i], is_ra)
            if normal:
                rows.append(i)
                sexa.append(normal)
            else:
                errors[i] = message
    if sexa:
        values[rows] = Angle(sexa, unit=u.hourangle if is_ra else u.deg).degree
    with np.errstate(invalid="ignore"):
        out = (values < 0) | (values > 360) if is_ra else np.abs(values) >= 90
    for i in np.flatnonzero(out).tolist():
        if np.isinf(values[i]):
            errors[i] = f"{what} {show(texts[i])} is not a finite number"
        elif is_ra:
            errors[i] = f"RA {show(texts[i])} is outside 0–360 degrees"
        else:  # the server's radeclist rejects the poles themselves
            errors[i] = f"Dec {show(texts[i])} must be strictly between -90 and +90 degrees"
    values[list(errors)] = np.nan
    if is_ra:
        values[values == 360] = 0.0  # the same meridian; the server's range is [0, 360)
    return values + 0.0, errors  # + 0.0 turns -0.0 into 0.0
