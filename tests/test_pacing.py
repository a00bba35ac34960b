"""The client learns the server's pace: asserted on what the emulator saw, on its clock.

No test here tells the client the task time: it knows only the documented limits, as a user
does; its starting guess is one write window, far from the emulator's true task time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from atlasbatch import Session, State
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets

pytestmark = pytest.mark.anyio

Factory = Callable[..., Emulator]
# Rates scaled x10 (as in the benchmarks): the client's prior is one write window, 6 s.
SCALED = {"write_rate": "600/6s", "read_rate": "6000/6s"}


async def run(emu: Emulator, targets: Any, **options: Any) -> Any:
    """A run over the last 30 days: small files, so the emulator's light curves cost little."""
    options.setdefault("mjd_min", time.time() / 86400.0 + 40587.0 - 30.0)
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        return await session.run(targets, **options)


def reads(emu: Emulator, *, after: float = 0.0) -> int:
    """API reads the server counted (list pages and task details), result files excluded."""
    return sum(
        1 for r in emu.requests() if r.method == "GET" and "/queue" in r.path and r.time >= after
    )


def first_download(emu: Emulator) -> float:
    return min(r.time for r in emu.requests() if "/static/results/" in r.path and r.status == 200)


async def test_first_result_comes_soon_after_the_first_task_ends(
    atlas_emulator_factory: Factory,
) -> None:
    """Tasks 12x shorter than the guess: the first result must not wait for the guess."""
    emu = atlas_emulator_factory(**fast(**SCALED, task_seconds=0.5, user_slots=1))
    report = await run(emu, grid_targets(4))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    finished = min(t.finished_at for t in emu.task_timings() if t.finished_at is not None)
    # a quarter of the task, and some slack for a loaded machine; the old pacer took 30 s
    assert first_download(emu) - finished <= 0.5


async def test_a_server_bound_run_costs_few_reads_per_target(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(**fast(**SCALED, task_seconds=0.05, user_slots=1))
    targets = grid_targets(60)
    report = await run(emu, targets)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert reads(emu) <= 0.35 * len(targets)


async def test_long_tasks_are_polled_on_a_growing_schedule(
    atlas_emulator_factory: Factory,
) -> None:
    """Tasks 3x longer than the guess: a few dozen reads, not one per read floor."""
    emu = atlas_emulator_factory(
        **fast(write_rate="100/1s", read_rate="1000/1s", task_seconds=3.0, user_slots=1)
    )
    report = await run(emu, grid_targets(2))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    # 6 s of tasks at a floor of 10 ms would be 600 reads; the probes grow by a quarter
    assert reads(emu) <= 40
    finished = max(t.finished_at for t in emu.task_timings() if t.finished_at is not None)
    last = max(r.time for r in emu.requests() if "/static/results/" in r.path)
    assert last - finished <= 0.25 * 3.0 + 0.25


async def test_a_queued_task_deleted_on_the_web_page_is_noticed_within_a_few_polls(
    atlas_emulator_factory: Factory,
) -> None:
    """Deleted behind our back while queued: asked again at once, not after a stall audit."""
    emu = atlas_emulator_factory(**fast(**SCALED, task_seconds=0.3, user_slots=1))
    deleted: list[tuple[int, float]] = []

    def delete_two_queued() -> None:  # the user, on the web page, as our tasks wait
        headers = {"Authorization": f"Token {emu.token}", "Accept": "application/json"}
        with httpx.Client(base_url=emu.base_url, headers=headers, timeout=5.0) as web:
            for _ in range(200):  # bounded: until our tasks are queued
                page = web.get("/queue/", params={"started": "false", "pagesize": 100}).json()
                if len(page["results"]) >= 6:
                    break
                threading.Event().wait(0.02)
            for task in page["results"][:2]:  # the newest two: last in line
                web.delete(f"/queue/{task['id']}/")
                deleted.append((int(task["id"]), emu.now()))

    web = threading.Thread(target=delete_two_queued)
    web.start()
    report = await run(emu, grid_targets(8))
    web.join()
    assert len(deleted) == 2
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert emu.stats()["tasks_created"] == 10  # each deleted one asked again, once
    posts = sorted(r.time for r in emu.requests() if r.method == "POST" and r.status == 201)
    gone_at = max(when for _, when in deleted)
    resent = next(t for t in posts if t > gone_at)
    assert resent - gone_at < 2.0  # the old stall audit waited 10 minutes (scaled: 60 s)
