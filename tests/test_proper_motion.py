"""Proper motion and epoch: read from the target list, sent to the server, kept in the ledger.

The end-to-end tests run against the emulator over loopback and assert what the server
received (its task JSON) and what the light curves hold: Barnard's star, fetched without its
motion, fades as it walks off the forced position; with it, it stays flat.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from atlasbatch import RunMismatchError, Session, Settings, State
from atlasbatch._cli.dryrun import plan_run
from atlasbatch._exceptions import TargetFileError
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._targets.read import read_targets
from atlasbatch.testing import Emulator
from atlasbatch.testing._sky.movers import HIGH_PM_STARS

from .helpers import client_settings, fast

Factory = Callable[..., Emulator]
BARNARD = HIGH_PM_STARS[0]  # Gaia DR3, epoch 2016.0: pmra -801.551, pmdec 10362.394 mas/yr
MOVING = {"pmra": BARNARD.pmra, "pmdec": BARNARD.pmdec, "epoch": BARNARD.epoch}


def barnard(name: str = "barnard", **motion: object) -> dict[str, object]:
    return {"name": name, "ra": BARNARD.ra, "dec": BARNARD.dec, **motion}


# --- reading ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pmra", "pmdec", "epoch"),
    [
        ("pmra", "pmdec", "epoch"),  # Gaia's names (and ours)
        ("pm_ra", "pm_dec", "ref_epoch"),  # Gaia's ref_epoch
        ("pmRA", "pmDE", "radec_epoch"),  # VizieR / SIMBAD
        ("pm_ra_cosdec", "pm_dec", "epoch"),  # astropy
        ("pmra_masyr", "pmdec_masyr", "radec_epoch_year"),
        ("PM RA", "PM-Dec", "Epoch"),  # spaces, hyphens and case
    ],
)
def test_motion_columns_are_found_under_their_usual_names(
    pmra: str, pmdec: str, epoch: str
) -> None:
    rows = [{"name": "s", "ra": 10.0, "dec": 20.0, pmra: "-801.5", pmdec: "10362.4", epoch: "2016"}]
    (target,) = read_targets(rows).targets
    assert (target.pmra, target.pmdec, target.epoch) == (-801.5, 10362.4, 2016.0)
    assert target.motion == (2016.0, -801.5, 10362.4)
    # the user's own columns still reach the outputs, as they spelled them
    assert dict(target.extra) == {pmra: "-801.5", pmdec: "10362.4", epoch: "2016"}


def test_every_bad_motion_cell_is_listed_by_line_and_column() -> None:
    rows = [
        {"name": "a", "ra": 1, "dec": 1, "pmra": "fast", "pmdec": "", "epoch": "2457000.5"},
        {"name": "b", "ra": 2, "dec": 1, "pmra": "1e6", "pmdec": "nan", "epoch": "B1950"},
        {"name": "c", "mpc_name": "Ceres", "pmra": "5", "pmdec": "1", "epoch": "60000"},
        {"name": "d", "ra": 3, "dec": 1, "pmra": "inf", "pmdec": "2", "epoch": "1850"},
        {"name": "e", "ra": 4, "dec": 1, "pmra": "1", "pmdec": "2", "epoch": "J2016.0"},
    ]
    with pytest.raises(TargetFileError) as caught:
        read_targets(rows)
    found = [(p.line, p.column, p.message) for p in caught.value.problems]
    assert found == [
        (2, "pmra", "pmra 'fast' is not a number (mas/yr)"),
        (2, "pmdec", "pmdec is missing (pmra is given): give both, 0 for none"),
        (2, "epoch", "epoch 2457000.5 is not a year between 1900 and 2100 (the decimal year "
                     "of RA/Dec, such as Gaia DR3's 2016.0); as a JD that is the year 2014.9"),
        (3, "pmra", "pmra 1000000 mas/yr is faster than any star (Barnard's star moves "
                    "10,400 mas/yr): is it in mas/yr?"),
        (3, "pmdec", "pmdec 'nan' is not a finite number"),
        (3, "epoch", "epoch 'B1950' is Besselian: give the Julian year of the position "
                     "(J2000.0 …)"),
        (4, "pmra", "proper motion is for ra/dec targets; an mpc_name target follows its orbit"),
        (4, "epoch", "epoch 60000 is not a year between 1900 and 2100 (the decimal year of "
                     "RA/Dec, such as Gaia DR3's 2016.0); as an MJD that is the year 2023.1"),
        (5, "pmra", "pmra 'inf' is not a finite number"),
        (5, "epoch", "epoch 1850 is not a year between 1900 and 2100 (the decimal year of "
                     "RA/Dec, such as Gaia DR3's 2016.0)"),
    ]  # fmt: skip
    assert not any(p.line == 6 for p in caught.value.problems)  # "J2016.0" is fine


def test_a_lone_motion_column_or_epoch_only_passes_through_as_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = [{"name": "a", "ra": 1, "dec": 1, "pm_ra": "5", "epoch": "60000.5"}]
    with caplog.at_level(logging.WARNING, logger="atlasbatch"):
        (target,) = read_targets(rows).targets  # no error: neither is read
    assert (target.pmra, target.pmdec, target.epoch, target.motion) == (None, None, None, None)
    assert dict(target.extra) == {"pm_ra": "5", "epoch": "60000.5"}
    assert "column 'pm_ra' has no pmdec partner" in caplog.text


def test_the_epoch_is_rounded_to_the_servers_tenth_of_a_year_and_sent_as_a_string() -> None:
    rows = [barnard("hip", pmra=-798.6, pmdec=10328.1, epoch=1991.25)]  # Hipparcos' epoch
    (target,) = read_targets(rows).targets
    assert target.epoch == 1991.2
    assert target.motion_fields() == {
        "propermotion_ra": -798.6, "propermotion_dec": 10328.1, "radec_epoch_year": "1991.2",
    }  # fmt: skip


def test_no_motion_or_a_zero_motion_sends_nothing_and_an_epoch_alone_is_ignored() -> None:
    rows = [
        {"name": "a", "ra": 1, "dec": 1, "pmra": "", "pmdec": "", "epoch": ""},
        {"name": "b", "ra": 2, "dec": 1, "pmra": 0, "pmdec": 0, "epoch": 2016.0},
        {"name": "c", "ra": 3, "dec": 1, "pmra": "", "pmdec": "", "epoch": 2016.0},
    ]
    targets = read_targets(rows).targets
    assert [t.motion for t in targets] == [None, None, None]
    assert [t.motion_fields() for t in targets] == [{}, {}, {}]
    assert {t.window for t in targets} == {(None, None, False)}  # one POST for all three


def test_motion_without_an_epoch_is_accepted_as_the_server_accepts_it_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="atlasbatch"):
        (target,) = read_targets([barnard(pmra=BARNARD.pmra, pmdec=BARNARD.pmdec)]).targets
    assert target.motion_fields() == {
        "propermotion_ra": BARNARD.pmra, "propermotion_dec": BARNARD.pmdec
    }  # fmt: skip
    assert "1 target(s) have proper motion but no epoch" in caplog.text


def test_rows_that_move_differently_are_different_queries_and_posts() -> None:
    rows = [
        barnard("still"),
        barnard("moving", **MOVING),
        barnard("again", **MOVING),  # the same question as "moving": asked once
        barnard("other epoch", **{**MOVING, "epoch": 2000.0}),
        {"name": "far", "ra": 20.0, "dec": 5.0, **MOVING},  # moves like "moving": same POST
    ]
    targets = read_targets(rows)
    assert [t.name for t in targets.unique] == ["still", "moving", "other epoch", "far"]
    assert targets.duplicate_of == {4: 3}
    plan = plan_run(targets, Settings())
    assert (plan.queries, plan.windows, plan.posts) == (4, 3, 3)


# --- the ledger ---------------------------------------------------------------------------

_OLD_TARGETS = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE targets (
    line INTEGER PRIMARY KEY, name TEXT NOT NULL, rep INTEGER,
    ra REAL, dec REAL, mpc_name TEXT, mjd_min REAL, mjd_max REAL, use_reduced INTEGER NOT NULL,
    extra TEXT NOT NULL, state TEXT NOT NULL, task_id INTEGER, error TEXT, path TEXT,
    resubmits INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
INSERT INTO meta VALUES ('schema_version', '1'), ('run_id', 'cafe0123');
INSERT INTO targets (line, name, rep, ra, dec, mpc_name, mjd_min, mjd_max, use_reduced, extra,
    state, updated) VALUES (2, 'old', 2, 10.0, 20.0, NULL, NULL, NULL, 0, '{}', 'pending', 0);
"""


def test_a_ledger_from_before_motion_gets_the_columns_and_its_rows_still_match(
    tmp_path: Path,
) -> None:
    path = tmp_path / "atlasbatch.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(_OLD_TARGETS)
    ledger = Ledger(path)
    try:
        (target,) = read_targets([{"name": "old", "ra": 10.0, "dec": 20.0}]).targets
        assert ledger.add_targets([target], {}) == 0  # the same row: accepted, nothing new
        (row,) = ledger.outcomes()
        assert (row.target.pmra, row.target.pmdec, row.target.epoch) == (None, None, None)
        assert ledger.run_id == "cafe0123"
    finally:
        ledger.close()
    with sqlite3.connect(path) as db:
        columns = {r[1] for r in db.execute("PRAGMA table_info(targets)")}
    assert {"pmra", "pmdec", "epoch"} <= columns


# --- end to end ---------------------------------------------------------------------------


async def _run(emu: Emulator, rows: list[dict[str, Any]], out: Path) -> Any:
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        return await session.run(rows, out_dir=out)


def _tasks_by_position(emu: Emulator) -> dict[str, dict[str, Any]]:
    return {f"{t['ra']:.6f}": t for t in emu.tasks(include_archived=True)}


@pytest.mark.anyio
async def test_the_server_receives_each_batchs_motion_in_its_own_post(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(observations_per_day=0.02))
    rows = [
        {"name": "a", "ra": 10.0, "dec": 20.0},
        {"name": "b", "ra": 11.0, "dec": 20.0, **MOVING},
        {"name": "c", "ra": 12.0, "dec": 20.0, **MOVING},
        {"name": "d", "ra": 13.0, "dec": 20.0, "pmra": 50.0, "pmdec": -20.0},  # no epoch
    ]
    report = await _run(emu, rows, tmp_path)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert emu.stats()["requests"]["POST"] == 3  # still; Barnard's motion; d's motion
    tasks = _tasks_by_position(emu)
    sent = {
        ra: (t["radec_epoch_year"], t["propermotion_ra"], t["propermotion_dec"])
        for ra, t in tasks.items()
    }
    assert sent == {
        "10.000000": (None, None, None),
        "11.000000": ("2016.0", BARNARD.pmra, BARNARD.pmdec),
        "12.000000": ("2016.0", BARNARD.pmra, BARNARD.pmdec),
        "13.000000": (None, 50.0, -20.0),
    }
    with sqlite3.connect(tmp_path / "atlasbatch.sqlite3") as db:
        kept = db.execute("SELECT name, pmra, pmdec, epoch FROM targets ORDER BY line").fetchall()
    assert kept[1] == ("b", BARNARD.pmra, BARNARD.pmdec, 2016.0)
    assert kept[3] == ("d", 50.0, -20.0, None)


@pytest.mark.anyio
async def test_a_high_proper_motion_star_fades_without_its_motion_and_stays_flat_with_it(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast())
    rows = [
        {**barnard("without"), "use_reduced": 1},
        {**barnard("with", **MOVING), "use_reduced": 1},
    ]
    report = await _run(emu, rows, tmp_path)
    curves: dict[str, pd.DataFrame] = {o.target.name: o.data for o in report.outcomes}
    years = {name: 2000 + (c["MJD"] - 51544.5) / 365.25 for name, c in curves.items()}

    still, moving = curves["without"], curves["with"]
    late = years["without"] > 2018  # two years on the star is 20″ away: nothing left
    assert still.loc[late, "uJy"].abs().median() < 50
    near = (years["without"] - 2016.0).abs() < 0.1  # within 1″ of the forced position
    assert still.loc[near, "uJy"].median() > 0.8 * BARNARD.flux
    assert np.allclose(still["Dec"], BARNARD.dec, atol=1e-4)  # forced where it was sent

    assert moving["uJy"].median() == pytest.approx(BARNARD.flux, rel=0.05)
    assert (moving["uJy"] > 0.8 * BARNARD.flux).mean() > 0.9  # flat, bar the bad points
    # the forced position follows the star: RA/Dec columns move 10.4″ a year north
    slope = np.polyfit(years["with"], moving["Dec"] * 3.6e6, 1)[0]
    assert slope == pytest.approx(BARNARD.pmdec, rel=0.01)


@pytest.mark.anyio
async def test_a_resume_with_another_motion_is_refused(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(observations_per_day=0.02))
    await _run(emu, [barnard(**MOVING)], tmp_path)
    with pytest.raises(RunMismatchError, match="line 2"):
        await _run(emu, [barnard(**{**MOVING, "pmdec": 10000.0})], tmp_path)
    report = await _run(emu, [barnard(**MOVING)], tmp_path)  # the same list resumes
    assert [o.state for o in report.outcomes] == [State.DOWNLOADED]
    assert emu.stats()["requests"]["POST"] == 1
