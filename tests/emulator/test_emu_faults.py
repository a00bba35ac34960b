"""Injected faults: each one, switched on alone, does what it promises and nothing else."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import RESULT_FILE_HEADER, Emulator, Faults

Factory = Callable[..., Emulator]


def test_server_errors_come_before_anything_else(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(server_error_rate=1.0), write_rate="1/min")
    with client(emu) as api:
        statuses = {api.post("queue/", json={"ra": 1, "dec": 2}).status_code for _ in range(20)}
        statuses |= {api.get("queue/").status_code for _ in range(20)}
        assert statuses <= {500, 502, 503}
        assert len(statuses) > 1
        token = api.post(
            "api-token-auth/", json={"username": "atlas", "password": "atlas-password"}
        )
        assert token.status_code == 200  # not a throttled-API request
    stats = emu.stats()
    assert stats["tasks_created"] == 0
    assert stats["scope_requests"] == {"write": 0, "read": 0}
    assert stats["faults"] == {"server_error": 40}


def test_drop_before_commit_loses_the_request(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(drop_before_commit_rate=1.0))
    with client(emu) as api:
        with pytest.raises(httpx.TransportError):
            api.post("queue/", json={"ra": 1, "dec": 2})
        assert api.get("queue/").json()["taskcount"] == 0  # reads are unaffected
    stats = emu.stats()
    assert (stats["tasks_created"], stats["faults"]) == (0, {"drop_before_commit": 1})
    assert stats["requests"] == {"POST": 1, "GET": 1}
    assert stats["status_counts"] == {"200": 1}


def test_drop_after_commit_loses_only_the_response(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(drop_after_commit_rate=1.0), task_seconds=60)
    with client(emu) as api:
        with pytest.raises(httpx.TransportError):
            api.post("queue/", json={"ra": 1, "dec": 2, "comment": "tag-1"})
        (task,) = emu.tasks()
        assert task["comment"] == "tag-1"
        with pytest.raises(httpx.TransportError):
            api.delete(f"queue/{task['id']}/")
        assert emu.tasks() == []
        # a refused request (here a 400) is not a committed change: its answer arrives
        assert api.post("queue/", json={"ra": 1}).status_code == 400
    assert emu.stats()["faults"] == {"drop_after_commit": 2}


def test_slow_responses(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(slow_rate=1.0, slow_seconds=0.3))
    with client(emu) as api:
        started = time.monotonic()
        assert api.get("queue/").status_code == 200
        assert time.monotonic() - started >= 0.3
        with pytest.raises(httpx.ReadTimeout):
            api.post("queue/", json={"ra": 1, "dec": 2}, timeout=0.1)
    wait_for(lambda: emu.stats()["tasks_created"] == 1)  # it was committed all the same


def test_truncated_downloads_cut_a_line(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(truncate_rate=1.0))
    with client(emu) as api:
        task_id = api.post(
            "queue/", json={"ra": 10, "dec": 10, "mjd_min": 60000, "mjd_max": 60100}
        ).json()["id"]
        emu.wait_until_idle()
        emu.set_faults(Faults())
        full = api.get(f"queue/{task_id}/data.txt").text
        emu.set_faults(Faults(truncate_rate=1.0))
        for path in (f"queue/{task_id}/data.txt", f"static/results/job{task_id:05d}.txt"):
            cut = api.get(path).text
            assert full.startswith(cut)
            assert len(cut) < len(full)
            assert not cut.endswith("\n")
            assert len(cut.splitlines()[-1].split()) < len(RESULT_FILE_HEADER.split())
    assert emu.stats()["faults"] == {"truncated": 2}


def test_result_files_expire_while_the_task_stays(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(expire_after=0.3))
    with client(emu) as api:
        task_id = api.post("queue/", json={"ra": 10, "dec": 10}).json()["id"]
        wait_for(lambda: api.get(f"queue/{task_id}/").json()["finished"])
        result_url = api.get(f"queue/{task_id}/").json()["result_url"]
        assert api.get(result_url).status_code == 200
        time.sleep(0.35)
        assert api.get(result_url).status_code == 404
        task = api.get(f"queue/{task_id}/").json()
        assert (task["finished"], task["error_msg"], task["result_url"]) == (True, None, None)
    assert emu.stats()["files_expired"] == 1


def test_lost_tasks_rerun(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(lose_rate=0.5), task_seconds=0.02, seed=3)
    with client(emu) as api:
        api.post("queue/", json={"radeclist": "\n".join(f"{i} 10" for i in range(1, 11))})
        emu.wait_until_idle()
        tasks = api.get("queue/?pagesize=100").json()["results"]
    assert all(t["finished"] and t["error_msg"] is None for t in tasks)
    assert max(t["attempt_count"] for t in tasks) > 1
    assert emu.stats()["tasks_lost"] == sum(t["attempt_count"] for t in tasks) - 10


def test_purge_after_removes_finished_tasks(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(purge_after=0.2)
    with client(emu) as api:
        task_id = api.post("queue/", json={"ra": 10, "dec": 10}).json()["id"]
        wait_for(lambda: api.get(f"queue/{task_id}/").status_code == 404, timeout=3)
        assert api.get(f"queue/{task_id}/").json() == {"detail": "No Task matches the given query."}
    stats = emu.stats()
    assert (stats["tasks_purged"], stats["tasks_live"]) == (1, 0)


def test_faults_can_be_swapped_at_runtime(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory()
    with client(emu) as api:
        assert api.get("queue/").status_code == 200
        emu.set_faults(Faults(server_error_rate=1.0))
        assert emu.faults.server_error_rate == 1.0
        assert api.get("queue/").status_code >= 500
        emu.set_faults(Faults())
        assert api.get("queue/").status_code == 200


def test_faults_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Faults(slow_rate=1.5)
    with pytest.raises(ValueError, match="lose_rate"):
        Faults(lose_rate=1.0)


def test_html_errors_replace_the_answer_after_the_change_is_made(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(faults=Faults(html_error_rate=1.0), task_seconds=60)
    with client(emu) as api:
        answers = [
            api.post("queue/", json={"ra": 1, "dec": 2, "comment": f"t{i}"}) for i in range(6)
        ]
        answers.append(api.get("queue/"))
        for answer in answers:
            assert answer.status_code in (502, 503, 504)
            assert answer.headers["content-type"].startswith("text/html")
            assert answer.text.startswith('<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">')
            assert f"<title>{answer.status_code} " in answer.text
        assert len({a.status_code for a in answers}) > 1
    assert sorted(t["comment"] for t in emu.tasks()) == [f"t{i}" for i in range(6)]  # committed
    stats = emu.stats()
    assert stats["faults"] == {"html_error": 7}
    assert stats["scope_requests"] == {"write": 6, "read": 1}  # the app (and throttle) saw them
    assert sum(stats["status_counts"].values()) == 7
    assert set(stats["status_counts"]) <= {"502", "503", "504"}


def test_html_errors_spare_unthrottled_paths(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(faults=Faults(html_error_rate=1.0, garbage_json_rate=1.0))
    with client(emu) as api:
        token = api.post(
            "api-token-auth/", json={"username": "atlas", "password": "atlas-password"}
        )
        assert token.json() == {"token": emu.token}
    assert emu.stats()["faults"] == {}


def test_garbage_json_cuts_read_bodies_only(atlas_emulator_factory: Factory) -> None:
    # long tasks: the task's JSON must not change (finish) between the reads compared below
    emu = atlas_emulator_factory(faults=Faults(garbage_json_rate=1.0), task_seconds=60)
    with client(emu) as api:
        created = api.post("queue/", json={"ra": 1, "dec": 2})
        assert created.status_code == 201
        task_id = created.json()["id"]  # writes are untouched
        emu.set_faults(Faults())
        whole = api.get(f"queue/{task_id}/").content
        emu.set_faults(Faults(garbage_json_rate=1.0))
        for path in ("queue/", f"queue/{task_id}/", "queue.json"):
            answer = api.get(path)
            assert answer.status_code == 200
            assert answer.headers["content-type"] == "application/json"
            assert int(answer.headers["content-length"]) == len(answer.content) > 0
            with pytest.raises(json.JSONDecodeError):
                answer.json()
        assert whole.startswith(api.get(f"queue/{task_id}/").content)
        assert api.get("queue/999/").status_code == 404  # errors and 304s pass unchanged
        assert api.head(f"queue/{task_id}/").status_code == 200
    assert emu.stats()["faults"] == {"garbage_json": 4}


def test_new_faults_validate_their_arguments() -> None:
    with pytest.raises(ValueError, match="html_error_rate"):
        Faults(html_error_rate=-0.1)
    with pytest.raises(ValueError, match="garbage_json_rate"):
        Faults(garbage_json_rate=2)


def test_new_faults_have_command_line_options() -> None:
    from atlasbatch.testing._cli import _config, build_parser  # noqa: PLC0415

    args = build_parser().parse_args(["--html-error-rate", "0.1", "--garbage-json-rate", "0.2"])
    faults = _config(args).faults
    assert (faults.html_error_rate, faults.garbage_json_rate) == (0.1, 0.2)
