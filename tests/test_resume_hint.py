"""The resume hint names the server, and ``fetch`` on a run directory uses the run's server."""

from __future__ import annotations

import os
import shlex
import signal
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
RATES = ["--write-rate", "100/1s", "--read-rate", "1000/1s"]  # the emulator's fast() limits


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def interrupted_fetch(emu: Emulator, argv: list[str], count: int) -> str:
    """Run ``atlasbatch`` with ``argv`` in a subprocess, Ctrl-C it once every task is
    queued; the resume command it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "atlasbatch", *argv], env=dict(os.environ),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
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
    prefix = "interrupted; resume with the same command: "
    hints = [line.removeprefix(prefix) for line in err.splitlines() if line.startswith(prefix)]
    assert len(hints) == 1, err
    return hints[0]


def test_the_resume_hint_names_the_server_and_fetch_defaults_to_the_runs_server(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.4, user_slots=1))
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = write_csv(tmp_path / "t.csv", grid_targets(3))
    out = tmp_path / "run"
    plain = ["fetch", str(targets), "--out", str(out), "--mjd-min", "60000", "--no-plots"]
    hint = interrupted_fetch(emu, [*plain, "--base-url", emu.base_url, *RATES], 3)
    assert shlex.split(hint) == [
        "atlasbatch", "fetch", str(targets), "--out", str(out), "--base-url", emu.base_url,
        "--mjd-min", "60000.0", "--no-plots",
    ]  # fmt: skip
    assert main(["status", str(out)]) == 0
    assert f"resume with: {hint}" in capsys.readouterr().out

    # another server: refused with the flag to use, before anything is sent
    requests = emu.stats()["requests"]
    other = "http://127.0.0.1:9/forcedphot"
    assert main([*plain, "--base-url", other]) == 2
    err = capsys.readouterr().err
    assert f"not {other}: use --base-url {emu.base_url}" in err
    assert emu.stats()["requests"] == requests

    # no --base-url (and another default in the environment): the run's own server
    monkeypatch.setenv("ATLAS_BASE_URL", "https://fallingstar-data.invalid/forcedphot")
    assert main(plain) == 0
    assert list(pd.read_csv(out / "outcomes.csv")["state"]) == ["downloaded"] * 3
    stats = emu.stats()
    assert stats["tasks_created"] == 3 and stats["tasks_live"] == 0  # resumed, not resent
