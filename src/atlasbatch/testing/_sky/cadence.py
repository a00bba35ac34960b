"""When ATLAS looks at a position: its four units, their nights, visits and exposures.

The survey's pattern, as the emulator draws it:

* **Units** (``Obs`` prefixes): ``02a`` Haleakalā (from the survey's start in 2015), ``01a``
  Mauna Loa (from 2017), ``03a`` Sutherland and ``04a`` El Sauce, Chile (from 2022). The
  Hawaii units see down to Dec -50 (further south nothing has data, the emulator's no-data
  rule), the southern ones up to Dec +40.
* **Nights**: each unit comes back to a field every one or two nights (ATLAS covers its sky
  every two nights per unit pair; Smith et al. 2020, PASP 132, 085002) when its night is
  clear: 75 % of nights in Hawaii, 65 % at Sutherland, 80 % at El Sauce (assumed typical
  site statistics). The weather belongs to the site, the schedule to the field (a 5-degree
  cell), so nearby positions (control light curves) share every image.
* **Visits**: four 30-s exposures about 16 minutes apart (within an hour), in one filter:
  cyan within 6.5 days of new moon, orange otherwise ("c" in dark skies, "o" when the moon
  is up). The exposure number in ``Obs`` counts the unit's exposures of the night (~45 s
  each). Each unit observes inside one UT day (Sutherland before 0h UT, El Sauce after), so
  a visit never straddles an MJD boundary and ``Obs`` carries the exposure's own MJD.

``observations_per_day`` scales the number of visits: at :data:`ATLAS_OBSERVATIONS_PER_DAY`
(about 3.9 exposures per filter and day where all four units see the field) every clear
scheduled night has one visit; smaller values keep an evenly spread share of them (each
kept visit still has four exposures, and every window gets its share give or take one
visit), larger ones add visits. It is the mean number of exposures per
filter and day where all four units see the target, half that north of Dec +40 or before
2022. Seasons (the Sun) are not modelled: a target is observable all year.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from .._sky.draws import Floats, uniform

__all__ = ["ATLAS_OBSERVATIONS_PER_DAY", "SITES", "Exposures", "Site", "exposures", "field_key"]

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Site:
    """One ATLAS unit as the cadence sees it."""

    code: str  # the Obs prefix: camera/site
    since_mjd: float  # its first night in the forced-photometry archive (approximate)
    clear: float  # fraction of nights clear enough to observe
    night: tuple[float, float]  # the UT window it observes in, as fractions of the MJD day
    dec_range: tuple[float, float]  # the declinations it reaches


SITES: Final = (
    Site("01a", 57800.0, 0.75, (0.21, 0.645), (-50.0, 90.0)),  # Mauna Loa, from 2017
    Site("02a", 57230.0, 0.75, (0.21, 0.645), (-50.0, 90.0)),  # Haleakalā, the first unit
    Site("03a", 59600.0, 0.65, (0.73, 0.995), (-90.0, 40.0)),  # Sutherland, South Africa
    Site("04a", 59600.0, 0.80, (0.005, 0.395), (-90.0, 40.0)),  # El Sauce, Chile
)
FILTERS: Final = ("c", "o")
EXPOSURES_PER_VISIT: Final = 4
_SCHEDULED: Final = 2 / 3  # nights a unit visits a field: gaps of one or two nights
ATLAS_OBSERVATIONS_PER_DAY: Final = 2 * _SCHEDULED * sum(site.clear for site in SITES)
"""Exposures per filter and day of the real survey where all four units see a field (~3.9)."""

_SPACING = 0.0105  # days between a visit's exposures (~15 minutes)
_VISIT_LENGTH = (EXPOSURES_PER_VISIT - 1) * _SPACING + 0.002
_EXPOSURE_DAYS = 45.0 / 86400  # a 30-s exposure plus readout and slew
_NEW_MOON_MJD = 51549.76  # 2000-01-06 18:14 UT
_SYNODIC_MONTH = 29.530589
_DARK_DAYS = 6.5  # cyan within this many days of new moon
# keys that keep the draws of different purposes apart
_GAP, _PHASE, _WEATHER, _THIN, _START, _JITTER = range(901, 907)


@dataclass(frozen=True, slots=True)
class Exposures:
    """Every exposure of a position in a window, sorted by MJD (parallel arrays)."""

    mjd: Floats
    site: Ints  # index into SITES
    night: Ints  # the integer MJD of the night (and of the exposure)
    visit: Ints  # the visit's index within the unit's night
    k: Ints  # the exposure's index within its visit
    filt: Ints  # index into FILTERS
    number: Ints  # the exposure number of the unit's night

    @property
    def size(self) -> int:
        """How many exposures."""
        return int(self.mjd.size)


def field_key(ra: float, dec: float) -> int:
    """The 5-degree sky cell of a position: the unit of scheduling (ATLAS fields are ~5.4°)."""
    band = min(35, max(0, math.floor((dec + 90.0) / 5.0)))
    cells = max(1, math.floor(72 * math.cos(math.radians(band * 5.0 - 87.5))))
    return band * 100 + math.floor((ra % 360.0) / 360.0 * cells) % cells


def _clear_nights(site: int, field: int, last: int) -> Ints:
    """Every night up to ``last`` on which unit ``site`` observes ``field``: scheduled (gaps
    of one or two nights from the unit's first night) and clear."""
    since = math.ceil(SITES[site].since_mjd)
    if last < since:
        return np.zeros(0, dtype=np.int64)
    gaps = 1 + (uniform(field, site, _GAP, np.arange(last - since + 1)) < 0.5)
    start = since - 1 + int(float(uniform(field, site, _PHASE)) < 0.5)
    nights = start + np.cumsum(gaps, dtype=np.int64)
    nights = nights[nights <= last]
    clear: Ints = nights[uniform(site, _WEATHER, nights) < SITES[site].clear]
    return clear


def _visits(field: int, dec: float, first: int, last: int, scale: float) -> tuple[Ints, ...]:
    """(unit, night, visit index) of every visit in nights [first, last].

    The candidates (a unit's clear scheduled nights, for every unit that reaches ``dec``)
    are ranked in time from the survey's start, and the k-th gets
    floor(φ + s(k+1)) - floor(φ + sk) visits for ``scale`` s: systematic sampling, so any
    run of n candidates holds s·n visits give or take one (a thin file still has its share
    in every window), and the visits of a night never depend on the window asked.
    """
    reach = [i for i, site in enumerate(SITES) if site.dec_range[0] <= dec <= site.dec_range[1]]
    nights = [_clear_nights(i, field, last) for i in reach]
    empty = [np.zeros(0, dtype=np.int64)]
    units = [np.full(n.size, i, dtype=np.int64) for i, n in zip(reach, nights, strict=True)]
    site, night = np.concatenate(units or empty), np.concatenate(nights or empty)
    order = np.lexsort((site, night))
    site, night = site[order], night[order]
    phase, rank = float(uniform(field, _THIN)), np.arange(night.size, dtype=np.float64)
    counts = np.floor(phase + scale * (rank + 1)) - np.floor(phase + scale * rank)
    counts[night < first] = 0
    repeats = counts.astype(np.int64)
    site, night = np.repeat(site, repeats), np.repeat(night, repeats)
    starts = np.cumsum(repeats) - repeats  # index of each candidate's first visit
    visit = np.arange(night.size, dtype=np.int64) - np.repeat(starts, repeats)
    return site, night, visit


def _filters(night: Ints) -> Ints:
    """Cyan in dark time, orange when the moon is up (one filter a night, all units)."""
    age = np.mod(night + 0.5 - _NEW_MOON_MJD, _SYNODIC_MONTH)
    dark = (age < _DARK_DAYS) | (age > _SYNODIC_MONTH - _DARK_DAYS)
    return np.where(dark, 0, 1).astype(np.int64)


def exposures(
    *, field: int, dec: float, start_mjd: float, end_mjd: float, observations_per_day: float
) -> Exposures:
    """Every exposure of a position in ``field`` at ``dec`` in [start_mjd, end_mjd]."""
    first, last = math.floor(start_mjd), math.floor(end_mjd)
    scale = observations_per_day / ATLAS_OBSERVATIONS_PER_DAY
    sites, nights, visits = _visits(field, dec, first, last, scale)
    begin = np.array([site.night[0] for site in SITES])[sites]
    length = np.array([site.night[1] - site.night[0] for site in SITES])[sites] - _VISIT_LENGTH
    starts = begin + length * uniform(field, _START, sites, nights, visits)
    each = EXPOSURES_PER_VISIT
    site, night, visit = (np.repeat(a, each) for a in (sites, nights, visits))
    start, begin = np.repeat(starts, each), np.repeat(begin, each)
    k = np.tile(np.arange(each, dtype=np.int64), nights.size)
    # offsets are fractions of the UT day: a unit's night never crosses 0h UT
    offset = start + k * _SPACING + 0.001 * uniform(field, _JITTER, site, night, visit, k)
    mjd = np.round(night + offset, 6)
    keep = np.flatnonzero((mjd >= start_mjd) & (mjd <= end_mjd))
    order = keep[np.argsort(mjd[keep], kind="stable")]
    number = 1 + ((offset - begin) / _EXPOSURE_DAYS).astype(np.int64)
    return Exposures(
        mjd[order], site[order], night[order], visit[order], k[order],
        _filters(night[order]), number[order],
    )  # fmt: skip
