"""Deterministic synthetic ATLAS light curves, in exactly the real result-file format.

A file is a ``###MJD ...`` header and one whitespace-separated row per exposure, sorted by MJD,
with integer ``uJy``/``duJy`` and filters ``c``/``o``. Everything is derived from the target
(coordinates or MPC name) and its sky field through counter-based hashing (:mod:`._sky.draws`),
so the same target and window always give byte-identical files, and a narrower window gives
exactly the subset of rows of a wider one.

When the survey looks is :mod:`._sky.cadence` (four units, visits of four exposures every one or
two nights, ``observations_per_day`` as the density knob); the bad points and their rates
are :mod:`._sky.quality`; proper motion and the emulator's moving stars are :mod:`._sky.movers`.
Targets below Dec -50, outside the sky, or MPC names containing "nodata" never yield data
("No data returned"), and neither does a window without exposures (e.g. one ending before
the survey).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import TypedDict

import numpy as np

from .._sky.cadence import FILTERS, SITES, Exposures, exposures, field_key
from .._sky.draws import Floats, stable_key, uniform
from .._sky.movers import DEFAULT_EPOCH, flux_fraction, moved, star_on_track
from .._sky.quality import Image, Measurement, image_conditions, measurement_defects

__all__ = [
    "HEADER", "SURVEY_START_MJD", "Job", "Motion", "has_data", "motion_of", "render_result",
]  # fmt: skip

SURVEY_START_MJD = SITES[1].since_mjd
HEADER = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y     maj"
    "  min   phi  apfit mag5sig Sky   Obs"
)
_TEMPLATE_CHANGES = (58417.0, 58882.0)
# One %-format for a whole row: C-level formatting, about twice as fast as an f-string.
_ROW = (
    "%.6f %7.3f %6.3f %5d %4d %s %2d %6.2f %9.5f %9.5f %8.2f %8.2f %4.2f %4.2f %5.1f %6.3f "
    "%5.2f %5.2f %s%do%04d%s"
)


@dataclass(frozen=True, slots=True)
class Job:
    """What the runner was asked to measure (a snapshot taken when the task started).

    ``epoch`` (decimal year), ``pmra``, ``pmdec`` (mas/yr) are the task's
    ``radec_epoch_year``, ``propermotion_ra``, ``propermotion_dec`` (None: not sent).
    """

    ra: float | None
    dec: float | None
    mpc_name: str | None
    mjd_min: float | None
    end_mjd: float
    use_reduced: bool
    observations_per_day: float
    epoch: float | None = None
    pmra: float | None = None
    pmdec: float | None = None

    @property
    def seed(self) -> int:
        """A 64-bit seed derived from the target alone (not the window or the mode)."""
        if self.mpc_name is not None:
            return stable_key(f"mpc:{self.mpc_name}")
        return stable_key(f"radec:{self.ra or 0.0:.6f}:{self.dec or 0.0:.6f}")

    @property
    def start_mjd(self) -> float:
        """The effective start of the window (never before the survey)."""
        return max(SURVEY_START_MJD, self.mjd_min if self.mjd_min is not None else -math.inf)

    @property
    def moving(self) -> bool:
        """Whether the runner moves the forced position (it skips a zero proper motion)."""
        return self.mpc_name is None and bool(self.pmra or self.pmdec)

    def sky_position(self) -> tuple[float, float]:
        """Where the field is looked up: the position, or an MPC target's starting point."""
        if self.mpc_name is None:
            return self.ra or 0.0, self.dec or 0.0
        return _mpc_start(self.seed)


class Motion(TypedDict):
    """The proper-motion fields of a :class:`Job`."""

    epoch: float | None
    pmra: float | None
    pmdec: float | None


def motion_of(fields: Mapping[str, object]) -> Motion:
    """A task's ``epoch``/``pmra``/``pmdec`` for :class:`Job` (the decimal epoch as a float).

    The runner passes ``epoch=``, ``pmra=``, ``pmdec=`` to ``force.sh`` only when non-zero.
    """

    def number(name: str) -> float | None:
        value = fields.get(name)
        ok = isinstance(value, int | float | Decimal) and not isinstance(value, bool)
        return float(value) if ok else None  # type: ignore[arg-type]

    return Motion(
        epoch=number("radec_epoch_year") or None,  # the runner skips a zero epoch too
        pmra=number("propermotion_ra"),
        pmdec=number("propermotion_dec"),
    )


def _excluded_target(job: Job) -> bool:
    if job.mpc_name is not None:
        return "nodata" in job.mpc_name.lower()
    ra, dec = job.ra or 0.0, job.dec or 0.0
    return dec < -50.0 or dec >= 90.0 or not 0.0 <= ra <= 360.0


def _exposures(job: Job) -> Exposures:
    ra, dec = job.sky_position()
    return exposures(
        field=field_key(ra, dec) if job.mpc_name is None else job.seed,
        dec=dec,
        start_mjd=job.start_mjd,
        end_mjd=job.end_mjd,
        observations_per_day=job.observations_per_day,
    )


def has_data(job: Job) -> bool:
    """Whether the runner finds anything (False means "No data returned")."""
    return not _excluded_target(job) and _exposures(job).size > 0


@dataclass(frozen=True, slots=True)
class _Source:
    """The per-target astrophysics: a quiescent flux, maybe a transient, template offsets."""

    baseline: float
    peak_mjd: float | None
    peak_flux: float
    rise: float
    decay: float
    offsets: tuple[float, float, float]
    ra_rate: float
    dec_rate: float

    @classmethod
    def for_seed(cls, seed: int) -> _Source:
        rng = random.Random(seed)
        has_transient = rng.random() < 0.35
        return cls(
            baseline=10 ** rng.uniform(1.5, 3.5),
            peak_mjd=rng.uniform(57300.0, 61500.0) if has_transient else None,
            peak_flux=10 ** rng.uniform(2.0, 3.7),
            rise=rng.uniform(5.0, 20.0),
            decay=rng.uniform(15.0, 80.0),
            offsets=(rng.gauss(0, 15), rng.gauss(0, 15), rng.gauss(0, 15)),
            ra_rate=rng.uniform(0.05, 0.3),
            dec_rate=rng.uniform(-0.005, 0.005),
        )

    def flux(self, mjd: Floats, *, reduced: bool) -> Floats:
        transient = np.zeros_like(mjd)
        if self.peak_mjd is not None:
            dt = mjd - self.peak_mjd
            rising = self.peak_flux * np.exp(-0.5 * (np.minimum(dt, 0.0) / self.rise) ** 2)
            falling = self.peak_flux * np.exp(-np.maximum(dt, 0.0) / self.decay)
            transient = np.where(dt < 0, rising, falling)
        if reduced:
            return self.baseline + transient
        epoch = np.searchsorted(np.asarray(_TEMPLATE_CHANGES), mjd, side="right")
        offsets: Floats = np.asarray(self.offsets, dtype=np.float64)[epoch]
        return transient + offsets


def _mpc_start(seed: int) -> tuple[float, float]:
    return float(uniform(seed, 1)) * 360.0, -20.0 + 40.0 * float(uniform(seed, 2))


def _forced(job: Job, source: _Source, mjd: Floats) -> tuple[Floats, Floats]:
    """Where the runner forces the PSF at each exposure."""
    if job.mpc_name is not None:  # ssforce.sh follows the orbit
        ra0, dec0 = _mpc_start(job.seed)
        days = mjd - SURVEY_START_MJD
        orbit: Floats = (ra0 + source.ra_rate * days) % 360.0
        return orbit, np.clip(dec0 + source.dec_rate * days, -89, 89)
    ra, dec = job.ra or 0.0, job.dec or 0.0
    if not job.moving:
        return np.full_like(mjd, ra), np.full_like(mjd, dec)
    epoch = DEFAULT_EPOCH if job.epoch is None else job.epoch
    return moved(ra, dec, epoch=epoch, pmra=job.pmra or 0.0, pmdec=job.pmdec or 0.0, mjd=mjd)


def _true_flux(job: Job, source: _Source, mjd: Floats, ra: Floats, dec: Floats) -> Floats:
    """The flux the forced PSF finds: the source's, times the share at its distance."""
    model = source.flux(mjd, reduced=job.use_reduced)
    if job.mpc_name is not None:
        return model
    star = star_on_track(job.ra or 0.0, job.dec or 0.0)
    if star is None:  # the synthetic source sits still at the submitted position
        at_ra, at_dec = np.full_like(mjd, job.ra or 0.0), np.full_like(mjd, job.dec or 0.0)
    else:  # a real mover; the difference-image dipole is not modelled: same flux both modes
        at_ra, at_dec = moved(star.ra, star.dec, epoch=star.epoch, pmra=star.pmra,
                              pmdec=star.pmdec, mjd=mjd)  # fmt: skip
        model = np.full_like(mjd, star.flux)
    return model * flux_fraction(ra, dec, at_ra, at_dec)


def _rows(job: Job, e: Exposures) -> list[str]:
    """Format every exposure as a result-file row (all columns computed element-wise)."""
    source = _Source.for_seed(job.seed)
    ra, dec = _forced(job, source, e.mjd)
    field = field_key(*job.sky_position()) if job.mpc_name is None else job.seed
    image: Image = image_conditions(field, e)
    meas: Measurement = measurement_defects(job.seed, e)
    true_flux = _true_flux(job, source, e.mjd, ra, dec)
    sigma = np.hypot(10 ** (-0.4 * (image.mag5sig - 23.9)) / 5.0, 0.03 * true_flux)
    ujy = np.rint(true_flux + sigma * meas.noise).astype(np.int64)
    ujy[ujy == 0] = 1
    dujy = np.maximum(1, np.rint(sigma)).astype(np.int64)
    magnitude = np.copysign(23.9 - 2.5 * np.log10(np.abs(ujy)), ujy)
    letters = [FILTERS[f] for f in e.filt.tolist()]
    codes = [SITES[s].code for s in e.site.tolist()]
    columns = zip(
        e.mjd.tolist(), magnitude.tolist(), (1.0857 * dujy / np.abs(ujy)).tolist(),
        ujy.tolist(), dujy.tolist(), letters, meas.err.tolist(), meas.chi.tolist(),
        (ra + meas.ra_jitter).tolist(), (dec + meas.dec_jitter).tolist(),
        meas.x.tolist(), meas.y.tolist(), image.major.tolist(), image.minor.tolist(),
        image.phi.tolist(), image.apfit.tolist(), image.mag5sig.tolist(), image.sky.tolist(),
        codes, e.night.tolist(), e.number.tolist(), letters, strict=True,
    )  # fmt: skip
    return [_ROW % row for row in columns]


def render_result(job: Job) -> str:
    """The whole result file (header only when there is no data)."""
    lines = [HEADER]
    if not _excluded_target(job):
        lines.extend(_rows(job, _exposures(job)))
    return "\n".join(lines) + "\n"
