"""Tokens are checked before use, never echoed, and a stored one goes only to its own server.

Bad tokens and foreign servers are refused before any connection: the socket layer is
booby-trapped where the refusal must happen, and the emulator's counters show that nothing
reached it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from atlasbatch._config import PRODUCTION_URL
from atlasbatch._exceptions import InputError
from atlasbatch._http.credentials import check_token, resolve_token, store_token
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
TOKEN = secrets.token_hex(20)  # 40 hex digits, like the real ones
PASSWORD = "atlas-password"  # the emulator's default user "atlas"


def leaks(text: str, token: str = TOKEN) -> list[str]:
    """The pieces of ``token`` found in ``text``: whole, or any run of 10 of its characters."""
    runs = {part[i : i + 10] for part in token.split() for i in range(max(len(part) - 9, 0))}
    return [piece for piece in {token, *runs} if piece.strip() and piece in text]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL", "ATLAS_USERNAME", "ATLAS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


@contextlib.contextmanager
def no_network() -> Iterator[list[str]]:
    """Booby-trap name resolution and connections (the emulator is already listening)."""
    attempts: list[str] = []

    def trap(name: str) -> Callable[..., Any]:
        def refuse(*args: object, **kwargs: object) -> Any:
            attempts.append(name)
            raise AssertionError(f"network access attempted: {name}")

        return refuse

    with pytest.MonkeyPatch.context() as patch:
        for name in ("getaddrinfo", "create_connection"):
            patch.setattr(socket, name, trap(name))
        patch.setattr(socket.socket, "connect", trap("connect"))
        patch.setattr(socket.socket, "connect_ex", trap("connect_ex"))
        yield attempts


def login(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATLAS_USERNAME", "atlas")
    monkeypatch.setenv("ATLAS_PASSWORD", PASSWORD)
    assert main(["login", "--base-url", emu.base_url]) == 0
    monkeypatch.delenv("ATLAS_PASSWORD")


def key(emu: Emulator) -> str:
    return emu.base_url.rstrip("/")


# --- check_token ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "flaw"),
    [
        (f"{TOKEN[:20]}\n{TOKEN[20:]}\n", "contains a line break"),
        (f"{TOKEN[:20]}\r\n{TOKEN[20:]}", "contains a line break"),
        (f"Token {TOKEN}", "contains a space"),
        (f"{TOKEN[:20]}\t{TOKEN[20:]}", "contains a tab"),
        (f"{TOKEN[:20]}\u00e9{TOKEN[20:]}", "contains a non-ASCII character"),
        (f"{TOKEN[:20]}\x00{TOKEN[20:]}", "contains a control character"),
        (" \n\t", "is empty"),
        ("", "is empty"),
    ],
    ids=["two-lines", "crlf", "space", "tab", "non-ascii", "nul", "blank", "empty"],
)
def test_check_token_says_what_is_wrong_and_where_without_quoting_it(token: str, flaw: str) -> None:
    with pytest.raises(InputError) as caught:
        check_token(token, source="from $ATLAS_TOKEN")
    message = str(caught.value)
    assert message.startswith(f"the token from $ATLAS_TOKEN {flaw}")
    assert not leaks(message, token) and not leaks(repr(caught.value), token)


def test_check_token_strips_the_newline_of_a_file_and_accepts_other_printable_tokens() -> None:
    assert check_token(f"  {TOKEN}\r\n") == TOKEN
    assert check_token("emu-token_0.Z~!") == "emu-token_0.Z~!"  # not hex, still printable


# --- bad tokens at the command line -----------------------------------------------------------


def refused_without_sending(
    emu: Emulator,
    argv: list[str],
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    token: str,
) -> str:
    """Run the CLI with -v; assert exit 2, one line, no trace of ``token``; the line."""
    with caplog.at_level(logging.DEBUG):
        code = main(["-v", *argv])
    captured = capsys.readouterr()
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    for text in (captured.out, captured.err, caplog.text):
        assert not leaks(text, token), text
    assert emu.stats()["requests"] == {}  # nothing reached the server
    return lines[0]


def test_a_two_line_token_file_is_refused_in_one_line_that_does_not_quote_it(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = atlas_emulator_factory(**fast(token=TOKEN))
    token_file = tmp_path / "token.txt"
    token_file.write_text(f"{TOKEN[:20]}\n{TOKEN[20:]}\n")  # e.g. wrapped by an editor
    targets = write_csv(tmp_path / "t.csv", grid_targets(2))
    argv = ["fetch", str(targets), "--out", str(tmp_path / "run"),
            "--base-url", emu.base_url, "--token-file", str(token_file)]  # fmt: skip
    line = refused_without_sending(emu, argv, capsys, caplog, TOKEN)
    assert "contains a line break" in line and str(token_file) in line
    assert not (tmp_path / "run").exists()


def test_a_token_with_a_space_in_atlas_token_is_refused_likewise(
    atlas_emulator_factory: Factory,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emu = atlas_emulator_factory(**fast(token=TOKEN))
    monkeypatch.setenv("ATLAS_TOKEN", f"{TOKEN[:20]} {TOKEN[20:]}")
    line = refused_without_sending(
        emu, ["cleanup", "--orphans", "--base-url", emu.base_url], capsys, caplog, TOKEN
    )
    assert "from $ATLAS_TOKEN contains a space" in line


def test_an_undecodable_token_file_is_refused_without_its_bytes(tmp_path: Path) -> None:
    token_file = tmp_path / "token.bin"
    token_file.write_bytes(TOKEN[:20].encode() + b"\xff\xfe" + TOKEN[20:].encode())
    with pytest.raises(InputError, match="non-ASCII") as caught:
        resolve_token(str(token_file), server=PRODUCTION_URL)
    assert not leaks(str(caught.value)) and "xff" not in str(caught.value)


# --- a stored token goes only to its own server -----------------------------------------------


def test_a_token_from_the_emulator_is_never_sent_to_production(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    login(atlas_emulator, monkeypatch)
    capsys.readouterr()
    seen = atlas_emulator.stats()["requests"]
    targets = write_csv(tmp_path / "t.csv", grid_targets(3))
    with no_network() as attempts:
        # no --base-url: the production server, for which no token is stored
        assert main(["fetch", str(targets), "--out", str(tmp_path / "run")]) == 2
        err = capsys.readouterr().err
        assert main(["cleanup", "--orphans"]) == 2
        orphans_err = capsys.readouterr().err
        # a dry run sends nothing either way, and says the real run would be refused
        assert main(["fetch", str(targets), "--dry-run"]) == 0
        dry = capsys.readouterr()
    assert attempts == []  # no connection attempted, to anyone
    assert f"the stored token is for {key(atlas_emulator)}, not {PRODUCTION_URL}" in err
    assert f"atlasbatch login --base-url {PRODUCTION_URL}" in err and "--token-file" in err
    assert not (tmp_path / "run").exists()
    assert "the stored token is for" in orphans_err
    assert "nothing was sent" in dry.out
    assert "a real run would stop: the stored token is for" in dry.err
    assert atlas_emulator.stats()["requests"] == seen
    assert not leaks(json.dumps(seen), atlas_emulator.token)


def test_status_uses_the_stored_token_of_the_runs_own_server_only(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = atlas_emulator_factory(**fast())
    second = atlas_emulator_factory(**fast())
    run = tmp_path / "run"
    token_file = tmp_path / "token.txt"
    token_file.write_text(first.token + "\n")
    # a run directory started on the first server (its one row invalid: no task to wait for)
    targets = tmp_path / "t.csv"
    targets.write_text("name,ra,dec\nbad,400,0\n")
    fetch = ["fetch", str(targets), "--out", str(run), "--no-plots", "--keep-going",
             "--base-url", first.base_url, "--token-file", str(token_file)]  # fmt: skip
    assert main(fetch) == 1
    login(second, monkeypatch)  # a token for the second server only
    capsys.readouterr()
    seen = first.stats()["requests"]

    # the run's server is the first one: the second server's token is not offered to it
    assert main(["status", str(run), "--remote"]) == 2
    err = capsys.readouterr().err
    assert f"the stored token is for {key(second)}, not {key(first)}" in err
    assert first.stats()["requests"] == seen

    login(first, monkeypatch)  # now each server has its own token, and status uses it
    reads = first.stats()["scope_requests"]["read"]
    assert main(["status", str(run), "--remote"]) == 0
    assert "On the server now: 0 task(s)" in capsys.readouterr().out
    assert first.stats()["scope_requests"]["read"] > reads  # authenticated reads, accepted


def test_each_server_keeps_its_own_token_in_one_0600_file(
    atlas_emulator_factory: Factory,
    private_config_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = atlas_emulator_factory(**fast())
    second = atlas_emulator_factory(**fast())
    old_umask = os.umask(0)  # files made with the umask would be world-readable
    try:
        login(first, monkeypatch)
        login(second, monkeypatch)
    finally:
        os.umask(old_umask)
    stored = private_config_dir / "tokens.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert json.loads(stored.read_text()) == {key(first): first.token, key(second): second.token}
    assert [p.name for p in private_config_dir.iterdir()] == ["tokens.json"]  # no temp left
    assert resolve_token(server=first.base_url) == first.token
    assert resolve_token(server=second.base_url + "/") == second.token


# --- the old plain-text token file --------------------------------------------------------------


def test_an_old_plain_token_file_is_read_as_the_production_token(
    atlas_emulator: Emulator, private_config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private_config_dir.mkdir()
    legacy = private_config_dir / "token"
    legacy.write_text(TOKEN + "\n")
    assert resolve_token(server=PRODUCTION_URL) == TOKEN
    assert resolve_token(server="HTTPS://fallingstar-data.com:443/forcedphot/") == TOKEN
    with pytest.raises(InputError, match=f"the stored token is for {PRODUCTION_URL}, not"):
        resolve_token(server=atlas_emulator.base_url)

    # the next login folds it into tokens.json, as production's, and removes the old file
    login(atlas_emulator, monkeypatch)
    assert not legacy.exists()
    stored = json.loads((private_config_dir / "tokens.json").read_text())
    assert stored == {PRODUCTION_URL: TOKEN, key(atlas_emulator): atlas_emulator.token}
    assert resolve_token(server=PRODUCTION_URL) == TOKEN


def test_a_damaged_tokens_file_is_named_but_not_quoted(private_config_dir: Path) -> None:
    private_config_dir.mkdir()
    (private_config_dir / "tokens.json").write_text(f'{{"{PRODUCTION_URL}": "{TOKEN}"')
    for attempt in (
        lambda: resolve_token(server=PRODUCTION_URL),
        lambda: store_token(TOKEN, server=PRODUCTION_URL),
    ):
        with pytest.raises(InputError, match="is damaged") as caught:
            attempt()
        assert not leaks(str(caught.value))
