"""Derived photometry columns, quality flags and merging refreshed epochs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from atlasbatch._outputs.results import parse_result
from atlasbatch._science.photometry import (
    DERIVED_COLUMNS,
    add_derived_columns,
    last_mjd,
    merge_new_epochs,
)


def frame(
    ujy: list[int | None],
    dujy: list[int | None],
    *,
    mjd: list[float] | None = None,
    err: list[int] | None = None,
    chi: list[float] | None = None,
    obs: list[str] | None = None,
) -> pd.DataFrame:
    """A light curve with the parser's dtypes and only the columns these checks read."""
    n = len(ujy)
    return pd.DataFrame(
        {
            "MJD": mjd if mjd is not None else [59000.0 + i for i in range(n)],
            "uJy": pd.array(ujy, dtype="Int64"),
            "duJy": pd.array(dujy, dtype="Int64"),
            "F": pd.array(["o"] * n, dtype="string"),
            "err": pd.array(err if err is not None else [0] * n, dtype="Int64"),
            "chi/N": chi if chi is not None else [1.0] * n,
            "Obs": pd.array(obs if obs is not None else [f"01a{i:04d}o" for i in range(n)]),
        }
    )


def test_detection_gets_ab_magnitude_error_and_limit() -> None:
    out = add_derived_columns(frame([1000], [10]))
    first = out.iloc[0]

    assert first["snr"] == 100.0
    assert bool(first["detected"]) is True
    assert first["mag_ab"] == pytest.approx(16.4)  # 23.9 - 2.5 log10(1000)
    assert first["mag_ab_err"] == pytest.approx(1.0857 * 10 / 1000, rel=1e-4)
    assert first["mag_limit"] == pytest.approx(23.9 - 2.5 * math.log10(30.0))


def test_the_server_example_row_matches_its_own_magnitude() -> None:
    header = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"
    example = (
        "59226.235875  16.177  0.012  1228   15 c  0  54.64 342.45960  51.26340  7768.79"
        "  7767.00 2.53 2.39 -63.4 -0.375 19.58 21.54 01a59226o0051c"
    )
    out = add_derived_columns(parse_result(f"{header}\n{example}\n"))

    assert out["mag_ab"].iloc[0] == pytest.approx(16.177, abs=5e-4)
    # duJy is rounded to an integer in the file (15 may be 13.6), the server's dm is not.
    assert out["mag_ab_err"].iloc[0] == pytest.approx(0.012, abs=2e-3)


def test_non_detections_and_negative_fluxes_have_limits_but_no_magnitude() -> None:
    out = add_derived_columns(frame([20, -41, 30], [10, 47, 10]))

    assert out["snr"].tolist() == pytest.approx([2.0, -41 / 47, 3.0])
    assert out["detected"].tolist() == [False, False, True]  # snr == sigma counts
    assert out["mag_ab"].isna().tolist() == [True, True, False]
    assert out["mag_ab_err"].isna().tolist() == [True, True, False]
    assert out["mag_limit"].iloc[1] == pytest.approx(23.9 - 2.5 * math.log10(3 * 47))


def test_sigma_limit_moves_detection_threshold_and_limit() -> None:
    out = add_derived_columns(frame([40, 60], [10, 10]), sigma_limit=5.0)

    assert out["detected"].tolist() == [False, True]
    assert out["mag_limit"].iloc[0] == pytest.approx(23.9 - 2.5 * math.log10(50.0))


def test_zero_or_missing_errors_give_nan_without_warnings() -> None:
    out = add_derived_columns(frame([100, None, 100], [0, 10, None]))

    assert out["snr"].isna().all()
    assert not out["detected"].any()
    assert out["mag_limit"].isna().tolist() == [True, False, True]
    assert out["quality_flags"].tolist() == ["", "incomplete", "incomplete"]


def test_quality_flags_name_every_reason_in_order() -> None:
    df = frame(
        [500, 500, 500, 500, 500, 500],
        [10, 10, 10, 60, 10, 10],
        mjd=[59000.0, 58416.2, 58419.0, 59001.0, 58882.9, 59002.0],
        err=[0, 0, 0, 0, 0, 4],
        chi=[1.0, 1.0, 1.0, 1.0, 25.0, 10.0],
    )
    out = add_derived_columns(df)

    assert out["quality_flags"].tolist() == [
        "",
        "template_epoch",  # 0.8 d before the 58417 template change
        "",  # 2 d after: outside the window
        "large_duJy",  # 60 > 5 x median(10)
        "bad_chi;template_epoch",
        "err_code",  # chi/N == max_chi is still fine
    ]
    assert out["quality_ok"].tolist() == [True, False, True, False, False, False]
    assert out["quality_ok"].dtype == np.bool_
    assert out["quality_flags"].dtype == pd.StringDtype()


def test_explicit_caps_override_the_defaults() -> None:
    df = frame([500, 500], [10, 30], chi=[4.0, 1.0])
    out = add_derived_columns(df, max_duJy=20.0, max_chi=3.0)

    assert out["quality_flags"].tolist() == ["bad_chi", "large_duJy"]


def test_rows_are_never_dropped_and_the_input_is_not_changed() -> None:
    df = frame([1000, -5, 3, 999999], [10, 20, 80, 12], err=[0, 1, 0, 0])
    before = df.copy()
    out = add_derived_columns(df)

    assert len(out) == len(df)
    pd.testing.assert_frame_equal(df, before)
    assert list(out.columns) == [*df.columns, *DERIVED_COLUMNS]


def test_empty_frame_gets_typed_derived_columns() -> None:
    out = add_derived_columns(parse_result(""))

    assert out.empty
    assert out["mag_ab"].dtype == np.float64
    assert out["detected"].dtype == np.bool_
    assert out["quality_flags"].dtype == pd.StringDtype()


def test_merge_deduplicates_on_mjd_and_obs_keeping_the_newer_row() -> None:
    old = frame([100, 200, 300], [10, 10, 10], mjd=[1.0, 2.0, 3.0], obs=["a", "b", "c"])
    new = frame([333, 400, 250], [10, 10, 10], mjd=[3.0, 4.0, 2.0], obs=["c", "d", "b2"])
    merged = merge_new_epochs(old, new)

    assert merged["MJD"].tolist() == [1.0, 2.0, 2.0, 3.0, 4.0]
    assert merged["Obs"].tolist() == ["a", "b", "b2", "c", "d"]  # same MJD, other exposure
    assert merged["uJy"].tolist() == [100, 200, 250, 333, 400]  # the refreshed c row won
    assert merged.index.tolist() == list(range(5))
    assert merged["uJy"].dtype == "Int64"


def test_merge_with_empty_sides() -> None:
    old = frame([100, 200], [10, 10], mjd=[2.0, 1.0], obs=["a", "b"])
    empty = parse_result("")

    assert merge_new_epochs(old, empty)["MJD"].tolist() == [1.0, 2.0]
    assert merge_new_epochs(empty, old)["Obs"].tolist() == ["b", "a"]
    assert merge_new_epochs(empty, empty).empty


def test_last_mjd() -> None:
    assert last_mjd(frame([1, 2, 3], [1, 1, 1], mjd=[59001.5, 59003.25, 59002.0])) == 59003.25
    assert last_mjd(parse_result("")) is None
    assert last_mjd(pd.DataFrame()) is None


def test_stacked_light_curves_get_what_each_would_get_alone() -> None:
    quiet = frame([100, 100, 100, 100], [10, 10, 10, 60])  # median duJy 10: 60 is large
    noisy = frame([100, 100, 100], [50, 50, 60])  # median duJy 50: 60 is fine here
    stacked = pd.concat([quiet, noisy], ignore_index=True)
    curve = np.repeat([0, 1], [len(quiet), len(noisy)])

    together = add_derived_columns(stacked, curve=curve)
    alone = pd.concat([add_derived_columns(quiet), add_derived_columns(noisy)], ignore_index=True)
    pd.testing.assert_frame_equal(together, alone)
    assert together["quality_flags"].tolist() == ["", "", "", "large_duJy", "", "", ""]
