"""``fetch --since-last``: only what can exist now is asked for, merged without duplicates."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from atlasbatch._outputs.results import parse_result
from atlasbatch._runs.refresh import merge_result_text, stored_last_mjd
from atlasbatch._runs.rundir import open_run, record_targets
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import grid_targets, write_csv

Factory = Callable[..., Emulator]
HEADER = "###MJD m dm uJy duJy F err chi/N RA Dec x y maj min phi apfit mag5sig Sky Obs"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def emu(atlas_emulator_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    emulator = atlas_emulator_factory(
        task_seconds=0.02, user_slots=1, write_rate="600/6s", read_rate="6000/6s"
    )
    monkeypatch.setenv("ATLAS_TOKEN", emulator.token)
    return emulator


def fetch(emu: Emulator, targets: Path, out: Path, *extra: str) -> int:
    return main(["fetch", str(targets), "--out", str(out), "--no-plots",
                 "--base-url", emu.base_url, "--write-rate", "600/6s",
                 "--read-rate", "6000/6s", *extra])  # fmt: skip


def run_id(out: Path) -> str:
    db = sqlite3.connect(out / "atlasbatch.sqlite3")
    try:
        return str(db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()[0])
    finally:
        db.close()


def tasks_of(emu: Emulator, run: str) -> list[dict[str, object]]:
    return [t for t in emu.tasks(include_archived=True)
            if str(t["comment"]).startswith(f"atlasbatch:{run}:")]  # fmt: skip


def by_epoch(table: pd.DataFrame) -> pd.DataFrame:
    """A photometry table in a fixed row order (targets may be written in any order)."""
    return table.sort_values(["target", "MJD", "Obs"]).reset_index(drop=True)


def row(mjd: float, obs: str, flux: int = 100) -> str:
    return (f"{mjd:.6f} 18.0 0.1 {flux} 10 o 0 1.0 10.0 20.0 1.0 1.0 2.0 2.0 0.0 -0.4 19.5 "
            f"21.0 {obs}")  # fmt: skip


def test_since_last_asks_only_for_new_epochs_and_merges_without_duplicates(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write_csv(tmp_path / "t.csv", grid_targets(4))
    out = tmp_path / "run"
    assert fetch(emu, targets, out, "--mjd-min", "60000", "--mjd-max", "60100") == 0
    first_run = run_id(out)
    curves = sorted((out / "lightcurves").glob("*.txt"))
    last = {p.name: stored_last_mjd(p) for p in curves}
    rows_before = {p.name: len(parse_result(p.read_text())) for p in curves}
    requests = emu.stats()["requests"]
    assert fetch(emu, targets, out, "--since-last", "--dry-run") == 0
    plan = capsys.readouterr().out
    assert "--since-last: 4 queries asked only after their last stored MJD" in plan
    windows = len(set(last.values()))  # one POST per window: each target's own start now
    assert f"POST   /queue/              {windows}" in plan
    assert emu.stats()["requests"] == requests

    assert fetch(emu, targets, out, "--since-last", "--mjd-min", "60000",
                 "--mjd-max", "60200") == 0  # fmt: skip
    second_run = run_id(out)
    assert second_run != first_run
    # the server was asked, per target, only from just after its last stored epoch on
    asked = {f"t{i:05d}.txt": t["mjd_min"] for i, t in enumerate(tasks_of(emu, second_run))}
    assert asked == {name: round(mjd + 1e-5, 6) for name, mjd in last.items() if mjd}
    assert all(t["mjd_max"] == 60200 for t in tasks_of(emu, second_run))
    assert emu.stats()["tasks_live"] == 0
    # the old ledger and outcomes are kept in history/
    history = sorted(p.name for p in (out / "history").iterdir())
    assert any(name.endswith(f"{first_run}.sqlite3") for name in history)
    assert any(name.endswith(f"{first_run}-outcomes.csv") for name in history)

    # merged files equal what one fetch of the whole window gives, byte for byte
    whole = tmp_path / "whole"
    assert fetch(emu, targets, whole, "--mjd-min", "60000", "--mjd-max", "60200") == 0
    for path in curves:
        merged = path.read_text()
        assert merged == (whole / "lightcurves" / path.name).read_text()
        frame = parse_result(merged)
        assert not frame.duplicated(["MJD", "Obs"]).any()
        assert len(frame) > rows_before[path.name]
    table = pd.read_parquet(out / "photometry.parquet")
    assert not table.duplicated(["target", "MJD", "Obs"]).any()
    assert len(table) == len(pd.read_parquet(whole / "photometry.parquet"))
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert set(outcomes["state"]) == {"downloaded"}
    # the rows keep their own window (the refresh's narrower one is only what it asked)
    assert set(outcomes["mjd_min"]) == {60000} and set(outcomes["mjd_max"]) == {60200}
    # old epochs keep the task (and time) that fetched them; new ones name the refresh's task
    first_ids = {t["ra"]: t["id"] for t in tasks_of(emu, first_run)}
    second_ids = {t["ra"]: t["id"] for t in tasks_of(emu, second_run)}
    for i, name in enumerate(sorted(last)):
        rows = table[table["target"] == name.removesuffix(".txt")]
        old = rows["MJD"] <= last[name]
        ra = round(i * 0.1, 6)
        assert set(rows.loc[old, "task_id"]) == {first_ids[ra]}
        assert set(rows.loc[~old, "task_id"]) == {second_ids[ra]}
        assert rows.loc[old, "fetched_at"].max() < rows.loc[~old, "fetched_at"].min()


def test_a_refresh_of_closed_windows_asks_nothing_and_keeps_every_light_curve(
    emu: Emulator, tmp_path: Path
) -> None:
    targets = write_csv(tmp_path / "t.csv", grid_targets(3))
    out = tmp_path / "run"
    assert fetch(emu, targets, out, "--mjd-min", "60000", "--mjd-max", "60050") == 0
    before = {p.name: p.read_text() for p in (out / "lightcurves").glob("*.txt")}
    table_before = pd.read_parquet(out / "photometry.parquet")
    outcomes_before = pd.read_csv(out / "outcomes.csv")
    created = emu.stats()["tasks_created"]
    refreshed_at = pd.Timestamp.now(tz="UTC")
    for _ in range(2):  # twice: a refresh of a refresh is another generation
        assert fetch(emu, targets, out, "--since-last", "--mjd-min", "60000",
                     "--mjd-max", "60050") == 0  # fmt: skip
        assert emu.stats()["tasks_created"] == created  # every window closed in 2023
        after = {p.name: p.read_text() for p in (out / "lightcurves").glob("*.txt")}
        assert after == before
        outcomes = pd.read_csv(out / "outcomes.csv")
        assert set(outcomes["state"]) == {"downloaded"}
        assert outcomes["error"].str.startswith("not asked again: window closed").all()
        assert list(outcomes["task_id"]) == list(outcomes_before["task_id"])
        table = pd.read_parquet(out / "photometry.parquet")
        kept = by_epoch(table.drop(columns="fetched_at"))  # rows and provenance unchanged
        pd.testing.assert_frame_equal(kept, by_epoch(table_before.drop(columns="fetched_at")))
        assert (table["fetched_at"] < refreshed_at).all()  # when they were fetched, not now
    assert len(list((out / "history").glob("*.sqlite3"))) == 2

    # the plain command resumes the current (refresh) generation: nothing more is asked
    created = emu.stats()["tasks_created"]
    assert fetch(emu, targets, out, "--mjd-min", "60000", "--mjd-max", "60050") == 0
    assert emu.stats()["tasks_created"] == created


def test_since_last_refuses_an_unfinished_run(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write_csv(tmp_path / "t.csv", grid_targets(3))
    out = tmp_path / "run"
    with open_run(out, base_url=emu.base_url) as ledger:  # a run that never got going
        record_targets(ledger, read_targets(targets))
    assert fetch(emu, targets, out, "--since-last") == 2
    err = capsys.readouterr().err
    assert "is unfinished (3 queries open" in err and "atlasbatch cancel" in err
    assert emu.stats()["requests"] == {}
    assert not (out / "history").exists()


def test_merge_drops_repeated_epochs_new_rows_win_and_order_is_by_mjd() -> None:
    old = "\n".join([HEADER, row(60000.1, "a"), row(60001.2, "b"), row(60002.3, "c")]) + "\n"
    new = "\n".join([HEADER, row(60002.3, "c", 999), row(60002.3, "d"), row(60003.4, "e")])
    merged = merge_result_text(old, new + "\n")
    frame = parse_result(merged)
    assert list(frame["Obs"]) == ["a", "b", "c", "d", "e"]
    assert frame.loc[frame["Obs"] == "c", "uJy"].tolist() == [999]
    assert merge_result_text(merged, new + "\n") == merged  # idempotent
    assert merge_result_text("", new) == new
    assert merge_result_text(old, HEADER + "\n") == old


def test_merge_across_a_header_change_keeps_every_column() -> None:
    old = "\n".join([HEADER, row(60000.1, "a")]) + "\n"
    header = HEADER.replace("mag5sig Sky", "mag5sig PA_DEG Sky")
    fields = row(60001.2, "b").split()
    fields.insert(17, "12.5")
    new = "\n".join([header, " ".join(fields)]) + "\n"
    frame = parse_result(merge_result_text(old, new))
    assert list(frame["Obs"]) == ["a", "b"]
    assert frame["PA_DEG"].isna().tolist() == [True, False]
    assert frame["Sky"].tolist() == [21.0, 21.0]


def mjd_now() -> float:
    return time.time() / 86400.0 + 40587.0


def posts(emu: Emulator) -> int:
    return sum(1 for r in emu.requests() if r.method == "POST")


def test_a_refresh_asks_only_the_open_windows(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [  # Dec -60: the emulator finds no data there
        {"name": "closed_data", "ra": 10.0, "dec": 10.0, "mjd_min": 60000, "mjd_max": 60100},
        {"name": "open_data", "ra": 20.0, "dec": 10.0, "mjd_min": 61000, "mjd_max": ""},
        {"name": "closed_nodata", "ra": 30.0, "dec": -60.0, "mjd_min": 60000, "mjd_max": 60100},
        {"name": "open_nodata", "ra": 40.0, "dec": -60.0, "mjd_min": 61000, "mjd_max": ""},
        {"name": "future_data", "ra": 50.0, "dec": 10.0, "mjd_min": 61000, "mjd_max": 99999},
    ]
    targets = write_csv(tmp_path / "t.csv", rows)
    out = tmp_path / "run"
    before_first = mjd_now()
    assert fetch(emu, targets, out) == 0
    after_first = mjd_now()
    first_ids = {t["ra"]: t["id"] for t in tasks_of(emu, run_id(out))}
    last = {n: stored_last_mjd(out / "lightcurves" / f"{n}.txt")
            for n in ("open_data", "future_data")}  # fmt: skip

    # the dry run shows the plan, row by row, and counts only what is asked
    seen = posts(emu)
    capsys.readouterr()
    assert fetch(emu, targets, out, "--since-last", "--dry-run") == 0
    plan = capsys.readouterr().out
    assert posts(emu) == seen
    assert "POST   /queue/              3" in plan
    assert "2  not asked again" in plan
    assert "closed_data: not asked again: window closed (mjd_max 60100)" in plan
    assert "closed_nodata: not asked again: window closed (mjd_max 60100)" in plan
    assert f"open_data: MJD {round(last['open_data'] + 1e-5, 6)} to now" in plan

    assert fetch(emu, targets, out, "--since-last") == 0
    refresh = run_id(out)
    asked = {t["ra"]: t for t in tasks_of(emu, refresh)}
    assert sorted(asked) == [20.0, 40.0, 50.0]  # the open windows, and only them
    assert posts(emu) == seen + 3
    assert asked[20.0]["mjd_min"] == round(last["open_data"] + 1e-5, 6)
    assert asked[20.0]["mjd_max"] is None
    assert asked[50.0]["mjd_min"] == round(last["future_data"] + 1e-5, 6)
    assert asked[50.0]["mjd_max"] == 99999
    # no data last time: asked from where the last run's window ended (when it asked)
    assert before_first - 1e-4 <= asked[40.0]["mjd_min"] <= after_first
    assert asked[40.0]["mjd_max"] is None

    outcomes = pd.read_csv(out / "outcomes.csv").set_index("name")
    assert outcomes.loc["closed_data", "state"] == "downloaded"
    assert outcomes.loc["closed_data", "task_id"] == first_ids[10.0]  # its data's task
    assert outcomes.loc["closed_nodata", "state"] == "no_data"
    for name in ("closed_data", "closed_nodata"):
        assert str(outcomes.loc[name, "error"]).startswith("not asked again: window closed")
    assert list(outcomes["mjd_min"]) == [60000, 61000, 60000, 61000, 61000]  # as given
    table = pd.read_parquet(out / "photometry.parquet")
    closed = table[table["target"] == "closed_data"]
    assert len(closed) > 0 and set(closed["task_id"]) == {first_ids[10.0]}

    # a refresh of the refresh: the no-data row is asked from where the refresh ended
    before_second = mjd_now()
    assert fetch(emu, targets, out, "--since-last") == 0
    again = {t["ra"]: t for t in tasks_of(emu, run_id(out))}
    assert sorted(again) == [20.0, 40.0, 50.0]
    assert after_first - 1e-4 <= again[40.0]["mjd_min"] <= before_second


def test_a_refresh_made_by_atlasbatch_0_1_is_refreshed_again(
    emu: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write_csv(tmp_path / "t.csv", grid_targets(2))
    out = tmp_path / "run"
    assert fetch(emu, targets, out, "--mjd-min", "60000", "--mjd-max", "60100") == 0
    db = sqlite3.connect(out / "atlasbatch.sqlite3")  # the plan as 0.1 stored it
    with db:
        db.execute("INSERT INTO meta VALUES ('since_last', '{\"complete\": {}, \"windows\": {}}')")
    db.close()
    assert fetch(emu, targets, out, "--mjd-min", "60000", "--mjd-max", "60100") == 2
    assert "made by an older atlasbatch: refresh it again with --since-last" in (
        capsys.readouterr().err
    )
    created = emu.stats()["tasks_created"]
    assert fetch(emu, targets, out, "--since-last", "--mjd-min", "60000",
                 "--mjd-max", "60100") == 0  # fmt: skip
    assert emu.stats()["tasks_created"] == created  # closed windows: nothing asked
    assert set(pd.read_csv(out / "outcomes.csv")["state"]) == {"downloaded"}
