"""The throttle mirror over loopback: our deletes share the write budget with another script.

The emulator's windows are scaled to half a second, so its ``Retry-After`` (DRF's whole
seconds, at least 1) is longer than the window: the mirror must bound it. Nothing here
asserts wall-clock time; "within a few windows" is counted in requests instead.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import httpx
import pytest

from atlasbatch._client import AtlasClient
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast

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
    caplog.set_level(logging.INFO, logger="atlasbatch._limiter")
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
