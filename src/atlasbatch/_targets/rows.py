"""A target list parsed into what each row asks: name, position, MJD window and motion.

:func:`parse_rows` loads the table (``_targets.sources``) and parses its columns a chunk of
rows at a time (``_targets.coords``), each chunk's values gathered column-wise
(``_targets.parsed``) and its text then let go; Python loops only over the rows that have
something to say. Every bad cell is recorded as a problem of its row on the table (never
raised), so one error can list every problem of the file, each row's in the order name,
position, window, motion (``_targets.motion``), images (``_targets.images``).
"""

from __future__ import annotations

import math
import re
from datetime import date
from typing import Final

import numpy as np
import numpy.typing as npt

from atlasbatch._models import motion_of
from atlasbatch._targets.coords import Floats, is_nan_text, parse_angles, parse_numbers, show
from atlasbatch._targets.images import parse_images
from atlasbatch._targets.motion import RowMotion, motion_columns, parse_motion
from atlasbatch._targets.parsed import ParsedRows, RowsBuilder, Window
from atlasbatch._targets.sources import load_table
from atlasbatch._targets.table import TargetTable

__all__ = ["MJD_HIGHEST", "MJD_LOWEST", "ParsedRows", "Window", "parse_rows"]

# MJD 40000 is 1968 and 100000 is 2132. ATLAS data begin in 2015 (MJD ~57000), so a value
# outside is a unit slip (a JD, a year, seconds), never a real window; the server itself
# only insists on mjd_max > 0.
MJD_LOWEST: Final = 40000.0
MJD_HIGHEST: Final = 100000.0
# "1.0"/"0.0": what a DataFrame column of 1/0 with a gap (so float) turns into.
_BOOLS: Final = {"true": 1, "yes": 1, "1": 1, "1.0": 1, "false": 0, "no": 0, "0": 0, "0.0": 0}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a line break would split a radeclist line


def parse_rows(
    source: object, *, mjd_min: float | None, mjd_max: float | None, use_reduced: bool
) -> ParsedRows:
    """Load ``source`` and parse every row; ``mjd_*``/``use_reduced`` fill blank cells."""
    whole = load_table(source)
    motion_columns(whole)  # which motion columns count: decided (and said) once
    out = RowsBuilder(whole)
    for start, t in whole.chunks():
        names = _names(t)  # the order of these calls is the order of a row's problems
        position = _positions(t)
        windows = _windows(t, mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced)
        mpc = position[2]
        motion = parse_motion(t, mpc)
        if motion is not None:  # rows moving differently are different questions (dedupe)
            windows = [_with_motion(w, m, mpc=name is not None)
                       for w, m, name in zip(windows, motion, mpc, strict=True)]  # fmt: skip
        out.add(start, t, names=names, position=position, windows=windows, motion=motion,
                images=parse_images(t))  # fmt: skip
    return out.rows()


def _with_motion(window: Window, row: RowMotion, *, mpc: bool) -> Window:
    pmra, pmdec, epoch = row
    motion = motion_of(pmra=pmra, pmdec=pmdec, epoch=epoch, mpc=mpc)
    return window if motion is None else (window[0], window[1], window[2], motion)


def _names(t: TargetTable) -> list[str]:
    """Each row's name; a blank one becomes ``line<N>``."""
    names = t.cells("name")
    if _CONTROL.search("".join(names)):  # one scan of all names; rows only if it finds one
        for i, name in enumerate(names):
            if _CONTROL.search(name):
                t.problem(i, "name", f"name {show(name)} contains a control character")
    for i in [i for i, name in enumerate(names) if not name]:
        names[i] = f"line{t.lines[i]}"
    return names


# --- positions ----------------------------------------------------------------------------


def _filled(cells: list[str]) -> npt.NDArray[np.bool_]:
    return np.fromiter(map(bool, cells), dtype=bool, count=len(cells))


def _mpc_problem(name: str) -> str:
    if len(name) > 300:  # the server's field length
        return "mpc_name is longer than 300 characters"
    if any(c in name for c in "'\";"):
        return f"mpc_name {show(name)} contains a quote or semicolon (the server refuses them)"
    if _CONTROL.search(name):
        return f"mpc_name {show(name)} contains a control character"
    return ""


def _positions(t: TargetTable) -> tuple[Floats, Floats, list[str | None]]:
    """RA and Dec in degrees (NaN where absent or bad) and the MPC name of each row."""
    ra_text, dec_text, mpc_text = t.cells("ra"), t.cells("dec"), t.cells("mpc_name")
    ra, ra_errors = parse_angles(ra_text, is_ra=True)
    dec, dec_errors = parse_angles(dec_text, is_ra=False)
    has_ra, has_dec = _filled(ra_text), _filled(dec_text)
    mpc: list[str | None] = [None] * len(t.lines)
    first: dict[int, tuple[str, str]] = {}  # row -> (column, message) of its row-level problem
    for i, name in enumerate(mpc_text):
        if not name:
            continue
        if has_ra[i] or has_dec[i]:
            first[i] = ("mpc_name", "give either mpc_name or ra/dec, not both")
        elif problem := _mpc_problem(name):
            first[i] = ("mpc_name", problem)
        else:
            mpc[i] = name
    unnamed = ~_filled(mpc_text)
    for i in np.flatnonzero(unnamed & (has_ra != has_dec)).tolist():
        first[i] = ("dec", "Dec is missing") if has_ra[i] else ("ra", "RA is missing")
    nothing = ("ra" if "ra" in t.index else "mpc_name", "no ra/dec and no mpc_name")
    first.update(dict.fromkeys(np.flatnonzero(unnamed & ~has_ra & ~has_dec).tolist(), nothing))
    for i in sorted(first.keys() | ra_errors.keys() | dec_errors.keys()):
        if i in first:
            t.problem(i, *first[i])
        if i in ra_errors:
            t.problem(i, "ra", ra_errors[i])
        if i in dec_errors:
            t.problem(i, "dec", dec_errors[i])
    return ra, dec, mpc


# --- windows ------------------------------------------------------------------------------


def _mjd_message(name: str, text: str, value: float) -> str:
    """Why a cell that is no finite number is not an MJD."""
    shown = show(text)
    if np.isinf(value) or is_nan_text(text):
        return f"{name} {shown} is not a finite number"
    if m := re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", text):
        try:
            mjd = (date(*map(int, m.groups())) - date(1858, 11, 17)).days
            return f"{name} {shown} is a date, not an MJD: write {mjd} for its 0h UT"
        except ValueError:  # not a real date: the plain message is right
            pass
    return f"{name} {shown} is not a number (an MJD such as 60000.5)"


def _mjds(t: TargetTable, name: str) -> tuple[Floats, set[int]]:
    """Per-row MJDs (NaN where blank or bad) and the rows whose value is bad."""
    if name not in t.index:
        return np.full(len(t.lines), np.nan), set()
    texts, bad = t.cells(name), set[int]()
    values = parse_numbers(texts)
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        if texts[i]:
            bad.add(i)
            t.problem(i, name, _mjd_message(name, texts[i], float(values[i])))
    with np.errstate(invalid="ignore"):
        out = np.isfinite(values) & ((values < MJD_LOWEST) | (values > MJD_HIGHEST))
    for i in np.flatnonzero(out).tolist():
        value = float(values[i])
        bad.add(i)
        hint = f"; if a JD, the MJD is {value - 2400000.5:.5f}" if 2.44e6 < value < 2.5e6 else ""
        t.problem(
            i, name, f"{name} {value:.10g} is outside [{MJD_LOWEST:g}, {MJD_HIGHEST:g}]{hint}"
        )
    values[list(bad)] = np.nan
    return values, bad


def _flags(t: TargetTable, default: bool) -> list[bool]:
    """Each row's use_reduced; a blank cell takes ``default``."""
    flags = [default] * len(t.lines)
    if "use_reduced" not in t.index:
        return flags
    for i, text in enumerate(t.cells("use_reduced")):
        if text and (flag := _BOOLS.get(text.lower())) is None:
            t.problem(i, "use_reduced", f"use_reduced {show(text)} is not true/false/yes/no/1/0")
        elif text:
            flags[i] = bool(flag)
    return flags


def _optional(values: Floats) -> list[float | None]:
    if np.isnan(values).all():
        return [None] * len(values)
    return [None if math.isnan(v) else v for v in values.tolist()]


def _windows(
    t: TargetTable, *, mjd_min: float | None, mjd_max: float | None, use_reduced: bool
) -> list[Window]:
    """Each row's (mjd_min, mjd_max, use_reduced); blank cells take the given defaults."""
    (row_lo, bad_lo), (row_hi, bad_hi) = _mjds(t, "mjd_min"), _mjds(t, "mjd_max")
    eff_lo = np.where(np.isnan(row_lo), np.nan if mjd_min is None else mjd_min, row_lo)
    eff_hi = np.where(np.isnan(row_hi), np.nan if mjd_max is None else mjd_max, row_hi)
    for i in np.flatnonzero(eff_hi <= eff_lo).tolist():
        a, b = float(eff_lo[i]), float(eff_hi[i])
        if i in bad_lo | bad_hi:
            continue  # already reported: one of the two values is unusable
        if np.isnan(row_hi[i]):  # the row's mjd_min against the mjd_max option
            t.problem(i, "mjd_min", f"mjd_min {a:.10g} is not before the mjd_max option {b:.10g}")
        else:
            origin = " (the mjd_min option)" if np.isnan(row_lo[i]) else ""
            t.problem(i, "mjd_max", f"mjd_max {b:.10g} is not after mjd_min {a:.10g}{origin}")
    if not t.index.keys() & {"mjd_min", "mjd_max", "use_reduced"}:
        lo, hi = (None if v is None else float(v) for v in (mjd_min, mjd_max))
        return [(lo, hi, use_reduced)] * len(t.lines)  # one shared tuple: cheap
    flags = _flags(t, use_reduced)
    return list(zip(_optional(eff_lo), _optional(eff_hi), flags, strict=True))
