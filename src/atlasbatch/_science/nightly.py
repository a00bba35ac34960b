"""Nightly light curves: one point per target, filter and observing night.

ATLAS observes a field four times within about an hour per visit; a supernova follow-up
wants the night's mean, with the bad exposures out. For one target's light curve this
module

1. rejects exposures by the per-exposure cuts, each named (the first that applies):
   ``incomplete`` (uJy or duJy missing, or duJy ≤ 0), ``err_code`` (tphot ``err`` ≠ 0),
   ``large_duJy`` (duJy > ``max_duJy``, 160 µJy), ``bad_chi`` (chi/N > ``max_chi``, 10),
   ``controls_bad`` (the control light curves deviate on that exposure,
   :mod:`._science.control_cut`);
2. groups the rest by filter ``F``, site (``Obs[:3]``) and night (:mod:`._science.nights`);
3. clips each group at ``clip_sigma`` (3σ around the median, then the weighted mean;
   :mod:`._science.clipping`, ATClean's estimator): the clipped exposures are ``clipped``;
4. gives the inverse-variance weighted mean flux ``uJy`` and its error ``duJy``
   (``sqrt(1/Σw)``), their ``snr``, ``detected`` (snr ≥ ``sigma_limit``), the AB magnitude
   ``mag_ab`` ± ``mag_ab_err`` of a detection and the ``sigma_limit``-σ limit ``mag_limit``.

Counts: ``n_epochs`` exposures in the group, ``n_used`` averaged, ``n_rejected`` not
(``n_<reason>`` per reason, which add up to ``n_rejected``; ``rejected_by`` names them,
e.g. ``err_code:1;clipped:1``). A night whose exposures were all rejected keeps its row,
with a NaN flux: nothing is dropped silently. ``MJD`` is the mean MJD of the exposures
used (of all of them when none was). The thresholds and their sources:
:class:`~atlasbatch._science.nightly_options.NightlyOptions`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from atlasbatch._science.clipping import clipped_means
from atlasbatch._science.control_cut import controls_bad
from atlasbatch._science.nightly_options import NightlyOptions
from atlasbatch._science.nights import night_numbers, sites
from atlasbatch._science.photometry import AB_ZERO_POINT

__all__ = ["NIGHTLY_COLUMNS", "REASONS", "nightly_light_curve", "nightly_stack"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Why an exposure was not averaged, in the order the checks apply.
REASONS: Final = ("incomplete", "err_code", "large_duJy", "bad_chi", "controls_bad", "clipped")
_CLIPPED = REASONS.index("clipped") + 1
_MAG_PER_RELATIVE_FLUX: Final = 2.5 / np.log(10.0)
NIGHTLY_COLUMNS: Final = (
    "F", "site", "night", "MJD", "uJy", "duJy", "snr", "detected", "mag_ab", "mag_ab_err",
    "mag_limit", "x2norm", "n_epochs", "n_used", "n_rejected", "rejected_by",
    *(f"n_{reason}" for reason in REASONS), "controls",
)  # fmt: skip


def _floats(frame: pd.DataFrame, column: str) -> FloatArray:
    if column not in frame.columns:
        return np.full(len(frame), np.nan)
    values = pd.to_numeric(frame[column], errors="coerce")
    return values.to_numpy(dtype=np.float64, na_value=np.nan)


def _texts(frame: pd.DataFrame, column: str) -> npt.NDArray[np.object_]:
    if column not in frame.columns:
        return np.full(len(frame), "", dtype=object)
    return np.asarray(frame[column].to_numpy(dtype=object, na_value=""), dtype=object)


def _groups(*keys: npt.NDArray[Any]) -> tuple[IntArray, IntArray]:
    """Group code of each exposure (groups in order of first appearance), and the first
    exposure of each group (plain numpy codes: a MultiIndex costs more than the averaging)."""
    combined = np.zeros(len(keys[0]), dtype=np.int64)
    for key in keys:
        codes, uniques = pd.factorize(key)
        combined = combined * max(len(uniques), 1) + codes
    groups, _ = pd.factorize(combined)
    first = np.full(groups.max(initial=-1) + 1, len(groups), dtype=np.int64)
    np.minimum.at(first, groups, np.arange(len(groups), dtype=np.int64))
    return groups.astype(np.int64), first


def _reasons(
    frame: pd.DataFrame, control_flags: npt.NDArray[np.bool_] | None, options: NightlyOptions
) -> IntArray:
    """Per exposure: 0 when it passes, else 1 + the index in REASONS of its first failure."""
    flux, error = _floats(frame, "uJy"), _floats(frame, "duJy")
    code, chi = _floats(frame, "err"), _floats(frame, "chi/N")
    with np.errstate(invalid="ignore"):  # NaN compares False: only "incomplete" catches it
        checks = [
            ~(np.isfinite(flux) & np.isfinite(error) & (error > 0)),
            (code != 0) & ~np.isnan(code),
            error > options.max_duJy,
            chi > options.max_chi,
            control_flags if control_flags is not None else np.zeros(len(frame), dtype=bool),
        ]
    reason = np.zeros(len(frame), dtype=np.int64)
    for number, failed in enumerate(checks, start=1):
        reason = np.where((reason == 0) & failed, number, reason)
    return reason


def nightly_light_curve(
    frame: pd.DataFrame,
    *,
    controls: Sequence[pd.DataFrame] = (),
    requested_controls: int | None = None,
    options: NightlyOptions | None = None,
) -> pd.DataFrame:
    """One target's nightly table (columns :data:`NIGHTLY_COLUMNS`), sorted by MJD.

    ``controls`` are the downloaded light curves of its control positions and
    ``requested_controls`` how many it was given (default: as many as downloaded); without
    controls there is no ``controls_bad`` cut. Exposures without an MJD belong to no night
    and are left out.
    """
    options = options or NightlyOptions()
    mjd = _floats(frame, "MJD")
    frame = frame.loc[np.isfinite(mjd)]
    requested = len(controls) if requested_controls is None else requested_controls
    flags = (
        controls_bad(frame, controls, requested=requested, options=options) if controls else None
    )
    curve = np.zeros(len(frame), dtype=np.int64)
    counts = np.array([len(controls)], dtype=np.int64)
    table = nightly_stack(frame, curve, flags=flags, controls=counts, options=options)
    return table.drop(columns="curve")


def nightly_stack(
    frame: pd.DataFrame,
    curve: IntArray,
    *,
    flags: npt.NDArray[np.bool_] | None,
    controls: IntArray,
    options: NightlyOptions,
) -> pd.DataFrame:
    """The nightly tables of many light curves stacked in ``frame`` at once, ``curve``
    numbering each row's light curve: a ``curve`` column, then :data:`NIGHTLY_COLUMNS`,
    sorted by curve, MJD and filter, each curve's rows exactly :func:`nightly_light_curve`'s.

    ``flags`` marks the rows the control cut rejects (None: no cut); ``controls[k]`` is the
    ``controls`` column of curve ``k``. Rows without an MJD are left out.
    """
    mjd = _floats(frame, "MJD")
    finite = np.isfinite(mjd)
    if not finite.all():
        frame, mjd, curve = frame.loc[finite], mjd[finite], curve[finite]
        flags = None if flags is None else flags[finite]
    reason = _reasons(frame, flags, options)
    site = sites(frame["Obs"]) if "Obs" in frame.columns else _texts(frame, "Obs")
    filters, nights = _texts(frame, "F"), night_numbers(mjd, site)
    codes, first = _groups(curve, filters, site, nights)
    size = len(first)
    use = reason == 0
    flux, error = _floats(frame, "uJy"), _floats(frame, "duJy")
    stats = clipped_means(flux[use], error[use], codes[use], size=size, nsigma=options.clip_sigma)
    reason[np.flatnonzero(use)[~stats.kept_mask]] = _CLIPPED
    table = pd.DataFrame(
        {
            "curve": curve[first],
            "F": pd.array(filters[first], dtype="string"),
            "site": pd.array(site[first], dtype="string"),
            "night": nights[first].astype(np.int64),
            "MJD": _mean_mjd(mjd, codes, reason == 0, size),
            "uJy": stats.mean,
            "duJy": stats.error,
            **_magnitudes(stats.mean, stats.error, options.sigma_limit),
            "x2norm": stats.x2norm,
            **_counts(reason, codes, size),
            "controls": controls[curve[first]].astype(np.int64),
        }
    )
    return table.sort_values(["curve", "MJD", "F"], kind="stable", ignore_index=True)


def _mean_mjd(
    mjd: FloatArray, codes: IntArray, used: npt.NDArray[np.bool_], size: int
) -> FloatArray:
    """Mean MJD of the exposures used, or of all of them where none was."""
    every = np.bincount(codes, weights=mjd, minlength=size) / np.bincount(codes, minlength=size)
    count = np.bincount(codes[used], minlength=size)
    total = np.bincount(codes[used], weights=mjd[used], minlength=size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, every)


def _magnitudes(flux: FloatArray, error: FloatArray, sigma: float) -> dict[str, object]:
    """snr, detected, AB magnitude and error of detections, and the n-σ limiting magnitude."""
    with np.errstate(invalid="ignore", divide="ignore"):
        snr = np.where(error > 0, flux / error, np.nan)
        detected = snr >= sigma
        usable = detected & (flux > 0)
        return {
            "snr": snr,
            "detected": detected,
            "mag_ab": np.where(usable, AB_ZERO_POINT - 2.5 * np.log10(flux), np.nan),
            "mag_ab_err": np.where(usable, _MAG_PER_RELATIVE_FLUX * error / flux, np.nan),
            "mag_limit": np.where(error > 0, AB_ZERO_POINT - 2.5 * np.log10(sigma * error), np.nan),
        }


def _counts(reason: IntArray, codes: IntArray, size: int) -> dict[str, object]:
    """n_epochs, n_used, n_rejected, rejected_by and one count per reason, per group."""
    per_reason = {
        name: np.bincount(codes[reason == number], minlength=size).astype(np.int64)
        for number, name in enumerate(REASONS, start=1)
    }
    epochs = np.bincount(codes, minlength=size).astype(np.int64)
    rejected = sum(per_reason.values(), np.zeros(size, dtype=np.int64))
    named = [
        ";".join(f"{name}:{n[i]}" for name, n in per_reason.items() if n[i]) for i in range(size)
    ]
    return {
        "n_epochs": epochs,
        "n_used": epochs - rejected,
        "n_rejected": rejected,
        "rejected_by": pd.array(named, dtype="string"),
        **{f"n_{name}": counts for name, counts in per_reason.items()},
    }
