"""ATClean's control light curve cut: exposures where the empty sky around a target is not empty.

Control positions (:mod:`._runs.controls`) hold no source, so on a good exposure their fluxes
scatter around zero within their errors. For each exposure of the target, this module takes
the controls' measurements of the *same exposure* (matched by the exposure name ``Obs``, or
by MJD where a file lacks it), drops those failing the per-exposure cuts, and forms their
3σ-clipped weighted mean (:mod:`._science.clipping`). As in ATClean's ``flag_by_control_stats``
the target's exposure is bad (``controls_bad``) when

- the reduced χ² of the kept controls about their mean exceeds ``controls_x2_max`` (2.5),
- |mean / error| exceeds ``controls_stn_max`` (3: the controls deviate from zero at 3σ),
- more than ``controls_clipped_max`` (2) controls were clipped, or
- fewer than the minimum number of good controls is left (ATClean: 4 of 8; here half the
  controls asked for unless set) — a control that has no measurement on that exposure
  counts as not good, as it does in ATClean.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd

from atlasbatch._science.clipping import clipped_means
from atlasbatch._science.nightly_options import NightlyOptions

__all__ = ["controls_bad", "exposure_keys", "passes_cuts"]

BoolArray = npt.NDArray[np.bool_]


def _floats(frame: pd.DataFrame, column: str) -> npt.NDArray[np.float64]:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def passes_cuts(frame: pd.DataFrame, options: NightlyOptions) -> BoolArray:
    """Exposures that pass the per-exposure cuts (complete, err 0, duJy and chi/N small)."""
    flux, error = _floats(frame, "uJy"), _floats(frame, "duJy")
    code, chi = _floats(frame, "err"), _floats(frame, "chi/N")
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(flux) & np.isfinite(error) & (error > 0)
        ok &= ~((code != 0) & ~np.isnan(code))
        ok &= ~(error > options.max_duJy) & ~(chi > options.max_chi)
    return ok


def exposure_keys(frame: pd.DataFrame) -> pd.Series:
    """What identifies an exposure across positions: its name, else its MJD."""
    mjd = pd.Series(_floats(frame, "MJD"), index=frame.index).map("{:.6f}".format)
    if "Obs" not in frame.columns:
        return mjd
    return frame["Obs"].astype("string").fillna(mjd).astype(str)


def controls_bad(
    target: pd.DataFrame,
    controls: Sequence[pd.DataFrame],
    *,
    requested: int,
    options: NightlyOptions,
) -> BoolArray:
    """One flag per row of ``target``: True where its controls say the exposure is bad.

    ``requested`` is how many controls the target was given (failed ones included);
    ``controls`` holds the light curves that were downloaded.
    """
    codes, uniques = pd.factorize(exposure_keys(target))
    size = len(uniques)
    found = [_measurements(frame, pd.Index(uniques), options) for frame in controls]
    groups, flux, error = (
        np.concatenate([np.zeros(0), *(part[k] for part in found)]) for k in range(3)
    )
    stats = clipped_means(
        flux, error, groups.astype(np.int64), size=size, nsigma=options.clip_sigma
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        bad = stats.x2norm > options.controls_x2_max
        bad |= np.abs(stats.mean / stats.error) > options.controls_stn_max
    bad |= stats.clipped > options.controls_clipped_max
    bad |= stats.kept < options.controls_min_good(requested)
    return np.asarray(bad[codes], dtype=bool)


def _measurements(
    frame: pd.DataFrame, exposures: pd.Index, options: NightlyOptions
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(exposure code, flux, error) of one control's usable measurements of the target's
    exposures; one measurement per exposure."""
    ok = passes_cuts(frame, options)
    keys = exposure_keys(frame)
    where = exposures.get_indexer(pd.Index(keys))
    keep = ok & (where >= 0) & ~keys.duplicated().to_numpy()
    return (
        where[keep].astype(np.int64),
        _floats(frame, "uJy")[keep],
        _floats(frame, "duJy")[keep],
    )
