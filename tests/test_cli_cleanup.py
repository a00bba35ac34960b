"""``status``, ``cancel``, ``cleanup`` and ``cleanup --orphans`` against the emulator."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import anyio
import pandas as pd
import pytest

from atlasbatch._config import Rate, Settings
from atlasbatch._http.client import AtlasClient
from atlasbatch._runs.rundir import open_run, record_targets
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import grid_targets, write_csv

Factory = Callable[..., Emulator]
RATES = ["--write-rate", "600/6s", "--read-rate", "6000/6s"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def emulator(factory: Factory, monkeypatch: pytest.MonkeyPatch, task_seconds: float) -> Emulator:
    emu = factory(task_seconds=task_seconds, user_slots=1, write_rate="600/6s",
                  read_rate="6000/6s")  # fmt: skip
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    return emu


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def interrupted_fetch(emu: Emulator, targets: Path, out: Path, count: int) -> str:
    """Start ``fetch`` in a subprocess, Ctrl-C it once every task is queued; its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
         "--base-url", emu.base_url, *RATES],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: emu.stats()["tasks_created"] == count)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, err
    assert "resume with the same command" in err
    return err


def states(out: Path) -> list[str]:
    return list(pd.read_csv(out / "outcomes.csv")["state"])


def test_status_then_cancel_leaves_no_task_on_the_server(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=30.0)
    targets = write_csv(tmp_path / "t.csv", grid_targets(4))
    out = tmp_path / "run"
    interrupted_fetch(emu, targets, out, 4)

    assert main(["status", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "stopped with 4 queries open" in shown
    assert f"atlasbatch fetch {targets} --out {out}" in shown
    assert main(["status", str(out), "--remote"]) == 0
    shown = capsys.readouterr().out
    assert "On the server now: 4 task(s)" in shown and "queued 3, running 1" in shown

    # the run remembers its server and limits: DIR is all cancel needs
    assert main(["cancel", str(out)]) == 0
    shown = capsys.readouterr().out
    assert "4 task(s) deleted" in shown and "4 target(s) cancelled" in shown
    assert emu.stats()["tasks_live"] == 0
    assert states(out) == ["cancelled"] * 4
    assert main(["status", str(out)]) == 0
    assert "state    finished" in capsys.readouterr().out


def test_cleanup_downloads_what_finished_then_deletes(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=0.3)
    targets = write_csv(tmp_path / "t.csv", grid_targets(4))
    out = tmp_path / "run"
    interrupted_fetch(emu, targets, out, 4)
    emu.wait_until_idle(timeout=30)  # every task has finished on the server meanwhile
    # a known run's tasks are no orphans
    assert main(["cleanup", "--orphans", "--base-url", emu.base_url, *RATES]) == 0
    assert "No orphan tasks" in capsys.readouterr().out

    assert main(["cleanup", str(out), "--no-plots"]) == 0
    shown = capsys.readouterr().out
    assert "finished result(s) downloaded" in shown
    assert emu.stats()["tasks_live"] == 0
    assert states(out) == ["downloaded"] * 4
    assert len(list((out / "lightcurves").glob("*.txt"))) == 4
    assert len(pd.read_parquet(out / "photometry.parquet")) > 0


def test_resume_downloads_what_finished_meanwhile_at_once(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=0.3)
    targets = write_csv(tmp_path / "t.csv", grid_targets(3))
    out = tmp_path / "run"
    interrupted_fetch(emu, targets, out, 3)
    emu.wait_until_idle(timeout=30)
    # resumed with the real server's task time: a first poll timed for tasks still to come
    # would wait minutes; what already finished must not
    started = time.monotonic()
    argv = ["fetch", str(targets), "--out", str(out), "--base-url", emu.base_url, *RATES,
            "--task-seconds", "60", "--no-plots"]  # fmt: skip
    assert main(argv) == 0
    assert time.monotonic() - started < 20
    assert states(out) == ["downloaded"] * 3
    assert emu.stats()["tasks_live"] == 0
    assert emu.stats()["tasks_created"] == 3


def lost_submission_answer(emu: Emulator, out: Path, count: int) -> None:
    """A run stopped right after its POST reached the server, before the answer was saved."""
    settings = Settings(base_url=emu.base_url, write_rate=Rate(600, 6), read_rate=Rate(6000, 6))
    targets = read_targets(grid_targets(count))

    async def submit() -> None:
        async with AtlasClient(token=emu.token, settings=settings) as client:
            with open_run(out, base_url=emu.base_url) as ledger:
                record_targets(ledger, targets)
                _batch, tag = ledger.start_batch([t.line for t in targets.unique])
                await client.submit(list(targets.unique), comment=tag)

    anyio.run(submit)


@pytest.mark.parametrize("case", [("cancel", 30.0, "cancelled"), ("cleanup", 0.02, "downloaded")])
def test_a_submission_whose_answer_was_lost_is_cancelled_or_cleaned_up(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    case: tuple[str, float, str],
) -> None:
    command, task_seconds, final = case
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=task_seconds)
    out = tmp_path / "run"
    lost_submission_answer(emu, out, 3)
    if command == "cleanup":
        emu.wait_until_idle(timeout=30)
    assert main([command, str(out), *RATES]) == 0
    assert emu.stats()["tasks_live"] == 0
    assert states(out) == [final] * 3


def test_cancel_leaves_finished_results_for_cleanup(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=0.02)
    out = tmp_path / "run"
    lost_submission_answer(emu, out, 3)
    emu.wait_until_idle(timeout=30)  # every task finished: nothing left to cancel
    assert main(["cancel", str(out), *RATES]) == 0
    assert "3 finished task(s) left on the server" in capsys.readouterr().out
    assert states(out) == ["finished"] * 3
    assert main(["status", str(out)]) == 0  # the next step is cleanup, not a resume
    state = next(line for line in capsys.readouterr().out.splitlines() if "state" in line)
    assert "3 task(s) left on the server" in state and f"atlasbatch cleanup {out}" in state
    assert "resume" not in state
    assert main(["cleanup", str(out), *RATES, "--no-plots"]) == 0
    assert emu.stats()["tasks_live"] == 0
    assert states(out) == ["downloaded"] * 3


def submit_tagged(emu: Emulator, tag: str, count: int, *, dec0: float) -> None:
    """Tasks as another machine's atlasbatch run would have left them."""
    settings = Settings(base_url=emu.base_url, write_rate=Rate(600, 6), read_rate=Rate(6000, 6))
    targets = read_targets(grid_targets(count, dec0=dec0)).unique

    async def submit() -> None:
        async with AtlasClient(token=emu.token, settings=settings) as client:
            await client.submit(targets, comment=tag)

    anyio.run(submit)


def test_orphans_are_listed_deleted_or_adopted(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory, monkeypatch, task_seconds=0.02)
    submit_tagged(emu, "atlasbatch:0rphan01:1", 3, dec0=10.0)
    submit_tagged(emu, "atlasbatch:0rphan02:1", 2, dec0=20.0)
    server = ["--base-url", emu.base_url, *RATES]

    assert main(["cleanup", "--orphans", *server]) == 0
    shown = capsys.readouterr().out
    assert "0rphan01" in shown and "0rphan02" in shown
    assert emu.stats()["tasks_live"] == 5  # listing changes nothing

    assert main(["cleanup", "--orphans", "--run-id", "0rphan02", "--delete", *server]) == 0
    assert "Deleted 2 orphan task(s)" in capsys.readouterr().out
    assert emu.stats()["tasks_live"] == 3

    emu.wait_until_idle(timeout=30)
    adopt = tmp_path / "adopted"
    assert main(["cleanup", "--orphans", "--out", str(adopt), "--progress", "plain",
                 *server]) == 0  # fmt: skip
    run = adopt / "0rphan01"
    assert emu.stats()["tasks_live"] == 0
    assert states(run) == ["downloaded"] * 3
    assert len(list((run / "lightcurves").glob("task*.txt"))) == 3
    registry = json.loads((tmp_path / "config" / "runs.json").read_text())
    assert "0rphan01" in registry["runs"]
    assert main(["cleanup", "--orphans", *server]) == 0
    assert "No orphan tasks" in capsys.readouterr().out

    # the adopted run is an ordinary run directory: the usual command resumes it
    created = emu.stats()["tasks_created"]
    targets = run / "targets.csv"
    assert main(["fetch", str(targets), "--out", str(run), *server]) == 0
    assert emu.stats()["tasks_created"] == created

    # a run whose folder is gone no longer counts as known
    shutil.rmtree(run)
    submit_tagged(emu, "atlasbatch:0rphan01:2", 1, dec0=30.0)
    assert main(["cleanup", "--orphans", *server]) == 0
    assert "0rphan01" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["cleanup"], "cleanup needs DIR"),
        (["cleanup", "somewhere", "--orphans"], "either DIR or --orphans"),
        (["cleanup", "--orphans", "--delete", "--out", "x"], "--delete or --out DIR"),
        (["cleanup", "somewhere", "--delete"], "go with --orphans only"),
        (["status", "nowhere"], "is not an atlasbatch run directory"),
        (["cancel", "nowhere"], "is not an atlasbatch run directory"),
    ],
)
def test_usage_errors(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    os.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
