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

__all__ = ["HEADER", "SURVEY_START_MJD", "Job", "has_data", "render_result"]

SURVEY_START_MJD = 57230.0
HEADER = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y     maj"
    "  min   phi  apfit mag5sig Sky   Obs"
)
_MASK64 = (1 << 64) - 1
_FILTERS = ("c", "o")
_CAMERAS = ("01a", "02a", "03a", "04a")
_TEMPLATE_CHANGES = (58417.0, 58882.0)


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


def _mix(*values: int) -> int:
    """splitmix64 over a sequence of integers: a cheap, well-spread, stateless hash."""
    state = 0x9E3779B97F4A7C15
    for value in values:
        state = (state + (value & _MASK64) + 0x9E3779B97F4A7C15) & _MASK64
        state = ((state ^ (state >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        state = ((state ^ (state >> 27)) * 0x94D049BB133111EB) & _MASK64
        state ^= state >> 31
    return state


def _unit(*values: int) -> float:
    return _mix(*values) / 2.0**64


def _excluded_target(job: Job) -> bool:
    if job.mpc_name is not None:
        return "nodata" in job.mpc_name.lower()
    ra, dec = job.ra or 0.0, job.dec or 0.0
    return dec < -50.0 or dec >= 90.0 or not 0.0 <= ra <= 360.0


def _exposures(job: Job, *, first_only: bool = False) -> list[tuple[float, int, int, int]]:
    """``(mjd, day, filter index, k)`` of each exposure in the window, sorted by MJD."""
    rate = job.observations_per_day
    whole, fraction = int(rate), rate - int(rate)
    seed = job.seed
    found: list[tuple[float, int, int, int]] = []
    for day in range(math.floor(job.start_mjd), math.floor(job.end_mjd) + 1):
        for filt in range(len(_FILTERS)):
            count = whole + (1 if _unit(seed, day, filt, 0) < fraction else 0)
            for k in range(count):
                mjd = day + 0.25 + 0.5 * _unit(seed, day, filt, k + 1)
                if job.start_mjd <= mjd <= job.end_mjd:
                    found.append((round(mjd, 6), day, filt, k))
                    if first_only:
                        return found
    found.sort()
    return found


def has_data(job: Job) -> bool:
    """Whether the runner finds anything (False means "No data returned")."""
    return not _excluded_target(job) and bool(_exposures(job, first_only=True))


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
            dec_rate=rng.uniform(-0.05, 0.05),
        )

    def transient(self, mjd: float) -> float:
        if self.peak_mjd is None:
            return 0.0
        dt = mjd - self.peak_mjd
        if dt < 0:
            return self.peak_flux * math.exp(-0.5 * (dt / self.rise) ** 2)
        return self.peak_flux * math.exp(-dt / self.decay)

    def flux(self, mjd: float, *, reduced: bool) -> float:
        if reduced:
            return self.baseline + self.transient(mjd)
        epoch = sum(1 for change in _TEMPLATE_CHANGES if mjd >= change)
        return self.transient(mjd) + self.offsets[epoch]


def _position(job: Job, source: _Source, mjd: float) -> tuple[float, float]:
    if job.mpc_name is None:
        return job.ra or 0.0, job.dec or 0.0
    ra0 = _unit(job.seed, 1) * 360.0
    dec0 = -20.0 + 40.0 * _unit(job.seed, 2)
    days = mjd - SURVEY_START_MJD
    return (ra0 + source.ra_rate * days) % 360.0, max(
        -89.0, min(89.0, dec0 + source.dec_rate * days)
    )


def _row(job: Job, source: _Source, exposure: tuple[float, int, int, int]) -> str:
    mjd, day, filt, k = exposure
    rng = random.Random(_mix(job.seed, day, filt, k, 7))
    mag5sig = 19.6 + (0.15 if filt == 1 else 0.0) + rng.gauss(0, 0.35)
    sky = mag5sig + 1.9 + rng.gauss(0, 0.2)
    true_flux = source.flux(mjd, reduced=job.use_reduced)
    sigma = math.hypot(10 ** (-0.4 * (mag5sig - 23.9)) / 5.0, 0.03 * true_flux)
    ujy = round(true_flux + rng.gauss(0, sigma)) or 1
    dujy = max(1, round(sigma))
    magnitude = math.copysign(23.9 - 2.5 * math.log10(abs(ujy)), ujy)
    dm = 1.0857 * dujy / abs(ujy)
    ra, dec = _position(job, source, mjd)
    ra += rng.gauss(0, 0.00002)
    dec += rng.gauss(0, 0.00002)
    major = rng.uniform(1.9, 3.2)
    minor = major * rng.uniform(0.85, 1.0)
    obs = f"{_CAMERAS[rng.randrange(4)]}{day}o{rng.randint(1, 1200):04d}{_FILTERS[filt]}"
    return (
        f"{mjd:.6f} {magnitude:7.3f} {dm:6.3f} {ujy:5d} {dujy:4d} {_FILTERS[filt]} {0:2d} "
        f"{abs(rng.gauss(1.2, 0.5)) + 0.1:6.2f} {ra:9.5f} {dec:9.5f} "
        f"{rng.uniform(50, 10500):8.2f} {rng.uniform(50, 10500):8.2f} {major:4.2f} {minor:4.2f} "
        f"{rng.uniform(-90, 90):5.1f} {rng.gauss(-0.38, 0.03):6.3f} {mag5sig:5.2f} {sky:5.2f} {obs}"
    )


def render_result(job: Job) -> str:
    """The whole result file (header only when there is no data)."""
    lines = [HEADER]
    if not _excluded_target(job):
        source = _Source.for_seed(job.seed)
        lines.extend(_row(job, source, exposure) for exposure in _exposures(job))
    return "\n".join(lines) + "\n"
