"""Cells to numbers: plain decimals, and RA/Dec in decimal degrees or three-field sexagesimal.

Whole columns at once. One regular expression per sexagesimal spelling tests the column and
splits the cells it matches into fields (Arrow's ``match_substring_regex``/``extract_regex``
run in RE2, not row by row in Python; their buffers in ``_targets.text.POOL``); pandas
parses the other cells as decimals; numpy does the arithmetic. Python touches only the bad
cells, to word their messages. Only the three-field forms the server's radeclist reads are
accepted. With ``_targets.table``, the bottom of the target-parsing stack: it knows nothing
of tables or rows.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from atlasbatch._targets.text import POOL

__all__ = ["Floats", "is_nan_text", "parse_angles", "parse_numbers", "show"]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

# One pattern per spelling (an alternation would need distinct group names). Written for
# RE2 and Python alike: explicit classes instead of \d, \s and the IGNORECASE flag, which
# in RE2 mean Unicode digits/spaces and Unicode case folding ("ſ" for "s").
_SPACE = r"[ \t\n\r\f\v]"
_SPELLINGS: Final = {
    True: [(":", ":", ""), (f"{_SPACE}+", f"{_SPACE}+", ""),
           (f"[hH]{_SPACE}*", f"[mM]{_SPACE}*", "[sS]?")],
    False: [(":", ":", ""), (f"{_SPACE}+", f"{_SPACE}+", ""),
            (f"[dD°]{_SPACE}*", f"[mM′']{_SPACE}*", '[sS″"]?')],
}  # fmt: skip
_SEXAGESIMAL: Final = {
    is_ra: [
        rf"^(?P<sign>[+-]?)(?P<whole>[0-9]{{1,3}}){a}(?P<minutes>[0-9]{{1,2}}){b}"
        rf"(?P<seconds>[0-9]{{1,2}}(?:\.[0-9]+)?){c}$"
        for a, b, c in forms
    ]
    for is_ra, forms in _SPELLINGS.items()
}
# Every sexagesimal spelling separates its fields with one of these; a column without any
# is decimals (or bad) throughout, and skips the regular expressions.
_SEPARATOR: Final = re.compile(r"[: \t\n\r\f\vhHdD°]")
_EXAMPLE: Final = {True: "12:34:56.7, 12 34 56.7 or 12h34m56.7s", False: "-05:02:03 or -05d02m03s"}
# astropy's factor from hours to degrees, one ulp below 15: earlier versions converted with
# astropy, and a resumed run compares each row's position exactly with the one it recorded.
_DEGREES_PER_HOUR: Final = float(np.nextafter(15.0, 0.0))


def show(text: str) -> str:
    """A cell as quoted in a message, cut short so one huge cell cannot flood the error."""
    return repr(text if len(text) <= 40 else text[:40] + "…")


def is_nan_text(text: str) -> bool:
    """True for a cell spelling NaN (which parses as a number but is never a value)."""
    return text.lower().lstrip("+-") == "nan"


def parse_numbers(texts: Sequence[str]) -> Floats:
    """Vectorized decimal parsing: NaN where a cell is blank or not a plain number."""
    series = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    return series.to_numpy(dtype=np.float64, copy=True)


def parse_angles(texts: list[str], *, is_ra: bool) -> tuple[Floats, dict[int, str]]:
    """Degrees per cell (NaN where blank or bad) and the message for each bad cell.

    Cells are decimal degrees or sexagesimal (RA in hours). RA must lie in [0, 360] (360
    becomes 0); Dec strictly inside (-90, 90).
    """
    if any("\u2212" in s for s in texts):  # the minus sign of pasted web pages
        texts = [s.replace("\u2212", "-") for s in texts]
    if _SEPARATOR.search("".join(texts)) is None:  # no sexagesimal cell: decimals only
        values = parse_numbers(texts)
        errors = _not_numbers(texts, values, np.arange(len(texts)), is_ra=is_ra)
        return _in_range(texts, values, errors, is_ra=is_ra)
    # Sexagesimal first: no sexagesimal spelling is a number, and a regular expression
    # refuses a decimal faster than a number parser refuses a sexagesimal cell.
    values, errors, sexagesimal = _sexagesimal(texts, is_ra=is_ra)
    if not sexagesimal.all():
        rest = np.flatnonzero(~sexagesimal)
        values[rest] = parse_numbers(texts if rest.size == len(texts) else [texts[i] for i in rest])
        errors.update(_not_numbers(texts, values, rest, is_ra=is_ra))
    return _in_range(texts, values, errors, is_ra=is_ra)


def _in_range(
    texts: list[str], values: Floats, errors: dict[int, str], *, is_ra: bool
) -> tuple[Floats, dict[int, str]]:
    """``values`` with the out-of-range ones and those of ``errors`` made NaN, and the
    messages of all."""
    with np.errstate(invalid="ignore"):
        out = (values < 0) | (values > 360) if is_ra else np.abs(values) >= 90
    what = "RA" if is_ra else "Dec"
    for i in np.flatnonzero(out).tolist():
        if np.isinf(values[i]):
            errors[i] = f"{what} {show(texts[i])} is not a finite number"
        elif is_ra:
            errors[i] = f"RA {show(texts[i])} is outside 0–360 degrees"
        else:  # the server's radeclist rejects the poles themselves (atlas_api.md §5.4)
            errors[i] = (
                f"Dec {show(texts[i])} must be strictly between -90 and +90 degrees "
                "(the ATLAS server's rule, which excludes ±90 itself)"
            )
    values[list(errors)] = np.nan
    if is_ra:
        values[values == 360] = 0.0  # the same meridian; the server's range is [0, 360)
    return values + 0.0, errors  # + 0.0 turns -0.0 into 0.0


def _not_numbers(
    texts: list[str], values: Floats, rows: npt.NDArray[np.intp], *, is_ra: bool
) -> dict[int, str]:
    """Messages for the non-blank cells among ``rows`` that are no number (NaN)."""
    what = "RA" if is_ra else "Dec"
    unit = "sexagesimal hours" if is_ra else "sexagesimal"
    messages: dict[int, str] = {}
    for i in rows[np.isnan(values[rows])].tolist():
        if not texts[i]:
            continue
        if is_nan_text(texts[i]):  # "nan" parses as a number, but is none
            messages[i] = f"{what} is NaN"
        else:
            messages[i] = (
                f"{what} {show(texts[i])} is neither decimal degrees nor {unit} ({_EXAMPLE[is_ra]})"
            )
    return messages


def _sexagesimal(texts: list[str], *, is_ra: bool) -> tuple[Floats, dict[int, str], Bools]:
    """Degrees of the sexagesimal cells (NaN elsewhere and where bad), the message of each
    bad one, and which cells are spelled as sexagesimal at all."""
    negative, whole, minutes, seconds = _fields(texts, is_ra=is_ra)
    with np.errstate(invalid="ignore"):  # NaN where a cell is no sexagesimal: False
        sixty = (minutes >= 60) | (seconds >= 60)
        hours = ~sixty & (negative | (whole >= 24)) if is_ra else np.zeros_like(sixty)
    # astropy's arithmetic in its order, so the values are the very same floats
    magnitude = whole + minutes / 60.0 + seconds / 3600.0
    degrees = magnitude * _DEGREES_PER_HOUR if is_ra else np.where(negative, -magnitude, magnitude)
    degrees[sixty | hours] = np.nan
    what = "RA" if is_ra else "Dec"
    messages = {
        i: f"{what} {show(texts[i])}: minutes and seconds must be below 60"
        for i in np.flatnonzero(sixty).tolist()
    }
    messages |= {
        i: f"RA {show(texts[i])}: hours must be in [0, 24) (sexagesimal RA is in hours)"
        for i in np.flatnonzero(hours).tolist()
    }
    return degrees, messages, ~np.isnan(whole)


def _fields(texts: list[str], *, is_ra: bool) -> tuple[Bools, Floats, Floats, Floats]:
    """Sign (True: minus), whole, minutes and seconds of each cell; NaN where none matches."""
    negative = np.zeros(len(texts), dtype=bool)
    whole, minutes, seconds = (np.full(len(texts), np.nan) for _ in range(3))
    cells = _arrow_strings(texts)
    for pattern in _SEXAGESIMAL[is_ra]:
        # A match test is cheap (a DFA); extracting groups is not, so only the hits are.
        matched = pc.match_substring_regex(cells, pattern, memory_pool=POOL)
        hits = matched.to_numpy(zero_copy_only=False)
        if hits.any():
            fields = pc.extract_regex(
                pc.filter(cells, matched, memory_pool=POOL), pattern, memory_pool=POOL
            )
            sign = pc.equal(fields.field("sign"), "-", memory_pool=POOL)
            negative[hits] = sign.to_numpy(zero_copy_only=False)
            for name, out in (("whole", whole), ("minutes", minutes), ("seconds", seconds)):
                # Arrow's cast parses exactly as float() does
                values = pc.cast(fields.field(name), pa.float64(), memory_pool=POOL)
                out[hits] = values.to_numpy(zero_copy_only=False)
    return negative, whole, minutes, seconds


def _arrow_strings(texts: list[str]) -> pa.Array:
    """The cells as an Arrow string array; a cell UTF-8 cannot hold becomes blank."""
    try:
        return pa.array(texts, type=pa.string(), memory_pool=POOL)
    except UnicodeEncodeError:  # a lone surrogate, from a DataFrame or records: no angle
        cells = [s if _encodable(s) else "" for s in texts]
        return pa.array(cells, type=pa.string(), memory_pool=POOL)


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True
