"""Moving stars: where the runner forces the PSF, where the star is, and what flux that finds.

With ``propermotion_ra``/``propermotion_dec`` (mas/yr) the runner forces the PSF at the
submitted position moved from ``radec_epoch_year`` to each exposure's MJD, linearly; the RA
rate is angular (μα* = μα cos δ: the server's form says "angular velocities, not rates of
coordinate change"), so RA moves by μα*/cos δ. The real server accepts proper motion without
an epoch and runs ``force.sh`` without ``epoch=``; what ``force.sh`` then assumes is not
published, and the emulator takes J2000.0 (:data:`DEFAULT_EPOCH`), the epoch of the
coordinates the server's form asks for. Without proper motion the PSF stays where it was sent.

The true source is the emulator's synthetic source, fixed at the submitted position, unless
that position lies on the track (1950-2050) of a star of :data:`HIGH_PM_STARS`: then it is
that star, moving on its own. A PSF fit forced a distance d from a Gaussian source recovers
exp(-d²/4σ²) of its flux, with σ = FWHM/2.355 and FWHM = 2 pixels of 1.86″ (the server's
FAQ): a high-proper-motion star fetched without its motion fades as it walks off the forced
position, and stays flat when its motion is sent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from .._sky.draws import Floats

__all__ = [
    "DEFAULT_EPOCH",
    "HIGH_PM_STARS",
    "Star",
    "flux_fraction",
    "mjd_of_year",
    "moved",
    "star_on_track",
]

DEFAULT_EPOCH: Final = 2000.0
PSF_SIGMA_ARCSEC: Final = 2 * 1.86 / (2 * math.sqrt(2 * math.log(2)))
_MAS_PER_DEGREE = 3.6e6
_MATCH_ARCSEC = 5.0  # how close to a star's track a submitted position must be
_TRACK_YEARS = (1950.0, 2050.0)


@dataclass(frozen=True, slots=True)
class Star:
    """A star of the emulator's sky that moves: its position at ``epoch`` and its motion."""

    name: str
    ra: float  # degrees at epoch
    dec: float
    epoch: float  # decimal year
    pmra: float  # mas/yr, μα* (angular)
    pmdec: float  # mas/yr
    mag: float  # the emulator's AB magnitude (the real star would saturate ATLAS)

    @property
    def flux(self) -> float:
        """Its flux in µJy."""
        return float(10 ** (-0.4 * (self.mag - 23.9)))


HIGH_PM_STARS: Final = (
    # Gaia DR3 4472832130942575872, rounded (epoch 2016.0): 10.4″/yr, the fastest star
    Star("Barnard's star", 269.448502, 4.739420, 2016.0, -801.551, 10362.394, 14.0),
)


def mjd_of_year(year: float) -> float:
    """The MJD of a Julian-year epoch (2000.0 is MJD 51544.5)."""
    return 51544.5 + (year - 2000.0) * 365.25


def moved(
    ra: float, dec: float, *, epoch: float, pmra: float, pmdec: float, mjd: Floats
) -> tuple[Floats, Floats]:
    """A position at ``epoch`` moved linearly by its proper motion to each MJD."""
    years = (mjd - mjd_of_year(epoch)) / 365.25
    cos_dec = max(math.cos(math.radians(dec)), 1e-6)
    ras: Floats = np.mod(ra + pmra * years / _MAS_PER_DEGREE / cos_dec, 360.0)
    decs: Floats = dec + pmdec * years / _MAS_PER_DEGREE
    return ras, decs


def star_on_track(ra: float, dec: float) -> Star | None:
    """The star whose path (1950-2050) passes within 5″ of a position, if any."""
    for star in HIGH_PM_STARS:
        cos_dec = math.cos(math.radians(star.dec))
        east = ((ra - star.ra + 180.0) % 360.0 - 180.0) * cos_dec * 3600.0
        north = (dec - star.dec) * 3600.0
        speed2 = (star.pmra**2 + star.pmdec**2) / 1e6  # (″/yr)²
        years = (east * star.pmra + north * star.pmdec) / 1e3 / speed2
        years = min(max(years, _TRACK_YEARS[0] - star.epoch), _TRACK_YEARS[1] - star.epoch)
        miss = math.hypot(east - star.pmra / 1e3 * years, north - star.pmdec / 1e3 * years)
        if miss <= _MATCH_ARCSEC:
            return star
    return None


def flux_fraction(ra: Floats, dec: Floats, true_ra: Floats, true_dec: Floats) -> Floats:
    """The share of a source's flux a PSF fit forced at (ra, dec) recovers."""
    east = ((ra - true_ra + 180.0) % 360.0 - 180.0) * np.cos(np.radians(true_dec)) * 3600.0
    north = (dec - true_dec) * 3600.0
    fraction: Floats = np.exp(-(east**2 + north**2) / (4.0 * PSF_SIGMA_ARCSEC**2))
    return fraction
