"""The handle's lifecycle and addresses, and HTTP details outside the main flows."""

from __future__ import annotations

import socket

import httpx
import pytest

from atlasbatch.testing import Emulator, EmulatorConfig


def test_start_and_stop_without_a_with_block() -> None:
    emu = Emulator(EmulatorConfig()).start()
    try:
        assert emu.base_url == f"http://127.0.0.1:{emu.port}/forcedphot"
        assert httpx.get(f"{emu.base_url}/_emulator/stats.json").status_code == 200
    finally:
        emu.stop()
        emu.stop()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{emu.base_url}/_emulator/stats.json")


def test_the_handle_refuses_non_loopback_hosts() -> None:
    with pytest.raises(ValueError, match="non-loopback"):
        Emulator(EmulatorConfig(host="0.0.0.0"))


def test_ipv6_loopback() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        emu = Emulator(EmulatorConfig(host="::1")).start()
    except OSError:
        pytest.skip("::1 is not available here")
    try:
        assert emu.base_url.startswith("http://[::1]:")
        response = httpx.get(
            f"{emu.base_url}/queue/", headers={"Authorization": f"Token {emu.token}"}
        )
        assert response.status_code == 200
    finally:
        emu.stop()


def test_default_user_settings_and_fixed_token() -> None:
    config = EmulatorConfig(username="me", password="secret", token="abc")
    with Emulator(config) as emu:
        assert emu.token == "abc"
        answer = httpx.post(
            f"{emu.base_url}/api-token-auth/", data={"username": "me", "password": "secret"}
        )
        assert answer.json() == {"token": "abc"}
        with pytest.raises(ValueError, match="already exists"):
            emu.add_user("me", "x")


def test_head_options_and_method_not_allowed(api: httpx.Client) -> None:
    task_id = api.post("queue/", json={"ra": 1, "dec": 2}).json()["id"]
    head = api.head(f"queue/{task_id}/")
    assert (head.status_code, head.content) == (200, b"")
    assert int(head.headers["content-length"]) > 0
    assert api.options("queue/").json()["name"] == "Force Phot Task List"
    assert api.put("queue/", json={}).json() == {"detail": 'Method "PUT" not allowed.'}
    assert api.post(f"queue/{task_id}/", json={}).status_code == 405
    assert api.get("api-token-auth/").json() == {"detail": 'Method "GET" not allowed.'}


def test_unknown_paths_are_django_404_pages(api: httpx.Client) -> None:
    response = api.get("nowhere/")
    assert response.status_code == 404
    assert "<h1>Not Found</h1>" in response.text


def test_bad_config_values_are_refused() -> None:
    with pytest.raises(ValueError, match="invalid rate"):
        EmulatorConfig(write_rate="fast")
    with pytest.raises(ValueError, match="slots"):
        EmulatorConfig(slots=0)
    with pytest.raises(ValueError, match="task_jitter"):
        EmulatorConfig(task_jitter=2.0)
