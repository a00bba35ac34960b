"""Observing conditions and bad measurements, at rates ATLAS users meet them.

The server's FAQ ("Why are there crazy data points?") names the cuts that remove almost all
non-statistical bad points: ``duJy < 10000``, ``err == 0``, ``100 < x, y < 10460``,
``1.6 < maj, min < 5``, ``-1 < apfit < -0.1``, ``mag5sig > 17``, ``sky > 17``; and
``mag5sig < 10`` means the image has no photometric solution. The emulator makes each kind,
at these rates (chosen, with the reason):

* **poor visits**, 3 % of visits (all four exposures: it is the sky, not the star): cloud,
  twilight or moonlight, 2.5 to 5 mag shallower (``mag5sig`` often under 17), 1 to 3 mag
  brighter sky, a PSF up to 2.2 times wider (``maj`` often over 5) and ``apfit`` up to
  0.8 mag lower. Their duJy is far above ATClean's 160 µJy uncertainty cut, which removes
  2.5-3 % of the epochs of typical supernova light curves in ATClean's published cleaning
  reports.
* **failed photometric solutions**, 0.2 % of images: ``mag5sig`` under 10, so duJy far over
  10,000.
* **tphot error codes** (``err`` 1-3; the FAQ only says 0 is normal), 0.5 % of
  measurements, with three times the scatter.
* **outliers** (cosmic rays, satellite trails, bad subtractions), 0.3 % of measurements: the
  flux off by 10 to 100 σ, ``chi/N`` 10-300 (ATClean's chi/N > 10 cut flags 0.04-0.12 % of
  the epochs of real light curves; the outliers it finds otherwise show in the flux alone).
* **the chip edge**: a target lands anywhere on the 10,560-pixel chip, so about 1.9 % of
  exposures per axis (3.7 % in all) lie within 100 pixels of an edge.

Image conditions are keyed by the field and the exposure (every target of the field sees
the same sky); measurement defects by the target and the exposure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from .._sky.cadence import Exposures, Ints
from .._sky.draws import Floats, normal, uniform

__all__ = ["Image", "Measurement", "image_conditions", "measurement_defects"]

POOR_VISIT_RATE: Final = 0.03
FAILED_SOLUTION_RATE: Final = 0.002
ERR_CODE_RATE: Final = 0.005
OUTLIER_RATE: Final = 0.003
_DEPTH: Final = np.array([19.6, 19.1])  # typical mag5sig in c (dark sky) and o (moonlight)
_SKY: Final = np.array([21.2, 20.2])  # typical sky mag/arcsec² in c and o
_CHIP: Final = 10560.0  # pixels on a side
_IMAGE, _VISIT, _TARGET, _POINTING = 911, 912, 913, 914


@dataclass(frozen=True, slots=True)
class Image:
    """What the sky and the camera did at each exposure (parallel arrays)."""

    mag5sig: Floats
    sky: Floats
    major: Floats  # PSF semi-axes in pixels
    minor: Floats
    phi: Floats
    apfit: Floats


@dataclass(frozen=True, slots=True)
class Measurement:
    """What happened to one target on each exposure (parallel arrays)."""

    noise: Floats  # the flux error in units of duJy, outliers included
    err: Ints  # tphot's error code
    chi: Floats
    x: Floats
    y: Floats
    ra_jitter: Floats  # degrees
    dec_jitter: Floats


def _draws(key: int, purpose: int, e: Exposures, count: int, *, per_visit: bool) -> Floats:
    """``count`` uniforms per exposure, shape (n, count): per visit or per exposure."""
    k = np.zeros_like(e.k) if per_visit else e.k
    columns = np.arange(count, dtype=np.int64)[None, :]
    return uniform(key, purpose, e.site[:, None], e.night[:, None], e.visit[:, None],
                   k[:, None], columns)  # fmt: skip


def image_conditions(field: int, e: Exposures) -> Image:
    """Depth, sky, PSF and aperture correction of every exposure of ``field``."""
    u = _draws(field, _IMAGE, e, 11, per_visit=False)
    visit = _draws(field, _VISIT, e, 4, per_visit=True)
    poor = visit[:, 0] < POOR_VISIT_RATE
    failed = u[:, 0] < FAILED_SOLUTION_RATE
    depth = _DEPTH[e.filt] + 0.3 * normal(u[:, 1], u[:, 2])
    depth -= np.where(poor, 2.5 + 2.5 * visit[:, 1], 0.0)
    depth = np.where(failed, 5.0 + 4.9 * u[:, 3], depth)
    sky = _SKY[e.filt] + 0.2 * normal(u[:, 4], u[:, 5]) - np.where(poor, 1 + 2 * visit[:, 2], 0)
    widen = np.where(poor, 1.3 + 0.9 * visit[:, 3], 1.0)
    major = (1.9 + 1.3 * u[:, 6]) * widen
    apfit = -0.38 + 0.03 * normal(u[:, 7], u[:, 8]) - np.where(poor, 0.8 * visit[:, 1], 0.0)
    return Image(
        mag5sig=depth, sky=sky, major=major, minor=major * (0.85 + 0.15 * u[:, 9]),
        phi=-90.0 + 180.0 * u[:, 10], apfit=apfit,
    )  # fmt: skip


def measurement_defects(seed: int, e: Exposures) -> Measurement:
    """Noise, error codes, outliers, chi/N and chip position of one target's measurements."""
    u = _draws(seed, _TARGET, e, 16, per_visit=False)
    place = _draws(seed, _POINTING, e, 2, per_visit=True)  # the visit's pointing
    coded = u[:, 0] < ERR_CODE_RATE
    outlier = u[:, 1] < OUTLIER_RATE
    noise = normal(u[:, 2], u[:, 3]) * np.where(coded, 3.0, 1.0)
    kick = np.where(u[:, 4] < 0.5, -1.0, 1.0) * (10.0 + 90.0 * u[:, 5])
    chi = np.abs(1.2 + 0.5 * normal(u[:, 6], u[:, 7])) + 0.1
    dither = 5.0 * (u[:, 8:10] - 0.5)
    return Measurement(
        noise=noise + np.where(outlier, kick, 0.0),
        err=np.where(coded, 1 + (3 * u[:, 10]).astype(np.int64), 0),
        chi=np.where(outlier, 10.0 + 290.0 * u[:, 11], chi),
        x=np.clip(_CHIP * place[:, 0] + dither[:, 0], 0.5, _CHIP - 0.5),
        y=np.clip(_CHIP * place[:, 1] + dither[:, 1], 0.5, _CHIP - 0.5),
        ra_jitter=0.00002 * normal(u[:, 12], u[:, 13]),
        dec_jitter=0.00002 * normal(u[:, 14], u[:, 15]),
    )
