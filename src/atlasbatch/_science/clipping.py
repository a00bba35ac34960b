"""Sigma-clipped inverse-variance weighted means of many small groups at once.

The estimator is ATClean's (``pdastro.calcaverage_sigmacutloop`` with a noise column, as
used for its nightly averages and its control-light-curve statistics): the first
iteration takes the group's median as the centre; each later one keeps the points within
``nsigma`` of *their own* uncertainty of the centre (``|f - c| <= nsigma * df``) and takes
their weighted mean (weights ``1/df²``) as the new centre; it stops when the kept set no
longer changes, after ``max_iterations``, or when one point or none is left (then that
point, or nothing, is the mean); ``max_iterations`` counts the median one, as ATClean's
``Nitmax`` does. The mean's error is ``sqrt(1/Σw)``; ``x2norm`` is
``Σ((f - mean)/df)² / (n - 1)`` over the kept points (NaN below two).

All groups iterate together (numpy, no Python loop over groups): a light curve has
thousands of nights and a run thousands of light curves.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["ClippedMeans", "clipped_means"]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class ClippedMeans:
    """Per group: ``mean``, ``error``, ``kept`` (count), ``clipped`` (count) and ``x2norm``;
    per point: ``kept_mask``."""

    mean: FloatArray
    error: FloatArray
    kept: IntArray
    clipped: IntArray
    x2norm: FloatArray
    kept_mask: BoolArray


def _sums(groups: IntArray, weights: FloatArray, size: int) -> FloatArray:
    sums: FloatArray = np.bincount(groups, weights=weights, minlength=size).astype(np.float64)
    return sums


def _medians(values: FloatArray, groups: IntArray, size: int) -> FloatArray:
    medians = pd.Series(values).groupby(groups).median()
    return np.asarray(medians.reindex(range(size)), dtype=np.float64)


def clipped_means(
    values: FloatArray,
    errors: FloatArray,
    groups: IntArray,
    *,
    size: int,
    nsigma: float = 3.0,
    max_iterations: int = 10,
) -> ClippedMeans:
    """Clipped weighted means of ``values`` grouped by ``groups`` (codes ``0..size-1``).

    ``errors`` must be positive and finite (drop other points first). A group without points
    gets a NaN mean and zero counts.
    """
    total = np.bincount(groups, minlength=size)
    kept = np.ones(values.shape, dtype=bool)
    centre = _medians(values, groups, size)
    frozen = total <= 1  # one point or none: nothing to clip (ATClean stops there too)
    weights = 1.0 / errors**2
    for _ in range(max_iterations - 1):  # the median was the first
        proposed = np.abs(values - centre[groups]) <= nsigma * errors
        proposed = np.where(frozen[groups], kept, proposed)
        changed = _sums(groups, (proposed != kept).astype(np.float64), size) > 0
        kept = proposed
        wsum = _sums(groups, weights * kept, size)
        with np.errstate(invalid="ignore", divide="ignore"):
            centre = np.where(frozen, centre, _sums(groups, weights * values * kept, size) / wsum)
        count = _sums(groups, kept.astype(np.float64), size)
        # Converged groups stay as they are; so do groups left with one point or none.
        frozen = frozen | ~changed | (count <= 1)
        if frozen.all():
            break
    return _result(values, errors, groups, kept, size=size, total=total)


def _result(
    values: FloatArray,
    errors: FloatArray,
    groups: IntArray,
    kept: BoolArray,
    *,
    size: int,
    total: IntArray,
) -> ClippedMeans:
    """The statistics of the kept points of each group."""
    weights = np.where(kept, 1.0 / errors**2, 0.0)
    wsum = _sums(groups, weights, size)
    count = np.bincount(groups[kept], minlength=size).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(wsum > 0, _sums(groups, weights * values, size) / wsum, np.nan)
        error = np.where(wsum > 0, np.sqrt(1.0 / wsum), np.nan)
        residual = np.where(kept, ((values - mean[groups]) / errors) ** 2, 0.0)
        x2norm = np.where(count > 1, _sums(groups, residual, size) / (count - 1), np.nan)
    return ClippedMeans(
        mean=mean,
        error=error,
        kept=count,
        clipped=total.astype(np.int64) - count,
        x2norm=x2norm,
        kept_mask=kept,
    )
