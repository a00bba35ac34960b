"""Queue cap, listing (pagination, filter, ordering, ETag) and deletion (§7, §8, §10, §19)."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from _emu_helpers import client, radeclist, wait_for

from atlasbatch.testing import Emulator

TOO_MANY = "ERROR: You have too many queued tasks"


def test_queue_cap_counts_the_batch_and_ignores_the_running_task(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=60)
    with client(emu) as api:
        for batch in range(5):
            assert (
                api.post("queue/", json={"radeclist": radeclist(100, start=batch)}).status_code
                == 201
            )
        # one task runs, so 499 are waiting: a sixth batch is refused, a single target is not
        refused = api.post("queue/", json={"radeclist": radeclist(100)})
        assert refused.status_code == 400
        assert refused.json() == {
            "non_field_errors": f"{TOO_MANY} (499 queued + 100 requested > 500)."
        }
        assert api.post("queue/", json={"ra": 1, "dec": 2}).status_code == 201
        full = api.post("queue/", json={"ra": 1, "dec": 2}).json()
        assert full == {"non_field_errors": f"{TOO_MANY} (500 queued + 1 requested > 500)."}
    stats = emu.stats()
    assert (stats["cap_rejections"], stats["tasks_created"], stats["tasks_live"]) == (2, 501, 501)
    assert stats["tasks_by_state"] == {"queued": 500, "running": 1, "finished": 0}


def test_queue_cap_uses_the_configured_number(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=60, max_queued=10)
    with client(emu) as api:
        api.post("queue/", json={"radeclist": radeclist(10)})
        response = api.post("queue/", json={"radeclist": radeclist(10)})
    assert response.json() == {"non_field_errors": f"{TOO_MANY} (9 queued + 10 requested > 10)."}
    assert len(emu.tasks()) == 10


def test_pagination_default_page_and_links(emu: Emulator, api: httpx.Client) -> None:
    api.post("queue/", json={"radeclist": radeclist(10)})
    first = api.get("queue/").json()
    assert (len(first["results"]), first["taskcount"], first["pagefirsttaskposition"]) == (6, 10, 0)
    assert first["previous"] is None
    assert first["next"].startswith(f"{emu.base_url}/queue/?cursor=")
    assert [t["id"] for t in first["results"]] == list(range(10, 4, -1))
    second = api.get(first["next"]).json()
    assert (len(second["results"]), second["pagefirsttaskposition"], second["next"]) == (4, 6, None)
    assert [t["id"] for t in second["results"]] == [4, 3, 2, 1]
    assert second["previous"] == f"{emu.base_url}/queue/"


def test_pagesize_is_clamped_to_100(api: httpx.Client) -> None:
    api.post("queue/", json={"radeclist": radeclist(100)})
    api.post("queue/", json={"radeclist": radeclist(30)})
    assert len(api.get("queue/?pagesize=100000").json()["results"]) == 100
    assert len(api.get("queue/?pagesize=20").json()["results"]) == 20
    assert len(api.get("queue/?pagesize=0").json()["results"]) == 6
    page = api.get("queue/?pagesize=20").json()
    assert re.fullmatch(r".*/queue/\?cursor=[^&]+&pagesize=20", page["next"])


def _walk_back_and_check(get: Callable[[str], dict[str, object]], pages: list[dict]) -> None:
    """TaskPagination's promise: previous pages are contiguous runs at the right position."""
    all_ids = [t["id"] for page in pages for t in page["results"]]
    page = pages[-1]
    for _ in range(20):
        if not page["previous"]:
            break
        page = get(page["previous"])
        ids = [t["id"] for t in page["results"]]
        assert ids, "a previous page must never be empty"
        start = all_ids.index(ids[0])
        assert all_ids[start : start + len(ids)] == ids
        assert page["pagefirsttaskposition"] == start
    assert page["results"][0]["id"] == all_ids[0], "the backward walk must reach the first page"


def test_walking_tied_timestamps_forwards_and_back(api: httpx.Client) -> None:
    api.post("queue/", json={"radeclist": radeclist(10)})  # one shared timestamp
    pages = [api.get("queue/?ordering=timestamp&pagesize=3").json()]
    while pages[-1]["next"]:
        pages.append(api.get(pages[-1]["next"]).json())
    ids = [[t["id"] for t in page["results"]] for page in pages]
    assert ids == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10]]
    assert [p["pagefirsttaskposition"] for p in pages] == [0, 3, 6, 9]
    _walk_back_and_check(lambda url: api.get(url).json(), pages)


def test_ordering_timestamp_page_two(api: httpx.Client) -> None:
    api.post("queue/", json={"radeclist": radeclist(10)})
    first = api.get("queue/?ordering=timestamp").json()
    second = api.get(first["next"]).json()
    assert (len(second["results"]), second["pagefirsttaskposition"]) == (4, 6)
    assert [t["id"] for t in api.get("queue/?ordering=id").json()["results"]] == [1, 2, 3, 4, 5, 6]
    assert api.get("queue/?cursor=bz0tMQ%3D%3D").json()  # o=-1 == {"detail": "Invalid cursor"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [("true", 1), ("True", 1), ("1", 1), ("false", 2), ("False", 2), ("0", 2), ("yes", 3), ("", 3)],
)
def test_started_filter(
    atlas_emulator_factory: Callable[..., Emulator], value: str, expected: int
) -> None:
    emu = atlas_emulator_factory(task_seconds=60)
    with client(emu) as api:
        api.post("queue/", json={"radeclist": radeclist(3)})
        assert api.get(f"queue/?started={value}").json()["taskcount"] == expected


def test_list_etag_and_304(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=0.3)
    with client(emu) as api, client(emu, emu.add_user("bob", "pw")) as bob:
        api.post("queue/", json={"ra": 1, "dec": 2})
        emu.wait_until_idle()
        first = api.get("queue/")
        etag = first.headers["ETag"]
        assert re.fullmatch(r'"[\x21\x23-\x7e]+"', etag)
        not_modified = api.get("queue/", headers={"If-None-Match": etag})
        assert (not_modified.status_code, not_modified.content) == (304, b"")
        assert "ETag" not in not_modified.headers
        assert api.get("queue/?pagesize=5").headers["ETag"] != etag  # the path is part of it
        bob.post("queue/", json={"ra": 3, "dec": 4})  # another user's task: still 304
        assert api.get("queue/", headers={"If-None-Match": etag}).status_code == 304
        api.post("queue/", json={"ra": 5, "dec": 6})  # own new task: 200
        changed = api.get("queue/", headers={"If-None-Match": etag})
        assert changed.status_code == 200
        running_tag = changed.headers["ETag"]
        emu.wait_until_idle()  # own task finishing: 200 again
        assert api.get("queue/", headers={"If-None-Match": running_tag}).status_code == 200


def test_list_etag_changes_when_another_user_reorders_the_queue(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=60, slots=1)
    with client(emu) as api, client(emu, emu.add_user("bob", "pw")) as bob:
        api.post("queue/", json={"radeclist": radeclist(3)})
        etag = api.get("queue/").headers["ETag"]
        bob.post("queue/", json={"ra": 1, "dec": 2})  # round robin puts bob's task ahead of two
        response = api.get("queue/", headers={"If-None-Match": etag})
        assert response.status_code == 200
        assert [t["queuepos"] for t in response.json()["results"]] == [3, 2, 0]
        assert bob.get("queue/").json()["results"][0]["queuepos"] == 1


def test_detail_etag_and_anonymous_304(emu: Emulator, api: httpx.Client) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    emu.wait_until_idle()
    response = api.get(f"queue/{task_id}/")
    etag = response.headers["ETag"]
    assert api.get(f"queue/{task_id}/", headers={"If-None-Match": etag}).status_code == 304
    with client(emu, token=None) as anonymous:
        tag = anonymous.get(f"queue/{task_id}/").headers["ETag"]
        assert anonymous.get(f"queue/{task_id}/", headers={"If-None-Match": tag}).status_code == 304


def test_json_suffix_and_format_parameter(emu: Emulator, api: httpx.Client) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    assert api.get("queue.json").json()["taskcount"] == 1
    assert api.get(f"queue/{task_id}.json").json()["id"] == task_id
    assert api.get(f"queue/{task_id}/?format=json").json()["id"] == task_id
    assert api.get(f"queue/{task_id}/?format=xml").status_code == 404
    assert api.get(f"queue/{task_id}/").headers["content-type"] == "application/json"


def test_post_without_trailing_slash_is_a_301(emu: Emulator, api: httpx.Client) -> None:
    response = api.post("queue", json={"ra": 1, "dec": 2})
    assert response.status_code == 301
    assert response.headers["Location"] == "/forcedphot/queue/"
    assert api.get("queue/7?x=1").headers["Location"] == "/forcedphot/queue/7/?x=1"
    assert emu.stats()["tasks_created"] == 0


def test_unknown_task_is_a_json_404(api: httpx.Client) -> None:
    response = api.get("queue/12345/")
    assert response.status_code == 404
    assert response.json() == {"detail": "No Task matches the given query."}


def test_deleting_a_queued_task(atlas_emulator_factory: Callable[..., Emulator]) -> None:
    emu = atlas_emulator_factory(task_seconds=60)
    with client(emu) as api:
        tasks = api.post("queue/", json={"radeclist": radeclist(2)}).json()
        queued = tasks[1]["id"]
        assert api.delete(f"queue/{queued}/").status_code == 204
        gone = api.get(f"queue/{queued}/")
        assert (gone.status_code, gone.json()) == (
            404,
            {"detail": "No Task matches the given query."},
        )
        assert api.delete(f"queue/{queued}/").status_code == 404
    stats = emu.stats()
    assert (stats["tasks_deleted"], stats["tasks_live"]) == (1, 1)


def test_deleting_a_running_task_frees_its_slot(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=60)
    with client(emu) as api:
        first, second = api.post("queue/", json={"radeclist": radeclist(2)}).json()
        assert api.get(f"queue/{first['id']}/").json()["starttimestamp"] is not None
        assert api.delete(f"queue/{first['id']}/").status_code == 204
        after = api.get(f"queue/{second['id']}/").json()
        assert (after["starttimestamp"] is not None, after["queuepos"], after["attempt_count"]) == (
            True,
            0,
            1,
        )


def test_deleting_a_finished_task_archives_it(emu: Emulator, api: httpx.Client) -> None:
    task = api.post("queue/", json={"ra": 1, "dec": 2}).json()
    wait_for(lambda: api.get(f"queue/{task['id']}/").json()["finished"])
    result_url = api.get(f"queue/{task['id']}/").json()["result_url"]
    assert api.get(result_url).status_code == 200
    assert api.delete(f"queue/{task['id']}/").status_code == 204
    gone = api.get(f"queue/{task['id']}/")
    assert (gone.status_code, gone.text) == (404, "Page not found")
    assert gone.headers["content-type"].startswith("text/html")
    missing = api.get(result_url)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("text/html")
    assert api.get(f"queue/{task['id']}/data.txt").status_code == 404
    assert api.delete(f"queue/{task['id']}/").status_code == 204
    assert api.get("queue/").json()["taskcount"] == 0
    assert [t["archived"] for t in emu.tasks(include_archived=True)] == [True]
    assert emu.tasks() == []


def test_round_robin_positions_across_three_users(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(task_seconds=60, slots=1)
    tokens = [emu.token, emu.add_user("bob", "pw"), emu.add_user("carol", "pw")]
    for token in tokens:
        with client(emu, token) as api:
            api.post("queue/", json={"radeclist": radeclist(3)})
    by_position = sorted(emu.tasks(), key=lambda t: t["queuepos"])
    assert [t["queuepos"] for t in by_position] == list(range(9))
    users = [t["username"] for t in by_position]
    for group in range(3):
        assert sorted(users[group * 3 : group * 3 + 3]) == ["atlas", "bob", "carol"]
    assert by_position[0]["starttimestamp"] is not None
    assert [t["starttimestamp"] for t in by_position[1:]] == [None] * 8
