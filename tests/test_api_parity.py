"""The Python API gives what the CLI gives, and refuses misuse before anything starts."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pandas as pd
import pytest

from atlasbatch import PRODUCTION_URL, InputError, Session, State, fetch_photometry
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
MJD_MIN, MJD_MAX = 60000.0, 60030.0


@pytest.fixture
def emu(atlas_emulator_factory: Factory) -> Emulator:
    return atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))


def rows_with_extras() -> list[dict[str, object]]:
    """Three positions, one asked twice (a duplicate row), with pass-through columns."""
    rows: list[dict[str, object]] = [
        {**row, "catalog_id": f"GAIA-{i}", "m": "5.1"} for i, row in enumerate(grid_targets(3))
    ]
    rows.append({**rows[0], "name": "twin", "catalog_id": "GAIA-twin"})
    return rows


def cli_table(emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> pd.DataFrame:
    targets = write_csv(tmp_path / "targets.csv", rows_with_extras())
    out = tmp_path / "cli"
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    code = main([
        "fetch", str(targets), "--out", str(out), "--no-plots", "--progress", "plain",
        "--mjd-min", str(MJD_MIN), "--mjd-max", str(MJD_MAX),
        "--base-url", emu.base_url, "--write-rate", str(emu.config.write_rate),
        "--read-rate", str(emu.config.read_rate),
    ])  # fmt: skip
    assert code == 0
    return pd.read_parquet(out / "photometry.parquet")


def by_target(table: pd.DataFrame) -> pd.DataFrame:
    """The rows in one order, without what differs between two runs (task, time, server)."""
    kept = table.drop(columns=["task_id", "fetched_at", "server"])
    return kept.sort_values(["target", "MJD", "Obs"], ignore_index=True)


def test_api_and_cli_tables_have_the_same_columns_and_rows(
    emu: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli = cli_table(emu, tmp_path, monkeypatch)
    settings = client_settings(emu)
    report = fetch_photometry(rows_with_extras(), token=emu.token, settings=settings,
                              mjd_min=MJD_MIN, mjd_max=MJD_MAX)  # fmt: skip
    api = report.photometry

    assert list(api.columns) == list(cli.columns)
    assert api.dtypes.astype(str).to_dict() == cli.dtypes.astype(str).to_dict()
    assert {"snr", "mag_ab", "quality_flags", "target_line", "fetched_at", "catalog_id",
            "input_m"} <= set(api.columns)  # fmt: skip
    pd.testing.assert_frame_equal(by_target(api), by_target(cli))
    assert (api["server"] == emu.base_url).all()
    twins = api[api["target"].isin(["t00000", "twin"])]
    assert twins.groupby("target").size().nunique() == 1  # the duplicate row has its copy
    assert twins["task_id"].nunique() == 1  # asked once


def test_fetched_at_is_the_download_time_the_ledger_recorded(emu: Emulator, tmp_path: Path) -> None:
    async def run() -> tuple[Any, float, float]:
        async with Session(token=emu.token, settings=client_settings(emu)) as session:
            start = pd.Timestamp.now(tz="UTC").timestamp()
            report = await session.run(
                grid_targets(2), out_dir=tmp_path, mjd_min=MJD_MIN, mjd_max=MJD_MAX
            )
            return report, start, pd.Timestamp.now(tz="UTC").timestamp()

    report, start, end = anyio.run(run)
    table = report.photometry
    assert set(table["target"]) == {"t00000", "t00001"}
    stamps = table.groupby("task_id")["fetched_at"].unique()
    assert all(len(one) == 1 for one in stamps)  # one time per light curve
    assert all(start <= one[0].timestamp() <= end for one in stamps)
    assert report.fetched_at.keys() == {o.task_id for o in report.outcomes}


def test_a_report_without_data_still_has_every_column(emu: Emulator) -> None:
    report = fetch_photometry(grid_targets(2), token=emu.token, settings=client_settings(emu),
                              keep_data=False)  # fmt: skip
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    table = report.photometry
    assert table.empty
    assert {"MJD", "uJy", "mag_ab", "target", "fetched_at"} <= set(table.columns)


def test_base_url_alone_chooses_the_server(emu: Emulator) -> None:
    settings = dataclasses.replace(client_settings(emu), base_url=PRODUCTION_URL)
    report = fetch_photometry(grid_targets(1), token=emu.token, base_url=emu.base_url,
                              settings=settings)  # fmt: skip
    assert [o.state for o in report.outcomes] == [State.DOWNLOADED]
    assert emu.stats()["tasks_created"] == 1


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"base_url": 8000}, "base_url must be"),
        ({"base_url": "http://example.org/forcedphot"}, "refusing plain http"),
        ({"settings": "fast"}, "settings must be"),
        ({"out_dir": 42}, "out_dir must be"),
        ({"keep_data": "yes"}, "keep_data must be"),
        ({"use_reduced": 1}, "use_reduced must be"),
        ({"mjd_min": "recent"}, "mjd_min must be"),
        ({"save_result": "lightcurves/"}, "save_result must be"),
    ],
)
def test_misuse_is_an_input_error_before_anything_is_sent(
    emu: Emulator, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(InputError, match=message):
        fetch_photometry(grid_targets(1), token=emu.token, **options)
    assert emu.stats()["requests"] == {}


def test_two_base_urls_that_disagree_are_refused(emu: Emulator) -> None:
    with pytest.raises(InputError, match="differ"):
        fetch_photometry(grid_targets(1), token=emu.token, settings=client_settings(emu),
                         base_url="https://elsewhere.example/forcedphot")  # fmt: skip
    assert emu.stats()["requests"] == {}


def test_session_fetch_checks_its_options_when_called(emu: Emulator) -> None:
    async def misuse() -> None:
        async with Session(token=emu.token, settings=client_settings(emu)) as session:
            with pytest.raises(InputError, match="keep_going must be"):
                session.fetch(grid_targets(1), keep_going="no")  # type: ignore[arg-type]
            with pytest.raises(InputError, match="out_dir must be"):
                session.fetch(grid_targets(1), out_dir=os.devnull.encode())  # type: ignore[arg-type]
            with pytest.raises(InputError, match="keep_data must be"):
                await session.run(grid_targets(1), keep_data=None)  # type: ignore[arg-type]

    anyio.run(misuse)
    assert emu.stats()["requests"] == {}
