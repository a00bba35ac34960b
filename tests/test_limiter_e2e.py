"""The throttle mirror over loopback: the write budget shared with another script, and with
other atlasbatch commands of the same account (one after the other, side by side, killed).

The emulator's windows are scaled to half a second, so its ``Retry-After`` (DRF's whole
seconds, at least 1) is longer than the window: the mirror must bound it. Nothing here
asserts wall-clock time; "within a few windows" is counted in requests instead, and "within
the limit" in the emulator's own request log.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from atlasbatch._config import Rate
from atlasbatch._http.client import AtlasClient
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets, write_csv

pytestmark = pytest.mark.anyio

WRITE_RATE = "20/0.5s"
FULL = 20
TASKS = 200  # two radeclist POSTs; far more deletes than the test needs
OTHER_REQUESTS = 16  # the other script: bounded, ~10 writes per window for ~2 windows
OTHER_EVERY = 0.05


@dataclass
class Tally:
    """What happened to our deletes, in order; the other script's own 429s."""

    limits: list[int] = field(default_factory=list)
    after_other_stopped: int = 0  # our deletes answered after the other script's last request
    full_at: int | None = None  # ... of which how many before the limit was whole again
    other_throttled: int = 0
    other_done: anyio.Event = field(default_factory=anyio.Event)


def submit_tasks(emu: Emulator) -> list[int]:
    """Tasks to delete, made just before the run by someone else (plain httpx)."""
    headers = {"Authorization": f"Token {emu.token}", "Accept": "application/json"}
    ids: list[int] = []
    with httpx.Client(base_url=emu.base_url + "/", headers=headers, timeout=10) as api:
        for batch in range(TASKS // 100):
            lines = "\n".join(f"{batch * 10 + i * 0.05:.4f} 20.0" for i in range(100))
            response = api.post("queue/", data={"radeclist": lines, "send_email": "false"})
            response.raise_for_status()
            ids.extend(int(task["id"]) for task in response.json())
    return ids


async def other_script(emu: Emulator, tally: Tally) -> None:
    """Same user, another token-holder: one POST, then one DELETE of it, and so on; naive
    about 429s (it just carries on), bounded, then stops for good."""
    headers = {"Authorization": f"Token {emu.token}", "Accept": "application/json"}
    created: int | None = None
    async with httpx.AsyncClient(base_url=emu.base_url + "/", headers=headers) as api:
        for i in range(OTHER_REQUESTS):
            if created is None:
                response = await api.post("queue/", data={"ra": 150 + i * 0.01, "dec": 2})
                if response.status_code == 201:
                    created = int(response.json()["id"])
            else:
                response = await api.delete(f"queue/{created}/")
                created = None if response.status_code != 429 else created
            tally.other_throttled += response.status_code == 429
            await anyio.sleep(OTHER_EVERY)
    tally.other_done.set()


async def deleter(client: AtlasClient, ids: list[int], tally: Tally) -> None:
    """Delete until the other script is done and our limit is whole again (or ids run out)."""
    while ids and tally.full_at is None:
        await client.delete(ids.pop())
        limit = client.writes.limit
        tally.limits.append(limit)
        if tally.other_done.is_set():
            tally.after_other_stopped += 1
            if limit == FULL:
                tally.full_at = tally.after_other_stopped


async def test_deletes_beside_another_script_shrink_then_come_back_to_full(
    atlas_emulator_factory: Callable[..., Emulator], caplog: pytest.LogCaptureFixture
) -> None:
    emu = atlas_emulator_factory(**fast(write_rate=WRITE_RATE))
    ids = submit_tasks(emu)  # two writes of the other program, as far as the client knows
    before = emu.stats()["throttled"]["write"]
    caplog.set_level(logging.INFO, logger="atlasbatch._http.limiter")
    tally = Tally()
    async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
        assert client.writes.limit == FULL
        async with anyio.create_task_group() as tg:
            tg.start_soon(other_script, emu, tally)
            for _ in range(4):  # four parallel deletes, as in the report
                tg.start_soon(deleter, client, ids, tally)
        ours = client.writes.throttled
        assert client.writes.limit == FULL

    assert min(tally.limits) < FULL  # the other script was noticed ...
    assert tally.full_at is not None  # ... and the budget came back while we still had work
    # within three windows' worth of deletes, not +1 a window (which takes ~120 here)
    assert tally.full_at <= 3 * FULL
    # what the server saw: every 429 is either ours or the other script's, and ours are few
    assert emu.stats()["throttled"]["write"] - before == ours + tally.other_throttled
    assert 1 <= ours <= 16
    assert emu.stats()["tasks_deleted"] >= TASKS - len(ids)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    back = infos.count("write budget back to full: 20 per 0.5 s")
    # one warning opens each slowed-down episode, one info line closes it; never one per 429
    assert 1 <= len(warnings) == back < ours + 1
    for warning in warnings:
        assert warning.startswith("another program using this account sent ")
        assert emu.token not in warning
        assert "http" not in warning


# --- one budget for every atlasbatch command of the account (issue 15) ---------------------

SLOW = Rate(5, 1.0)  # the killed process keeps it full: the next command must wait its turn
WIDE = Rate(20, 2.0)  # side by side: the windows are longer than a stall of a busy machine
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def fetch_args(emu: Emulator, tmp_path: Path, name: str, count: int) -> list[str]:
    """``fetch`` of ``count`` targets of its own (1 POST + ``count`` DELETEs) into ``name``."""
    rows = grid_targets(count, name=name, dec0=10.0 + 10 * (ord(name) - ord("a")))
    targets = write_csv(tmp_path / f"{name}.csv", rows)
    config = emu.config
    return ["fetch", str(targets), "--out", str(tmp_path / name), "--base-url", emu.base_url,
            "--write-rate", str(config.write_rate), "--read-rate", str(config.read_rate),
            "--no-plots"]  # fmt: skip


def cli(args: list[str], *, env: dict[str, str]) -> subprocess.Popen[str]:
    """``atlasbatch ARGS`` in a process of its own, as a user starts it from a shell."""
    command = [sys.executable, "-m", "atlasbatch", *args]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def emulator(factory: Callable[..., Emulator], rate: Rate) -> Emulator:
    """Every task of a run finishes at once, so its deletes come in one burst."""
    slots = {"slots": 64, "user_slots": 64}
    return factory(**fast(write_rate=f"{rate.requests}/{rate.seconds:g}s", **slots))


def accepted_writes(emu: Emulator) -> list[tuple[float, str]]:
    """(arrival on the emulator's clock, method) of every write the server counted."""
    return [(r.time, r.method) for r in emu.requests()
            if r.method in WRITES and r.status is not None and r.status != 429]  # fmt: skip


def most_in_one_window(times: list[float], seconds: float) -> int:
    """The most arrivals in any DRF window (those after ``t - seconds``, up to ``t``)."""
    return max(sum(1 for s in times if t - seconds < s <= t) for t in times)


def assert_within_one_budget(emu: Emulator, rate: Rate) -> list[tuple[float, str]]:
    writes = accepted_writes(emu)
    assert len(writes) > rate.requests  # together, more than one window allows ...
    assert emu.stats()["throttled"]["write"] == 0  # ... and not one was refused,
    # ... because in every window the server counted no more than the limit
    assert most_in_one_window([t for t, _ in writes], rate.seconds) <= rate.requests
    assert emu.stats()["tasks_live"] == 0
    return writes


def test_fetches_in_a_row_share_one_write_budget(
    atlas_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The second command starts while the first one's writes still fill the window."""
    emu = emulator(atlas_emulator_factory, SLOW)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    for name in ("a", "b"):
        code = main(fetch_args(emu, tmp_path, name, SLOW.requests - 1))
        assert code == 0, capsys.readouterr().err
    writes = assert_within_one_budget(emu, SLOW)
    assert [method for _, method in writes].count("POST") == 2


def test_fetches_side_by_side_share_one_write_budget(
    atlas_emulator_factory: Callable[..., Emulator], tmp_path: Path
) -> None:
    """Two ``atlasbatch fetch`` processes at once: one budget between them, not one each."""
    emu = emulator(atlas_emulator_factory, WIDE)
    count = WIDE.requests * 3 // 4  # each alone fits in one window; the two together do not
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    processes = [cli(fetch_args(emu, tmp_path, name, count), env=env) for name in ("a", "b")]
    for process in processes:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
    writes = assert_within_one_budget(emu, WIDE)
    posts = [t for t, method in writes if method == "POST"]
    assert len(posts) == 2
    between = [t for t, method in writes if method == "DELETE" and posts[0] < t < posts[1]]
    assert len(between) < count  # they did run side by side: the first was not done yet


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_a_fetch_killed_mid_run_leaves_the_next_command_within_the_budget(
    atlas_emulator_factory: Callable[..., Emulator],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """kill -9 while its deletes fill the window: its last writes (and claims in flight)
    still count for the resumed run, which gets through all the same."""
    emu = emulator(atlas_emulator_factory, SLOW)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    count = 2 * SLOW.requests + 2
    args = fetch_args(emu, tmp_path, "a", count)
    killed = cli(args, env=dict(os.environ))
    try:
        wait_for(lambda: emu.stats()["tasks_deleted"] > SLOW.requests)
    finally:
        killed.send_signal(signal.SIGKILL)
        killed.communicate(timeout=30)
    left = count - emu.stats()["tasks_deleted"]
    assert left > 0
    assert main(args) == 0, capsys.readouterr().err  # resumed at once, in this process
    assert_within_one_budget(emu, SLOW)
    assert emu.stats()["tasks_deleted"] == count
