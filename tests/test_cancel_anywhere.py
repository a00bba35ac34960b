"""``atlasbatch cancel DIR`` while a fetch works on DIR: the request goes through the ledger."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from atlasbatch._ledger.ledger import Ledger
from atlasbatch._runs.rundir import open_run
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
RATES = ["--write-rate", "100/1s", "--read-rate", "1000/1s"]  # the emulator's fast() limits
SERVER = "http://127.0.0.1:1/forcedphot"


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def cancel_mark(out: Path) -> str | None:
    db = sqlite3.connect(out / "atlasbatch.sqlite3")
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'cancel_requested'").fetchone()
    finally:
        db.close()
    return None if row is None else str(row[0])


def test_cancel_from_a_second_process_ends_a_running_fetch_with_every_task_deleted(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=30.0, user_slots=1))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = write_csv(tmp_path / "t.csv", grid_targets(5))
    out = tmp_path / "run"
    fetch = subprocess.Popen(
        [sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
         "--base-url", emu.base_url, *RATES, "--no-plots", "--progress", "plain"],
        env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_for(lambda: emu.stats()["tasks_created"] == 5)  # one running, four queued
        assert main(["cancel", str(out)]) == 0  # this test is the second terminal
        _, fetch_err = fetch.communicate(timeout=30)
    finally:
        if fetch.poll() is None:
            fetch.kill()
            fetch.wait()
    shown = capsys.readouterr().out
    assert "A fetch is working on" in shown
    assert "The fetch ended: it cancelled 5 target(s), deleted 5 task(s)" in shown
    assert fetch.returncode == 1, fetch_err  # cancelled rows: not a clean run
    assert "cancelled by `atlasbatch cancel` from another process" in fetch_err
    stats = emu.stats()
    assert stats["tasks_live"] == 0
    assert stats["tasks_deleted"] == stats["tasks_created"] == 5  # every task, deleted
    assert list(pd.read_csv(out / "outcomes.csv")["state"]) == ["cancelled"] * 5
    assert cancel_mark(out) is None  # the request went with the process it was meant for
    assert main(["status", str(out)]) == 0
    assert "state    finished" in capsys.readouterr().out


def test_cancel_waits_a_bounded_time_and_the_request_stays_for_the_running_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATLAS_TOKEN", "0123456789abcdef0123456789abcdef01234567")
    with open_run(tmp_path, base_url=SERVER):  # a process that does not stop (never polls)
        assert main(["cancel", str(tmp_path), "--wait", "0.3"]) == 1
        shown = capsys.readouterr().out
        assert "has not ended yet" in shown and f"atlasbatch status {tmp_path}" in shown
        assert cancel_mark(tmp_path) is not None  # it will still act on it
        assert main(["status", str(tmp_path)]) == 0
        assert "cancel requested" in capsys.readouterr().out
    with open_run(tmp_path, base_url=SERVER) as ledger:  # the next holder: a stale request
        assert not ledger.cancel_requested()


def test_a_request_made_while_the_lock_is_held_is_kept(tmp_path: Path) -> None:
    with open_run(tmp_path, base_url=SERVER) as ledger:
        other = Ledger(tmp_path / "atlasbatch.sqlite3")  # another process's connection
        try:
            assert not ledger.cancel_requested()
            other.request_cancel()
        finally:
            other.close()
        assert ledger.cancel_requested()
        assert not ledger.drop_cancel_request(made_before=time.time() - 60)  # meant for us
        assert ledger.cancel_requested()
        assert ledger.drop_cancel_request(made_before=time.time() + 1)
        assert not ledger.cancel_requested()
