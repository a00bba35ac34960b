"""DRF SimpleRateThrottle behaviour (§9, ReadThrottleTests) and the rate syntax."""

from __future__ import annotations

import re
import time
from collections.abc import Callable

import pytest
from _emu_helpers import client

from atlasbatch.testing import Emulator, Rate, parse_rate
from atlasbatch.testing._state.throttle import SlidingWindowThrottle

DETAIL = re.compile(r"^Request was throttled\. Expected available in (\d+) seconds?\.$")


def test_60_posts_pass_and_the_61st_is_throttled(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(write_rate="60/min")
    with client(emu) as api:
        statuses = [api.post("queue/", json={"ra": i, "dec": 1}).status_code for i in range(60)]
        assert statuses == [201] * 60
        refused = api.post("queue/", json={"ra": 1, "dec": 1})
    assert refused.status_code == 429
    detail = refused.json()["detail"]
    match = DETAIL.match(detail)
    assert match is not None, detail
    wait = int(match.group(1))
    assert refused.headers["Retry-After"] == str(wait)
    assert 55 <= wait <= 60
    assert detail == f"Request was throttled. Expected available in {wait} seconds."
    stats = emu.stats()
    assert stats["tasks_created"] == 60
    assert stats["throttled"] == {"write": 1, "read": 0}
    assert stats["scope_requests"]["write"] == 61
    assert stats["max_writes_in_window"] == 60
    assert stats["status_counts"]["429"] == 1


def test_singular_second_and_recovery_after_retry_after(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(write_rate="2/0.8s")
    with client(emu) as api:
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201
        refused = api.post("queue/", json={"ra": 1, "dec": 1})
        assert refused.status_code == 429
        assert refused.json() == {
            "detail": "Request was throttled. Expected available in 1 second."
        }
        assert refused.headers["Retry-After"] == "1"
        time.sleep(0.85)
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201


def test_refused_requests_are_not_recorded(atlas_emulator_factory: Callable[..., Emulator]) -> None:
    emu = atlas_emulator_factory(write_rate="3/0.6s")
    with client(emu) as api:
        started = time.monotonic()
        for _ in range(3):
            api.post("queue/", json={"ra": 1, "dec": 1})
        # hammering while refused must not push the window out
        while time.monotonic() - started < 0.5:
            assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 429
        time.sleep(max(0.0, 0.65 - (time.monotonic() - started)))
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201


def test_read_and_write_budgets_are_separate(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(read_rate="3/min", write_rate="1/min")
    with client(emu) as api:
        assert [api.get("queue/").status_code for _ in range(5)] == [200, 200, 200, 429, 429]
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 429
    assert emu.stats()["throttled"] == {"write": 1, "read": 2}


def test_users_have_separate_budgets(atlas_emulator_factory: Callable[..., Emulator]) -> None:
    emu = atlas_emulator_factory(write_rate="1/min")
    with client(emu) as alice, client(emu, emu.add_user("bob", "pw")) as bob:
        assert alice.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201
        assert alice.post("queue/", json={"ra": 1, "dec": 1}).status_code == 429
        assert bob.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201


def test_400_404_and_deletes_count_but_401_does_not(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(write_rate="3/min")
    with client(emu) as api, client(emu, token=None) as anonymous:
        assert anonymous.post("queue/", json={}).status_code == 401
        assert api.post("queue/", json={"ra": 1}).status_code == 400
        assert api.delete("queue/999/").status_code == 404
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 201
        assert api.post("queue/", json={"ra": 1, "dec": 1}).status_code == 429


def test_304_counts_against_the_read_budget(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(read_rate="2/min")
    with client(emu) as api:
        etag = api.get("queue/").headers["ETag"]
        assert api.get("queue/", headers={"If-None-Match": etag}).status_code == 304
        assert api.get("queue/", headers={"If-None-Match": etag}).status_code == 429


def test_result_downloads_and_token_auth_are_not_throttled(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(read_rate="1/min", write_rate="1/min")
    with client(emu) as api:
        task = api.post("queue/", json={"ra": 1, "dec": 1}).json()
        emu.wait_until_idle()
        credentials = {"username": "atlas", "password": "atlas-password"}
        for _ in range(3):
            assert api.get(f"queue/{task['id']}/data.txt").status_code == 200
            assert api.get(f"static/results/job{task['id']:05d}.txt").status_code == 200
            assert api.post("api-token-auth/", json=credentials).status_code == 200
    assert emu.stats()["scope_requests"] == {"write": 1, "read": 0}


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("60/min", Rate(60, 60.0)),
        ("600/min", Rate(600, 60.0)),
        ("10/s", Rate(10, 1.0)),
        ("100/hour", Rate(100, 3600.0)),
        ("1000/day", Rate(1000, 86400.0)),
        ("60/6s", Rate(60, 6.0)),
        ("5/0.5s", Rate(5, 0.5)),
        ("60/2min", Rate(60, 120.0)),
    ],
)
def test_parse_rate(text: str, rate: Rate) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "60", "60/", "x/min", "60/0s", "60/fortnight"])
def test_parse_rate_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match="invalid rate"):
        parse_rate(text)


def test_throttle_wait_is_time_until_the_oldest_leaves() -> None:
    throttle = SlidingWindowThrottle(Rate(3, 10.0))
    for now in (0.0, 2.0, 4.0):
        assert throttle.check("u", now).accepted
    refused = throttle.check("u", 5.5)
    assert (refused.accepted, refused.wait, refused.retry_after) == (False, 4.5, 5)
    assert throttle.check("u", 10.0).accepted  # the request at 0.0 left the window
    assert not throttle.check("u", 10.5).accepted
    assert throttle.count("u", 10.5) == 3


def test_a_delete_answered_404_still_uses_a_write(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    """The throttle runs before the view: a DELETE of a task that is not there costs a write."""
    emu = atlas_emulator_factory(write_rate="3/min")
    with client(emu) as api:
        statuses = [api.delete(f"queue/{9000 + i}/").status_code for i in range(3)]
        assert statuses == [404, 404, 404]
        refused = api.post("queue/", json={"ra": 1, "dec": 1})
        assert api.get("queue/").status_code == 200  # reads have their own budget
    assert refused.status_code == 429
    stats = emu.stats()
    assert (stats["tasks_created"], stats["scope_requests"]["write"]) == (0, 4)
    assert (stats["throttled"]["write"], stats["max_writes_in_window"]) == (1, 3)
