"""Durable runs: kill -9 at random moments, resume, and nothing is lost, doubled or left."""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from atlasbatch import RunLockedError, RunMismatchError, Session, State
from atlasbatch._http.client import AtlasClient
from atlasbatch._runs.cleanup import cancel_run
from atlasbatch._runs.rundir import open_run, record_targets
from atlasbatch._targets.read import read_targets
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]


def windowed(count: int) -> list[dict[str, object]]:
    """Targets with explicit MJD windows, so result files do not depend on today's date."""
    return [{**row, "mjd_min": 58000.0, "mjd_max": 58200.0} for row in grid_targets(count)]


def fetch_command(emu: Emulator, targets: Path, out: Path) -> list[str]:
    config = emu.config
    return [
        sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
        "--base-url", emu.base_url, "--write-rate", config.write_rate,
        "--read-rate", config.read_rate,
        "--no-plots",
    ]  # fmt: skip


def run_cli(command: list[str], emu: Emulator, *, kill_after: float | None, log: Path) -> None:
    """Run ``atlasbatch fetch`` as a user would; SIGKILL it after ``kill_after`` seconds."""
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    with log.open("ab") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            if kill_after is None:
                code = process.wait(timeout=180)
                assert code == 0, log.read_text()
                return
            time.sleep(kill_after)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()


def light_curves(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "lightcurves").glob("*.txt"))}


@pytest.mark.slow
def test_kill_nine_and_resume_loses_and_doubles_nothing(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    rows = windowed(200)
    targets = write_csv(tmp_path / "targets.csv", rows)
    faulty = atlas_emulator_factory(
        task_seconds=0.01, user_slots=8, write_rate="40/1s", read_rate="400/1s",
        faults=Faults(drop_after_commit_rate=0.1, drop_before_commit_rate=0.05,
                      server_error_rate=0.05),
    )  # fmt: skip
    out = tmp_path / "run"
    log = tmp_path / "stderr.log"
    rng = random.Random(7)
    for _ in range(5):
        run_cli(
            fetch_command(faulty, targets, out), faulty, kill_after=rng.uniform(2.0, 5.0), log=log
        )
    run_cli(fetch_command(faulty, targets, out), faulty, kill_after=None, log=log)

    with (out / "outcomes.csv").open() as handle:
        outcomes = list(csv.DictReader(handle))
    assert [int(r["line"]) for r in outcomes] == list(range(2, 202))
    assert {r["state"] for r in outcomes} == {"downloaded"}
    stats = faulty.stats()
    assert stats["tasks_created"] == 200, stats  # adopted after lost answers, never re-sent
    assert stats["tasks_live"] == 0

    clean = atlas_emulator_factory(task_seconds=0.01, user_slots=8, write_rate="200/1s")
    reference = tmp_path / "reference"
    run_cli(fetch_command(clean, targets, reference), clean, kill_after=None, log=log)
    assert light_curves(out) == light_curves(reference)


@pytest.mark.anyio
async def test_an_interrupted_run_resumes_in_process(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.05, user_slots=1, write_rate="30/1s"))
    settings = client_settings(emu)
    seen: list[int] = []
    async with Session(token=emu.token, settings=settings) as session:
        with anyio.move_on_after(1.0):
            async for outcome in session.fetch(windowed(40), out_dir=tmp_path):
                seen.append(outcome.target.line)
    assert 0 < len(seen) < 40
    async with Session(token=emu.token, settings=settings) as session:
        report = await session.run(windowed(40), out_dir=tmp_path)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert len(report.outcomes) == 40
    assert emu.stats()["tasks_created"] == 40
    assert emu.stats()["tasks_live"] == 0


def test_a_changed_target_file_is_refused_and_added_rows_are_accepted(tmp_path: Path) -> None:
    first = read_targets(windowed(3))
    with open_run(tmp_path, base_url="http://127.0.0.1:1/forcedphot") as ledger:
        assert record_targets(ledger, first) == 3
    grown = read_targets(windowed(5))
    with open_run(tmp_path, base_url="http://127.0.0.1:1/forcedphot") as ledger:
        assert record_targets(ledger, grown) == 2
    moved = read_targets([{**row, "dec": 45.0} for row in windowed(5)])
    with (
        open_run(tmp_path, base_url="http://127.0.0.1:1/forcedphot") as ledger,
        pytest.raises(RunMismatchError, match="line 2"),
    ):
        record_targets(ledger, moved)
    with (
        pytest.raises(RunMismatchError, match="belongs to"),
        open_run(tmp_path, base_url="http://127.0.0.1:2/forcedphot"),
    ):
        pass


def test_a_second_process_on_the_same_directory_is_refused(tmp_path: Path) -> None:
    with open_run(tmp_path, base_url="http://127.0.0.1:1/forcedphot"):
        code = (
            "import sys; from pathlib import Path; from atlasbatch._runs.rundir import open_run\n"
            "from atlasbatch import RunLockedError\n"
            "try:\n"
            f"    with open_run(Path({str(tmp_path)!r}), base_url='http://127.0.0.1:1/forcedphot'):\n"
            "        sys.exit(0)\n"
            "except RunLockedError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, text=True
        )
    assert result.returncode == 3, result.stderr
    assert "another atlasbatch process" in result.stdout
    assert RunLockedError.__name__ in repr(RunLockedError("x"))


@pytest.mark.anyio
async def test_cancel_deletes_queued_and_running_tasks(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.5, user_slots=1))
    settings = client_settings(emu)
    async with Session(token=emu.token, settings=settings) as session:
        with anyio.move_on_after(0.8):
            async for _ in session.fetch(windowed(30), out_dir=tmp_path):
                pass
    assert emu.stats()["tasks_live"] > 0
    async with AtlasClient(token=emu.token, settings=settings) as client:
        with open_run(tmp_path, base_url=emu.base_url) as ledger:
            report = await cancel_run(client, ledger)
            counts = ledger.counts()
    assert report.deleted > 0
    assert counts[State.CANCELLED] + counts[State.DOWNLOADED] + counts[State.FINISHED] == 30
    live = [t for t in emu.tasks() if not t["finished"]]
    assert live == []
