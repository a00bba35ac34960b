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
) -> pd.DataFrame:
    """Return a copy of one target's light curve with derived columns; no row is dropped.

    Added columns: ``snr`` (uJy/duJy), ``detected`` (snr >= ``sigma_limit``), ``mag_ab`` and
    ``mag_ab_err`` (AB magnitude from uJy, NaN unless detected), ``mag_limit`` (the
    ``sigma_limit``-sigma upper limit from duJy), ``quality_flags`` (``;``-joined reasons, ``""``
    when fine) and ``quality_ok``. Reasons: ``incomplete`` (uJy or duJy missing),
    ``err_code`` (tphot err != 0), ``large_duJy`` (duJy above ``max_duJy``, or when None
    above 5 times this frame's median duJy), ``bad_chi`` (chi/N above ``max_chi``) and
    ``template_epoch`` (within a day of a reference-template change).

    The median is taken over the whole frame, so call this once per target.
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
    flags = _quality_flags(df, flux, flux_err, max_duJy=max_duJy, max_chi=max_chi)
    out["quality_ok"] = flags == ""
    out["quality_flags"] = pd.array(flags, dtype="string")
    return out


def _floats(df: pd.DataFrame, column: str) -> FloatArray:
    """A column as float64 with NaN for missing values (or all NaN when the column is absent)."""
    if column not in df.columns:
        return np.full(len(df), np.nan)
    return pd.to_numeric(df[column], errors="coerce").to_numpy(dtype="float64", na_value=np.nan)


def _quality_flags(
    df: pd.DataFrame,
    flux: FloatArray,
    flux_err: FloatArray,
    *,
    max_duJy: float | None,  # noqa: N803
    max_chi: float,
) -> npt.NDArray[np.str_]:
    """One string per row: the names of the failed checks joined by ``;``."""
    err_code = _floats(df, "err")
    chi = _floats(df, "chi/N")
    mjd = _floats(df, "MJD")
    checks: dict[str, BoolArray] = {
        "incomplete": np.isnan(flux) | np.isnan(flux_err),
        # Comparisons with NaN are False: a missing value raises no flag beyond "incomplete".
        "err_code": (err_code != 0) & ~np.isnan(err_code),
        "large_duJy": flux_err > _duJy_cap(flux_err, max_duJy),
        "bad_chi": chi > max_chi,
        "template_epoch": _near_template_change(mjd),
    }
    joined = np.full(len(df), "", dtype=object)
    for reason, failed in checks.items():
        joined = np.where(failed, joined + reason + ";", joined)
    return np.array([flags.rstrip(";") for flags in joined], dtype=np.str_)


def _duJy_cap(flux_err: FloatArray, max_duJy: float | None) -> float:  # noqa: N802, N803
    if max_duJy is not None:
        return max_duJy
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
