"""Image requests in the emulator (§14, §10, §8, §6): the endpoint's answers and limit, the
IMGZIP child on the runner, its fields, the zip and the preview, and delete semantics."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import Emulator, EmulatorConfig, Faults

Factory = Callable[..., Emulator]
WINDOW = {"mjd_min": 58000, "mjd_max": 58200}
TOO_MANY = "You have too many IMGZIP tasks (5 >= 5). Delete some before making new requests."


def _finished(api: httpx.Client, count: int = 1) -> list[int]:
    """``count`` finished FP tasks with data."""
    lines = "\n".join(f"{10 + i * 0.1:.4f} 20.0" for i in range(count))
    created = api.post("queue/", json={"radeclist": lines, **WINDOW})
    assert created.status_code == 201, created.text
    ids = [int(task["id"]) for task in created.json()]
    wait_for(lambda: all(api.get(f"queue/{i}/").json()["finished"] for i in ids))
    return ids


def _request(api: httpx.Client, task_id: int) -> httpx.Response:
    return api.post(f"queue/{task_id}/requestimages/")


def _child_of(response: httpx.Response) -> int:
    assert response.status_code == 302, response.text
    location = httpx.URL(response.headers["location"])
    assert location.path == "/forcedphot/queue/"
    return int(location.params["newids"])


def test_a_request_makes_an_imgzip_child_that_runs_and_leaves_a_zip(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(image_task_seconds=0.3)
    with client(emu) as api:
        (parent,) = _finished(api)
        child = _child_of(_request(api, parent))
        task = api.get(f"queue/{child}/").json()
        assert (task["request_type"], task["parent_task_id"]) == ("IMGZIP", parent)
        assert task["parent_task_url"] == f"{emu.base_url}/queue/{parent}/"
        assert (task["finished"], task["send_email"], task["callback_url"]) == (False, False, None)
        assert (task["ra"], task["mjd_min"], task["mjd_max"]) == (10.0, 58000, 58200)
        shown = api.get(f"queue/{parent}/").json()
        assert (shown["imagerequest_task_id"], shown["imagerequest_finished"]) == (child, False)
        assert shown["imagerequest_url"] == f"{emu.base_url}/queue/{child}/"
        assert shown["previewimage_url"] == f"{emu.base_url}/static/results/job{parent:05d}.jpg"

        wait_for(lambda: api.get(f"queue/{child}/").json()["finished"])
        task = api.get(f"queue/{child}/").json()
        assert task["error_msg"] is None
        assert task["runtime"] is not None
        zip_url = f"{emu.base_url}/static/results/job{parent:05d}.zip"
        assert task["result_imagezip_url"] == zip_url
        assert api.get(f"queue/{parent}/").json()["imagerequest_finished"] is True
        data = api.get(zip_url).content
        assert api.get(f"queue/{child}/images.zip").content == data
        assert api.get(f"queue/{parent}/images.zip").content == data
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            assert archive.testzip() is None
            names = archive.namelist()
            assert len(names) == 3
            assert all(name.endswith(".fits") for name in names)
            assert archive.read(names[0])[:6] == b"SIMPLE"
        preview = api.get(f"queue/{parent}/preview.jpg")
        assert preview.content[:3] == b"\xff\xd8\xff"  # a JPEG
        assert preview.headers["content-type"] == "image/jpeg"
    assert emu.stats()["image_requests"] == 1


def test_the_answers_of_requestimages(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(task_seconds=5.0)
    bob = emu.add_user("bob", "pw")
    with client(emu) as api, client(emu, bob) as other, client(emu, None) as anonymous:
        queued = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
        assert api.get(f"queue/{queued}/requestimages/").status_code == 405
        assert api.get(f"queue/{queued}/requestimages/").json() == {
            "detail": 'Method "GET" not allowed.'
        }
        assert anonymous.post(f"queue/{queued}/requestimages/").status_code == 401
        assert other.post(f"queue/{queued}/requestimages/").json() == {
            "detail": "You must be the owner of this object."
        }
        missing = api.post("queue/9999/requestimages/")
        assert (missing.status_code, missing.text) == (404, "Page not found")
        unfinished = _request(api, queued)  # not finished: a redirect, nothing made
        assert unfinished.status_code == 302
        assert unfinished.headers["location"] == "/forcedphot/queue/"
        slashless = api.post(f"queue/{queued}/requestimages")
        assert slashless.status_code == 301
    assert emu.stats()["image_requests"] == 0
    assert [t["request_type"] for t in emu.tasks()] == ["FP"]


def test_a_failed_parent_makes_no_request(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory()
    with client(emu) as api:
        empty = api.post("queue/", json={"ra": 10, "dec": 20, "mjd_min": 50000, "mjd_max": 50001})
        task_id = empty.json()["id"]
        wait_for(lambda: api.get(f"queue/{task_id}/").json()["finished"])
        assert api.get(f"queue/{task_id}/").json()["error_msg"] == "No data returned"
        assert _request(api, task_id).headers["location"] == "/forcedphot/queue/"
        assert api.get(f"queue/{task_id}/").json()["previewimage_url"] is None
        assert api.get(f"queue/{task_id}/preview.jpg").status_code == 404
    assert emu.stats()["image_requests"] == 0


def test_five_live_image_requests_are_the_limit(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(image_task_seconds=0.05)
    with client(emu) as api:
        parents = _finished(api, 7)
        children = [_child_of(_request(api, parent)) for parent in parents[:5]]
        refused = _request(api, parents[5])
        assert refused.status_code == 429
        assert refused.json() == {"non_field_errors": TOO_MANY}
        assert "retry-after" not in refused.headers
        wait_for(lambda: all(api.get(f"queue/{c}/").json()["finished"] for c in children))
        assert _request(api, parents[5]).status_code == 429  # finished ones count until deleted
        assert api.delete(f"queue/{children[0]}/").status_code == 204
        _child_of(_request(api, parents[5]))
    stats = emu.stats()
    assert (stats["image_requests"], stats["max_live_image_requests"]) == (6, 5)
    assert stats["throttled"] == {"write": 0, "read": 0}  # not a throttle


def test_a_parent_deleted_before_its_request_ran_keeps_its_files_for_it(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(image_task_seconds=0.3)
    with client(emu) as api:
        (parent,) = _finished(api)
        child = _child_of(_request(api, parent))
        assert api.delete(f"queue/{parent}/").status_code == 204
        assert api.get(f"queue/{parent}/").status_code == 404
        wait_for(lambda: api.get(f"queue/{child}/").json()["finished"])
        task = api.get(f"queue/{child}/").json()
        assert task["error_msg"] is None  # the parent's file was kept for it
        assert api.get(f"queue/{child}/images.zip").status_code == 200
        assert api.delete(f"queue/{child}/").status_code == 204
        assert api.get(f"static/results/job{parent:05d}.zip").status_code == 404
        assert api.get(f"static/results/job{parent:05d}.jpg").status_code == 404
    assert emu.stats()["tasks_live"] == 0


def test_a_request_whose_parent_file_expired_fails_with_the_runners_text(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(image_task_seconds=0.3, faults=Faults(expire_after=0.2))
    with client(emu) as api:
        (parent,) = _finished(api)
        child = _child_of(_request(api, parent))
        wait_for(lambda: api.get(f"queue/{child}/").json()["finished"])
        task = api.get(f"queue/{child}/").json()
        assert task["error_msg"] == (
            "The forced photometry data file for the parent task is no longer available."
        )
        assert task["result_imagezip_url"] is None
        assert api.get(f"queue/{child}/images.zip").status_code == 404


def test_deleting_a_child_frees_the_parents_request(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory(image_task_seconds=5.0)
    with client(emu) as api:
        (parent,) = _finished(api)
        child = _child_of(_request(api, parent))
        assert api.delete(f"queue/{child}/").status_code == 204  # queued or running: gone
        shown = api.get(f"queue/{parent}/").json()
        assert (shown["imagerequest_task_id"], shown["imagerequest_finished"]) == (None, None)


def test_a_lost_302_still_made_the_request(atlas_emulator_factory: Factory) -> None:
    emu = atlas_emulator_factory()
    with client(emu) as api:
        (parent,) = _finished(api)
        emu.set_faults(Faults(drop_after_commit_rate=1.0, endpoints=frozenset({"requestimages"})))
        with pytest.raises(httpx.RemoteProtocolError):
            _request(api, parent)
        emu.set_faults(Faults())
        assert api.get(f"queue/{parent}/").json()["imagerequest_task_id"] is not None
    assert emu.stats()["faults"] == {"drop_after_commit": 1}


def test_image_requests_take_image_task_seconds_and_scale() -> None:
    config = EmulatorConfig()
    assert config.image_task_seconds == 900.0  # about 15 minutes on the real server (§11)
    assert config.scaled(0.1).image_task_seconds == pytest.approx(90.0)
    with pytest.raises(ValueError, match="image_task_seconds"):
        EmulatorConfig(image_task_seconds=-1)
