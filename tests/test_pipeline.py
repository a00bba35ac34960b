"""The pipeline end to end against the emulator over loopback: nothing lost, nothing left."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from atlasbatch import InputError, Session, State, fetch_photometry
from atlasbatch._config import Rate
from atlasbatch._engine import submitter
from atlasbatch.cli import main as cli_main
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets, write_csv

pytestmark = pytest.mark.anyio

Factory = Callable[..., Emulator]


@pytest.fixture
def emulator(atlas_emulator_factory: Factory) -> Factory:
    """Emulators with limits per second (tests), unless a test sets its own."""

    def make(**config: Any) -> Emulator:
        return atlas_emulator_factory(**fast(**config))

    return make


async def run(emu: Emulator, targets: Any, **options: Any) -> Any:
    settings = options.pop("settings", None) or client_settings(emu)
    with anyio.fail_after(120):  # a stalled run fails here instead of hanging the suite
        async with Session(token=emu.token, settings=settings) as session:
            return await session.run(targets, **options)


def assert_clean(emu: Emulator, *, created: int) -> None:
    stats = emu.stats()
    assert stats["tasks_live"] == 0, stats
    assert stats["tasks_created"] == created, stats


async def test_small_run_downloads_every_target_and_deletes_every_task(
    emulator: Factory, tmp_path: Path
) -> None:
    emu = emulator(task_seconds=0.02, user_slots=4)
    report = await run(emu, grid_targets(30), out_dir=tmp_path)
    assert [o.target.line for o in report.outcomes] == list(range(2, 32))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    for outcome in report.outcomes:
        assert outcome.data is not None and len(outcome.data) > 0
        assert (tmp_path / str(outcome.path)).read_text().startswith("###MJD")
    assert_clean(emu, created=30)
    assert emu.stats()["requests"].get("POST") == 1  # one radeclist batch for 30 targets
    photometry = report.photometry
    assert set(photometry["target"]) == {f"t{i:05d}" for i in range(30)}


async def test_deletes_come_only_after_the_file_is_recorded(
    emulator: Factory, tmp_path: Path
) -> None:
    emu = emulator(task_seconds=0.02, user_slots=2)
    await run(emu, grid_targets(12), out_dir=tmp_path)
    db = sqlite3.connect(tmp_path / "atlasbatch.sqlite3")
    rows = db.execute(
        "SELECT t.task_id, t.updated, MAX(e.at) FROM tasks t JOIN events e "
        "ON e.line = t.line AND e.state = 'downloaded' WHERE t.deleted = 1 GROUP BY t.task_id"
    ).fetchall()
    assert len(rows) == 12
    assert all(deleted_at >= downloaded_at for _, deleted_at, downloaded_at in rows)


async def test_thousand_targets_with_fast_tasks(emulator: Factory) -> None:
    emu = emulator(
        task_seconds=0.005, user_slots=16, slots=16, write_rate="200/0.5s", read_rate="400/0.5s",
        observations_per_day=0.02,
    )  # fmt: skip
    report = await run(emu, grid_targets(1000), keep_data=False)
    assert Counter(o.state for o in report.outcomes) == {State.DOWNLOADED: 1000}
    assert_clean(emu, created=1000)
    assert emu.stats()["throttled"]["write"] == 0


async def test_adapts_when_the_server_allows_less_than_assumed(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.01, user_slots=8, write_rate="10/1s")
    settings = client_settings(emu, write_rate=Rate(40, 1.0), batch_size=5)
    report = await run(emu, grid_targets(40), settings=settings)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert emu.stats()["throttled"]["write"] >= 1  # it did hit the real limit…
    assert emu.stats()["max_writes_in_window"] <= 10  # …which the server enforced, and
    assert_clean(emu, created=40)  # nothing was lost or sent twice


async def test_queue_cap_pauses_submission_without_failing(
    emulator: Factory,
) -> None:
    # A server cap below one batch: the first POST meets it however fast the runner is.
    emu = emulator(
        task_seconds=0.004, user_slots=1, max_queued=50, write_rate="300/0.5s",
        read_rate="600/0.5s", observations_per_day=0.02,
    )  # fmt: skip
    settings = client_settings(emu, max_queued=5000)  # the client believes in a larger cap
    report = await run(emu, grid_targets(400), settings=settings, keep_data=False)
    assert Counter(o.state for o in report.outcomes) == {State.DOWNLOADED: 400}
    assert emu.stats()["cap_rejections"] >= 1
    assert_clean(emu, created=400)


async def test_respecting_the_cap_means_no_rejection(emulator: Factory) -> None:
    emu = emulator(
        task_seconds=0.002, user_slots=16, max_queued=200, write_rate="300/0.5s",
        read_rate="600/0.5s", observations_per_day=0.02,
    )  # fmt: skip
    report = await run(emu, grid_targets(700), keep_data=False)
    assert len(report.outcomes) == 700
    assert emu.stats()["cap_rejections"] == 0
    assert_clean(emu, created=700)


async def test_a_cap_below_the_batch_size_sends_smaller_batches(emulator: Factory) -> None:
    """A cap smaller than one radeclist batch (the user's setting or a lowered server
    cap) is filled, never waited on for room that cannot come."""
    emu = emulator(
        task_seconds=0.002, user_slots=4, max_queued=30, write_rate="300/0.5s",
        read_rate="600/0.5s", observations_per_day=0.02,
    )  # fmt: skip
    settings = client_settings(emu, max_queued=30)
    report = await run(emu, grid_targets(120), settings=settings, keep_data=False)
    assert Counter(o.state for o in report.outcomes) == {State.DOWNLOADED: 120}
    assert emu.stats()["cap_rejections"] == 0
    assert_clean(emu, created=120)


async def test_sending_waits_while_results_and_deletes_pile_up(
    emulator: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One download at a time (each waits for its store group): they fall behind a runner
    # that finishes every task at once.
    monkeypatch.setattr(submitter, "BACKLOG", 10)
    emu = emulator(task_seconds=0.001, slots=64, user_slots=64, max_queued=20,
                   write_rate="2000/1s", read_rate="2000/1s")  # fmt: skip
    settings = client_settings(emu, batch_size=5, download_concurrency=1)
    most = 0

    async def watch() -> None:
        nonlocal most
        while True:
            most = max(most, emu.stats()["tasks_live"])
            await anyio.sleep(0.005)

    async with anyio.create_task_group() as tg:
        tg.start_soon(watch)
        report = await run(emu, grid_targets(100), settings=settings, out_dir=tmp_path,
                           keep_data=False)  # fmt: skip
        tg.cancel_scope.cancel()
    assert Counter(o.state for o in report.outcomes) == {State.DOWNLOADED: 100}
    # Our tasks on the server: the backlog, the tasks not yet seen finished (counted against
    # the queue cap) and one more batch. Without the limit: ~95.
    assert most <= 10 + 20 + 5, most
    assert_clean(emu, created=100)


async def test_no_data_targets_end_as_no_data_and_are_deleted(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.01, user_slots=4)
    targets = grid_targets(5) + grid_targets(5, dec0=-70.0, name="south")
    report = await run(emu, targets)
    states = {o.target.name: o.state for o in report.outcomes}
    assert all(states[f"t{i:05d}"] is State.DOWNLOADED for i in range(5))
    assert all(states[f"south{i:05d}"] is State.NO_DATA for i in range(5))
    assert_clean(emu, created=10)


async def test_server_errors_are_retried_without_duplicates(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.01, user_slots=4, faults=Faults(server_error_rate=0.25))
    report = await run(emu, grid_targets(60), settings=client_settings(emu, batch_size=10))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert (
        emu.stats()["status_counts"].get("500", 0)
        + emu.stats()["status_counts"].get("502", 0)
        + emu.stats()["status_counts"].get("503", 0)
        > 0
    )
    assert_clean(emu, created=60)


async def test_lost_post_responses_are_adopted_not_resent(emulator: Factory) -> None:
    emu = emulator(
        task_seconds=0.01, user_slots=4,
        faults=Faults(drop_after_commit_rate=0.5, drop_before_commit_rate=0.2),
    )  # fmt: skip
    report = await run(emu, grid_targets(50), settings=client_settings(emu, batch_size=5))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert_clean(emu, created=50)


async def test_expired_results_are_resubmitted_once_then_failed(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.01, user_slots=4, faults=Faults(expire_after=0.0))
    report = await run(emu, grid_targets(4))
    assert {o.state for o in report.outcomes} == {State.FAILED}
    assert all("expired" in (o.error or "") for o in report.outcomes)
    assert_clean(emu, created=8)  # each target was asked exactly twice


async def test_truncated_downloads_are_fetched_again(emulator: Factory) -> None:
    emu = emulator(task_seconds=0.01, user_slots=4, faults=Faults(truncate_rate=0.3))
    report = await run(emu, grid_targets(20))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert_clean(emu, created=20)


async def test_duplicates_are_queried_once_and_reported_per_row(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.01)
    rows = [{"name": "a", "ra": 10.0, "dec": 20.0}, {"name": "b", "ra": 10.0001, "dec": 20.0}]
    report = await run(emu, rows)
    assert [o.state for o in report.outcomes] == [State.DOWNLOADED, State.DOWNLOADED]
    assert report.outcomes[0].task_id == report.outcomes[1].task_id
    assert_clean(emu, created=1)


async def test_a_queued_task_deleted_behind_our_back_is_submitted_again(
    emulator: Factory,
) -> None:
    emu = emulator(task_seconds=0.05, user_slots=1)
    web = httpx.AsyncClient(headers={"Authorization": f"Token {emu.token}"})

    async def saboteur() -> None:
        await anyio.sleep(0.3)  # the batch is queued by now: delete its last task on the "web"
        queued = [t for t in emu.tasks() if not t["starttimestamp"]]
        await web.delete(f"{emu.base_url}/queue/{queued[-1]['id']}/")

    settings = client_settings(emu)
    async with (
        web,
        Session(token=emu.token, settings=settings) as session,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(saboteur)
        report = await session.run(grid_targets(10))
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert_clean(emu, created=11)  # the deleted one was asked once more


async def test_the_async_api_and_the_cli_give_the_same_files(
    emulator: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [{**row, "mjd_min": 59000.0, "mjd_max": 59100.0} for row in grid_targets(8)]
    targets = write_csv(tmp_path / "targets.csv", rows)
    by_cli, by_api = tmp_path / "cli", tmp_path / "api"
    first, second = emulator(task_seconds=0.01), emulator(task_seconds=0.01)
    monkeypatch.setenv("ATLAS_TOKEN", first.token)
    argv = ["fetch", str(targets), "--out", str(by_cli), "--base-url", first.base_url,
            "--write-rate", "100/1s", "--read-rate", "1000/1s", "--no-plots"]  # fmt: skip
    assert await anyio.to_thread.run_sync(cli_main, argv) == 0
    report = await run(second, targets, out_dir=by_api)
    assert report.ok
    files = sorted(p.name for p in (by_cli / "lightcurves").iterdir())
    assert files == sorted(p.name for p in (by_api / "lightcurves").iterdir())
    assert len(files) == 8
    for name in files:
        assert (by_cli / "lightcurves" / name).read_bytes() == (
            by_api / "lightcurves" / name
        ).read_bytes()


def test_the_sync_helper_works_in_a_script(emulator: Factory) -> None:
    emu = emulator(task_seconds=0.01)
    report = fetch_photometry(grid_targets(3), token=emu.token, settings=client_settings(emu))
    assert [o.state for o in report.outcomes] == [State.DOWNLOADED] * 3
    assert set(report.photometry["target"]) == {"t00000", "t00001", "t00002"}


async def test_the_sync_helper_explains_itself_inside_an_event_loop(emulator: Factory) -> None:
    emu = emulator(task_seconds=0.01)
    with pytest.raises(InputError, match="inside an event loop"):
        fetch_photometry(grid_targets(1), token=emu.token, settings=client_settings(emu))
    assert emu.stats()["requests"] == {}
