"""Derived photometry (AB magnitudes, limits, quality flags) and incremental merging.

Nothing here ever drops a row: a bad epoch is flagged with its reasons and left for the
astronomer to judge.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = [
    "AB_ZERO_POINT",
    "DERIVED_COLUMNS",
    "TEMPLATE_CHANGE_MJDS",
    "add_derived_columns",
    "last_mjd",
    "merge_new_epochs",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]

#: m_AB = -2.5 log10(f / 3631 Jy) = 23.9 - 2.5 log10(f / µJy).
AB_ZERO_POINT = 23.9
#: 2.5 / ln(10): turns a relative flux error into a magnitude error (≈ 1.0857).
_MAG_PER_RELATIVE_FLUX = 2.5 / np.log(10.0)
#: The ATLAS forced-photometry FAQ (summarised in atlas_api.md §12) says the difference-
#: imaging reference templates changed near these MJDs; difference fluxes can step there.
TEMPLATE_CHANGE_MJDS: tuple[float, ...] = (58417.0, 58882.0)
TEMPLATE_WINDOW_DAYS = 1.0
#: A duJy this many times the target's median marks a poor epoch when no cap is given.
_LARGE_DUJY_FACTOR = 5.0
DERIVED_COLUMNS: tuple[str, ...] = (
    "snr", "detected", "mag_ab", "mag_ab_err", "mag_limit", "quality_ok", "quality_flags",
)  # fmt: skip
_MERGE_KEYS = ["MJD", "Obs"]


def add_derived_columns(
    df: pd.DataFrame,
    *,
    sigma_limit: float = 3.0,
    max_duJy: float | None = None,  # noqa: N803 - named after the server's column
    max_chi: float = 10.0,
    curve: npt.ArrayLike | None = None,
) -> pd.DataFrame:
    """Return a copy of light curves with derived columns; no row is dropped.

    Added columns: ``snr`` (uJy/duJy), ``detected`` (snr >= ``sigma_limit``), ``mag_ab`` and
    ``mag_ab_err`` (AB magnitude from uJy, NaN unless detected), ``mag_limit`` (the
    ``sigma_limit``-sigma upper limit from duJy), ``quality_flags`` (``;``-joined reasons, ``""``
    when fine) and ``quality_ok``. Reasons: ``incomplete`` (uJy or duJy missing),
    ``err_code`` (tphot err != 0), ``large_duJy`` (duJy above ``max_duJy``, or when None
    above 5 times the light curve's median duJy), ``bad_chi`` (chi/N above ``max_chi``) and
    ``template_epoch`` (within a day of a reference-template change).

    ``df`` is one target's light curve, or many stacked: then ``curve`` gives each row's
    light curve (any labels, one per row), and each median is that light curve's own.
    """
    out = df.copy()
    flux = _floats(df, "uJy")
    flux_err = _floats(df, "duJy")
    with np.errstate(divide="ignore", invalid="ignore"):  # zero/NaN errors give NaN, no noise
        snr = np.where(flux_err > 0, flux / flux_err, np.nan)
        detected = snr >= sigma_limit
        usable = detected & (flux > 0)
        out["snr"] = snr
        out["detected"] = detected
        out["mag_ab"] = np.where(usable, AB_ZERO_POINT - 2.5 * np.log10(flux), np.nan)
        out["mag_ab_err"] = np.where(usable, _MAG_PER_RELATIVE_FLUX * flux_err / flux, np.nan)
        out["mag_limit"] = np.where(
            flux_err > 0, AB_ZERO_POINT - 2.5 * np.log10(sigma_limit * flux_err), np.nan
        )
    cap = _duJy_cap(flux_err, max_duJy, curve)
    codes = _flag_codes(df, flux, flux_err, duJy_cap=cap, max_chi=max_chi)
    out["quality_ok"] = codes == 0
    out["quality_flags"] = pd.array(_FLAG_TEXTS[codes], dtype="string")
    return out


def _floats(df: pd.DataFrame, column: str) -> FloatArray:
    """A column as float64 with NaN for missing values (or all NaN when the column is absent)."""
    if column not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


#: The checks in the order their names are joined; bit i of a row's code is check i.
_REASONS = ("incomplete", "err_code", "large_duJy", "bad_chi", "template_epoch")
#: Every combination's text, indexed by code: a lookup instead of string work per row.
_FLAG_TEXTS = np.array(
    [
        ";".join(r for bit, r in enumerate(_REASONS) if code >> bit & 1)
        for code in range(1 << len(_REASONS))
    ],
    dtype=object,
)


def _flag_codes(
    df: pd.DataFrame,
    flux: FloatArray,
    flux_err: FloatArray,
    *,
    duJy_cap: float | FloatArray,  # noqa: N803
    max_chi: float,
) -> npt.NDArray[np.intp]:
    """One code per row: bit i set when check ``_REASONS[i]`` failed."""
    err_code = _floats(df, "err")
    with np.errstate(invalid="ignore"):
        checks: tuple[BoolArray, ...] = (
            np.isnan(flux) | np.isnan(flux_err),
            # Comparisons with NaN are False: a missing value raises no flag beyond "incomplete".
            (err_code != 0) & ~np.isnan(err_code),
            flux_err > duJy_cap,
            _floats(df, "chi/N") > max_chi,
            _near_template_change(_floats(df, "MJD")),
        )
    codes = np.zeros(len(df), dtype=np.intp)
    for bit, failed in enumerate(checks):
        codes |= failed.astype(np.intp) << bit
    return codes


def _duJy_cap(  # noqa: N802
    flux_err: FloatArray,
    max_duJy: float | None,  # noqa: N803
    curve: npt.ArrayLike | None,
) -> float | FloatArray:
    """The duJy above which an epoch is poor: the given cap, else 5 x the median (per curve)."""
    if max_duJy is not None:
        return max_duJy
    if curve is not None:  # NaN for a curve without any duJy: no comparison is then true
        medians = pd.Series(flux_err).groupby(np.asarray(curve), sort=False).transform("median")
        return _LARGE_DUJY_FACTOR * medians.to_numpy(dtype="float64")
    valid = flux_err[~np.isnan(flux_err)]
    if valid.size == 0:
        return np.inf
    return float(_LARGE_DUJY_FACTOR * np.median(valid))


def _near_template_change(mjd: FloatArray) -> BoolArray:
    near = np.zeros(mjd.shape, dtype=bool)
    for change in TEMPLATE_CHANGE_MJDS:
        near |= np.abs(mjd - change) <= TEMPLATE_WINDOW_DAYS
    return near


def merge_new_epochs(old: pd.DataFrame, new: pd.DataFrame) -> pd.DataFrame:
    """Merge a refresh into a stored light curve: de-duplicate on (MJD, Obs), sort by MJD.

    Where both hold the same (MJD, Obs), the row from ``new`` wins. Rows are sorted by MJD
    with a stable sort, so epochs sharing an MJD keep their order. Derived columns are not
    recomputed: call :func:`add_derived_columns` on the result (the median duJy changes).
    """
    frames = [frame for frame in (old, new) if len(frame) > 0]
    if not frames:  # keep the columns of whatever was given
        return new.iloc[0:0].copy() if len(new.columns) else old.iloc[0:0].copy()
    merged = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0].copy()
    merged = merged.drop_duplicates(subset=_MERGE_KEYS, keep="last")
    return merged.sort_values("MJD", kind="stable", ignore_index=True)


def last_mjd(df: pd.DataFrame) -> float | None:
    """The latest MJD in a light curve, or None when it has no epoch (the whole history)."""
    if "MJD" not in df.columns:
        return None
    latest = pd.to_numeric(df["MJD"], errors="coerce").max()
    return None if pd.isna(latest) else float(latest)
