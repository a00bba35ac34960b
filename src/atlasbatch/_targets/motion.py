"""The proper-motion columns of a target list: ``pmra``, ``pmdec`` (mas/yr) and ``epoch``.

They become the server's ``propermotion_ra``, ``propermotion_dec`` and ``radec_epoch_year``,
which move the forced position to where a star is on each image. The server checks only
that they are finite numbers and that the epoch has at most one decimal place; this module
also refuses what cannot be meant (with the row and column, like every other cell):

* ``pmra``/``pmdec``: finite, and no faster than 20,000 mas/yr per component (Barnard's
  star, the fastest, moves 10,400 mas/yr: more is a unit slip). ``pmra`` is the angular
  rate μα* = μα cos δ, as Gaia's ``pmra`` and the server's form ("angular velocities, not
  rates of coordinate change"). Give both or neither (0 for none); MPC targets follow their
  orbit and take none. A list with only one of the two columns, or an ``epoch`` column
  without them, is read as before they meant anything: passed through, not sent.
* ``epoch``: the decimal (Julian) year of the row's RA/Dec, between 1900 and 2100; a
  leading ``J`` is fine (``J2016.0``). It is rounded to the nearest tenth of a year, the
  server's precision (``radec_epoch_year`` refuses a second decimal place): at 1″/yr the
  rounding moves the star by at most 50 mas, a fortieth of an ATLAS pixel.

Proper motion without an epoch is accepted, as the server accepts it: the runner then calls
``force.sh`` without ``epoch=``, and ``force.sh`` applies its own default, which is not
published (J2000.0 is the likeliest, the epoch of the coordinates the form asks for). Gaia
DR3 positions are epoch 2016.0: give it. An epoch without proper motion changes nothing.
"""

from __future__ import annotations

import logging
import math
from typing import Final

import numpy as np

from atlasbatch._targets.coords import Floats, is_nan_text, parse_numbers, show
from atlasbatch._targets.table import ALIASES, TargetTable, TextTable

__all__ = ["EPOCH_RANGE", "MAX_PROPER_MOTION", "RowMotion", "motion_columns", "parse_motion"]

MAX_PROPER_MOTION: Final = 20_000.0  # mas/yr per component
EPOCH_RANGE: Final = (1900.0, 2100.0)
RowMotion = tuple[float | None, float | None, float | None]  # (pmra, pmdec, epoch) as given

log = logging.getLogger(__name__)


def parse_motion(t: TargetTable, mpc: list[str | None]) -> list[RowMotion] | None:
    """Each row's (pmra, pmdec, epoch), None where blank; None when there are no such columns.

    Bad cells are recorded as problems of their rows on ``t``. The columns are those
    :func:`motion_columns` kept.
    """
    if not t.index.keys() & {"pmra", "pmdec", "epoch"}:
        return None
    pmra, pmdec = _proper_motion(t, "pmra"), _proper_motion(t, "pmdec")
    _check_pairs(t, pmra, pmdec, mpc)
    epoch = _epochs(t)
    return list(zip(_optional(pmra), _optional(pmdec), _optional(epoch), strict=True))


def motion_columns(t: TextTable) -> None:
    """Read proper motion only from a pair of columns, and an epoch only with them.

    Lists made before atlasbatch read proper motion may carry one such column, or an
    ``epoch`` meaning something else, for the outputs only: they still pass through as
    before (said once in the log) instead of being refused.
    """
    # (they pass through to the outputs either way: table.PASSED_THROUGH)
    if ("pmra" in t.index) != ("pmdec" in t.index):
        have, lack = ("pmra", "pmdec") if "pmra" in t.index else ("pmdec", "pmra")
        log.warning(
            "%s: column %r has no %s partner (named one of %s): passed through, not sent",
            t.source, t.headers[t.index[have]], lack, ", ".join(ALIASES[lack]),
        )  # fmt: skip
        del t.index[have]
    if "epoch" in t.index and "pmra" not in t.index:
        del t.index["epoch"]  # the epoch of a position that does not move changes nothing


def _optional(values: Floats) -> list[float | None]:
    return [None if math.isnan(v) else v for v in values.tolist()]


def _proper_motion(t: TargetTable, name: str) -> Floats:
    """One proper-motion column in mas/yr (NaN where blank or bad)."""
    texts = t.cells(name)
    values = parse_numbers(texts)
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        if texts[i]:
            what = "not a finite number" if _not_finite(texts[i]) else "not a number (mas/yr)"
            t.problem(i, name, f"{name} {show(texts[i])} is {what}")
    with np.errstate(invalid="ignore"):
        fast = np.isfinite(values) & (np.abs(values) > MAX_PROPER_MOTION)
    for i in np.flatnonzero(fast).tolist():
        t.problem(
            i, name, f"{name} {values[i]:.10g} mas/yr is faster than any star (Barnard's star "
            "moves 10,400 mas/yr): is it in mas/yr?",
        )  # fmt: skip
    values[~np.isfinite(values) | fast] = np.nan
    return values


def _not_finite(text: str) -> bool:
    return is_nan_text(text) or text.lower().lstrip("+-") in ("inf", "infinity")


def _check_pairs(t: TargetTable, pmra: Floats, pmdec: Floats, mpc: list[str | None]) -> None:
    """Both components or neither; none for MPC targets."""
    given_ra = np.array([bool(s) for s in t.cells("pmra")], dtype=bool)
    given_dec = np.array([bool(s) for s in t.cells("pmdec")], dtype=bool)
    for i in np.flatnonzero(given_ra ^ given_dec).tolist():
        lack, have = ("pmdec", "pmra") if given_ra[i] else ("pmra", "pmdec")
        t.problem(i, lack, f"{lack} is missing ({have} is given): give both, 0 for none")
    for i in np.flatnonzero(given_ra | given_dec).tolist():
        if mpc[i] is not None and (pmra[i] or pmdec[i]):
            t.problem(
                i, "pmra" if given_ra[i] else "pmdec",
                "proper motion is for ra/dec targets; an mpc_name target follows its orbit",
            )  # fmt: skip


def _epochs(t: TargetTable) -> Floats:
    """Each row's epoch rounded to a tenth of a year (NaN where blank or bad)."""
    texts = t.cells("epoch")
    # "J2016.0" is a Julian epoch: the J says what the number already is
    values = parse_numbers([s[1:] if s[:1] in ("J", "j") else s for s in texts])
    low, high = EPOCH_RANGE
    with np.errstate(invalid="ignore"):
        bad = (values < low) | (values > high)
    for i in np.flatnonzero(~np.isfinite(values) | bad).tolist():
        if texts[i]:
            t.problem(i, "epoch", _epoch_message(texts[i], float(values[i])))
    values[~np.isfinite(values) | bad] = np.nan
    rounded: Floats = np.round(values, 1)
    return rounded


def _epoch_message(text: str, value: float) -> str:
    shown = show(text)
    if text[:1] in ("B", "b"):
        return f"epoch {shown} is Besselian: give the Julian year of the position (J2000.0 …)"
    if not math.isfinite(value):
        return f"epoch {shown} is not a number (the decimal year of RA/Dec, such as 2016.0)"
    low, high = EPOCH_RANGE
    hint = ""
    if 2.4e6 < value < 2.5e6:
        hint = f"; as a JD that is the year {2000 + (value - 2451545.0) / 365.25:.1f}"
    elif 40000 <= value <= 100000:
        hint = f"; as an MJD that is the year {2000 + (value - 51544.5) / 365.25:.1f}"
    return (
        f"epoch {value:.10g} is not a year between {low:g} and {high:g} (the decimal year of "
        f"RA/Dec, such as Gaia DR3's 2016.0){hint}"
    )
