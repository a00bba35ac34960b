"""Result downloads in bounded memory, cheaply (issue 12), against the emulator over loopback.

A small result (nearly all of them) stays in memory: no scratch file is created, read back
and removed for it. One above the spool threshold goes to the scratch folder as before. The
size limit, the checks for cut files and the retries hold on both paths. The client keeps
few connections open: a pooled connection costs CPU on every request.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from anyio.abc import SocketStream, TaskStatus

from atlasbatch import Session, Settings, State
from atlasbatch._engine.fetcher import fetch_result, save_result_file
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.streaming import INLINE_BYTES
from atlasbatch._models import Target
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets

pytestmark = pytest.mark.anyio

Factory = Callable[..., Emulator]


@pytest.fixture
def emulator(atlas_emulator_factory: Factory) -> Factory:
    def make(**config: Any) -> Emulator:
        return atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=4, **config))

    return make


def windowed(count: int, *, mjd_min: float = 58000.0, mjd_max: float = 58200.0) -> list[Any]:
    """Targets with explicit MJD windows: result files that do not depend on today's date."""
    return [{**row, "mjd_min": mjd_min, "mjd_max": mjd_max} for row in grid_targets(count)]


class ScratchWatch:
    """A saver that stores as the default one does and notes what the scratch folder holds
    while each result is in hand (the download is checked and not yet stored)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.seen: dict[str, tuple[int, list[str]]] = {}

    def __call__(self, target: Target, data: bytes) -> str:
        scratch = self.out / ".downloads"
        self.seen[target.name] = (len(data), sorted(p.name for p in scratch.iterdir()))
        return save_result_file(self.out, target, data)


async def test_small_results_never_touch_the_scratch_folder(
    emulator: Factory, tmp_path: Path
) -> None:
    emu = emulator()
    watch = ScratchWatch(tmp_path)
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(windowed(12), out_dir=tmp_path, save_result=watch)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert len(watch.seen) == 12
    assert all(files == [] for _, files in watch.seen.values()), watch.seen
    for outcome in report.outcomes:  # stored whole all the same
        stored = (tmp_path / str(outcome.path)).read_bytes()
        assert stored.startswith(b"###MJD") and len(stored) == watch.seen[outcome.target.name][0]
    assert emu.stats()["tasks_live"] == 0


async def test_a_result_above_the_threshold_is_spilled_to_disk_and_stored_whole(
    emulator: Factory, tmp_path: Path
) -> None:
    emu = emulator(observations_per_day=3.0)
    big = {"name": "busy", "ra": 10.0, "dec": 20.0, "mjd_min": 55000.0, "mjd_max": 60000.0}
    small = {"name": "quiet", "ra": 30.0, "dec": 20.0, "mjd_min": 58000.0, "mjd_max": 58100.0}
    watch = ScratchWatch(tmp_path)
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run([big, small], out_dir=tmp_path, save_result=watch)
    outcome = {o.target.name: o for o in report.outcomes}
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    size, files = watch.seen["busy"]
    assert size > INLINE_BYTES
    assert f"{outcome['busy'].task_id}.part" in files  # streamed to the scratch file
    assert f"{outcome['quiet'].task_id}.part" not in watch.seen["quiet"][1]
    stored = tmp_path / str(outcome["busy"].path)
    assert stored.stat().st_size == size
    data = outcome["busy"].data
    assert data is not None and len(data) == stored.read_text().count("\n") - 1
    assert not (tmp_path / ".downloads").exists()  # the scratch folder goes with the run


async def _finished_task(emu: Emulator, client: AtlasClient) -> tuple[int, str]:
    """Submit one target and wait (bounded) until its result file is ready."""
    target = Target(line=2, name="t", ra=10.0, dec=20.0, mjd_min=58000.0, mjd_max=58200.0)
    (task,) = await client.submit([target], comment="atlasbatch:test:1")
    for _ in range(500):
        body = await client.task(int(task["id"]))
        if body is not None and body.get("result_url"):
            return int(task["id"]), str(body["result_url"])
        await anyio.sleep(0.01)
    raise AssertionError("the task did not finish")


@pytest.mark.parametrize("inline", [64, INLINE_BYTES], ids=["spilled", "in-memory"])
async def test_a_file_above_the_size_limit_is_refused_and_nothing_is_kept(
    emulator: Factory, tmp_path: Path, inline: int
) -> None:
    emu = emulator()
    dest = tmp_path / "1.part"
    settings = client_settings(emu, max_result_bytes=300)
    async with AtlasClient(token=emu.token, settings=settings) as client:
        task_id, url = await _finished_task(emu, client)
        fetched = await fetch_result(client, task_id, url, dest=dest, inline=inline)
    assert fetched.body is None
    assert "larger than the limit of 300 bytes" in (fetched.problem or "")
    assert not dest.exists()
    assert emu.stats()["downloads"] == 3  # a problem of the file: tried again, then given up


@pytest.mark.parametrize("inline", [64, INLINE_BYTES], ids=["spilled", "in-memory"])
async def test_a_file_cut_every_time_is_tried_three_times_then_reported(
    emulator: Factory, tmp_path: Path, inline: int
) -> None:
    emu = emulator(faults=Faults(truncate_rate=1.0))
    dest = tmp_path / "1.part"
    async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
        task_id, url = await _finished_task(emu, client)
        fetched = await fetch_result(client, task_id, url, dest=dest, inline=inline)
    assert fetched.body is None
    assert "cut short" in (fetched.problem or "") or "truncated" in (fetched.problem or "")
    assert emu.stats()["downloads"] == 3
    assert not dest.exists()


@pytest.mark.parametrize("inline", [64, INLINE_BYTES], ids=["spilled", "in-memory"])
async def test_both_paths_give_the_same_checked_body(
    emulator: Factory, tmp_path: Path, inline: int
) -> None:
    emu = emulator()
    dest = tmp_path / "1.part"
    async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
        task_id, url = await _finished_task(emu, client)
        fetched = await fetch_result(
            client, task_id, url, dest=dest, inline=inline, want_frame=True
        )
    body = fetched.body
    assert body is not None and fetched.frame is not None
    assert (body.path is not None) == (inline < body.size) == dest.exists()
    data = body.read()
    assert data.startswith(b"###MJD") and len(data) == body.size
    assert fetched.rows == len(fetched.frame) == data.count(b"\n") - 1
    body.discard()
    assert not dest.exists()


class ConnectionCount:
    """A loopback TCP relay in front of the emulator: how many connections the client holds
    open at once (what the server's side of a socket sees, whatever the client library)."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.open = self.peak = self.total = 0

    async def serve(self, *, task_status: TaskStatus[int]) -> None:
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        async with listener:
            task_status.started(listener.extra(anyio.abc.SocketAttribute.local_port))
            await listener.serve(self._relay)

    async def _relay(self, client: SocketStream) -> None:
        self.open, self.total = self.open + 1, self.total + 1
        self.peak = max(self.peak, self.open)
        try:
            server = await anyio.connect_tcp("127.0.0.1", self.upstream)
            async with client, server, anyio.create_task_group() as tg:
                tg.start_soon(_pipe, client, server, tg.cancel_scope)
                await _pipe(server, client, tg.cancel_scope)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass
        finally:
            self.open -= 1


async def _pipe(source: SocketStream, sink: SocketStream, scope: anyio.CancelScope) -> None:
    try:
        async for chunk in source:  # bounded: ends when either side closes
            await sink.send(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass
    scope.cancel()


async def test_the_client_keeps_few_connections_open(emulator: Factory) -> None:
    emu = emulator(write_rate="1000/1s", read_rate="1000/1s")
    relay = ConnectionCount(emu.port)
    async with anyio.create_task_group() as tg:
        port = await tg.start(relay.serve)
        base = emu.base_url.replace(f":{emu.port}/", f":{port}/")
        settings = client_settings(emu, base_url=base, download_concurrency=2)
        async with Session(token=emu.token, settings=settings) as session:
            report = await session.run(windowed(200))
        tg.cancel_scope.cancel()
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    stats = emu.stats()
    assert stats["tasks_live"] == 0 and stats["downloads"] == 200
    # two for the result files (the download workers), four for the API, however many
    # workers wait on them; connections are kept, not opened per request
    assert 1 <= relay.peak <= 2 + 4, relay.peak
    assert relay.total <= 30, relay.total  # not one per request (~400)


def test_the_result_file_client_verifies_certificates_too() -> None:
    """Result files have their own connection pool: built like the API's, TLS verified, with
    the same TLS context (one CA bundle loaded, not two)."""
    client = AtlasClient(token="0" * 40, settings=Settings())
    assert client._files is not client._http
    contexts = []
    for http in (client._http, client._files):
        transport = http._transport
        assert isinstance(transport, httpx.AsyncHTTPTransport)
        context = transport._pool._ssl_context
        assert isinstance(context, ssl.SSLContext)
        assert context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
        assert http._router is None  # no proxy; redirects are never followed (no client)
        contexts.append(context)
    assert contexts[0] is contexts[1]


@pytest.mark.parametrize(
    "base", ["http://127.0.0.1:4000/forcedphot", "https://fallingstar-data.com/forcedphot/"]
)
def test_api_urls_built_by_appending_are_those_of_a_join(base: str) -> None:
    """url() appends plain paths to the base (cheap) instead of joining them (RFC 3986)."""
    client = AtlasClient(token="0" * 40, settings=Settings(base_url=base))
    for path in ("queue/", "queue/12/", "queue/12/requestimages/", "queue/5/images.zip"):
        assert client.url(path) == str(client.base.join(path))
    own = client.url("static/results/job1.txt")
    assert client._rebase(own) == own
    assert client._rebase("https://evil.example/static/x.txt").startswith(client._origin)
