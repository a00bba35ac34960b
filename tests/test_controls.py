"""Control light curves: positions, their rows in the ledger, the control cut, and runs with
controls against the emulator (exactly N+1 tasks per target, across resumes and kill -9)."""

from __future__ import annotations

import csv
import math
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from atlasbatch import InputError, RunMismatchError, Session, State
from atlasbatch._ledger.control_lines import control_line, control_link
from atlasbatch._outputs.results import parse_result
from atlasbatch._runs.controls import (
    ControlSetting,
    control_positions,
    record_control_setting,
    with_controls,
)
from atlasbatch._runs.rundir import open_run, record_targets
from atlasbatch._science.control_cut import controls_bad
from atlasbatch._science.nightly import nightly_light_curve
from atlasbatch._science.nightly_options import NightlyOptions
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import main
from atlasbatch.testing import Emulator, Faults
from atlasbatch.testing._sky.lightcurve import HEADER

from .helpers import client_settings, fast, write_csv

Factory = Callable[..., Emulator]
EIGHT = ControlSetting(count=8, radius_arcsec=17.0)


def separation_arcsec(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine), arcseconds."""
    ra1, dec1, ra2, dec2 = map(math.radians, (*a, *b))
    h = (
        math.sin((dec2 - dec1) / 2) ** 2
        + math.cos(dec1) * math.cos(dec2) * math.sin((ra2 - ra1) / 2) ** 2
    )
    return math.degrees(2 * math.asin(math.sqrt(h))) * 3600


@pytest.mark.parametrize(("ra", "dec"), [(150.0, 2.0), (0.001, -30.0), (359.999, 60.0),
                                         (45.0, 89.999), (200.0, -89.999)])  # fmt: skip
def test_controls_sit_on_a_circle_in_atcleans_order(ra: float, dec: float) -> None:
    positions = control_positions(ra, dec, count=8, radius_arcsec=17.0)
    assert len(positions) == 8
    for position in positions:
        assert separation_arcsec((ra, dec), position) == pytest.approx(17.0, abs=1e-6)
        assert 0.0 <= position[0] < 360.0 and -90.0 < position[1] < 90.0
    for a, b in zip(positions, positions[1:] + positions[:1], strict=True):  # 45° apart
        assert separation_arcsec(a, b) == pytest.approx(2 * 17.0 * math.sin(math.pi / 8), rel=1e-4)


def test_control_two_of_eight_is_due_north_and_eight_due_east() -> None:
    """ATClean puts control k at k*360°/N from east towards north."""
    positions = control_positions(150.0, 2.0, count=8, radius_arcsec=17.0)
    north, east = positions[1], positions[7]
    assert north == (pytest.approx(150.0), pytest.approx(2.0 + 17 / 3600))
    assert east[0] > 150.0 and east[1] == pytest.approx(2.0, abs=1e-7)


def test_control_lines_encode_their_target_and_index() -> None:
    line = control_line(17, 3)
    assert line == 1_000_000_017_003
    assert control_link(line) == (17, 3)
    assert control_link(17) is None
    with pytest.raises(ValueError, match="index"):
        control_line(17, 1000)


def sample_targets(extra_rows: list[dict[str, object]] | None = None) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = [
        {"name": "SN A", "ra": 150.0, "dec": 2.0},
        {"name": "SN B", "ra": 10.0, "dec": -20.0},
        {"name": "A again", "ra": 150.0, "dec": 2.0},  # a duplicate of line 2
        {"name": "Ceres", "mpc_name": "1"},  # a moving object: no controls
    ]
    return rows + (extra_rows or [])


def test_every_position_target_gets_its_controls_and_a_duplicate_shares_them() -> None:
    targets = with_controls(read_targets(sample_targets()), EIGHT)
    controls = [t for t in targets.targets if t.control_of is not None]
    assert len(controls) == 3 * 8  # lines 2, 3 and 4; not the mpc row
    assert {t.control_of for t in controls} == {2, 3, 4}
    first = [t for t in controls if t.control_of == 2]
    assert [t.name for t in first][:2] == ["SN A_i001", "SN A_i002"]
    assert [t.control_index for t in first] == list(range(1, 9))
    assert all(t.line == control_line(2, t.control_index or 0) for t in first)
    # the duplicate row's controls ask what its representative's ask: no extra queries
    assert targets.duplicate_of[control_line(4, 5)] == control_line(2, 5)
    assert len(targets.unique) == 3 + 2 * 8
    again = with_controls(targets, EIGHT)  # idempotent: a list with controls is not doubled
    assert len(again.targets) == len(targets.targets)


def test_a_control_name_that_is_a_target_name_is_refused() -> None:
    rows = sample_targets([{"name": "SN A_i003", "ra": 20.0, "dec": 20.0}])
    with pytest.raises(InputError, match="SN A_i003"):
        with_controls(read_targets(rows), EIGHT)


@pytest.mark.parametrize(("count", "radius"), [(-1, 17.0), (1000, 17.0), (8, 0.0), (8, 1e4),
                                               (8, math.nan)])  # fmt: skip
def test_impossible_control_settings_are_refused(count: int, radius: float) -> None:
    with pytest.raises(InputError):
        ControlSetting(count=count, radius_arcsec=radius)


def test_the_ledger_keeps_the_controls_and_a_resume_must_ask_for_the_same(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1/forcedphot"
    targets = with_controls(read_targets(sample_targets()), EIGHT)
    with open_run(tmp_path, base_url=url) as ledger:
        record_control_setting(ledger, EIGHT)
        assert record_targets(ledger, targets) == 4 + 24
    with open_run(tmp_path, base_url=url) as ledger:
        record_control_setting(ledger, EIGHT)
        assert record_targets(ledger, targets) == 0  # the same controls, nothing new
        rows = {row.target.line: row.target for row in ledger.outcomes()}
        assert rows[control_line(3, 8)].control_of == 3
        assert rows[control_line(3, 8)].control_index == 8
        assert rows[control_line(3, 8)].name == "SN B_i008"
        for changed in (ControlSetting(count=8, radius_arcsec=20.0), ControlSetting()):
            with pytest.raises(RunMismatchError, match="--controls 8 --control-radius 17"):
                record_control_setting(ledger, changed)


def test_controls_may_be_added_to_a_run_started_without(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1/forcedphot"
    plain = read_targets(sample_targets())
    with open_run(tmp_path, base_url=url) as ledger:
        record_control_setting(ledger, ControlSetting())
        assert record_targets(ledger, plain) == 4
    with open_run(tmp_path, base_url=url) as ledger:
        record_control_setting(ledger, EIGHT)
        assert record_targets(ledger, with_controls(plain, EIGHT)) == 24


# --- the control cut ---------------------------------------------------------------------


def row(mjd: float, flux: int, error: int, obs: str, *, err: int = 0) -> str:
    return (
        f"{mjd:.6f}  19.000  0.100 {flux:5d} {error:4d} o {err:2d}   1.00 150.00000   2.00000 "
        f" 5000.00  5000.00 2.50 2.40 -60.0 -0.380 19.50 21.50 {obs}"
    )


def frame(*rows: str) -> pd.DataFrame:
    return parse_result("\n".join([HEADER, *rows]) + "\n", source="hand-made")


TARGET = frame(
    row(60000.30, 100, 10, "02a60000o0100o"),
    row(60000.31, 110, 10, "02a60000o0101o"),
    row(60000.32, 105, 10, "02a60000o0102o"),
)
#: Four controls. Exposure 0100: empty sky (one control has err=1 and is not counted);
#: 0101: every control sees ~100 µJy (a systematic); 0102: only one control has it.
CONTROLS = [
    frame(row(60000.30, 0, 10, "02a60000o0100o"), row(60000.31, 100, 10, "02a60000o0101o"),
          row(60000.32, 3, 10, "02a60000o0102o")),
    frame(row(60000.30, 5, 10, "02a60000o0100o"), row(60000.31, 110, 10, "02a60000o0101o")),
    frame(row(60000.31, 95, 10, "02a60000o0101o"), row(60000.30, -5, 10, "02a60000o0100o")),
    frame(row(60000.30, 900, 10, "02a60000o0100o", err=1), row(60000.31, 105, 10,
          "02a60000o0101o")),
]  # fmt: skip


def test_an_exposure_is_bad_when_its_controls_see_flux_or_too_few_see_it() -> None:
    options = NightlyOptions()
    bad = controls_bad(TARGET, CONTROLS, requested=4, options=options)
    assert bad.tolist() == [False, True, True]  # fine; 102.5±5 µJy is 20σ; 1 of 4 < 2 good
    fewer = NightlyOptions(controls_good_min=1)
    assert controls_bad(TARGET, CONTROLS, requested=4, options=fewer).tolist() == [
        False,
        True,
        False,
    ]


def test_the_nightly_table_rejects_controls_bad_exposures() -> None:
    nights = nightly_light_curve(TARGET, controls=CONTROLS, requested_controls=4)
    assert len(nights) == 1
    only = nights.iloc[0]
    assert (only["n_epochs"], only["n_used"], only["n_controls_bad"]) == (3, 1, 2)
    assert (only["uJy"], only["rejected_by"], only["controls"]) == (100, "controls_bad:2", 4)
    alone = nightly_light_curve(TARGET)  # no controls downloaded: no control cut
    assert alone.iloc[0]["n_used"] == 3 and alone.iloc[0]["controls"] == 0


def test_controls_with_no_measurement_of_an_exposure_make_it_bad() -> None:
    """As in ATClean: a control that has no measurement there is not a good one."""
    elsewhere = [frame(row(60001.3, 0, 10, "02a60001o0100o")) for _ in range(4)]
    assert controls_bad(TARGET, elsewhere, requested=4, options=NightlyOptions()).all()
    assert np.array_equal(
        controls_bad(TARGET.iloc[0:0], elsewhere, requested=4, options=NightlyOptions()),
        np.zeros(0, dtype=bool),
    )


# --- runs with controls --------------------------------------------------------------------


def positions(count: int) -> list[dict[str, object]]:
    return [{"name": f"SN {i:03d}", "ra": round(100.0 + 0.5 * i, 4), "dec": 10.0 + 0.1 * i,
             "mjd_min": 59650, "mjd_max": 59700} for i in range(count)]  # fmt: skip


@pytest.mark.anyio
async def test_a_run_with_controls_fetches_n_plus_one_tasks_per_target(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    rows = positions(3)
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(rows, out_dir=tmp_path, controls=3, control_radius=20.0)
    assert emu.stats()["tasks_created"] == 3 * 4 and emu.stats()["tasks_live"] == 0
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    controls = [o for o in report.outcomes if o.target.control_of is not None]
    assert len(controls) == 9
    # what the server was asked: each control 20" from its target
    asked = [(float(str(t["ra"])), float(str(t["dec"]))) for t in emu.tasks(include_archived=True)]
    for outcome in controls:
        target = next(r for r in rows if r["name"] == outcome.target.name.rsplit("_i", 1)[0])
        centre = (float(str(target["ra"])), float(str(target["dec"])))
        here = (outcome.target.ra or 0.0, outcome.target.dec or 0.0)
        assert separation_arcsec(centre, here) == pytest.approx(20.0, abs=1e-3)
        assert any(separation_arcsec(here, seen) < 0.01 for seen in asked)
    nights = report.nightly()
    assert set(nights["control_of"].dropna()) == {2, 3, 4}
    assert (nights.loc[nights["control_of"].isna(), "controls"] == 3).all()
    # resumed with the same controls: nothing is asked again; with others: refused
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        again = await session.run(rows, out_dir=tmp_path, controls=3, control_radius=20.0)
        assert len(again.outcomes) == 12
        with pytest.raises(RunMismatchError, match="--controls 3 --control-radius 20"):
            await session.run(rows, out_dir=tmp_path)
    assert emu.stats()["tasks_created"] == 12


def server_args(emu: Emulator) -> list[str]:
    config = emu.config
    return ["--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate)]  # fmt: skip


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("isolated")
def test_the_dry_run_shows_the_cost_of_controls(
    atlas_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = positions(30)
    rows.append({**rows[0], "name": "SN 000 again"})  # a duplicate: its controls too
    rows = [{**row, "mpc_name": ""} for row in rows]
    rows.append({"name": "Ceres", "ra": "", "dec": "", "mjd_min": "", "mjd_max": "",
                 "mpc_name": "1"})  # no controls for a moving object  # fmt: skip
    targets = write_csv(tmp_path / "sne.csv", rows)
    argv = ["fetch", str(targets), "--controls", "--dry-run", *server_args(atlas_emulator)]
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "32 rows" in shown and "271 distinct queries" in shown  # 31 + 30 x 8
    assert "--controls 8: 240 control positions, 8 around each target" in shown
    assert "271 tasks instead of 31 (8.74x)" in shown
    assert "271 tasks x" in shown and "1 task(s) at a time per user" in shown
    assert "SN 000_i001" not in shown  # the rows as parsed are the file's rows
    assert atlas_emulator.stats()["requests"] == {}


@pytest.mark.usefixtures("isolated")
def test_the_dry_run_counts_what_a_run_with_controls_sends(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    rows = positions(5)
    rows.append({**rows[0], "name": "SN 000 again"})  # a duplicate: its controls too
    targets = write_csv(tmp_path / "sne.csv", rows)
    argv = ["fetch", str(targets), "--controls", "3", *server_args(emu)]
    assert main([*argv, "--dry-run"]) == 0
    shown = capsys.readouterr().out
    assert "6 rows" in shown and "20 distinct queries" in shown and "(4x)" in shown
    planned = {line.split()[1]: int(line.split()[2]) for line in shown.splitlines()
               if line.strip().startswith(("POST", "DELETE"))}  # fmt: skip

    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    out = tmp_path / "run"
    assert main([*argv, "--out", str(out), "--no-plots"]) == 0
    sent = emu.stats()["requests"]
    assert isinstance(sent, dict)
    assert (sent["POST"], sent["DELETE"]) == (planned["/queue/"], planned["/queue/<id>/"])
    assert emu.stats()["tasks_created"] == 20 and emu.stats()["tasks_live"] == 0
    nights = pd.read_parquet(out / "photometry_nightly.parquet")
    controls = nights[nights["control_of"].notna()]
    assert set(controls["control_index"]) == {1, 2, 3}
    assert set(controls["control_of"]) == set(range(2, 8))  # the duplicate row's too
    assert (controls["target"].str.rsplit("_i", n=1).str[0].isin({r["name"] for r in rows})).all()
    assert (nights.loc[nights["control_of"].isna(), "controls"] == 3).all()
    outcomes = pd.read_csv(out / "outcomes.csv", dtype={"control_of": "Int64",
                                                         "control_index": "Int64"})  # fmt: skip
    assert len(outcomes) == 6 + 6 * 3 and set(outcomes["state"]) == {"downloaded"}
    linked = outcomes[outcomes["control_of"].notna()]
    assert outcomes["control_of"].isna().sum() == 6  # the file's rows
    assert [control_link(line) for line in linked["line"]] == list(
        zip(linked["control_of"], linked["control_index"], strict=True)
    )
    assert list(outcomes.columns[11:13]) == ["control_of", "control_index"]
    assert not list((out / "plots").glob("*_i00*.png"))  # controls are not plotted


# --- kill -9 ---------------------------------------------------------------------------------


def run_cli(command: list[str], emu: Emulator, *, kill_after: float | None, log: Path) -> None:
    """Run ``atlasbatch fetch`` as a user would; SIGKILL it after ``kill_after`` seconds."""
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    with log.open("ab") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            if kill_after is None:
                assert process.wait(timeout=180) == 0, log.read_text()
                return
            time.sleep(kill_after)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_kill_nine_during_a_run_with_controls_asks_each_control_exactly_once(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    rows = positions(40)
    targets = write_csv(tmp_path / "sne.csv", rows)
    emu = atlas_emulator_factory(
        task_seconds=0.01, user_slots=8, write_rate="40/1s", read_rate="400/1s",
        faults=Faults(drop_after_commit_rate=0.1, drop_before_commit_rate=0.05),
    )  # fmt: skip
    out, log = tmp_path / "run", tmp_path / "stderr.log"
    command = [
        sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
        "--controls", "2", "--control-radius", "17", "--no-plots", *server_args(emu),
    ]  # fmt: skip
    rng = random.Random(13)
    for _ in range(4):
        run_cli(command, emu, kill_after=rng.uniform(1.5, 4.0), log=log)
    run_cli(command, emu, kill_after=None, log=log)

    stats = emu.stats()
    assert stats["tasks_created"] == 40 * 3, stats  # every target and control exactly once
    assert stats["tasks_live"] == 0
    with (out / "outcomes.csv").open() as handle:
        outcomes = list(csv.DictReader(handle))
    assert len(outcomes) == 120 and {r["state"] for r in outcomes} == {"downloaded"}
    links = sorted(control_link(int(r["line"])) or (0, 0) for r in outcomes)
    assert links[40:] == sorted((line, k) for line in range(2, 42) for k in (1, 2))
    assert len(list((out / "lightcurves").glob("*.txt"))) == 120
    nights = pd.read_parquet(out / "photometry_nightly.parquet")
    assert nights["target_line"].nunique() == 120


def test_the_controls_of_a_moving_star_move_with_it() -> None:
    """Barnard's star walks 10″ a year: fixed controls would cross it within two years."""
    rows = [{"name": "Barnard", "ra": 269.448502, "dec": 4.73942,
             "pmra": -801.551, "pmdec": 10362.394, "epoch": 2016.0}]  # fmt: skip
    targets = with_controls(read_targets(rows), ControlSetting(count=4, radius_arcsec=17.0))
    controls = [t for t in targets.targets if t.control_of is not None]
    assert len(controls) == 4
    assert {(t.pmra, t.pmdec, t.epoch) for t in controls} == {(-801.551, 10362.394, 2016.0)}
    assert {t.window for t in controls} == {targets.targets[0].window}  # one POST for all
