"""Parsing ATLAS result files, atomic writes and safe file names."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlasbatch import ResultFileError
from atlasbatch._outputs.results import AtomicFile, parse_result, write_atomic

# The header exactly as §12 shows it (spacing from real files), and its 20-column variant.
HEADER_19 = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y"
    "     maj  min   phi  apfit mag5sig Sky   Obs"
)
HEADER_20 = HEADER_19.replace("mag5sig Sky", "mag5sig PA_DEG Sky")


def row(
    mjd: float,
    mag: tuple[float, float],
    flux: tuple[int, int],
    filt: str,
    obs: str,
    *,
    err: int = 0,
    chi: float = 1.21,
    pa_deg: float | None = None,
) -> str:
    """One row in the server's number formats (§12); widths grow when values need it."""
    (m, dm), (ujy, dujy) = mag, flux
    pa = "" if pa_deg is None else f" {pa_deg:6.2f}"
    return (
        f"{mjd:.6f} {m:7.3f} {dm:6.3f} {ujy:5d} {dujy:4d} {filt} {err:2d} {chi:6.2f} "
        f"{342.4596:9.5f} {51.2634:9.5f} {7768.79:8.2f} {7767.00:8.2f} {2.53:4.2f} "
        f"{2.39:4.2f} {-63.4:5.1f} {-0.375:6.3f} {19.58:5.2f}{pa} {21.54:5.2f} {obs}"
    )


# The §12 example row verbatim, a negative flux, a dm that outgrows its width, an H-alpha row.
EXAMPLE = (
    "59226.235875  16.177  0.012  1228   15 c  0  54.64 342.45960  51.26340  7768.79  7767.00"
    " 2.53 2.39 -63.4 -0.375 19.58 21.54 01a59226o0051c"
)
ROWS_19 = [
    EXAMPLE,
    row(59226.245321, (-19.866, 1.253), (-41, 47), "o", "01a59226o0062o"),
    row(59227.101010, (22.140, 14.406), (5, 66), "o", "02a59227o0101o"),
    row(59228.400000, (17.010, 0.030), (570, 17), "H", "01a59228o0200H", err=1),
]


def result_text(header: str, rows: list[str]) -> str:
    return "\n".join([header, *rows]) + "\n"


def test_19_column_file_is_parsed_by_name_with_proper_dtypes() -> None:
    df = parse_result(result_text(HEADER_19, ROWS_19))

    assert list(df.columns) == HEADER_19[3:].split()
    assert len(df) == 4
    floats = ["MJD", "m", "dm", "chi/N", "RA", "Dec", "x", "y", "maj", "min", "phi", "apfit"]
    for column in [*floats, "mag5sig", "Sky"]:
        assert df[column].dtype == np.float64, column
    for column in ["uJy", "duJy", "err"]:
        assert df[column].dtype == "Int64", column
    for column in ["F", "Obs"]:
        assert df[column].dtype == pd.StringDtype(), column
    first = df.iloc[0]
    assert first["MJD"] == 59226.235875
    assert (first["uJy"], first["duJy"], first["chi/N"]) == (1228, 15, 54.64)
    assert first["Obs"] == "01a59226o0051c"


def test_negative_flux_wide_dm_and_h_alpha_rows_keep_their_values() -> None:
    df = parse_result(result_text(HEADER_19, ROWS_19))

    assert df["uJy"].tolist() == [1228, -41, 5, 570]
    assert df["m"].iloc[1] == -19.866
    assert df["dm"].iloc[2] == 14.406  # "14.406" fills the column: no space before it
    assert df["F"].tolist() == ["c", "o", "o", "H"]
    assert df["err"].tolist() == [0, 0, 0, 1]


def test_20_column_file_finds_columns_by_name() -> None:
    rows = [
        row(59226.2, (16.177, 0.012), (1228, 15), "c", "01a59226o0051c", pa_deg=179.52),
        row(59226.3, (17.5, 0.05), (300, 16), "o", "01a59226o0052o", pa_deg=0.0),
    ]
    df = parse_result(result_text(HEADER_20, rows))

    assert list(df.columns)[-4:] == ["mag5sig", "PA_DEG", "Sky", "Obs"]
    assert df["PA_DEG"].dtype == np.float64
    assert df["PA_DEG"].tolist() == [179.52, 0.0]
    assert df["Sky"].tolist() == [21.54, 21.54]  # not shifted into PA_DEG's place


def test_repeated_mjd_rows_are_all_kept_in_file_order() -> None:
    rows = [
        row(59300.5, (17.0, 0.02), (500, 10), "o", "02a59300o0002o"),
        row(59300.1, (17.0, 0.02), (510, 10), "o", "01a59300o0001o"),
        row(59300.5, (17.1, 0.02), (490, 10), "o", "03a59300o0003o"),
    ]
    df = parse_result(result_text(HEADER_19, rows))

    assert df["MJD"].tolist() == [59300.5, 59300.1, 59300.5]
    assert df["Obs"].tolist() == ["02a59300o0002o", "01a59300o0001o", "03a59300o0003o"]


@pytest.mark.parametrize("text", ["", "\n", "  \n\n"])
def test_empty_text_gives_empty_frame_with_the_default_columns(text: str) -> None:
    df = parse_result(text)

    assert df.empty
    assert list(df.columns) == HEADER_19[3:].split()
    assert df["uJy"].dtype == "Int64"
    assert df["F"].dtype == pd.StringDtype()


@pytest.mark.parametrize("text", [HEADER_20 + "\n", HEADER_20, HEADER_20 + "\n\n"])
def test_header_only_gives_empty_frame_with_the_header_columns(text: str) -> None:
    df = parse_result(text)

    assert df.empty
    assert list(df.columns) == HEADER_20[3:].split()
    assert df["PA_DEG"].dtype == np.float64
    assert df["Obs"].dtype == pd.StringDtype()


@pytest.mark.parametrize(
    "text",
    [
        "<!DOCTYPE html>\n<html><body>502 Bad Gateway</body></html>\n",
        '{"detail":"No Task matches the given query."}',
        "MJD m dm uJy duJy F\n59226.1 16 0.01 1228 15 c\n",
    ],
)
def test_non_atlas_text_is_rejected_naming_source_and_line(text: str) -> None:
    with pytest.raises(ResultFileError, match=r"^job00042\.txt: line 1: not an ATLAS"):
        parse_result(text, source="job00042.txt")


def test_header_without_required_columns_is_rejected() -> None:
    with pytest.raises(ResultFileError, match=r"lacks required columns \['uJy'"):
        parse_result("###MJD m dm\n59226.1 16.1 0.01\n")


def test_row_with_more_fields_than_the_header_is_rejected_with_its_line() -> None:
    rows = [ROWS_19[0], "", ROWS_19[1] + " extra", ROWS_19[2]]
    with pytest.raises(ResultFileError, match=r"^r: line 4: 20 fields but the header has 19"):
        parse_result(result_text(HEADER_19, rows), source="r")


def test_download_cut_mid_line_is_rejected_as_truncated() -> None:
    text = result_text(HEADER_19, ROWS_19)
    cut = text[: text.rindex("\n", 0, -1) + 40]  # 40 characters into the last row

    with pytest.raises(ResultFileError, match=r"line 5: truncated file"):
        parse_result(cut)


def test_short_last_line_is_truncation_even_with_a_newline() -> None:
    short_last = " ".join(ROWS_19[3].split()[:12])
    with pytest.raises(ResultFileError, match="truncated"):
        parse_result(result_text(HEADER_19, [*ROWS_19[:3], short_last]))


def test_short_line_in_the_middle_becomes_missing_values() -> None:
    short = " ".join(ROWS_19[1].split()[:3])  # MJD, m, dm only
    df = parse_result(result_text(HEADER_19, [ROWS_19[0], short, ROWS_19[2]]))

    assert len(df) == 3
    assert df["m"].iloc[1] == -19.866
    assert df["uJy"].isna().tolist() == [False, True, False]
    assert df["Obs"].isna().tolist() == [False, True, False]
    assert df["uJy"].dtype == "Int64"


def test_complete_last_row_without_newline_is_accepted() -> None:
    df = parse_result(result_text(HEADER_19, ROWS_19).rstrip("\n"))

    assert df["Obs"].iloc[-1] == "01a59228o0200H"


def test_crlf_line_endings_and_blank_lines_are_tolerated() -> None:
    text = result_text(HEADER_19, [ROWS_19[0], "", ROWS_19[1]]).replace("\n", "\r\n")
    df = parse_result(text)

    assert df["uJy"].tolist() == [1228, -41]


def test_unknown_extra_columns_are_kept_numeric_or_string() -> None:
    header = HEADER_19 + " zp note"
    rows = [ROWS_19[0] + " 17.5 a", ROWS_19[1] + " 17.6 b"]
    df = parse_result(result_text(header, rows))

    assert df["zp"].dtype == np.float64
    assert df["zp"].tolist() == [17.5, 17.6]
    assert df["note"].dtype == pd.StringDtype()
    assert df["note"].tolist() == ["a", "b"]


def test_bad_number_is_rejected_with_its_column_and_line() -> None:
    bad = ROWS_19[2].replace("14.406", "14.4x6")
    with pytest.raises(
        ResultFileError, match=r"line 4: column 'dm' has the invalid value '14.4x6'"
    ):
        parse_result(result_text(HEADER_19, [*ROWS_19[:2], bad]))


def test_fractional_flux_is_rejected_rather_than_truncated() -> None:
    fields = ROWS_19[0].split()
    fields[3] = "1228.5"
    with pytest.raises(ResultFileError, match=r"line 2: column 'uJy'"):
        parse_result(result_text(HEADER_19, [" ".join(fields)]))


def test_write_atomic_writes_and_replaces_without_leaving_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "job00001.txt"
    write_atomic(target, b"old")
    write_atomic(target, b"new contents")

    assert target.read_bytes() == b"new contents"
    assert os.listdir(tmp_path) == ["job00001.txt"]


def test_write_atomic_failure_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "job00001.txt"
    target.write_bytes(b"old")

    def refuse(src: object, dst: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(target, b"new")

    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["job00001.txt"]


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_write_atomic_respects_the_umask_not_mkstemp_0600(tmp_path: Path) -> None:
    old_mask = os.umask(0o022)
    try:
        write_atomic(tmp_path / "f.txt", b"x")
    finally:
        os.umask(old_mask)

    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == 0o644


def test_atomic_file_commit_and_discard(tmp_path: Path) -> None:
    kept, dropped = AtomicFile(tmp_path / "a.bin"), AtomicFile(tmp_path / "b.bin")
    kept.temp.write_bytes(b"a")
    dropped.temp.write_bytes(b"b")
    assert not kept.path.exists()  # nothing at the final name before commit

    kept.commit()
    dropped.discard()

    assert sorted(os.listdir(tmp_path)) == ["a.bin"]
