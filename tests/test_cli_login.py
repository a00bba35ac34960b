"""``atlasbatch login``: the token lands in a 0600 file and is never shown."""

from __future__ import annotations

import json
import logging
import stat
from pathlib import Path

import pytest

from atlasbatch._http.credentials import resolve_token
from atlasbatch.cli import main
from atlasbatch.testing import Emulator


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL", "ATLAS_USERNAME", "ATLAS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def test_login_saves_the_token_privately_and_never_prints_it(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    token = atlas_emulator.add_user("alice", "correct horse")
    monkeypatch.setenv("ATLAS_USERNAME", "alice")
    monkeypatch.setenv("ATLAS_PASSWORD", "correct horse")
    with caplog.at_level(logging.DEBUG):
        code = main(["-v", "login", "--base-url", atlas_emulator.base_url])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    path = tmp_path / "config" / "tokens.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {atlas_emulator.base_url.rstrip("/"): token}
    shown = captured.out + captured.err + caplog.text
    assert token not in shown
    assert "correct horse" not in shown
    assert "Logged in as alice" in captured.out and str(path) in captured.out
    # later commands find it, for that server
    assert resolve_token(server=atlas_emulator.base_url) == token

    # a later command authenticates with it: the emulator knows this user's tasks (none)
    assert main(["cleanup", "--orphans", "--base-url", atlas_emulator.base_url]) == 0
    assert "No orphan tasks" in capsys.readouterr().out


def test_login_with_the_username_option(
    atlas_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    token = atlas_emulator.add_user("bob", "pw-of-bob")
    monkeypatch.setenv("ATLAS_PASSWORD", "pw-of-bob")
    assert main(["login", "--username", "bob", "--base-url", atlas_emulator.base_url]) == 0
    assert token not in capsys.readouterr().out
    assert resolve_token(server=atlas_emulator.base_url + "/") == token  # spelling aside


def test_a_rejected_login_is_one_sentence_and_saves_nothing(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    atlas_emulator.add_user("carol", "right")
    monkeypatch.setenv("ATLAS_USERNAME", "carol")
    monkeypatch.setenv("ATLAS_PASSWORD", "wrong")
    assert main(["login", "--base-url", atlas_emulator.base_url]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "refused the log-in" in err and "Unable to log in" in err
    assert "wrong" not in err
    assert not (tmp_path / "config").exists()


def test_login_without_a_terminal_asks_for_the_environment_variables(
    atlas_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["login", "--base-url", atlas_emulator.base_url]) == 2
    assert "ATLAS_USERNAME" in capsys.readouterr().err
    assert atlas_emulator.stats()["requests"] == {}


def test_login_refuses_plain_http_to_another_host(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATLAS_USERNAME", "dave")
    monkeypatch.setenv("ATLAS_PASSWORD", "pw")
    # refused before any connection is attempted: the password would travel unencrypted
    assert main(["login", "--base-url", "http://example.invalid/forcedphot"]) == 2
    assert "refusing plain http" in capsys.readouterr().err
