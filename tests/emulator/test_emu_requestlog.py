"""What the server saw and when, on its own clock: the request log and the task timings."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import Emulator, EmulatorConfig, Faults

Factory = Callable[..., Emulator]


def test_the_log_records_each_request(emu: Emulator, api: httpx.Client) -> None:
    created = api.post("queue/", json={"ra": 1, "dec": 2}).json()
    api.get("queue/", params={"started": "true", "pagesize": 100})
    api.get("queue/999/")
    httpx.get(f"{emu.base_url}/_emulator/stats.json")  # the emulator's own: not logged
    records = emu.requests()
    assert [(r.method, r.path, r.query, r.status, r.fault) for r in records] == [
        ("POST", "/forcedphot/queue/", "", 201, None),
        ("GET", "/forcedphot/queue/", "started=true&pagesize=100", 200, None),
        ("GET", "/forcedphot/queue/999/", "", 404, None),
    ]
    times = [r.time for r in records]
    assert times == sorted(times)
    assert 0.0 <= times[0] <= times[-1] <= emu.now()
    (timing,) = emu.task_timings()
    assert timing.id == created["id"]
    assert times[0] <= timing.submitted_at <= times[1]


def test_the_log_is_bounded_and_reset_with_the_stats(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(request_log_size=3)
    with client(emu) as api:
        for page in range(1, 6):
            api.get("queue/", params={"pagesize": page})
    assert [r.query for r in emu.requests()] == ["pagesize=3", "pagesize=4", "pagesize=5"]
    emu.reset_stats()
    assert emu.requests() == []


def test_faults_and_dropped_requests_are_logged(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(drop_before_commit_rate=1.0))
    with client(emu) as api, pytest.raises(httpx.TransportError):
        api.post("queue/", json={"ra": 1, "dec": 2})
    (record,) = emu.requests()
    assert (record.method, record.status, record.fault) == ("POST", None, "drop_before_commit")


def test_task_timings_on_the_emulator_clock(emu: Emulator, api: httpx.Client) -> None:
    tasks = api.post("queue/", json={"radeclist": "1 2\n3 4"}).json()
    emu.wait_until_idle()
    first, second = emu.task_timings()
    assert [first.id, second.id] == [t["id"] for t in tasks]
    assert first.submitted_at == second.submitted_at  # one POST
    assert first.started_at is not None and second.started_at is not None
    assert first.finished_at is not None and second.finished_at is not None
    assert first.submitted_at <= first.started_at < first.finished_at
    assert second.started_at >= first.finished_at  # one task per user at a time
    assert first.finished_at - first.started_at == pytest.approx(emu.config.task_seconds)
    assert (first.state, first.attempt_count, first.username) == ("finished", 1, "atlas")
    api.delete(f"queue/{first.id}/")
    assert [t.archived for t in emu.task_timings()] == [True, False]
    assert [t.id for t in emu.task_timings(include_archived=False)] == [second.id]


def test_the_idle_poll_is_visible_on_the_wire() -> None:
    """The real runner's timing, 100 times as fast: 0.05 s idle poll, 0.012 s gap."""
    config = EmulatorConfig(task_seconds=5.0).scaled(0.01)
    assert (config.runner_idle_poll, config.user_gap) == pytest.approx((0.05, 0.012))
    with Emulator(config) as emu, client(emu) as api:
        api.post("queue/", json={"ra": 1, "dec": 2})
        emu.wait_until_idle()
        (first,) = emu.task_timings()
        assert first.started_at is not None and first.finished_at is not None
        assert 0.0 <= first.started_at - first.submitted_at <= 0.05 + 1e-9
        idle_from = first.finished_at + config.user_gap  # the runner's last wake-up
        wait_for(lambda: emu.now() > idle_from)
        api.post("queue/", json={"ra": 3, "dec": 4})
        emu.wait_until_idle()
        second = emu.task_timings()[1]
    assert second.started_at is not None
    polls = (second.started_at - idle_from) / config.runner_idle_poll
    assert polls == pytest.approx(round(polls), abs=1e-6)  # on the idle runner's 0.05 s grid
    assert 0.0 <= second.started_at - second.submitted_at <= 0.05 + 1e-9
