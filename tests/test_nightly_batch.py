"""The nightly table in batches: many families averaged at once give each family's own rows,
and the cache keeps one entry per batch, redoing only the batches whose files changed.

The reference is :func:`~atlasbatch._outputs.nightly_table.family_tables`, which averages one family
at a time from files parsed one by one.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from atlasbatch._models import State, Target
from atlasbatch._outputs import nightly_batch
from atlasbatch._outputs.nightly_batch import batch_rows, batches
from atlasbatch._outputs.nightly_families import ledger_families
from atlasbatch._outputs.nightly_files import write_nightly_table
from atlasbatch._outputs.nightly_table import (
    Family,
    NightlyTableWriter,
    SourceCurve,
    families,
    family_tables,
    with_provenance,
)
from atlasbatch._outputs.results import parse_result
from atlasbatch._runs.rundir import open_run
from atlasbatch._science.nightly_options import NightlyOptions
from atlasbatch.cli import main
from atlasbatch.testing import Emulator
from atlasbatch.testing._sky.lightcurve import HEADER

from .helpers import fast, write_csv

Factory = Callable[..., Emulator]
_SITES = ("01a", "02a", "04a")


def _row(mjd: float, flux: float, error: float, obs: str, *, err: int = 0, pa_deg: bool) -> str:
    extra = " 12.5" if pa_deg else ""
    return (
        f"{mjd:.6f} 19.000 0.100 {round(flux):d} {round(error):d} {obs[-1]} {err:d} 1.20 "
        f"150.00000 2.00000 5000.00 5000.00 2.50 2.40 -60.0 -0.380 19.50{extra} 21.50 {obs}"
    )


def _curve(seed: int, exposures: list[tuple[float, str]], *, loud: bool = False,
           pa_deg: bool = False) -> str:  # fmt: skip
    """A light curve of the given exposures: noisy fluxes, some error codes and outliers;
    ``loud``: a control that sees flux on a third of them (the control cut's business)."""
    rng = np.random.default_rng(seed)
    header = HEADER
    if pa_deg:
        header = HEADER.replace("mag5sig", "mag5sig PA_DEG")
    rows = []
    for k, (mjd, obs) in enumerate(exposures):
        flux = rng.normal(0.0 if seed % 3 else 200.0, 15.0) + (400.0 if loud and k % 3 == 0 else 0)
        flux += 5000.0 if rng.random() < 0.05 else 0.0
        error = rng.uniform(8.0, 30.0) if rng.random() > 0.05 else 300.0
        rows.append(_row(mjd, flux, error, obs, err=int(rng.random() < 0.05), pa_deg=pa_deg))
    return "\n".join([header, *rows]) + "\n"


def _exposures(nights: int) -> list[tuple[float, str]]:
    found = []
    for night in range(nights):
        site = _SITES[night % 3]
        for k in range(4):
            mjd = 60000.2 + night + 0.011 * k
            found.append((mjd, f"{site}{60000 + night}o{k:04d}{'oc'[night % 2]}"))
    return found


def _write(folder: Path, name: str, text: str) -> str:
    (folder / "lightcurves").mkdir(exist_ok=True)
    (folder / "lightcurves" / name).write_text(text)
    return f"lightcurves/{name}"


def _source(line: int, name: str, key: str | None, **control: int) -> SourceCurve:
    return SourceCurve(Target(line=line, name=name, ra=1.0, dec=2.0, **control), key, line * 10)


def _hand_made_run(folder: Path) -> list[SourceCurve]:
    """Targets with controls (some loud, one unreadable, one without rows), a duplicate
    row, a target whose file cannot be parsed, one with PA_DEG, one without controls."""
    exposures = _exposures(12)
    curves = []
    for t in range(6):
        line = 2 + t
        text = _curve(t, exposures, pa_deg=t == 4)
        if t == 3:
            text = "<html>not a light curve</html>\n"
        key = _write(folder, f"t{t}.txt", text)
        curves.append(_source(line, f"t{t}", key))
        if t == 1:  # a duplicate row: the same file, reported twice
            curves.append(_source(50, "t1 again", key))
        for c in range(1, 5 if t != 5 else 1):
            text = _curve(100 * t + c, exposures, loud=c <= 2 and t % 2 == 0)
            if (t, c) == (2, 3):
                text = "<html>oops</html>\n"
            elif (t, c) == (0, 4):
                text = HEADER + "\n"
            key = _write(folder, f"t{t}_i{c}.txt", text)
            curves.append(_source(1000 + 10 * t + c, f"t{t}_i{c}", key, control_of=line,
                                  control_index=c))  # fmt: skip
    return curves


def _reference(
    folder: Path, fams: list[Family], options: NightlyOptions, writer: NightlyTableWriter
) -> pa.Table:
    def load(key: Hashable) -> pd.DataFrame | None:
        path = folder / str(key)
        text = path.read_text()
        return None if text.startswith("<") else parse_result(text, source=path.name)

    parts = [
        writer.to_arrow(with_provenance(curve, table))
        for family in fams
        for curve, table in family_tables(family, load, options)
    ]
    return pa.concat_tables(parts)


def test_a_batch_of_families_gives_each_familys_own_rows(tmp_path: Path) -> None:
    fams = families(_hand_made_run(tmp_path))
    options = NightlyOptions()
    with NightlyTableWriter(tmp_path / "reference.parquet") as writer:
        schema = writer.schema
        expected = _reference(tmp_path, fams, options, writer)
    table = batch_rows(fams, tmp_path, options=options, schema=schema)
    assert table.num_rows > 100
    frame = table.to_pandas()
    assert frame["n_controls_bad"].sum() > 0  # the control cut was exercised
    assert frame["n_clipped"].sum() > 0
    assert set(frame["target"]) >= {"t1 again", "t2_i1", "t4"}
    pd.testing.assert_frame_equal(frame, expected.to_pandas())
    # the same in batches of one family
    parts = [batch_rows([f], tmp_path, options=options, schema=schema) for f in fams]
    pd.testing.assert_frame_equal(pa.concat_tables(parts).to_pandas(), frame)


def test_batches_end_where_the_families_say_or_when_full(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fams = families(_hand_made_run(tmp_path))
    assert [len(b) for b in batches(fams, tmp_path)] == [len(fams)]  # a few small families
    monkeypatch.setattr(nightly_batch, "BYTES_PER_BATCH", 1)
    assert [len(b) for b in batches(fams, tmp_path)] == [1] * len(fams)
    monkeypatch.setattr(nightly_batch, "BYTES_PER_BATCH", 1 << 30)
    monkeypatch.setattr(nightly_batch, "FAMILIES_PER_BATCH", 2)
    cut = [len(b) for b in batches(fams, tmp_path)]
    assert sum(cut) == len(fams)
    assert 1 < len(cut) < len(fams)
    # a boundary depends on the family alone: leaving a family out moves no other one
    fewer = [len(b) for b in batches(fams[1:], tmp_path)]
    expected = [cut[0] - 1, *cut[1:]] if cut[0] > 1 else cut[1:]
    assert fewer == expected


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("isolated")
def test_the_cache_keeps_a_batch_per_entry_and_redoes_only_the_changed_batch(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    monkeypatch.setattr(nightly_batch, "FAMILIES_PER_BATCH", 2)
    rows = [{"name": f"SN {i}", "ra": 150.0 + i, "dec": 2.0, "mjd_min": 59650, "mjd_max": 59700}
            for i in range(8)]  # fmt: skip
    targets, out = write_csv(tmp_path / "sne.csv", rows), tmp_path / "run"
    limits = ["--write-rate", str(emu.config.write_rate), "--read-rate", str(emu.config.read_rate)]
    argv = ["fetch", str(targets), "--out", str(out), "--no-plots", "--base-url", emu.base_url,
            *limits]  # fmt: skip
    assert main(argv) == 0
    before = pd.read_parquet(out / "photometry_nightly.parquet")
    assert set(before["target"]) == {row["name"] for row in rows}
    with open_run(out, base_url=emu.base_url) as ledger:
        curves = [SourceCurve(r.target, r.path, r.task_id) for r in ledger.outcomes()]
    cut = list(batches(families(curves), out))
    entries = list((out / ".nightly-cache").glob("*.parquet"))
    assert 1 < len(entries) == len(cut) < len(rows)  # one entry per batch, not per family
    changed = next(b for b in cut if len(b) > 1)
    path = out / str(changed[0].members[0].key)
    path.write_text(path.read_text() + "\n")  # as a refresh would change it
    with open_run(out, base_url=emu.base_url) as ledger:
        ledger.set_meta("nightly_stamp", "")
        with caplog.at_level("INFO", logger="atlasbatch._outputs.nightly_files"):
            assert write_nightly_table(ledger, out)
    assert f"({len(changed)} families read again)" in caplog.text
    pd.testing.assert_frame_equal(before, pd.read_parquet(out / "photometry_nightly.parquet"))
    assert len(list((out / ".nightly-cache").glob("*.parquet"))) == len(cut)  # old one pruned


@pytest.mark.usefixtures("isolated")
def test_the_ledgers_families_stream_as_the_list_gives_them(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    rows: list[dict[str, object]] = [
        {"name": f"SN {i}", "ra": 150.0 + i, "dec": 2.0, "mjd_min": 59650, "mjd_max": 59700}
        for i in range(5)
    ]
    rows.insert(2, {**rows[3], "name": "SN 3 first"})  # a duplicate row before its twin
    rows.append({**rows[0], "name": "SN 0 again"})
    rows.append({**rows[0], "name": "bad", "ra": "nowhere"})  # invalid (--keep-going)
    targets, out = write_csv(tmp_path / "sne.csv", rows), tmp_path / "run"
    limits = ["--write-rate", str(emu.config.write_rate), "--read-rate", str(emu.config.read_rate)]
    argv = ["fetch", str(targets), "--out", str(out), "--no-plots", "--controls", "3",
            "--keep-going", "--base-url", emu.base_url, *limits]  # fmt: skip
    assert main(argv) == 1  # the invalid row
    with open_run(out, base_url=emu.base_url) as ledger:
        by_name = {r.target.name: r.target.line for r in ledger.outcomes()}
        ledger.set_state(by_name["SN 1"], State.FAILED, error="gone")  # its controls: orphans
        ledger.set_state(by_name["SN 2_i002"], State.FAILED, error="gone")  # asked, not got
        listed = [
            SourceCurve(r.target, r.path if r.state is State.DOWNLOADED else None, r.task_id)
            for r in ledger.outcomes()
            if r.state is not State.INVALID
        ]
        expected = families(listed)
        assert list(ledger_families(ledger)) == expected
    assert any(len(f.members) == 2 for f in expected)  # the duplicates were exercised
    assert sum(f.members[0].target.control_of is not None for f in expected) == 3  # orphans
    assert any(f.requested == 3 and len(f.controls) == 2 for f in expected)
