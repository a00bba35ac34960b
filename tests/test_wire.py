"""The wire: requests straight to the httpx transport, or through httpx's proxy routing.

Without a proxy in the environment, the client's requests skip ``AsyncClient`` and go to the
transport as built requests (token, headers, timeouts set by the wire); with one, httpx
routes them (``NO_PROXY`` respected). Either way the emulator sees the same calls.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from atlasbatch._exceptions import ServerError, TransportError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.wire import Wire, proxy_configured
from atlasbatch._models import Target
from atlasbatch.testing import Emulator
from tests.helpers import client_settings, fast

Factory = Callable[..., Emulator]
_PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*_PROXY_VARIABLES, *(n.lower() for n in _PROXY_VARIABLES)):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _closed_port() -> int:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def _round_trip(emu: Emulator, tmp_path: Path, **settings: Any) -> str:
    """Submit one target, wait for its result, download and delete it; the file's text."""
    target = Target(line=2, name="t", ra=10.0, dec=20.0, mjd_min=60000.0)
    async with AtlasClient(token=emu.token, settings=client_settings(emu, **settings)) as c:
        (task,) = await c.submit([target], comment="wire")
        for _ in range(500):  # bounded: the fast runner finishes in milliseconds
            found = await c.task(task["id"])
            if found and found.get("finishtimestamp"):
                break
            await anyio.sleep(0.01)
        assert found is not None and found.get("result_url"), found
        await c.download(found["result_url"], tmp_path / "t.txt")
        assert await c.delete(task["id"]) is True
    return (tmp_path / "t.txt").read_text()


def test_without_a_proxy_requests_go_straight_to_the_transport(
    atlas_emulator_factory: Factory, tmp_path: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01))
    assert not proxy_configured()
    text = anyio.run(_round_trip, emu, tmp_path)
    assert "MJD" in text  # the light curve arrived whole
    seen = [(r.method, r.status) for r in emu.requests()]
    assert ("POST", 201) in seen and ("DELETE", 204) in seen  # the token was accepted
    stats = emu.stats()
    assert stats["tasks_created"] == stats["tasks_deleted"] == 1
    assert stats["downloads"] == 1


def test_a_proxy_in_the_environment_routes_through_httpx(
    atlas_emulator_factory: Factory, no_proxy_env: pytest.MonkeyPatch
) -> None:
    """A proxy that refuses every connection: the request must go there, and fail."""
    emu = atlas_emulator_factory(**fast())
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    assert proxy_configured()

    async def ask() -> None:
        settings = client_settings(emu, retry_attempts=1, retry_total_seconds=1.0)
        async with AtlasClient(token=emu.token, settings=settings) as client:
            assert client._http._router is not None
            await client.task(1)

    with pytest.raises(TransportError):
        anyio.run(ask)
    assert emu.requests() == []  # nothing reached the server itself


def test_no_proxy_sends_the_server_direct_even_through_the_router(
    atlas_emulator_factory: Factory, tmp_path: Path, no_proxy_env: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01))
    no_proxy_env.setenv("HTTP_PROXY", f"http://127.0.0.1:{_closed_port()}")
    no_proxy_env.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert proxy_configured()
    text = anyio.run(_round_trip, emu, tmp_path)
    assert "MJD" in text
    assert [r.method for r in emu.requests()].count("DELETE") == 1


def test_the_wire_sets_its_headers_and_the_callers() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"ok": True})

    wire = Wire({"Authorization": "Token abc", "Accept": "application/json"},
                timeout=httpx.Timeout(5.0), connections=1,
                transport=httpx.MockTransport(answer))  # fmt: skip

    async def go() -> httpx.Response:
        try:
            return await wire.request("POST", "http://127.0.0.1:9/q/", json={"a": 1},
                                      headers={"If-None-Match": '"e1"'})  # fmt: skip
        finally:
            await wire.aclose()

    response = anyio.run(go)
    assert response.json() == {"ok": True}
    assert str(response.url) == "http://127.0.0.1:9/q/"  # the answer knows its request
    (request,) = seen
    assert request.headers["Authorization"] == "Token abc"
    assert request.headers["If-None-Match"] == '"e1"'
    assert request.headers["Content-Type"] == "application/json"
    assert request.extensions["timeout"]["read"] == 5.0
    assert "abc" not in repr(wire)  # httpx hides Authorization in a repr


@pytest.mark.parametrize("attempts", [1, 3])
def test_a_limited_patience_counts_the_first_plain_try(
    atlas_emulator_factory: Factory, attempts: int
) -> None:
    """The first try of a request skips the retry loop (the server was up); it still counts
    as one of ``retry_attempts``: an outage sees exactly that many tries, no more."""
    emu = atlas_emulator_factory(**fast())

    async def ask() -> None:
        settings = client_settings(emu, retry_attempts=attempts, retry_max_wait=0.01)
        async with AtlasClient(token=emu.token, settings=settings) as client:
            await client.task(1)

    with emu.outage("503"), pytest.raises(ServerError):
        anyio.run(ask)
    assert [r.fault for r in emu.requests()] == ["outage_503"] * attempts
