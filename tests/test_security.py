"""The token stays secret; plain http goes nowhere but this machine; TLS is always verified.

Every network test talks to the loopback emulator (or to an in-process mock transport); the
refusals are checked with the socket layer booby-trapped, so they provably happen before
any DNS lookup or connection.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import secrets
import socket
import ssl
import stat
import traceback
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from atlasbatch import Session
from atlasbatch._config import Rate, Settings
from atlasbatch._exceptions import (
    AtlasBatchError,
    AuthenticationError,
    InputError,
    ServerError,
    SubmissionUncertainError,
    ThrottledError,
    TransportError,
)
from atlasbatch._http.base_url import check_base_url, obtain_token
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.wire import Wire
from atlasbatch._models import Target
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import build_parser, main
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
TOKEN = secrets.token_hex(20)  # 40 hex digits, like the real ones
NOISY = Faults(
    server_error_rate=0.1, drop_after_commit_rate=0.15, html_error_rate=0.1, truncate_rate=0.2
)


def leaks(data: str | bytes, token: str = TOKEN) -> list[str]:
    """The pieces of ``token`` found in ``data`` (whole, or its first or last ten digits)."""
    blob = data if isinstance(data, bytes) else data.encode("utf-8", "replace")
    pieces = (token, token[:10], token[-10:])
    return [piece for piece in pieces if piece.encode() in blob]


def files_under(*folders: Path) -> Iterator[Path]:
    for folder in folders:
        if folder.exists():
            yield from (path for path in folder.rglob("*") if path.is_file())


def assert_no_token_on_disk(*folders: Path) -> int:
    """Every byte of every file (ledger, its journal, outputs, registry); the file count."""
    count = 0
    for path in files_under(*folders):
        assert not leaks(path.read_bytes()), path
        count += 1
    return count


def assert_no_token_in_log(caplog: pytest.LogCaptureFixture) -> None:
    assert caplog.records  # the capture did see the run
    assert not leaks(caplog.text)
    for record in caplog.records:
        assert not leaks(record.getMessage()), record
        assert not leaks(repr(record.args)), record
        assert not leaks(record.exc_text or ""), record


def assert_no_token_in_error(error: BaseException, token: str = TOKEN) -> None:
    texts = [str(error), repr(error), repr(vars(error)), *traceback.format_exception(error)]
    for linked in (error.__cause__, error.__context__):
        if linked is not None:
            texts += [str(linked), repr(linked)]
    for text in texts:
        assert not leaks(text, token), text


@pytest.fixture
def debug_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    """Everything at DEBUG: atlasbatch, httpx, httpcore, anyio, the root logger."""
    caplog.set_level(logging.DEBUG)
    for name in ("atlasbatch", "httpx", "httpcore", "anyio", "asyncio"):
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Booby-trap name resolution and connections; the list records every attempt."""
    attempts: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            attempts.append(f"{name}{args!r}")
            raise AssertionError(f"network access attempted: {name}{args!r}")

        return refuse

    for name in ("getaddrinfo", "gethostbyname", "gethostbyname_ex", "create_connection"):
        monkeypatch.setattr(socket, name, trap(name))
    monkeypatch.setattr(socket.socket, "connect", trap("connect"))
    monkeypatch.setattr(socket.socket, "connect_ex", trap("connect_ex"))
    return attempts


# --- the token in logs, outputs and on disk ---------------------------------------------


@pytest.mark.anyio
async def test_a_faulty_run_logs_and_writes_no_token(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    debug_logs: pytest.LogCaptureFixture,
    private_config_dir: Path,
) -> None:
    """5xx, HTML pages, lost answers, cut files and 429s, all logged at DEBUG."""
    emu = atlas_emulator_factory(**fast(token=TOKEN, write_rate="6/1s", faults=NOISY))
    out = tmp_path / "run"
    settings = client_settings(emu, batch_size=4, write_rate=Rate(30, 1.0))  # more than allowed
    with anyio.fail_after(30):
        async with Session(token=TOKEN, settings=settings) as session:
            report = await session.run(grid_targets(12), out_dir=out)
            assert not leaks(repr(session)) and not leaks(repr(session.client))
    assert report.requests["throttled"] > 0  # the 429 path was exercised too
    assert len(emu.stats()["faults"]) >= 2, emu.stats()["faults"]  # several kinds of fault fired
    assert not leaks(repr(report.outcomes))
    assert_no_token_in_log(debug_logs)
    assert (out / "atlasbatch.sqlite3").exists()
    assert assert_no_token_on_disk(out, private_config_dir) >= 13  # ledger + 12 light curves


def test_the_cli_shows_and_writes_no_token(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    debug_logs: pytest.LogCaptureFixture,
    private_config_dir: Path,
) -> None:
    """fetch -v with a 0644 --token-file, then status --remote and cleanup."""
    emu = atlas_emulator_factory(**fast(token=TOKEN, faults=NOISY, task_seconds=0.01))
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    token_file.chmod(0o644)  # readable by others: accepted (the user's choice), never echoed
    targets = write_csv(tmp_path / "targets.csv", grid_targets(6))
    out = tmp_path / "run"
    server = ["--base-url", emu.base_url, "--token-file", str(token_file),
              "--write-rate", "100/1s", "--read-rate", "1000/1s"]  # fmt: skip
    code = main(["-v", "fetch", str(targets), "--out", str(out), "--no-plots", *server])
    fetched = capsys.readouterr()
    assert code == 0, fetched.err
    assert emu.stats()["tasks_created"] == 6
    assert main(["-v", "status", str(out), "--remote", *server]) == 0
    assert main(["-v", "cleanup", str(out), *server]) == 0
    later = capsys.readouterr()
    for text in (fetched.out, fetched.err, later.out, later.err):
        assert not leaks(text)
    assert_no_token_in_log(debug_logs)
    assert assert_no_token_on_disk(out, private_config_dir) >= 3


# --- the token in exceptions -------------------------------------------------------------


@pytest.mark.anyio
async def test_a_refused_token_is_not_in_the_error(atlas_emulator: Emulator) -> None:
    wrong = secrets.token_hex(20)
    async with AtlasClient(token=wrong, settings=client_settings(atlas_emulator)) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.list_page()
    assert caught.value.status == 401
    assert_no_token_in_error(caught.value, wrong)


def test_the_cli_does_not_echo_a_refused_token(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    wrong = secrets.token_hex(20)
    monkeypatch.setenv("ATLAS_TOKEN", wrong)
    targets = write_csv(tmp_path / "targets.csv", grid_targets(2))
    argv = ["fetch", str(targets), "--out", str(tmp_path / "run"),
            "--base-url", atlas_emulator.base_url]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "refused the token" in err
    assert not leaks(err, wrong)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("faults", "call", "expected"),
    [
        (Faults(server_error_rate=1.0), "read", ServerError),
        (Faults(html_error_rate=1.0), "delete", ServerError),
        (Faults(drop_before_commit_rate=1.0), "delete", TransportError),
        (Faults(drop_after_commit_rate=1.0), "submit", SubmissionUncertainError),
        (Faults(slow_rate=1.0, slow_seconds=1.0), "read", TransportError),
    ],
    ids=["500", "html-502", "reset", "lost-post", "timeout"],
)
async def test_server_and_transport_errors_carry_no_token(
    atlas_emulator_factory: Factory,
    debug_logs: pytest.LogCaptureFixture,
    faults: Faults,
    call: str,
    expected: type[AtlasBatchError],
) -> None:
    emu = atlas_emulator_factory(**fast(token=TOKEN, faults=faults))
    settings = client_settings(emu, retry_attempts=2, timeout=0.3)
    async with AtlasClient(token=TOKEN, settings=settings) as client:
        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "read": lambda: client.task(1),
            "delete": lambda: client.delete(1),
            "submit": lambda: client.submit(_targets(), comment="t"),
        }
        with pytest.raises(expected) as caught:
            await calls[call]()
    assert_no_token_in_error(caught.value)
    assert_no_token_in_log(debug_logs)


def _targets() -> list[Target]:
    return list(read_targets(grid_targets(2)).targets)


def _mock(token: str, answer: Callable[[httpx.Request], httpx.Response]) -> httpx.MockTransport:
    """A server that checks the token did arrive, then answers as told."""

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == f"Token {token}"
        return answer(request)

    return httpx.MockTransport(handler)


@pytest.mark.anyio
async def test_a_429_error_carries_no_token(tmp_path: Path) -> None:
    detail = {"detail": "Request was throttled. Expected available in 7 seconds."}
    transport = _mock(
        TOKEN, lambda _: httpx.Response(429, headers={"Retry-After": "7"}, json=detail)
    )
    settings = Settings(base_url="http://127.0.0.1:9/forcedphot")
    async with AtlasClient(token=TOKEN, settings=settings, transport=transport) as client:
        url = "http://127.0.0.1:9/forcedphot/static/results/job00001.txt"
        with pytest.raises(ThrottledError) as caught:  # result files have no budget to wait on
            await client.download(url, tmp_path / "job00001.txt")
    assert caught.value.retry_after == 7
    assert_no_token_in_error(caught.value)


@pytest.mark.anyio
async def test_a_connection_refused_error_carries_no_token() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings = Settings(base_url=f"http://127.0.0.1:{port}/forcedphot", retry_attempts=1)
    async with AtlasClient(token=TOKEN, settings=settings) as client:
        with pytest.raises(TransportError) as caught:
            await client.task(1)
    assert_no_token_in_error(caught.value)


@pytest.mark.anyio
async def test_an_error_page_that_echoes_the_headers_does_not_leak_the_token() -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        page = f"<h1>Bad Gateway</h1><pre>Authorization: {request.headers['Authorization']}</pre>"
        return httpx.Response(502, text=page, headers={"Content-Type": "text/html"})

    settings = Settings(base_url="http://127.0.0.1:9/forcedphot", retry_attempts=1)
    async with AtlasClient(token=TOKEN, settings=settings, transport=_mock(TOKEN, echo)) as c:
        with pytest.raises(ServerError) as caught:
            await c.task(1)
    assert_no_token_in_error(caught.value)


@pytest.mark.anyio
async def test_a_foreign_result_url_never_takes_the_token_elsewhere(tmp_path: Path) -> None:
    """Result URLs come from the server; whatever host they name, we ask our own."""
    hosts: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        hosts.append(f"{request.url.scheme}://{request.url.host}:{request.url.port}")
        return httpx.Response(200, text="###MJD m\n")

    settings = Settings(base_url="https://127.0.0.1:8443/forcedphot")
    async with AtlasClient(token=TOKEN, settings=settings, transport=_mock(TOKEN, record)) as c:
        for url in ("http://evil.example/forcedphot/static/results/job00001.txt",
                    "https://fallingstar-data.com/forcedphot/static/results/job00002.txt",
                    "//evil.example:80/x.txt"):  # fmt: skip
            await c.download(url, tmp_path / "result.txt")
    assert hosts == ["https://127.0.0.1:8443"] * 3


def test_reprs_hide_the_token(no_network: list[str]) -> None:
    settings = Settings(base_url="https://example.invalid/forcedphot")
    session = Session(token=TOKEN, settings=settings)
    client = session.client
    shown_all = [repr(session), str(session), repr(client), str(client), repr(settings),
                 repr(vars(client)), repr(client._http), repr(client._files),
                 repr(client._http.headers)]  # fmt: skip
    for shown in shown_all:
        assert not leaks(shown), shown
    assert no_network == []  # building a session connects nowhere


# --- plain http: this machine only ----------------------------------------------------------

REFUSED = [
    "http://example.invalid/forcedphot",
    "HTTP://EXAMPLE.INVALID/forcedphot",
    "http://10.0.0.1/forcedphot",
    "http://192.168.1.20:8000/forcedphot",
    "http://0.0.0.0:8000/forcedphot",
    "http://[::ffff:10.0.0.1]/forcedphot",
    "http://[fe80::1]/forcedphot",
    "http://127.0.0.1.nip.io/forcedphot",
    "http://localhost.example.com/forcedphot",
    "http://fallingstar-data.com/forcedphot",
]
ALLOWED = [
    "http://127.0.0.1:8000/forcedphot",
    "http://127.8.9.10/forcedphot",
    "http://localhost:8000/forcedphot",
    "http://[::1]:8000/forcedphot",
    "https://example.invalid/forcedphot",
    "https://10.0.0.1/forcedphot",
    "https://fallingstar-data.com/forcedphot",
]


@pytest.mark.parametrize("url", REFUSED)
def test_plain_http_elsewhere_is_refused_before_any_lookup(url: str, no_network: list[str]) -> None:
    with pytest.raises(InputError, match="refusing plain http"):
        check_base_url(url)
    with pytest.raises(InputError, match="refusing plain http"):
        Session(token=TOKEN, settings=Settings(base_url=url))
    with pytest.raises(InputError, match="refusing plain http"):
        anyio.run(obtain_token, url, "user", "password")  # the password must not go either
    assert no_network == []


@pytest.mark.parametrize("url", ["http://example.invalid/forcedphot", "http://10.0.0.1/x"])
def test_the_cli_refuses_plain_http_elsewhere(
    url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    no_network: list[str],
) -> None:
    monkeypatch.setenv("ATLAS_TOKEN", TOKEN)
    targets = write_csv(tmp_path / "targets.csv", grid_targets(2))
    out = tmp_path / "run"
    assert main(["fetch", str(targets), "--out", str(out), "--base-url", url]) == 2
    err = capsys.readouterr().err
    assert "refusing plain http" in err and not leaks(err)
    assert not (out / "atlasbatch.sqlite3").exists()
    assert no_network == []


@pytest.mark.parametrize("url", ALLOWED)
def test_https_anywhere_and_http_to_loopback_are_allowed(url: str, no_network: list[str]) -> None:
    assert check_base_url(url).host
    Session(token=TOKEN, settings=Settings(base_url=url))
    assert no_network == []  # accepted without connecting anywhere


# --- TLS verification cannot be switched off by accident ------------------------------------

_INSECURE_WORDS = ("verify", "insecure", "ssl", "tls", "cert", "trust")


def test_no_knob_turns_certificate_checks_off() -> None:
    names = {f.name for f in dataclasses.fields(Settings)}
    for call in (Session.__init__, AtlasClient.__init__):
        names |= set(inspect.signature(call).parameters)
    assert not [n for n in names if any(word in n.lower() for word in _INSECURE_WORDS)], names
    with pytest.raises(TypeError):
        Settings(verify=False)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        Session(token=TOKEN, verify=False)  # type: ignore[call-arg]


def test_the_command_line_has_no_insecure_option_and_no_token_option() -> None:
    parser = build_parser()
    options: set[str] = set()
    for action in parser._actions:  # the sub-commands' parsers
        for sub in getattr(action, "choices", None) or {}:
            sub_parser = action.choices[sub]  # type: ignore[index]
            for option in getattr(sub_parser, "_actions", []):
                options |= set(option.option_strings)
    assert "--token-file" in options
    assert "--token" not in options  # a token on the command line shows in `ps`
    assert not [o for o in options if any(word in o for word in _INSECURE_WORDS)], options


def _ssl_context(wire: Wire) -> ssl.SSLContext:
    transport = wire._transport
    assert isinstance(transport, httpx.AsyncHTTPTransport)
    context = transport._pool._ssl_context
    assert isinstance(context, ssl.SSLContext)
    return context


def test_the_http_client_verifies_certificates(
    monkeypatch: pytest.MonkeyPatch, no_network: list[str]
) -> None:
    # variables that switch verification off in other tools must not do it here
    for name, value in (("PYTHONHTTPSVERIFY", "0"), ("CURL_CA_BUNDLE", ""),
                        ("REQUESTS_CA_BUNDLE", ""), ("HTTPX_VERIFY", "0")):  # fmt: skip
        monkeypatch.setenv(name, value)
    session = Session(token=TOKEN, settings=Settings())
    context = _ssl_context(session.client._http)
    assert context.verify_mode is ssl.CERT_REQUIRED
    assert context.check_hostname is True
    assert session.client._http._router is None  # no proxy with its own rules
    assert no_network == []


def test_the_login_client_verifies_certificates(
    atlas_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def spy(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        assert kwargs.get("verify", True) is True, kwargs
        original(self, *args, **kwargs)
        made.append(self)

    monkeypatch.setattr(httpx.AsyncClient, "__init__", spy)
    token = anyio.run(obtain_token, atlas_emulator.base_url, "atlas", "atlas-password")
    assert token == atlas_emulator.token
    assert len(made) == 1
    context = _ssl_context(made[0])
    assert (context.verify_mode, context.check_hostname) == (ssl.CERT_REQUIRED, True)


# --- where the token is kept ------------------------------------------------------------------


def test_login_stores_the_token_0600_whatever_the_umask(
    atlas_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    private_config_dir: Path,
) -> None:
    private_config_dir.mkdir(parents=True)
    stored = private_config_dir / "tokens.json"
    stored.write_text("{}\n")
    stored.chmod(0o644)  # an older, too-open file is replaced, not reused
    monkeypatch.setenv("ATLAS_USERNAME", "atlas")
    monkeypatch.setenv("ATLAS_PASSWORD", "atlas-password")
    old_umask = os.umask(0)  # even a process that creates everything world-writable
    try:
        assert main(["login", "--base-url", atlas_emulator.base_url]) == 0
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert atlas_emulator.token in stored.read_text()
    captured = capsys.readouterr()
    assert not leaks(captured.out + captured.err, atlas_emulator.token)
    assert [p.name for p in private_config_dir.iterdir()] == ["tokens.json"]  # no temp left
