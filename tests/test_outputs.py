"""The combined Parquet table (and CSV twin) and outcomes.csv."""

from __future__ import annotations

import csv
import logging
import os
import sqlite3
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlasbatch import Outcome, State, Target
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs.outcomes import PhotometryTableWriter, write_outcomes_csv
from atlasbatch._outputs.results import parse_result
from atlasbatch._outputs.table_folder import _MERGE_AT, PhotometryFolder
from atlasbatch._science.photometry import add_derived_columns

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


# --- photometry.parquet/: the table that follows the ledger ------------------------------


def curve_text(count: int, *, start: float = 59226.0, header: str = HEADER_19) -> str:
    body = [ROWS_19[0].replace("59226.235875", f"{start + i:.6f}").replace("0051c", f"{i:04d}c")
            for i in range(count)]  # fmt: skip
    return "\n".join([header, *body]) + "\n"


def record(ledger: Ledger, out: Path, target: Target, task_id: int, text: str) -> None:
    """What a run does for one target: its file stored, then the ledger told."""
    path = f"lightcurves/{target.name}.txt"
    (out / "lightcurves").mkdir(parents=True, exist_ok=True)
    (out / path).write_text(text)
    batch, _ = ledger.start_batch([target.line])
    ledger.batch_submitted(batch, [(target.line, task_id)])
    ledger.task_done(task_id, target.line, State.DOWNLOADED, path=path)


def new_ledger(
    out: Path, targets: list[Target], duplicate_of: dict[int, int] | None = None
) -> Ledger:
    out.mkdir(parents=True, exist_ok=True)
    ledger = Ledger(out / "atlasbatch.sqlite3")
    ledger.add_targets(targets, duplicate_of or {})
    return ledger


def grid(count: int, **extra: str) -> list[Target]:
    return [Target(line=i + 2, name=f"T{i}", ra=10.0 + i, dec=20.0, extra=dict(extra))
            for i in range(count)]  # fmt: skip


def folder(out: Path) -> PhotometryFolder:
    return PhotometryFolder(out / "photometry.parquet", server=SERVER)


def visible(out: Path) -> list[str]:
    return sorted(p.name for p in (out / "photometry.parquet").iterdir() if p.name[0] not in "._")


def test_the_table_grows_part_by_part_and_only_with_what_is_new(tmp_path: Path) -> None:
    targets = grid(4, catalog="x")
    ledger = new_ledger(tmp_path, targets)
    for task_id, target in enumerate(targets[:2], start=100):
        record(ledger, tmp_path, target, task_id, curve_text(3))
    table = folder(tmp_path)
    assert table.sync(ledger) == 2
    assert table.sync(ledger) == 0  # nothing new: nothing written
    first = visible(tmp_path)
    assert len(first) == 1

    for task_id, target in enumerate(targets[2:], start=200):
        record(ledger, tmp_path, target, task_id, curve_text(2))
    assert table.sync(ledger) == 2
    assert visible(tmp_path)[0] == first[0] and len(visible(tmp_path)) == 2
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    assert df.groupby("target").size().to_dict() == {"T0": 3, "T1": 3, "T2": 2, "T3": 2}
    assert sorted(set(df["task_id"])) == [100, 101, 200, 201]
    assert set(df["catalog"]) == {"x"}
    with sqlite3.connect(tmp_path / "atlasbatch.sqlite3") as db:
        recorded = dict(db.execute("SELECT line, at FROM events WHERE state = 'downloaded'"))
    for line, stamp in df.groupby("target_line")["fetched_at"].first().items():
        assert abs(stamp - pd.Timestamp(recorded[line], unit="s", tz="UTC")) <= pd.Timedelta("1us")


def test_no_light_curve_no_table(tmp_path: Path) -> None:
    ledger = new_ledger(tmp_path, grid(2))
    assert folder(tmp_path).sync(ledger) == 0
    assert not (tmp_path / "photometry.parquet").exists()


def test_duplicate_rows_each_get_the_shared_light_curve(tmp_path: Path) -> None:
    targets = grid(2)
    twin = Target(line=4, name="twin", ra=10.0, dec=20.0)
    ledger = new_ledger(tmp_path, [*targets, twin], duplicate_of={4: 2})
    record(ledger, tmp_path, targets[0], 7, curve_text(3))
    folder(tmp_path).sync(ledger)
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    assert df.groupby("target").size().to_dict() == {"T0": 3, "twin": 3}
    assert set(df["task_id"]) == {7}


def test_many_small_parts_are_merged_into_one(tmp_path: Path) -> None:
    targets = grid(_MERGE_AT + 1)
    ledger = new_ledger(tmp_path, targets)
    table = folder(tmp_path)
    for task_id, target in enumerate(targets, start=1):
        record(ledger, tmp_path, target, task_id, curve_text(2))
        table.sync(ledger)
    names = visible(tmp_path)
    assert len(names) < _MERGE_AT
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    assert len(df) == 2 * len(targets) and not df.duplicated(["target", "MJD"]).any()


def test_a_crash_in_a_merge_or_a_write_leaves_nothing_twice(tmp_path: Path) -> None:
    targets = grid(2)
    ledger = new_ledger(tmp_path, targets)
    table = folder(tmp_path)
    for task_id, target in enumerate(targets, start=1):
        record(ledger, tmp_path, target, task_id, curve_text(2))
        table.sync(ledger)
    parts = sorted((tmp_path / "photometry.parquet").glob("part-*"))
    assert len(parts) == 2
    # A merge that wrote its part, then died before deleting its sources:
    merged = pa.concat_tables([pq.read_table(p) for p in parts])
    first, last = parts[0].name.split("-")[2], parts[1].name.split("-")[3]
    pq.write_table(merged, parts[0].with_name(f"part-{ledger.run_id}-{first}-{last}"))
    (tmp_path / "photometry.parquet" / ".pending.parquet.0a1b2c.tmp").write_bytes(b"PAR1")
    late = Target(line=9, name="late", ra=1.0, dec=2.0)
    ledger.add_targets([*targets, late], {})
    record(ledger, tmp_path, late, 9, curve_text(1))

    table.sync(ledger)
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    assert df.groupby("target").size().to_dict() == {"T0": 2, "T1": 2, "late": 1}
    assert not list((tmp_path / "photometry.parquet").glob(".*"))


def test_a_refresh_shows_its_table_only_when_complete(tmp_path: Path) -> None:
    targets = grid(2)
    old = new_ledger(tmp_path, targets)
    for task_id, target in enumerate(targets, start=1):
        record(old, tmp_path, target, task_id, curve_text(2))
    folder(tmp_path).sync(old)
    old.close()
    (tmp_path / "atlasbatch.sqlite3").rename(tmp_path / "old.sqlite3")

    refresh = new_ledger(tmp_path, targets)  # a new generation: another run id
    record(refresh, tmp_path, targets[0], 11, curve_text(3))
    folder(tmp_path).sync(refresh)
    shown = pd.read_parquet(tmp_path / "photometry.parquet")
    assert set(shown["task_id"]) == {1, 2}  # the previous run's table, whole
    assert any(p.name.startswith("_part-") for p in (tmp_path / "photometry.parquet").iterdir())

    record(refresh, tmp_path, targets[1], 12, curve_text(3))
    folder(tmp_path).sync(refresh)  # complete: switched
    shown = pd.read_parquet(tmp_path / "photometry.parquet")
    assert set(shown["task_id"]) == {11, 12} and len(shown) == 6
    assert all(name.startswith(f"part-{refresh.run_id}-") for name in visible(tmp_path))


def test_new_pass_through_columns_rebuild_the_table(tmp_path: Path) -> None:
    targets = grid(1)
    ledger = new_ledger(tmp_path, targets)
    record(ledger, tmp_path, targets[0], 1, curve_text(2))
    folder(tmp_path).sync(ledger)
    late = Target(line=5, name="late", ra=5.0, dec=5.0, extra={"note": "new column"})
    ledger.add_targets([*targets, late], {})
    record(ledger, tmp_path, late, 2, curve_text(1))
    folder(tmp_path).sync(ledger)
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    notes = df.sort_values("target_line")["note"]
    assert notes.isna().tolist() == [True, True, False] and notes.iloc[-1] == "new column"
    assert len(visible(tmp_path)) == 1 and len(df) == 3


def test_the_one_file_layout_is_replaced_by_the_folder(tmp_path: Path) -> None:
    targets = grid(1)
    ledger = new_ledger(tmp_path, targets)
    write_two_targets(tmp_path / "photometry.parquet")  # as an older version wrote it
    record(ledger, tmp_path, targets[0], 1, curve_text(2))
    folder(tmp_path).sync(ledger)
    assert (tmp_path / "photometry.parquet").is_dir()
    assert pd.read_parquet(tmp_path / "photometry.parquet")["target"].tolist() == ["T0", "T0"]


def test_files_with_two_headers_and_a_broken_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    targets = grid(3)
    ledger = new_ledger(tmp_path, targets)
    record(ledger, tmp_path, targets[0], 1, curve_text(2))
    record(ledger, tmp_path, targets[1], 2, "\n".join([HEADER_20, *ROWS_20]) + "\n")
    record(ledger, tmp_path, targets[2], 3, "<html>rate limited</html>\n")
    with caplog.at_level(logging.ERROR):
        folder(tmp_path).sync(ledger)
    df = pd.read_parquet(tmp_path / "photometry.parquet")
    assert df.groupby("target").size().to_dict() == {"T0": 2, "T1": 1}
    assert df.loc[df["target"] == "T1", "PA_DEG"].notna().all()
    assert "T2.txt" in caplog.text


def test_outcomes_csv_streams_in_input_order(tmp_path: Path) -> None:
    outcomes = (Outcome(target=t, state=State.NO_DATA) for t in grid(3))
    write_outcomes_csv(tmp_path / "outcomes.csv", outcomes, ordered=True)
    assert pd.read_csv(tmp_path / "outcomes.csv")["name"].tolist() == ["T0", "T1", "T2"]
