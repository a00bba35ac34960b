"""The combined Parquet table (and CSV twin) and outcomes.csv."""

from __future__ import annotations

import csv
import logging
import os
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlasbatch import Outcome, State, Target
from atlasbatch._outputs import PhotometryTableWriter, write_outcomes_csv
from atlasbatch._photometry import add_derived_columns
from atlasbatch._results import parse_result

HEADER_19 = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y"
    "     maj  min   phi  apfit mag5sig Sky   Obs"
)
HEADER_20 = HEADER_19.replace("mag5sig Sky", "mag5sig PA_DEG Sky")
ROWS_19 = [
    "59226.235875  16.177  0.012  1228   15 c  0  54.64 342.45960  51.26340  7768.79  7767.00"
    " 2.53 2.39 -63.4 -0.375 19.58 21.54 01a59226o0051c",
    "59227.101010  22.140 14.406     5   66 o  0   1.02 342.45960  51.26340  7768.79  7767.00"
    " 2.53 2.39 -63.4 -0.375 19.58 21.54 02a59227o0101o",
]
ROWS_20 = [
    "59300.500000 -19.866  1.253   -41   47 o  0   1.21  10.00000 -20.00000  1000.00  2000.00"
    " 2.10 2.00  12.0 -0.300 19.10 179.52 20.90 03a59300o0300o",
]
SERVER = "http://127.0.0.1:8123/forcedphot"
FETCHED = datetime(2026, 8, 1, 12, 30, tzinfo=timezone(timedelta(hours=2)))
SN = Target(line=2, name="SN2023ixf", ra=210.910674, dec=54.31165, extra={"catalog": "TNS"})
COMET = Target(
    line=3,
    name="C/2020 F3",
    mpc_name="C/2020 F3",
    mjd_min=59000.0,
    mjd_max=59400.5,
    use_reduced=True,
    extra={"catalog": "MPC", "m": "5.1"},
)


def one_row() -> pd.DataFrame:
    return parse_result(HEADER_19 + "\n" + ROWS_19[0] + "\n")


def write_two_targets(path: Path, *, csv_path: Path | None = None) -> None:
    extra = ["catalog", "m"]
    with PhotometryTableWriter(path, extra_columns=extra, csv_path=csv_path) as writer:
        writer.add(
            SN,
            parse_result("\n".join([HEADER_19, *ROWS_19]) + "\n"),
            task_id=1041,
            server=SERVER,
            fetched_at=FETCHED,
        )
        writer.add(
            COMET,
            parse_result("\n".join([HEADER_20, *ROWS_20]) + "\n"),
            task_id=None,
            server=SERVER,
            fetched_at=FETCHED,
        )


def test_parquet_round_trips_with_pandas_dtypes_and_provenance(tmp_path: Path) -> None:
    path = tmp_path / "photometry.parquet"
    write_two_targets(path)
    df = pd.read_parquet(path)

    assert len(df) == 3
    expected = {
        "MJD": "float64", "uJy": "Int64", "duJy": "Int64", "err": "Int64", "chi/N": "float64",
        "F": "string", "Obs": "string", "PA_DEG": "float64", "snr": "float64",
        "detected": "bool", "mag_ab": "float64", "quality_ok": "bool",
        "quality_flags": "string", "target": "string", "target_line": "int64",
        "input_ra": "float64", "mpc_name": "string", "task_id": "Int64",
        "use_reduced": "bool", "fetched_at": "datetime64[us, UTC]", "server": "string",
        "catalog": "string", "input_m": "string",
    }  # fmt: skip
    assert {c: str(df[c].dtype) for c in expected} == expected
    assert df["PA_DEG"].isna().tolist() == [True, True, False]  # absent from the 19-column file
    assert df["uJy"].tolist() == [1228, 5, -41]
    assert df["target"].tolist() == ["SN2023ixf", "SN2023ixf", "C/2020 F3"]
    assert df["target_line"].tolist() == [2, 2, 3]
    assert df["task_id"].tolist() == [1041, 1041, pd.NA]
    assert df["input_ra"].iloc[0] == 210.910674
    assert pd.isna(df["input_ra"].iloc[2])
    assert df["mpc_name"].tolist() == [pd.NA, pd.NA, "C/2020 F3"]
    assert df[["mjd_min", "mjd_max"]].iloc[2].tolist() == [59000.0, 59400.5]
    assert df["use_reduced"].tolist() == [False, False, True]
    assert (df["fetched_at"] == pd.Timestamp("2026-08-01T10:30:00Z")).all()
    assert (df["server"] == SERVER).all()
    # A target-file column called "m" must not overwrite the server's magnitude.
    assert df["m"].tolist() == [16.177, 22.140, -19.866]
    assert df["input_m"].tolist() == [pd.NA, pd.NA, "5.1"]
    assert df["catalog"].tolist() == ["TNS", "TNS", "MPC"]
    assert df["mag_ab"].iloc[0] == pytest.approx(23.9 - 2.5 * np.log10(1228))


def test_parquet_schema_as_pyarrow_sees_it(tmp_path: Path) -> None:
    path = tmp_path / "photometry.parquet"
    write_two_targets(path)
    schema = pq.read_schema(path)

    assert schema.names[:20] == [
        "MJD", "m", "dm", "uJy", "duJy", "F", "err", "chi/N", "RA", "Dec", "x", "y",
        "maj", "min", "phi", "apfit", "mag5sig", "PA_DEG", "Sky", "Obs",
    ]  # fmt: skip
    assert schema.names[-13:] == [
        "target", "target_line", "input_ra", "input_dec", "mpc_name", "task_id", "mjd_min",
        "mjd_max", "use_reduced", "fetched_at", "server", "catalog", "input_m",
    ]  # fmt: skip
    assert schema.field("uJy").type == pa.int64()
    assert schema.field("F").type == pa.string()
    assert schema.field("detected").type == pa.bool_()
    assert schema.field("fetched_at").type == pa.timestamp("us", tz="UTC")
    table = pq.read_table(path)
    assert table.num_rows == 3
    assert table.column("task_id").null_count == 1


def test_csv_twin_holds_the_same_rows(tmp_path: Path) -> None:
    csv_path = tmp_path / "photometry.csv"
    write_two_targets(tmp_path / "photometry.parquet", csv_path=csv_path)
    twin = pd.read_csv(csv_path)
    table = pd.read_parquet(tmp_path / "photometry.parquet")

    assert list(twin.columns) == list(table.columns)
    assert twin["Obs"].tolist() == table["Obs"].tolist()
    assert twin["MJD"].tolist() == table["MJD"].tolist()
    assert twin["target"].tolist() == ["SN2023ixf", "SN2023ixf", "C/2020 F3"]


def test_files_appear_only_on_close_and_no_temp_remains(tmp_path: Path) -> None:
    path, csv_path = tmp_path / "p.parquet", tmp_path / "p.csv"
    writer = PhotometryTableWriter(path, csv_path=csv_path)
    writer.add(SN, one_row(), task_id=1, server=SERVER, fetched_at=FETCHED)
    assert not path.exists()
    assert not csv_path.exists()

    writer.close()
    writer.close()  # idempotent

    assert sorted(os.listdir(tmp_path)) == ["p.csv", "p.parquet"]
    with pytest.raises(ValueError, match="closed"):
        writer.add(SN, pd.DataFrame(), task_id=1, server=SERVER, fetched_at=FETCHED)


def test_an_error_inside_the_block_keeps_the_old_table(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    path.write_bytes(b"previous run")

    def crash_midway() -> None:
        with PhotometryTableWriter(path) as writer:
            writer.add(SN, one_row(), task_id=1, server=SERVER, fetched_at=FETCHED)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash_midway()

    assert path.read_bytes() == b"previous run"
    assert os.listdir(tmp_path) == ["p.parquet"]


def test_targets_are_batched_into_few_row_groups(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    rows = [ROWS_19[0].replace("01a59226o0051c", f"01a59226o{i:04d}c") for i in range(300)]
    curve = parse_result("\n".join([HEADER_19, *rows]) + "\n")
    with PhotometryTableWriter(path, row_group_rows=500) as writer:
        for line in range(2, 7):
            target = Target(line=line, name=f"T{line}", ra=10.0, dec=20.0)
            writer.add(target, curve, task_id=line, server=SERVER, fetched_at=FETCHED)

    metadata = pq.ParquetFile(path).metadata
    assert metadata.num_rows == 1500
    assert metadata.num_row_groups == 3  # 600 + 600 + the last 300
    assert writer.rows_written == 1500


def test_empty_table_still_has_the_full_schema(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    with PhotometryTableWriter(path, extra_columns=["catalog"]) as writer:
        writer.add(SN, parse_result(""), task_id=7, server=SERVER, fetched_at=FETCHED)

    df = pd.read_parquet(path)
    assert df.empty
    assert df["uJy"].dtype == "Int64"
    assert "catalog" in df.columns
    assert "fetched_at" in df.columns


def test_given_derived_columns_are_kept_and_missing_ones_computed(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    curve = parse_result("\n".join([HEADER_19, *ROWS_19]) + "\n")
    with PhotometryTableWriter(path) as writer:
        writer.add(
            SN,
            add_derived_columns(curve, sigma_limit=100.0),
            task_id=1,
            server=SERVER,
            fetched_at=FETCHED,
        )
        writer.add(COMET, curve, task_id=2, server=SERVER, fetched_at=FETCHED)

    df = pd.read_parquet(path)
    assert df["detected"].tolist() == [False, False, True, False]  # snr 82: < 100, then >= 3


def test_naive_fetch_time_is_refused(tmp_path: Path) -> None:
    naive = datetime(2026, 1, 1)  # no tzinfo: the point of the test
    path = tmp_path / "p.parquet"
    with PhotometryTableWriter(path) as writer, pytest.raises(ValueError, match="tz-aware"):
        writer.add(SN, one_row(), task_id=1, server=SERVER, fetched_at=naive)


def test_unknown_server_columns_are_left_out_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = "\n".join([HEADER_19 + " zp", ROWS_19[0] + " 17.5"]) + "\n"
    with caplog.at_level(logging.WARNING), PhotometryTableWriter(tmp_path / "p.parquet") as w:
        w.add(SN, parse_result(text), task_id=1, server=SERVER, fetched_at=FETCHED)

    assert "zp" not in pd.read_parquet(tmp_path / "p.parquet").columns
    assert "'zp'" in caplog.text


def test_outcomes_csv_has_one_sorted_row_per_input_row(tmp_path: Path) -> None:
    bad = Target(line=4, name="bad, row", ra=None, dec=None, extra={"catalog": "x"})
    outcomes = [
        Outcome(target=bad, state=State.INVALID, error='dec out of range,\n"-95"'),
        Outcome(target=COMET, state=State.NO_DATA, task_id=77),
        Outcome(target=SN, state=State.DOWNLOADED, task_id=1041, path="results/SN2023ixf.txt"),
    ]
    path = tmp_path / "outcomes.csv"
    write_outcomes_csv(path, iter(outcomes), extra_columns=["catalog", "state"])

    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == [
        "line", "name", "state", "task_id", "error", "path", "ra", "dec", "mpc_name",
        "mjd_min", "mjd_max", "catalog", "input_state",
    ]  # fmt: skip
    assert rows[1] == [
        "2", "SN2023ixf", "downloaded", "1041", "", "results/SN2023ixf.txt",
        "210.910674", "54.31165", "", "", "", "TNS", "",
    ]  # fmt: skip
    assert rows[2] == [
        "3", "C/2020 F3", "no_data", "77", "", "", "", "", "C/2020 F3", "59000.0", "59400.5",
        "MPC", "",
    ]  # fmt: skip
    assert rows[3][:5] == ["4", "bad, row", "invalid", "", 'dec out of range,\n"-95"']
    assert len(rows) == 4
    assert os.listdir(tmp_path) == ["outcomes.csv"]


def test_fetch_time_is_stored_in_utc(tmp_path: Path) -> None:
    path = tmp_path / "p.parquet"
    with PhotometryTableWriter(path) as writer:
        writer.add(
            SN,
            one_row(),
            task_id=1,
            server=SERVER,
            fetched_at=datetime(2026, 1, 1, 23, 0, tzinfo=UTC),
        )

    stamp = pd.read_parquet(path)["fetched_at"].iloc[0]
    assert stamp == pd.Timestamp("2026-01-01T23:00:00", tz="UTC")


def test_outcomes_csv_rounds_positions_and_mjds_to_1e_9(tmp_path: Path) -> None:
    noisy = Target(line=2, name="noisy", ra=44.99999999999999, dec=-1e-12,
                   mjd_min=60000.123456789012, mjd_max=60100.0)  # fmt: skip
    exact = Target(line=3, name="exact", ra=210.910674, dec=-32.837575)
    path = tmp_path / "outcomes.csv"
    write_outcomes_csv(path, [Outcome(target=t, state=State.NO_DATA) for t in (noisy, exact)])

    with path.open(newline="", encoding="utf-8") as handle:
        rows = {row["name"]: row for row in csv.DictReader(handle)}
    cells = ("ra", "dec", "mjd_min", "mjd_max")
    assert [rows["noisy"][c] for c in cells] == ["45.0", "0.0", "60000.123456789", "60100.0"]
    assert [rows["exact"][c] for c in cells] == ["210.910674", "-32.837575", "", ""]
