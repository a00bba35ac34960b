"""Authentication and permissions, as atlas_api.md §3 and §19 describe them."""

from __future__ import annotations

import base64
from collections.abc import Callable

import httpx
import pytest

from atlasbatch.testing import Emulator


def test_token_endpoint_returns_the_users_token(emu: Emulator) -> None:
    url = f"{emu.base_url}/api-token-auth/"
    by_json = httpx.post(url, json={"username": "atlas", "password": "atlas-password"})
    by_form = httpx.post(url, data={"username": "atlas", "password": "atlas-password"})
    assert by_json.status_code == by_form.status_code == 200
    assert by_json.json() == by_form.json() == {"token": emu.token}
    assert len(emu.token) == 40
    int(emu.token, 16)


def test_token_endpoint_rejects_bad_credentials(emu: Emulator) -> None:
    response = httpx.post(
        f"{emu.base_url}/api-token-auth/", json={"username": "atlas", "password": "x"}
    )
    assert response.status_code == 400
    assert response.json() == {"non_field_errors": ["Unable to log in with provided credentials."]}


def test_invalid_token_is_401_even_on_a_public_url(
    emu: Emulator, api: httpx.Client, make_client: Callable[..., httpx.Client]
) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    bad = make_client(emu, token="0" * 40)
    for response in (bad.get(f"queue/{task_id}/"), bad.get("queue/"), bad.post("queue/", json={})):
        assert response.status_code == 401
        assert response.json() == {"detail": "Invalid token."}
        assert response.headers["WWW-Authenticate"] == 'Basic realm="api"'


def test_anonymous_list_is_403_post_is_401_detail_is_200(
    emu: Emulator, api: httpx.Client, make_client: Callable[..., httpx.Client]
) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    anonymous = make_client(emu, token=None)
    listing = anonymous.get("queue/")
    assert listing.status_code == 403
    assert listing.json() == {"detail": "You do not have permission to perform this action."}
    post = anonymous.post("queue/", json={"ra": 1, "dec": 2})
    assert post.status_code == 401
    assert post.json() == {"detail": "Authentication credentials were not provided."}
    assert post.headers["WWW-Authenticate"] == 'Basic realm="api"'
    detail = anonymous.get(f"queue/{task_id}/")
    assert detail.status_code == 200
    assert detail.json()["id"] == task_id
    assert anonymous.delete(f"queue/{task_id}/").status_code == 401


@pytest.mark.parametrize("keyword", ["Token", "token", "TOKEN"])
def test_token_keyword_is_case_insensitive(emu: Emulator, keyword: str) -> None:
    headers = {"Authorization": f"{keyword} {emu.token}", "Accept": "application/json"}
    assert httpx.get(f"{emu.base_url}/queue/", headers=headers).status_code == 200


def test_basic_auth_works_too(emu: Emulator) -> None:
    good = base64.b64encode(b"atlas:atlas-password").decode()
    bad = base64.b64encode(b"atlas:nope").decode()
    ok = httpx.get(f"{emu.base_url}/queue/", headers={"Authorization": f"Basic {good}"})
    refused = httpx.get(f"{emu.base_url}/queue/", headers={"Authorization": f"Basic {bad}"})
    assert ok.status_code == 200
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Invalid username/password."}


def test_users_only_list_their_own_tasks_and_cannot_touch_others(
    emu: Emulator, api: httpx.Client, make_client: Callable[..., httpx.Client]
) -> None:
    bob = make_client(emu, token=emu.add_user("bob", "pw"))
    mine = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    bob.post("queue/", json={"ra": 3, "dec": 4})
    assert [t["id"] for t in api.get("queue/").json()["results"]] == [mine]
    refused = bob.delete(f"queue/{mine}/")
    assert refused.status_code == 403
    assert refused.json() == {"detail": "You must be the owner of this object."}
    assert bob.patch(f"queue/{mine}/", json={"comment": "x"}).status_code == 403
    assert api.get(f"queue/{mine}/").status_code == 200


def test_401_before_the_throttle_is_not_counted(
    emu: Emulator, make_client: Callable[..., httpx.Client]
) -> None:
    make_client(emu, token=None).post("queue/", json={"ra": 1, "dec": 2})
    make_client(emu, token="f" * 40).get("queue/")
    stats = emu.stats()
    assert stats["scope_requests"] == {"write": 0, "read": 0}
    assert stats["status_counts"] == {"401": 2}
