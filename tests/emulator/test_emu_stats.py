"""The observation interface: ``stats()`` and ``/_emulator/stats.json``."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from _emu_helpers import client

from atlasbatch.testing import Emulator


def test_stats_count_what_the_server_saw(atlas_emulator_factory: Callable[..., Emulator]) -> None:
    emu = atlas_emulator_factory(write_rate="3/min", task_seconds=0.01)
    with client(emu) as api:
        tasks = api.post("queue/", json={"radeclist": "1 2\n3 4"}).json()
        api.post("queue/", json={"ra": 1})  # 400, counted
        emu.wait_until_idle()
        api.get(f"queue/{tasks[0]['id']}/data.txt")
        api.get(f"static/results/job{tasks[1]['id']:05d}.txt")
        api.delete(f"queue/{tasks[0]['id']}/")
        api.delete(f"queue/{tasks[1]['id']}/")  # 429
        api.get("queue/")
        stats_page = httpx.get(f"{emu.base_url}/_emulator/stats.json")  # no auth, not counted
    assert stats_page.status_code == 200
    stats = emu.stats()
    assert stats_page.json() == stats
    assert stats["requests"] == {"POST": 2, "GET": 3, "DELETE": 2}
    assert stats["status_counts"] == {"200": 3, "201": 1, "204": 1, "400": 1, "429": 1}
    assert (stats["tasks_created"], stats["tasks_deleted"], stats["tasks_live"]) == (2, 1, 1)
    assert stats["tasks_by_state"] == {"queued": 0, "running": 0, "finished": 1}
    assert stats["throttled"] == {"write": 1, "read": 0}
    assert stats["scope_requests"] == {"write": 4, "read": 1}
    assert (stats["downloads"], stats["max_writes_in_window"], stats["cap_rejections"]) == (2, 3, 0)


def test_reset_stats_keeps_the_tasks(emu: Emulator, api: httpx.Client) -> None:
    api.post("queue/", json={"ra": 1, "dec": 2})
    emu.reset_stats()
    stats = emu.stats()
    assert (stats["requests"], stats["status_counts"], stats["tasks_created"]) == ({}, {}, 0)
    assert stats["tasks_live"] == 1
    assert stats["scope_requests"] == {"write": 0, "read": 0}


def test_handle_lists_every_users_tasks(emu: Emulator, api: httpx.Client) -> None:
    with client(emu, emu.add_user("bob", "pw")) as bob:
        bob.post("queue/", json={"ra": 3, "dec": 4, "callback_url": "https://example.org/h"})
    api.post("queue/", json={"ra": 1, "dec": 2})
    tasks = emu.tasks()
    assert [(t["id"], t["username"]) for t in tasks] == [(1, "bob"), (2, "atlas")]
    assert tasks[0]["callback_url"] == "https://example.org/h"  # shown as the owner sees it
    other_view = api.get("queue/1/").json()
    assert other_view["callback_url"] is None  # hidden from other users, as on the server
