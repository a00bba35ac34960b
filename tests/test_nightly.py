"""Nightly light curves: cuts, nights, clipped weighted means, and photometry_nightly.parquet.

The unit tests read small result files written here by hand and check the table against
sums done by hand; the end-to-end tests fetch from the emulator over loopback and check the
table against the light-curve files the run stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlasbatch import Session
from atlasbatch._exceptions import InputError
from atlasbatch._outputs.nightly_files import write_nightly_table
from atlasbatch._outputs.results import parse_result
from atlasbatch._runs.rundir import open_run
from atlasbatch._science.clipping import clipped_means
from atlasbatch._science.nightly import nightly_light_curve
from atlasbatch._science.nightly_options import NightlyOptions
from atlasbatch._science.nights import night_numbers
from atlasbatch.cli import main
from atlasbatch.testing import Emulator
from atlasbatch.testing._sky.lightcurve import HEADER

from .helpers import client_settings, fast, write_csv

Factory = Callable[..., Emulator]


def exposure(
    mjd: float, flux: int, error: int, *, obs: str, filt: str = "o", err: int = 0,
    chi: float = 1.0,
) -> str:  # fmt: skip
    """One result-file row in the server's format (only the columns the nightly step reads
    matter; the others are plausible constants)."""
    mag = 23.9 - 2.5 * math.log10(abs(flux) or 1)
    return (
        f"{mjd:.6f} {math.copysign(mag, flux):7.3f} {1.0857 * error / max(abs(flux), 1):6.3f} "
        f"{flux:5d} {error:4d} {filt} {err:2d} {chi:6.2f} 150.00000   2.00000  5000.00  "
        f"5000.00 2.50 2.40 -60.0 -0.380 19.50 21.50 {obs}"
    )


def light_curve(*rows: str) -> pd.DataFrame:
    return parse_result("\n".join([HEADER, *rows]) + "\n", source="hand-made")


def wmean(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """The inverse-variance weighted mean and its error, by hand."""
    weights = [1 / e**2 for _, e in pairs]
    return sum(f * w for (f, _), w in zip(pairs, weights, strict=True)) / sum(weights), (
        1 / math.sqrt(sum(weights))
    )


HAND_MADE = light_curve(
    # night 60000 at Haleakalā (02a), orange: three good exposures and one far outlier
    exposure(60000.300, 100, 10, obs="02a60000o0100o"),
    exposure(60000.311, 120, 20, obs="02a60000o0101o"),
    exposure(60000.322, 90, 10, obs="02a60000o0102o"),
    exposure(60000.333, 5000, 10, obs="02a60000o0103o"),
    # the same night in cyan: its own row
    exposure(60000.400, 30, 10, obs="02a60000o0200c", filt="c"),
    # night 60001: one good exposure, the others fail one cut each
    exposure(60001.300, 50, 10, obs="02a60001o0100o"),
    exposure(60001.311, 400, 10, obs="02a60001o0101o", err=1),
    exposure(60001.322, 60, 200, obs="02a60001o0102o"),
    exposure(60001.333, 70, 10, obs="02a60001o0103o", chi=15.0),
    # El Sauce (04a): 19:19 and 22:24 local time on one evening, either side of 0 h UTC
    exposure(60002.970, 40, 10, obs="04a60002o0500c", filt="c"),
    exposure(60003.100, 60, 10, obs="04a60003o0010c", filt="c"),
    # Sutherland (03a): a night whose only exposure fails
    exposure(60003.850, 80, 300, obs="03a60003o0300o", err=2),
)


def night(table: pd.DataFrame, *, site: str, night: int, filt: str) -> pd.Series:
    rows = table[(table["site"] == site) & (table["night"] == night) & (table["F"] == filt)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_a_night_is_the_weighted_mean_of_what_survives_the_cuts_and_the_clip() -> None:
    table = nightly_light_curve(HAND_MADE)
    assert len(table) == 5
    first = night(table, site="02a", night=60000, filt="o")
    mean, error = wmean([(100, 10), (120, 20), (90, 10)])  # 5000 is clipped
    assert first["uJy"] == pytest.approx(mean) and first["duJy"] == pytest.approx(error)
    assert (first["n_epochs"], first["n_used"], first["n_rejected"]) == (4, 3, 1)
    assert (first["n_clipped"], first["rejected_by"]) == (1, "clipped:1")
    assert first["MJD"] == pytest.approx((60000.300 + 60000.311 + 60000.322) / 3)
    chi2 = sum(((f - mean) / e) ** 2 for f, e in [(100, 10), (120, 20), (90, 10)]) / 2
    assert first["x2norm"] == pytest.approx(chi2)
    assert first["detected"]
    assert first["mag_ab"] == pytest.approx(23.9 - 2.5 * math.log10(mean))
    assert first["mag_ab_err"] == pytest.approx(2.5 / math.log(10) * error / mean)
    assert first["mag_limit"] == pytest.approx(23.9 - 2.5 * math.log10(3 * error))

    cyan = night(table, site="02a", night=60000, filt="c")
    assert (cyan["uJy"], cyan["duJy"], cyan["n_used"]) == (30, 10, 1)

    second = night(table, site="02a", night=60001, filt="o")
    assert (second["uJy"], second["duJy"], second["n_used"], second["n_rejected"]) == (50, 10, 1, 3)
    assert second["rejected_by"] == "err_code:1;large_duJy:1;bad_chi:1"
    assert (second["n_err_code"], second["n_large_duJy"], second["n_bad_chi"]) == (1, 1, 1)
    assert second["snr"] == pytest.approx(5.0) and second["detected"]  # 5 sigma >= 3


def test_a_night_that_straddles_0h_utc_is_one_night() -> None:
    table = nightly_light_curve(HAND_MADE)
    chile = night(table, site="04a", night=60003, filt="c")
    mean, error = wmean([(40, 10), (60, 10)])
    assert (chile["uJy"], chile["duJy"], chile["n_used"]) == (mean, pytest.approx(error), 2)
    assert set(table["site"]) == {"02a", "03a", "04a"}


def test_a_night_whose_exposures_all_fail_keeps_its_row_without_a_flux() -> None:
    table = nightly_light_curve(HAND_MADE)
    empty = night(table, site="03a", night=60004, filt="o")  # 20:24 UTC: 22:24 local
    assert math.isnan(empty["uJy"]) and math.isnan(empty["duJy"])
    assert (empty["n_epochs"], empty["n_used"], empty["rejected_by"]) == (1, 0, "err_code:1")
    assert empty["MJD"] == pytest.approx(60003.850)
    assert not empty["detected"] and math.isnan(empty["mag_limit"])


def test_the_cut_thresholds_are_options() -> None:
    loose = NightlyOptions(max_duJy=1000.0, max_chi=20.0, clip_sigma=1000.0)
    table = nightly_light_curve(HAND_MADE, options=loose)
    first = night(table, site="02a", night=60000, filt="o")
    assert first["n_used"] == 4  # nothing clipped at 1000 sigma
    second = night(table, site="02a", night=60001, filt="o")
    assert second["rejected_by"] == "err_code:1"  # err != 0 is not a threshold
    assert second["uJy"] == pytest.approx(wmean([(50, 10), (60, 200), (70, 10)])[0])
    with pytest.raises(InputError, match="max_chi"):
        NightlyOptions(max_chi=-1.0)


@pytest.mark.parametrize(
    ("site", "evening", "morning", "expected"),
    [
        ("01a", 60000.22, 60000.64, 60000),  # Mauna Loa: 19:17 to 05:22 local, one MJD
        ("02a", 60000.22, 60000.64, 60000),  # Haleakalā
        ("03a", 60000.74, 60001.12, 60001),  # Sutherland: 19:45 to 04:53 local (UTC+2)
        ("04a", 60000.98, 60001.40, 60001),  # El Sauce: 19:31 to 05:36 local (UTC-4)
        ("05r", 60000.85, 60001.25, 60001),  # Teide: 20:24 to 06:00 local (UTC)
    ],
)
def test_every_exposure_of_a_local_night_gets_one_night_number(
    site: str, evening: float, morning: float, expected: int
) -> None:
    mjd = np.linspace(evening, morning, 50)
    nights = night_numbers(mjd, np.full(mjd.shape, site, dtype=object))
    assert set(nights.tolist()) == {expected}
    # and the next evening is the next night
    after = night_numbers(np.array([evening + 1.0]), np.array([site], dtype=object))
    assert after.tolist() == [expected + 1]


def test_an_unknown_site_is_counted_from_noon_utc(caplog: pytest.LogCaptureFixture) -> None:
    nights = night_numbers(np.array([60000.49, 60000.51]), np.array(["09z", "09z"], dtype=object))
    assert nights.tolist() == [60000, 60001]
    assert "09z" in caplog.text


def reference_clip(values: list[float], errors: list[float]) -> tuple[float, int]:
    """ATClean's loop for one group, written out plainly: (mean, kept)."""
    x, dx = np.array(values), np.array(errors)
    kept = np.ones(len(x), dtype=bool)
    if len(x) <= 1:
        return (float(x[0]) if len(x) else math.nan), len(x)
    centre = float(np.median(x))
    for _ in range(9):
        new = np.abs(x - centre) <= 3 * dx
        changed = bool((new != kept).any())
        kept = new
        if kept.sum() == 0:
            return math.nan, 0
        w = 1 / dx[kept] ** 2
        centre = float((x[kept] * w).sum() / w.sum())
        if not changed or kept.sum() <= 1:
            break
    return centre, int(kept.sum())


groups = st.lists(
    st.lists(st.tuples(st.integers(-500, 5000), st.integers(1, 200)), min_size=0, max_size=6),
    min_size=1,
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(groups)
def test_all_groups_clipped_together_match_the_plain_loop(
    data: list[list[tuple[int, int]]],
) -> None:
    values = np.array([v for group in data for v, _ in group], dtype=np.float64)
    errors = np.array([e for group in data for _, e in group], dtype=np.float64)
    codes = np.array([g for g, group in enumerate(data) for _ in group], dtype=np.int64)
    result = clipped_means(values, errors, codes, size=len(data))
    for g, group in enumerate(data):
        mean, kept = reference_clip([v for v, _ in group], [e for _, e in group])
        assert result.kept[g] == kept
        assert result.clipped[g] == len(group) - kept
        if math.isnan(mean):
            assert math.isnan(result.mean[g])
        else:
            assert result.mean[g] == pytest.approx(mean)


# --- end to end ------------------------------------------------------------------------


def server_args(emu: Emulator) -> list[str]:
    config = emu.config
    return ["--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate)]  # fmt: skip


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def targets_file(path: Path, count: int) -> Path:
    rows = [
        {"name": f"SN {i}", "ra": 150.0 + i, "dec": 2.0 + i, "mjd_min": 59650, "mjd_max": 59700}
        for i in range(count)
    ]
    return write_csv(path, rows)


@pytest.mark.usefixtures("isolated")
def test_fetch_writes_the_nightly_table_of_what_it_stored(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets, out = targets_file(tmp_path / "sne.csv", 3), tmp_path / "run"
    argv = ["fetch", str(targets), "--out", str(out), "--no-plots", "--csv", *server_args(emu)]
    assert main(argv) == 0
    table = pd.read_parquet(out / "photometry_nightly.parquet")
    assert (out / "photometry_nightly.csv").is_file()
    assert set(table["target"]) == {"SN 0", "SN 1", "SN 2"}
    assert table["control_of"].isna().all()
    assert (table["n_used"] + table["n_rejected"] == table["n_epochs"]).all()
    per_reason = table[[c for c in table.columns if c.startswith("n_") and c not in
                        ("n_epochs", "n_used", "n_rejected")]].sum(axis=1)  # fmt: skip
    assert (per_reason == table["n_rejected"]).all()
    for name, rows in table.groupby("target"):
        stored = parse_result((out / "lightcurves" / f"{name}.txt").read_text(), source=name)
        assert rows["n_epochs"].sum() == len(stored)  # every exposure in exactly one night
        assert rows["task_id"].nunique() == 1
    # one night checked by hand against the stored file: all its exposures used
    clean = table[(table["n_rejected"] == 0) & (table["n_epochs"] >= 2)].iloc[0]
    stored = parse_result(
        (out / "lightcurves" / f"{clean['target']}.txt").read_text(), source="stored"
    )
    site = stored["Obs"].str.slice(0, 3)
    same = stored[(site == clean["site"]) & (stored["F"] == clean["F"])
                  & ((stored["MJD"] - clean["MJD"]).abs() < 0.5)]  # fmt: skip
    assert len(same) == clean["n_epochs"]
    mean, error = wmean(list(zip(same["uJy"].astype(float), same["duJy"].astype(float),
                                 strict=True)))  # fmt: skip
    assert clean["uJy"] == pytest.approx(mean) and clean["duJy"] == pytest.approx(error)

    # the same command again: nothing new, so the table is not rewritten
    before = (out / "photometry_nightly.parquet").stat().st_mtime_ns
    assert main(argv) == 0
    assert (out / "photometry_nightly.parquet").stat().st_mtime_ns == before
    assert emu.stats()["tasks_created"] == 3


@pytest.mark.usefixtures("isolated")
def test_nightly_options_and_no_nightly(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = targets_file(tmp_path / "sne.csv", 2)
    strict, off = tmp_path / "strict", tmp_path / "off"
    common = [str(targets), "--no-plots", *server_args(emu)]
    assert main(["fetch", *common, "--out", str(strict), "--max-dujy", "1"]) == 0
    table = pd.read_parquet(strict / "photometry_nightly.parquet")
    assert table["n_used"].sum() == 0  # every exposure has duJy above 1 µJy
    assert (
        table["n_large_duJy"].sum() + table["n_err_code"].sum() + table["n_incomplete"].sum()
        == table["n_epochs"].sum()
    )
    assert main(["fetch", *common, "--out", str(off), "--no-nightly"]) == 0
    assert not (off / "photometry_nightly.parquet").exists()
    assert main(["fetch", *common, "--out", str(off), "--max-chi", "-3"]) == 2  # refused


@pytest.mark.anyio
async def test_the_report_gives_the_same_nights_as_each_light_curve(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    rows = [{"name": f"SN {i}", "ra": 10.0 + i, "dec": 5.0, "mjd_min": 59650, "mjd_max": 59700}
            for i in range(2)]  # fmt: skip
    rows.append({**rows[0], "name": "SN 0 again"})  # a duplicate row: asked once, reported twice
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(rows)
    nights = report.nightly()
    assert set(nights["target"]) == {"SN 0", "SN 1", "SN 0 again"}
    for outcome in report.outcomes:
        assert outcome.data is not None
        own = nights[nights["target_line"] == outcome.target.line].drop(
            columns=["target", "target_line", "control_of", "control_index", "task_id"]
        )
        expected = nightly_light_curve(outcome.data)
        pd.testing.assert_frame_equal(own.reset_index(drop=True), expected)
    assert emu.stats()["tasks_created"] == 2


@pytest.mark.usefixtures("isolated")
def test_a_rebuild_reads_again_only_the_families_whose_files_changed(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    # a batch of one family each (the cache keeps one entry per batch: test_nightly_batch)
    monkeypatch.setattr("atlasbatch._outputs.nightly_batch.FAMILIES_PER_BATCH", 1)
    targets, out = targets_file(tmp_path / "sne.csv", 3), tmp_path / "run"
    argv = ["fetch", str(targets), "--out", str(out), "--no-plots", "--controls", "2"]
    assert main([*argv, *server_args(emu)]) == 0
    before = pd.read_parquet(out / "photometry_nightly.parquet")
    assert len(list((out / ".nightly-cache").glob("*.parquet"))) == 3  # one per family
    # a control's file changes (as a refresh would change it): its family alone is redone
    changed = out / "lightcurves" / "SN 1_i002.txt"
    changed.write_text(changed.read_text() + "\n")
    with open_run(out, base_url=emu.base_url) as ledger:
        ledger.set_meta("nightly_stamp", "")
        with caplog.at_level("INFO", logger="atlasbatch._outputs.nightly_files"):
            assert write_nightly_table(ledger, out)
    assert "(1 families read again)" in caplog.text
    after = pd.read_parquet(out / "photometry_nightly.parquet")
    pd.testing.assert_frame_equal(before, after)  # the same rows: only a blank line was added
    assert len(list((out / ".nightly-cache").glob("*.parquet"))) == 3  # the old entry pruned
