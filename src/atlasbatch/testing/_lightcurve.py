"""Deterministic synthetic ATLAS light curves, in exactly the real result-file format.

A file is a ``###MJD ...`` header and one whitespace-separated row per exposure, sorted by MJD,
with integer ``uJy``/``duJy`` and filters ``c``/``o``. Everything is derived from the target
(coordinates or MPC name) through counter-based hashing, so the same target and window always
give byte-identical files, and a narrower window gives exactly the subset of rows of a wider one.

The exposure cadence is a fixed per-target pattern on whole MJD days: each day and filter has
``observations_per_day`` exposures on average (0.5 = one every second day per filter). Targets
below Dec -50, outside the sky, or MPC names containing "nodata" never yield data ("No data
returned"), and neither does a window without exposures (e.g. one ending before the survey).
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = ["HEADER", "SURVEY_START_MJD", "Job", "has_data", "render_result"]

SURVEY_START_MJD = 57230.0
HEADER = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y     maj"
    "  min   phi  apfit mag5sig Sky   Obs"
)
_FILTERS = ("c", "o")
_CAMERAS = ("01a", "02a", "03a", "04a")
_TEMPLATE_CHANGES = (58417.0, 58882.0)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)

UInts = npt.NDArray[np.uint64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Job:
    """What the runner was asked to measure (a snapshot taken when the task started)."""

    ra: float | None
    dec: float | None
    mpc_name: str | None
    mjd_min: float | None
    end_mjd: float
    use_reduced: bool
    observations_per_day: float

    @property
    def seed(self) -> int:
        """A 64-bit seed derived from the target alone (not the window or the mode)."""
        if self.mpc_name is not None:
            key = f"mpc:{self.mpc_name}"
        else:
            key = f"radec:{self.ra or 0.0:.6f}:{self.dec or 0.0:.6f}"
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big")

    @property
    def start_mjd(self) -> float:
        """The effective start of the window (never before the survey)."""
        return max(SURVEY_START_MJD, self.mjd_min if self.mjd_min is not None else -math.inf)


def _unit(*values: int | UInts) -> Floats:
    """splitmix64 over (seed, counters...), element-wise, as uniforms in [0, 1).

    A counter-based generator: the number drawn for (target, day, filter, k, j) never depends
    on the window, so narrower windows give exactly a subset of the rows of wider ones.
    """
    shape = np.broadcast_shapes(*(np.shape(v) for v in values))
    # arrays throughout, never numpy scalars: array arithmetic wraps silently modulo 2**64,
    # scalar arithmetic warns about the (intended) overflow
    state = np.full(shape or (1,), _GOLDEN, dtype=np.uint64)
    for value in values:
        addend = (
            value.astype(np.uint64)
            if isinstance(value, np.ndarray)
            else np.full(1, value & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
        )
        state = state + addend + _GOLDEN
        state = (state ^ (state >> np.uint64(30))) * _MIX1
        state = (state ^ (state >> np.uint64(27))) * _MIX2
        state = state ^ (state >> np.uint64(31))
    state = state.reshape(shape)
    return (state >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


def _excluded_target(job: Job) -> bool:
    if job.mpc_name is not None:
        return "nodata" in job.mpc_name.lower()
    ra, dec = job.ra or 0.0, job.dec or 0.0
    return dec < -50.0 or dec >= 90.0 or not 0.0 <= ra <= 360.0


@dataclass(frozen=True, slots=True)
class _Exposures:
    mjd: Floats
    day: UInts
    filt: UInts
    k: UInts


def _exposures(job: Job) -> _Exposures:
    """Every exposure of the target in the window, sorted by MJD."""
    rate = job.observations_per_day
    whole, fraction = int(rate), rate - int(rate)
    first, last = math.floor(job.start_mjd), math.floor(job.end_mjd)
    days = np.arange(first, max(first, last + 1), dtype=np.uint64)
    parts: list[tuple[Floats, UInts, UInts, UInts]] = []
    for filt in range(len(_FILTERS)):
        counts = whole + (_unit(job.seed, days, filt, 0) < fraction).astype(np.int64)
        for k in range(int(counts.max(initial=0))):
            chosen = days[counts > k]
            mjd = chosen.astype(np.float64) + 0.25 + 0.5 * _unit(job.seed, chosen, filt, k + 1)
            keep = (mjd >= job.start_mjd) & (mjd <= job.end_mjd)
            size = int(keep.sum())
            parts.append(
                (
                    np.round(mjd[keep], 6),
                    chosen[keep],
                    np.full(size, filt, dtype=np.uint64),
                    np.full(size, k, dtype=np.uint64),
                )
            )
    if not parts:
        empty = np.zeros(0, dtype=np.uint64)
        return _Exposures(np.zeros(0), empty, empty, empty)
    mjd, day, filt_arr, k_arr = (np.concatenate(column) for column in zip(*parts, strict=True))
    order = np.argsort(mjd, kind="stable")
    return _Exposures(mjd[order], day[order], filt_arr[order], k_arr[order])


def has_data(job: Job) -> bool:
    """Whether the runner finds anything (False means "No data returned")."""
    return not _excluded_target(job) and _exposures(job).mjd.size > 0


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


def _positions(job: Job, source: _Source, mjd: Floats) -> tuple[Floats, Floats]:
    if job.mpc_name is None:
        return np.full_like(mjd, job.ra or 0.0), np.full_like(mjd, job.dec or 0.0)
    ra0 = float(_unit(job.seed, 1)[()]) * 360.0
    dec0 = -20.0 + 40.0 * float(_unit(job.seed, 2)[()])
    days = mjd - SURVEY_START_MJD
    return (ra0 + source.ra_rate * days) % 360.0, np.clip(dec0 + source.dec_rate * days, -89, 89)


def _rows(job: Job, exposures: _Exposures) -> list[str]:
    """Format every exposure as a result-file row (all columns computed element-wise)."""
    source = _Source.for_seed(job.seed)
    # all random columns in one call: 7 uniforms, then 7 pairs for Box-Muller gaussians
    draws = _unit(
        job.seed,
        exposures.day[:, None],
        exposures.filt[:, None],
        exposures.k[:, None],
        np.arange(100, 121, dtype=np.uint64)[None, :],
    )

    def unit(j: int) -> Floats:
        column: Floats = draws[:, j]
        return column

    def gauss(j: int) -> Floats:
        u1, u2 = draws[:, 7 + 2 * j], draws[:, 8 + 2 * j]
        normal: Floats = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)
        return normal

    mag5sig = 19.6 + 0.15 * exposures.filt.astype(np.float64) + 0.35 * gauss(0)
    sky = mag5sig + 1.9 + 0.2 * gauss(1)
    true_flux = source.flux(exposures.mjd, reduced=job.use_reduced)
    sigma = np.hypot(10 ** (-0.4 * (mag5sig - 23.9)) / 5.0, 0.03 * true_flux)
    ujy = np.rint(true_flux + sigma * gauss(2)).astype(np.int64)
    ujy[ujy == 0] = 1
    dujy = np.maximum(1, np.rint(sigma)).astype(np.int64)
    magnitude = np.copysign(23.9 - 2.5 * np.log10(np.abs(ujy)), ujy)
    dm = 1.0857 * dujy / np.abs(ujy)
    ra, dec = _positions(job, source, exposures.mjd)
    major = 1.9 + 1.3 * unit(0)
    columns = zip(
        exposures.mjd.tolist(), magnitude.tolist(), dm.tolist(), ujy.tolist(), dujy.tolist(),
        exposures.filt.tolist(), (np.abs(1.2 + 0.5 * gauss(3)) + 0.1).tolist(),
        (ra + 0.00002 * gauss(4)).tolist(), (dec + 0.00002 * gauss(5)).tolist(),
        (50 + 10450 * unit(1)).tolist(), (50 + 10450 * unit(2)).tolist(),
        major.tolist(), (major * (0.85 + 0.15 * unit(3))).tolist(), (-90 + 180 * unit(4)).tolist(),
        (-0.38 + 0.03 * gauss(6)).tolist(), mag5sig.tolist(), sky.tolist(),
        (4 * unit(5)).astype(np.int64).tolist(), (1 + 1200 * unit(6)).astype(np.int64).tolist(),
        exposures.day.tolist(), strict=True,
    )  # fmt: skip
    return [
        f"{mjd:.6f} {m:7.3f} {dm_:6.3f} {f:5d} {df:4d} {_FILTERS[flt]} {0:2d} {chi:6.2f} "
        f"{r:9.5f} {d:9.5f} {x:8.2f} {y:8.2f} {a:4.2f} {b:4.2f} {phi:5.1f} {ap:6.3f} "
        f"{m5:5.2f} {sk:5.2f} {_CAMERAS[cam]}{day}o{exp:04d}{_FILTERS[flt]}"
        for (
            mjd,
            m,
            dm_,
            f,
            df,
            flt,
            chi,
            r,
            d,
            x,
            y,
            a,
            b,
            phi,
            ap,
            m5,
            sk,
            cam,
            exp,
            day,
        ) in columns
    ]


def render_result(job: Job) -> str:
    """The whole result file (header only when there is no data)."""
    lines = [HEADER]
    if not _excluded_target(job):
        lines.extend(_rows(job, _exposures(job)))
    return "\n".join(lines) + "\n"
