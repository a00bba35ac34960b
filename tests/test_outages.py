"""Outages are weather: waited out, a few requests at a time, and nothing is lost or doubled.

The emulator's outage switch answers every request (API, result files) with Apache's 503
page or drops every connection; the tests start it at the worst moments (results waiting
to be downloaded, a POST in flight, a killed process) and assert what the server saw.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import pytest

from atlasbatch import Session, State
from atlasbatch._cli.progress import describe
from atlasbatch._engine.book import Progress
from atlasbatch._http.client import AtlasClient
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
OUTAGE = 3.0  # seconds; the tests' backoff cap is 0.5 s, the old retry budget was 30 tries


def windowed(count: int) -> list[dict[str, object]]:
    """Targets with a short explicit window: small files, independent of today's date."""
    return [{**row, "mjd_min": 58000.0, "mjd_max": 58100.0} for row in grid_targets(count)]


def outage_when(emu: Emulator, ready: Callable[[], bool], *, mode: str) -> threading.Thread:
    """Start an outage of OUTAGE seconds as soon as ``ready()`` holds (polled, bounded)."""

    def run() -> None:
        for _ in range(2000):
            if ready():
                break
            time.sleep(0.005)
        with emu.outage(mode):  # type: ignore[arg-type]
            time.sleep(OUTAGE)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def some_finished(emu: Emulator) -> bool:
    return any(t.finished_at is not None for t in emu.task_timings())


def outage_requests(emu: Emulator) -> int:
    return sum(1 for r in emu.requests() if (r.fault or "").startswith("outage"))


async def run(emu: Emulator, targets: Any, **settings: Any) -> Any:
    values = {"retry_max_wait": 0.5, "retry_total_seconds": math.inf, **settings}
    async with Session(token=emu.token, settings=client_settings(emu, **values)) as session:
        return await session.run(targets)


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["503", "drop"])
async def test_an_outage_during_downloads_loses_and_doubles_nothing(
    atlas_emulator_factory: Factory, mode: str
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.05, user_slots=4))
    outage = outage_when(emu, lambda: some_finished(emu), mode=mode)
    report = await run(emu, windowed(20))
    outage.join()
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    stats = emu.stats()
    assert stats["tasks_created"] == 20 and stats["tasks_live"] == 0
    # one probe at a time with a capped backoff, not every worker in its own loop
    assert 1 <= outage_requests(emu) <= 25


@pytest.mark.anyio
async def test_a_post_lost_in_an_outage_is_settled_by_its_tag_not_sent_twice(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.05, user_slots=4))
    with emu.outage("drop"):
        threading.Timer(1.0, emu.end_outage).start()
        report = await run(emu, windowed(10))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert emu.stats()["tasks_created"] == 10 and emu.stats()["tasks_live"] == 0


@pytest.mark.anyio
async def test_the_progress_says_since_when_the_server_is_unreachable(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(**fast())
    settings = client_settings(emu, retry_max_wait=0.5, retry_total_seconds=math.inf)
    async with AtlasClient(token=emu.token, settings=settings) as client:
        with emu.outage("503"):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.task, 1)  # waits the outage out
                await anyio.sleep(0.5)
                outage = client.outage
                assert outage.down and outage.since is not None
                line = describe(
                    Progress(
                        counts={}, tasks_deleted=0, tasks_on_server=0, writes_in_window=0,
                        reads_in_window=0, throttled=0, task_seconds=None, eta_seconds=None,
                        unreachable_since=outage.since, next_try_in=outage.seconds_to_next_try(),
                    )
                )  # fmt: skip
                assert f"server unreachable since {outage.since:%H:%M}, next try in" in line
                emu.end_outage()
        assert not client.outage.down


@pytest.mark.anyio
async def test_a_result_file_above_the_size_limit_fails_that_target_clearly(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, user_slots=4))
    report = await run(emu, windowed(3), max_result_bytes=200)
    assert {o.state for o in report.outcomes} == {State.FAILED}
    assert all("larger than the limit of 200 bytes" in (o.error or "") for o in report.outcomes)
    assert emu.stats()["tasks_live"] == 0  # a permanent outcome: the task is deleted


@pytest.mark.slow
def test_kill_nine_during_an_outage_then_resume_finishes_the_job(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.05, user_slots=4))
    targets = write_csv(tmp_path / "targets.csv", windowed(30))
    out = tmp_path / "run"
    command = [
        sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
        "--base-url", emu.base_url, "--write-rate", str(emu.config.write_rate),
        "--read-rate", str(emu.config.read_rate), "--no-plots",
    ]  # fmt: skip
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            for _ in range(2000):  # bounded: until some results wait on the server
                if some_finished(emu):
                    break
                time.sleep(0.005)
            with emu.outage("503"):
                time.sleep(1.0)  # the client is waiting the outage out
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        resumed = subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                 timeout=180, check=False)  # fmt: skip
    assert resumed.returncode == 0, log.read_text()
    stats = emu.stats()
    assert stats["tasks_created"] == 30 and stats["tasks_live"] == 0
    outcomes = (out / "outcomes.csv").read_text().splitlines()[1:]
    assert len(outcomes) == 30 and all(",downloaded," in row for row in outcomes)
    assert len(list((out / "lightcurves").glob("*.txt"))) == 30
