"""Faults scoped to methods and endpoints: only the chosen requests fail."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client

from atlasbatch.testing import Emulator, Faults
from atlasbatch.testing._scope import classify, fault_applies

Factory = Callable[..., Emulator]


def _finished_tasks(emu: Emulator, api: httpx.Client, count: int) -> list[int]:
    lines = "\n".join(f"{10 + i} 20" for i in range(count))
    ids = [t["id"] for t in api.post("queue/", json={"radeclist": lines}).json()]
    emu.wait_until_idle()
    return ids


def test_only_deletes_fail(atlas_emulator_factory: Factory) -> None:
    faults = Faults(server_error_rate=1.0, methods=frozenset({"DELETE"}))
    emu = atlas_emulator_factory(faults=faults)
    with client(emu) as api:
        ids = _finished_tasks(emu, api, 3)  # the POST goes through
        assert api.get("queue/").status_code == 200
        assert api.get(f"queue/{ids[0]}/data.txt").status_code == 200
        deletes = [api.delete(f"queue/{task_id}/").status_code for task_id in ids]
    assert set(deletes) <= {500, 502, 503}
    stats = emu.stats()
    assert (stats["tasks_deleted"], stats["faults"]) == (0, {"server_error": 3})
    assert [r.fault for r in emu.requests() if r.method == "DELETE"] == ["server_error"] * 3
    assert {r.fault for r in emu.requests() if r.method != "DELETE"} == {None}


def test_only_result_downloads_fail(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(
        faults=Faults(server_error_rate=1.0, endpoints=frozenset({"results"}))
    )
    with client(emu) as api:
        (task_id,) = _finished_tasks(emu, api, 1)
        task = api.get(f"queue/{task_id}/").json()
        assert task["result_url"]
        assert api.get(task["result_url"]).status_code in {500, 502, 503}
        assert api.get(f"queue/{task_id}/data.txt").status_code in {500, 502, 503}
        assert api.delete(f"queue/{task_id}/").status_code == 204
    assert emu.stats()["faults"] == {"server_error": 2}


def test_dropped_downloads_when_gets_of_results_are_chosen(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(
        faults=Faults(
            drop_before_commit_rate=1.0,
            methods=frozenset({"get"}),
            endpoints=frozenset({"results"}),
        )
    )
    with client(emu) as api:
        (task_id,) = _finished_tasks(emu, api, 1)
        with pytest.raises(httpx.TransportError):
            api.get(f"static/results/job{task_id:05d}.txt")
        assert api.get(f"queue/{task_id}/").status_code == 200
    assert emu.stats()["faults"] == {"drop_before_commit": 1}


def test_natural_scopes_without_a_filter() -> None:
    faults = Faults()
    assert fault_applies(faults, "server_error", "GET", "queue")
    assert not fault_applies(faults, "server_error", "GET", "results")
    assert fault_applies(faults, "drop_before_commit", "DELETE", "task")
    assert not fault_applies(faults, "drop_before_commit", "GET", "task")
    assert fault_applies(faults, "garbage_json", "GET", "task")
    assert not fault_applies(faults, "garbage_json", "POST", "queue")
    assert fault_applies(faults, "truncate", "GET", "results")
    assert fault_applies(faults, "slow", "POST", "token")
    scoped = Faults(methods=frozenset({"DELETE"}))
    assert fault_applies(scoped, "server_error", "DELETE", "task")
    assert not fault_applies(scoped, "truncate", "GET", "results")


def test_paths_are_classified() -> None:
    assert classify("/forcedphot/queue/") == "queue"
    assert classify("/forcedphot/queue.json") == "queue"
    assert classify("/forcedphot/queue/12/") == "task"
    assert classify("/forcedphot/queue/12.json") == "task"
    assert classify("/forcedphot/queue/12/data.txt") == "results"
    assert classify("/forcedphot/static/results/job00012.txt") == "results"
    assert classify("/forcedphot/api-token-auth/") == "token"
    assert classify("/forcedphot/elsewhere/") == "other"


def test_unknown_methods_and_endpoints_are_refused() -> None:
    with pytest.raises(ValueError, match="methods"):
        Faults(methods=frozenset({"FETCH"}))
    with pytest.raises(ValueError, match="endpoints"):
        Faults(endpoints=frozenset({"static"}))
    assert Faults(methods=frozenset({"delete"})).methods == frozenset({"DELETE"})
