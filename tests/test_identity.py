"""The run knows its account: a resume with another account's token touches nothing.

The server lists only the caller's own tasks, so a resume with another account's token
would take the run's tasks for "disappeared", submit everything again and leave the old
tasks behind. Each test drives the emulator over loopback with two users.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from atlasbatch import Session, State, StorageError
from atlasbatch._engine.identity import check_account, token_account
from atlasbatch._exceptions import AccountMismatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Target
from atlasbatch._runs.rundir import LEDGER_NAME
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
COUNT = 5


def windowed(count: int = COUNT) -> list[dict[str, object]]:
    return [{**row, "mjd_min": 58000.0, "mjd_max": 58200.0} for row in grid_targets(count)]


def emulator(factory: Factory) -> Emulator:
    return factory(**fast(task_seconds=0.02, user_slots=4))


def no_room(target: Target, data: bytes) -> str:
    """A saver on a full disk: the run stops with its tasks still on the server."""
    raise OSError(28, "No space left on device", f"lightcurves/{target.name}.txt")


async def start_and_stop(emu: Emulator, out: Path) -> None:
    """A run of the default user ('atlas') that leaves its tasks on the server."""
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        with pytest.raises(StorageError):
            await session.run(windowed(), out_dir=out, save_result=no_room)
    emu.wait_until_idle()


def writes_seen(emu: Emulator) -> tuple[int, int]:
    requests = emu.stats()["requests"]
    assert isinstance(requests, dict)
    return int(requests.get("POST", 0)), int(requests.get("DELETE", 0))


def recorded_account(out: Path) -> str | None:
    ledger = Ledger(out / LEDGER_NAME)
    try:
        return ledger.account
    finally:
        ledger.close()


@pytest.mark.anyio
async def test_the_ledger_records_the_account_and_a_resume_with_another_is_refused(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = emulator(atlas_emulator_factory)
    await start_and_stop(emu, tmp_path)
    bob = emu.add_user("bob", "bob-password")
    async with AtlasClient(token=bob, settings=client_settings(emu)) as client:
        await client.submit([Target(line=2, name="b", ra=1.0, dec=2.0)], comment="bob's own")
    writes = writes_seen(emu)

    async with Session(token=bob, settings=client_settings(emu)) as session:
        with pytest.raises(AccountMismatchError) as caught:
            await session.run(windowed(), out_dir=tmp_path)
    message = str(caught.value)
    assert "'atlas'" in message
    assert "'bob'" in message
    assert "--token-file" in message
    assert bob not in message
    assert emu.token not in message
    assert writes_seen(emu) == writes  # nothing submitted, nothing deleted
    assert len([t for t in emu.tasks() if t["username"] == "atlas"]) == COUNT

    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(windowed(), out_dir=tmp_path)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert recorded_account(tmp_path) == "atlas"
    assert emu.stats()["tasks_created"] == COUNT + 1  # the run's five and bob's own one
    assert [t["username"] for t in emu.tasks()] == ["bob"]


def test_the_cli_refuses_an_account_without_tasks_and_the_right_token_resumes(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory)
    out = tmp_path / "run"
    anyio.run(start_and_stop, emu, out)
    targets = write_csv(tmp_path / "targets.csv", windowed())
    config = emu.config
    command = ["fetch", str(targets), "--out", str(out), "--base-url", emu.base_url,
               "--write-rate", str(config.write_rate), "--read-rate", str(config.read_rate),
               "--no-plots", "--progress", "plain"]  # fmt: skip
    writes = writes_seen(emu)

    carol = emu.add_user("carol", "carol-password")  # no task of her own: no name to show
    monkeypatch.setenv("ATLAS_TOKEN", carol)
    assert main(command) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("atlasbatch: ")]
    assert len(lines) == 1
    assert "Traceback" not in err
    assert "belong to the account 'atlas'" in lines[0]
    assert "no tasks on the server" in lines[0]
    assert carol not in err
    assert writes_seen(emu) == writes

    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    assert main(command) == 0
    stats = emu.stats()
    assert stats["tasks_created"] == COUNT
    assert stats["tasks_live"] == 0


@pytest.mark.anyio
async def test_a_ledger_without_a_recorded_account_learns_it_from_its_tasks(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    """Ledgers from before accounts were recorded: the run's own tasks name the owner."""
    emu = emulator(atlas_emulator_factory)
    await start_and_stop(emu, tmp_path)
    ledger = Ledger(tmp_path / LEDGER_NAME)
    try:
        ledger._db.execute("DELETE FROM meta WHERE key = 'account'")  # as an older ledger
        bob = emu.add_user("bob", "bob-password")
        async with AtlasClient(token=bob, settings=client_settings(emu)) as client:
            await client.submit([Target(line=2, name="b", ra=1.0, dec=2.0)], comment="x")
            assert await token_account(client) == "bob"
            with pytest.raises(AccountMismatchError, match=r"'atlas'.*'bob'"):
                await check_account(client, ledger)
        async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
            await check_account(client, ledger)
        assert ledger.account == "atlas"
    finally:
        ledger.close()


@pytest.mark.anyio
async def test_a_new_run_costs_no_request(atlas_emulator_factory: Factory, tmp_path: Path) -> None:
    emu = emulator(atlas_emulator_factory)
    ledger = Ledger(tmp_path / LEDGER_NAME)
    try:
        async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
            await check_account(client, ledger)
    finally:
        ledger.close()
    requests = emu.stats()["requests"]
    assert isinstance(requests, dict)
    assert sum(int(n) for n in requests.values()) == 0


def test_cancel_with_another_accounts_token_touches_nothing(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Else cancel would see none of the run's tasks and mark them all deleted locally."""
    emu = emulator(atlas_emulator_factory)
    out = tmp_path / "run"
    anyio.run(start_and_stop, emu, out)
    writes = writes_seen(emu)
    monkeypatch.setenv("ATLAS_TOKEN", emu.add_user("bob", "bob-password"))
    assert main(["cancel", str(out)]) == 2
    assert "belong to the account 'atlas'" in capsys.readouterr().err
    assert writes_seen(emu) == writes
    ledger = Ledger(out / LEDGER_NAME)
    try:
        assert ledger.undeleted_count() == COUNT  # still known: cleanup can remove them
    finally:
        ledger.close()
