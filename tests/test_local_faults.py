"""Permanent local faults stop a run with one clear line, and the same command resumes.

A full disk, a read-only folder, a damaged or deleted ledger, a rejected certificate,
DELETEs that keep failing: each is driven over loopback against the emulator, and each test
checks what the user is told, the exit code, that nothing whose result is not stored was
deleted on the server, and that the run can be finished once the cause is gone.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from atlasbatch import Session, State, StorageError
from atlasbatch._cli.common import explain
from atlasbatch._cli.drive import finish_outputs
from atlasbatch._cli.progress import print_summary
from atlasbatch._exceptions import (
    AtlasBatchError,
    ConnectionSetupError,
    LedgerDamagedError,
)
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Target
from atlasbatch._runs.registry import known_runs, registry_path
from atlasbatch._runs.rundir import LEDGER_NAME
from atlasbatch._unwrap import unwrapped
from atlasbatch.cli import main
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets, write_csv

Factory = Callable[..., Emulator]
COUNT = 6


def windowed(count: int = COUNT) -> list[dict[str, object]]:
    """Targets with explicit MJD windows, so every one has data."""
    return [{**row, "mjd_min": 58000.0, "mjd_max": 58200.0} for row in grid_targets(count)]


def emulator(factory: Factory, **config: object) -> Emulator:
    return factory(**fast(task_seconds=0.02, user_slots=4, **config))


class FillingDisk:
    """A result saver on a disk with room for ``room`` files; then ``error`` (ENOSPC…)."""

    def __init__(self, out: Path, *, room: int, error: int = errno.ENOSPC) -> None:
        self.out, self.room, self.error = out, room, error
        self.stored: list[str] = []

    def __call__(self, target: Target, data: bytes) -> str:
        path = self.out / "lightcurves" / f"{target.name}.txt"
        if len(self.stored) >= self.room:
            raise OSError(self.error, os.strerror(self.error), str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        self.stored.append(target.name)
        return str(path.relative_to(self.out))


def server_args(emu: Emulator) -> list[str]:
    config = emu.config
    return ["--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate), "--no-plots",
            "--progress", "plain"]  # fmt: skip


def fetch(emu: Emulator, targets: Path, out: Path) -> int:
    return main(["fetch", str(targets), "--out", str(out), *server_args(emu)])


def error_lines(err: str) -> list[str]:
    """The CLI's own error lines; anything like a traceback fails the test."""
    assert "Traceback" not in err
    assert "ExceptionGroup" not in err
    return [line for line in err.splitlines() if line.startswith("atlasbatch: ")]


def writes_seen(emu: Emulator) -> tuple[int, int]:
    requests = emu.stats()["requests"]
    assert isinstance(requests, dict)
    return int(requests.get("POST", 0)), int(requests.get("DELETE", 0))


def deleted_ids(emu: Emulator) -> set[int]:
    """Tasks deleted on the server (finished ones are archived, not removed)."""
    return {int(str(t["id"])) for t in emu.tasks(include_archived=True) if t.get("archived")}


def stored_task_ids(out: Path) -> set[int]:
    """Tasks whose result is on disk (or that had none to store) per the ledger."""
    ledger = Ledger(out / LEDGER_NAME)
    try:
        rows = ledger.outcomes()
    finally:
        ledger.close()
    return {
        r.task_id
        for r in rows
        if r.task_id is not None
        and (r.state is State.NO_DATA or (r.path is not None and (out / r.path).is_file()))
    }


async def leave_tasks_open(emu: Emulator, out: Path) -> None:
    """A run stopped by a full disk before it stored anything: its tasks stay on the server."""
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        with pytest.raises(StorageError):
            await session.run(windowed(), out_dir=out, save_result=FillingDisk(out, room=0))
    emu.wait_until_idle()


# --- a full disk, a read-only folder ----------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("code", "said"), [(errno.ENOSPC, "disk is full"),
                                            (errno.EROFS, "is read-only")])  # fmt: skip
async def test_a_full_or_read_only_disk_stops_the_session_and_a_resume_finishes(
    atlas_emulator_factory: Factory, tmp_path: Path, code: int, said: str
) -> None:
    emu = emulator(atlas_emulator_factory)
    out = tmp_path / "run"
    disk = FillingDisk(out, room=2, error=code)
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        with pytest.raises(StorageError, match=said) as caught:  # the error, not a group
            await session.run(windowed(), out_dir=out, save_result=disk)
    assert f"in {out}" in str(caught.value) or f"{out}/lightcurves" in str(caught.value)
    assert deleted_ids(emu) <= stored_task_ids(out)  # nothing deleted whose file is not there

    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(windowed(), out_dir=out)
    assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
    assert all((out / str(o.path)).is_file() for o in report.outcomes)
    assert report.tasks_left == 0
    stats = emu.stats()
    assert stats["tasks_created"] == COUNT  # the resume adopted the tasks, sent nothing twice
    assert stats["tasks_live"] == 0


@contextlib.contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` refuse writes: chmod, or for root (whom chmod does not stop) the
    immutable attribute; skip the test where neither works."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o555)
    immutable = False
    try:
        if _writable(folder):
            chattr = shutil.which("chattr")
            if chattr is None or subprocess.run([chattr, "+i", str(folder)], check=False,
                                                capture_output=True).returncode:  # fmt: skip
                pytest.skip("cannot make a folder read-only here (root without chattr +i)")
            immutable = True
        yield
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], check=True)
        folder.chmod(0o755)


def _writable(folder: Path) -> bool:
    probe = folder / ".probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def test_a_read_only_run_directory_is_one_line_and_the_same_command_resumes(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = write_csv(tmp_path / "targets.csv", windowed())
    out = tmp_path / "run"
    curves = out / "lightcurves"
    with read_only(curves):
        first = fetch(emu, targets, out)  # submits, then cannot store the first result
        first_err = capsys.readouterr().err
        emu.wait_until_idle()
        second = fetch(emu, targets, out)  # still read-only: nothing at all gets done
        second_err = capsys.readouterr().err
    assert first == 1
    assert second == 2
    for err in (first_err, second_err):
        (line,) = error_lines(err)
        assert f"{curves} is read-only" in line
        assert "run the same command to resume" in line
    assert deleted_ids(emu) == set()  # no result stored, so nothing deleted
    assert emu.stats()["tasks_created"] == COUNT

    assert fetch(emu, targets, out) == 0  # writable again: the same command finishes
    assert len(list(curves.glob("*.txt"))) == COUNT
    stats = emu.stats()
    assert stats["tasks_created"] == COUNT
    assert stats["tasks_live"] == 0


# --- a damaged or deleted ledger --------------------------------------------------------


def test_a_damaged_ledger_is_one_line_and_nothing_is_sent(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    out = tmp_path / "run"
    anyio.run(leave_tasks_open, emu, out)
    ledger = out / LEDGER_NAME
    for leftover in (out / f"{LEDGER_NAME}-wal", out / f"{LEDGER_NAME}-shm"):
        leftover.unlink(missing_ok=True)
    ledger.write_bytes(b"this is not a database, " * 400)
    targets = write_csv(tmp_path / "targets.csv", windowed())
    writes = writes_seen(emu)

    assert fetch(emu, targets, out) == 2
    (line,) = error_lines(capsys.readouterr().err)
    assert f"the ledger {ledger} is damaged" in line
    assert "atlasbatch cleanup --orphans" in line
    assert writes_seen(emu) == writes  # nothing submitted, nothing deleted
    assert main(["status", str(out)]) == 2  # every command says the same
    assert "is damaged" in capsys.readouterr().err


def test_a_damaged_ledger_raises_ledger_damaged_error_from_the_session(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = emulator(atlas_emulator_factory)
    (tmp_path / LEDGER_NAME).write_bytes(b"\x00garbage" * 500)

    async def run() -> None:
        async with Session(token=emu.token, settings=client_settings(emu)) as session:
            await session.run(windowed(), out_dir=tmp_path)

    with pytest.raises(LedgerDamagedError, match="is damaged"):
        anyio.run(run)
    assert emu.stats()["tasks_created"] == 0


def test_a_deleted_ledger_is_refused_until_its_tasks_are_dealt_with(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    out = tmp_path / "run"
    anyio.run(leave_tasks_open, emu, out)
    (old_run,) = known_runs()
    for name in (LEDGER_NAME, f"{LEDGER_NAME}-wal", f"{LEDGER_NAME}-shm"):
        (out / name).unlink(missing_ok=True)
    targets = write_csv(tmp_path / "targets.csv", windowed())
    writes = writes_seen(emu)

    assert fetch(emu, targets, out) == 2  # refused: it would submit all again, orphan the old
    (line,) = error_lines(capsys.readouterr().err)
    assert f"the ledger {out / LEDGER_NAME} is gone" in line
    assert f"run {old_run} ({COUNT} task(s))" in line
    assert "atlasbatch cleanup --orphans" in line
    assert writes_seen(emu) == writes
    assert not (out / LEDGER_NAME).exists()

    orphans = ["cleanup", "--orphans", "--delete", "--base-url", emu.base_url,
               "--write-rate", str(emu.config.write_rate)]  # fmt: skip
    assert main(orphans) == 0
    assert fetch(emu, targets, out) == 0  # nothing of the old run is left: start afresh
    assert old_run not in known_runs()
    stats = emu.stats()
    assert stats["tasks_created"] == 2 * COUNT
    assert stats["tasks_live"] == 0


def test_the_registry_is_private(atlas_emulator_factory: Factory, tmp_path: Path) -> None:
    emu = emulator(atlas_emulator_factory)
    anyio.run(leave_tasks_open, emu, tmp_path / "run")
    assert registry_path().stat().st_mode & 0o777 == 0o600
    assert json.loads(registry_path().read_text())["runs"]


def test_a_full_disk_under_the_ledger_is_a_storage_error_and_the_ledger_stays(
    tmp_path: Path,
) -> None:
    ledger = Ledger(tmp_path / LEDGER_NAME)
    try:
        ledger.set_meta("kept", "yes")
        # SQLite's own page limit fails writes exactly as a full disk does (SQLITE_FULL).
        pages = ledger._db.execute("PRAGMA page_count").fetchone()[0]
        ledger._db.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StorageError, match="disk is full") as caught:
            ledger.set_meta("big", "x" * 100_000)
        assert str(tmp_path) in str(caught.value)
        assert ledger.meta("kept") == "yes"
        assert ledger.meta("big") is None  # rolled back: the ledger is as it was
    finally:
        ledger.close()


# --- DELETEs that keep failing ----------------------------------------------------------


def test_tasks_whose_delete_keeps_failing_are_counted_and_cleanup_removes_them(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    failing = Faults(server_error_rate=1.0, methods=frozenset({"DELETE"}))
    emu = emulator(atlas_emulator_factory, faults=failing)
    out = tmp_path / "run"
    # Patience for one request is a setting; the CLI's default waits outages out for hours.
    settings = client_settings(emu, retry_total_seconds=0.3)

    async def run() -> int:
        async with Session(token=emu.token, settings=settings) as session:
            report = await session.run(windowed(), out_dir=out)
        assert {o.state for o in report.outcomes} == {State.DOWNLOADED}
        return report.tasks_left

    assert anyio.run(run) == COUNT
    assert len(emu.tasks()) == COUNT  # every result stored, every task still there
    console = Console(file=io.StringIO(), width=200)
    ledger = Ledger(out / LEDGER_NAME)
    try:
        assert finish_outputs(ledger, out, server=emu.base_url, plots=False) == 1
        print_summary(console, ledger, out)
    finally:
        ledger.close()
    summary = console.file.getvalue()  # type: ignore[attr-defined]
    assert f"{COUNT} task(s) of this run are still on the server" in summary
    assert f"`atlasbatch cleanup {out}`" in summary

    emu.set_faults(Faults())
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    assert main(["cleanup", str(out), "--no-plots"]) == 0
    assert emu.tasks() == []


# --- a rejected certificate, and the unwrapping itself ----------------------------------


@contextlib.contextmanager
def tls_listener(tmp_path: Path) -> Iterator[int]:
    """A loopback TLS server with a self-signed certificate (which clients must reject)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a self-signed certificate")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                conn, _ = server.accept()
                with contextlib.suppress(OSError), context.wrap_socket(conn, server_side=True):
                    pass  # the client hangs up during the handshake

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join(timeout=5)
        server.close()


def test_a_rejected_certificate_is_one_line_and_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATLAS_TOKEN", "0123456789abcdef0123456789abcdef01234567")
    targets = write_csv(tmp_path / "targets.csv", windowed(2))
    with tls_listener(tmp_path) as port:
        code = main(["fetch", str(targets), "--out", str(tmp_path / "run"),
                     "--base-url", f"https://127.0.0.1:{port}/forcedphot"])  # fmt: skip
    (line,) = error_lines(capsys.readouterr().err)
    assert code == 2
    assert "TLS certificate of 127.0.0.1 rejected" in line
    assert "0123456789abcdef" not in line


def test_explain_names_the_fix_and_the_exit_code_follows_what_was_done(tmp_path: Path) -> None:
    full = StorageError("x")
    full.__cause__ = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "f.tmp"))
    assert explain(full, folder=tmp_path) == (
        f"the disk is full: free space in {tmp_path} and run the same command to resume",
        2,
    )
    assert explain(full, folder=tmp_path, partial=True)[1] == 1
    tls = ConnectionSetupError(
        "POST https://example.org/forcedphot/queue/: the server's TLS certificate was rejected: "
        "certificate has expired", url="https://example.org/forcedphot/queue/",
    )  # fmt: skip
    message, code = explain(tls)
    assert message.startswith("TLS certificate of example.org rejected (certificate has expired)")
    assert code == 2


def test_unwrapped_raises_the_atlasbatch_error_inside_nested_groups() -> None:
    inner = StorageError("the disk is full")
    inner.__cause__ = OSError(errno.ENOSPC, "No space left on device")
    group = ExceptionGroup("outer", [ExceptionGroup("inner", [ValueError("a"), inner])])
    with pytest.raises(StorageError) as caught, unwrapped():
        raise group
    assert caught.value is inner
    assert isinstance(caught.value.__cause__, OSError)  # the real cause is kept
    with pytest.raises(ExceptionGroup), unwrapped():  # a bug stays a group, every traceback
        raise ExceptionGroup("bug", [ValueError("b")])
    assert not isinstance(inner, ExceptionGroup)
    assert issubclass(StorageError, AtlasBatchError)
