"""The thresholds of the nightly light curves, each with where its default comes from.

Sources, with the exact values used:

- ATLAS forced-photometry output description (fallingstar-data.com/forcedphot/resultdesc):
  ``err`` is "tphot error code normally 0"; any other value rejects the exposure.
- ATClean (Rest et al., github.com/srest2021/atclean, ``atlas_lc_settings.ini``), the
  cleaning pipeline for ATLAS forced photometry that the ATLAS FAQ's cuts are usually
  applied with: uncertainty cut ``duJy > 160`` µJy (``[Uncertainty cut settings] cut:
  160``); chi-square cut ``chi/N > 10`` (its dynamic cut searches ``min_cut: 3`` to
  ``max_cut: 50`` per light curve; 10 is the value it reports on typical supernova fields,
  "Chi-square cut 10.00 selected", and the one the per-exposure ``bad_chi`` flag uses);
  3σ clipping with the median as the first centre (``Nsigma=3.0``,
  ``median_firstiteration=True``) for averages;
  control light curve cut (``[Control light curve settings]`` / ``[Control light curve cut
  settings]``): 8 controls at 17″; an exposure is bad when, over the controls measured on it,
  the clipped mean's reduced χ² exceeds ``x2_max: 2.5``, its |mean/error| exceeds
  ``stn_max: 3.0``, more than ``Nclip_max: 2`` controls were clipped or fewer than
  ``Ngood_min: 4`` are left.

The magnitude zero point (AB, 23.9 − 2.5 log₁₀ f/µJy) and the n-σ limit are the same as in
the per-exposure table (:mod:`._science.photometry`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from atlasbatch._exceptions import InputError

__all__ = ["NightlyOptions"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NightlyOptions:
    """How exposures are cut, clipped and averaged into one point per target, filter and night.

    Defaults (see the module docstring for each source): ``max_duJy=160`` µJy,
    ``max_chi=10``, ``clip_sigma=3``; magnitudes and ``sigma_limit``-σ limits (3) from the
    binned flux; the control cut's ``controls_x2_max=2.5``, ``controls_stn_max=3``,
    ``controls_clipped_max=2`` and ``controls_good_min`` (None: half the controls asked
    for, rounded up, which is ATClean's 4 of 8).
    """

    max_duJy: float = 160.0  # noqa: N815 - named after the server's column
    max_chi: float = 10.0
    clip_sigma: float = 3.0
    sigma_limit: float = 3.0
    controls_x2_max: float = 2.5
    controls_stn_max: float = 3.0
    controls_clipped_max: int = 2
    controls_good_min: int | None = None

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if value is None and spec.name == "controls_good_min":
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InputError(f"{spec.name} must be a number, not {value!r}")
            if not (math.isfinite(value) and value >= 0):
                raise InputError(f"{spec.name} must be a finite number >= 0, not {value!r}")
        if self.clip_sigma <= 0 or self.sigma_limit <= 0:
            raise InputError("clip_sigma and sigma_limit must be above 0")

    def controls_min_good(self, requested: int) -> int:
        """How many good control measurements an exposure needs when ``requested`` controls
        were asked for."""
        if self.controls_good_min is not None:
            return self.controls_good_min
        return math.ceil(requested / 2)
