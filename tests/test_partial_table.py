"""The photometry table keeps up with a run: readable half-way, after a kill -9, and a
resume only adds what is new."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
COUNT = 30


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def fetch_args(emu: Emulator, targets: Path, out: Path) -> list[str]:
    config = emu.config
    return ["fetch", str(targets), "--out", str(out), "--no-plots", "--progress", "plain",
            "--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate)]  # fmt: skip


def parts(out: Path) -> dict[str, int]:
    """The table's visible parts: name -> modification time."""
    return {p.name: p.stat().st_mtime_ns for p in (out / "photometry.parquet").glob("part-*")}


def download_times(out: Path) -> dict[str, pd.Timestamp]:
    """Target name -> the time the ledger recorded its download."""
    with sqlite3.connect(out / "atlasbatch.sqlite3") as db:
        rows = db.execute(
            "SELECT t.name, MAX(e.at) FROM events e JOIN targets t ON t.line = e.line "
            "WHERE e.state = 'downloaded' GROUP BY t.name"
        ).fetchall()
    return {name: pd.Timestamp(at, unit="s", tz="UTC") for name, at in rows}


def killed_half_way(emu: Emulator, targets: Path, out: Path) -> None:
    """Start fetch in a subprocess; kill -9 it once its table holds some light curves."""
    env = {**os.environ, "ATLAS_TOKEN": emu.token, "ATLASBATCH_TABLE_EVERY": "0.2"}
    log = out.with_name("fetch.log")
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "atlasbatch", *fetch_args(emu, targets, out)],
            env=env, stdout=subprocess.DEVNULL, stderr=stderr,
        )  # fmt: skip
        try:
            for _ in range(3000):  # 60 s at most
                if (out / "photometry.parquet").is_dir() and parts(out):
                    break
                assert process.poll() is None, log.read_text()
                time.sleep(0.02)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert process.returncode == -signal.SIGKILL, log.read_text()


def test_a_killed_run_leaves_a_readable_table_and_the_resume_adds_the_rest(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One task at a time on the server: the run takes a few seconds, the table grows.
    emu = atlas_emulator_factory(**fast(task_seconds=0.1, user_slots=1))
    targets = write_csv(tmp_path / "targets.csv", grid_targets(COUNT))
    out = tmp_path / "run"
    killed_half_way(emu, targets, out)

    before = parts(out)
    partial = pd.read_parquet(out / "photometry.parquet")
    names = set(partial["target"])
    assert 0 < len(names) < COUNT  # half-way: some light curves, not all
    assert not partial.duplicated(["target", "MJD", "Obs"]).any()
    assert partial["uJy"].dtype == "Int64" and "mag_ab" in partial.columns
    recorded = download_times(out)
    for name, when in partial.groupby("target")["fetched_at"].first().items():
        assert abs(when - recorded[str(name)]) < pd.Timedelta(milliseconds=1)  # the ledger's

    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    assert main(fetch_args(emu, targets, out)) == 0
    table = pd.read_parquet(out / "photometry.parquet")
    assert set(table["target"]) == {f"t{i:05d}" for i in range(COUNT)}
    assert not table.duplicated(["target", "MJD", "Obs"]).any()
    after = parts(out)
    assert {name: after.get(name) for name in before} == before  # kept as they were
    assert len(table) == len(partial) + sum(
        len(pd.read_parquet(out / "photometry.parquet" / name)) for name in after.keys() - before
    )  # the resume added only what was new
    assert not list((out / "photometry.parquet").glob(".*"))  # no temporary file is left
    assert emu.stats()["tasks_created"] == COUNT
