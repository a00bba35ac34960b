"""The outage switch: the whole site answers Apache's 503 page, or nothing, and no state moves."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import Emulator, EmulatorConfig

APACHE_503 = "<title>503 Service Unavailable</title>"


def _every_endpoint(api: httpx.Client, task_id: int) -> list[httpx.Response]:
    return [
        api.get("queue/"),
        api.post("queue/", json={"ra": 1, "dec": 2}),
        api.get(f"queue/{task_id}/"),
        api.delete(f"queue/{task_id}/"),
        api.get(f"queue/{task_id}/data.txt"),
        api.get(f"static/results/job{task_id:05d}.txt"),
        api.post("api-token-auth/", data={"username": "atlas", "password": "atlas-password"}),
    ]


def test_a_503_outage_answers_everything_with_apaches_page(
    emu: Emulator, api: httpx.Client
) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    emu.wait_until_idle()
    before = emu.stats()
    with emu.outage("503"):
        answers = _every_endpoint(api, task_id)
    assert [a.status_code for a in answers] == [503] * 7
    assert all(APACHE_503 in a.text for a in answers)
    assert all(a.headers["content-type"].startswith("text/html") for a in answers)
    after = emu.stats()
    # nothing behind the front end ran: no task made or deleted, no throttle slot used
    assert (after["tasks_created"], after["tasks_deleted"]) == (1, 0)
    assert after["scope_requests"] == before["scope_requests"]
    assert after["faults"] == {"outage_503": 7}
    assert after["status_counts"]["503"] == 7
    assert api.get(f"queue/{task_id}/").json()["finished"] is True  # back after the block


def test_a_drop_outage_answers_nothing(emu: Emulator, api: httpx.Client) -> None:
    handle = emu.outage("drop")
    for path in ("queue/", "queue/1/", "static/results/job00001.txt"):
        with pytest.raises(httpx.TransportError):
            api.get(path)
    with pytest.raises(httpx.TransportError):
        api.post("queue/", json={"ra": 1, "dec": 2})
    handle.end()
    assert api.get("queue/").status_code == 200
    stats = emu.stats()
    assert stats["faults"] == {"outage_drop": 4}
    assert (stats["tasks_created"], stats["requests"]) == (0, {"GET": 4, "POST": 1})
    assert [r.status for r in emu.requests()] == [None, None, None, None, 200]


def test_tasks_keep_running_through_an_outage(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=0.05)
    with client(emu) as api:
        tasks = api.post("queue/", json={"radeclist": "1 2\n3 4\n5 6"}).json()
        emu.outage("503")
        assert api.get("queue/").status_code == 503
        emu.wait_until_idle()  # the runner does not care about the front end
        assert all(t["finished"] for t in emu.tasks())
        emu.end_outage()
        listed = api.get("queue/").json()["results"]
    assert {t["id"] for t in listed} == {t["id"] for t in tasks}
    assert all(t["result_url"] for t in listed)


def test_the_stats_endpoint_stays_up(emu: Emulator) -> None:
    with emu.outage("drop"):
        assert httpx.get(f"{emu.base_url}/_emulator/stats.json").status_code == 200


def test_configured_windows_follow_the_emulator_clock(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(outages=((0.0, 0.5, "503"), (0.5, 0.8, "drop")))
    with client(emu) as api:
        assert emu.now() < 0.5
        assert api.get("queue/").status_code == 503
        wait_for(lambda: emu.now() >= 0.5)
        if emu.now() < 0.8:  # a slow machine may have slept past the second window
            with pytest.raises(httpx.TransportError):
                api.get("queue/")
        wait_for(lambda: emu.now() >= 0.8)
        assert api.get("queue/").status_code == 200
    faults = [r.fault for r in emu.requests()]
    assert faults[0] == "outage_503"
    assert faults[-1] is None


def test_a_manual_outage_overrides_the_windows(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(outages=((0.0, 1e9, "drop"),))
    with client(emu) as api:
        with emu.outage("503"):
            assert api.get("queue/").status_code == 503
        with pytest.raises(httpx.TransportError):
            api.get("queue/")  # the configured window again


def test_outage_arguments_are_checked(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="503"):
        emu.outage("down")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="start < end"):
        EmulatorConfig(outages=((5.0, 5.0, "503"),))
    with pytest.raises(ValueError, match="mode"):
        EmulatorConfig(outages=((0.0, 5.0, "502"),))  # type: ignore[arg-type]
    config = EmulatorConfig(outages=[[0, 5, "drop"]])  # type: ignore[list-item]
    assert config.outages == ((0.0, 5.0, "drop"),)
