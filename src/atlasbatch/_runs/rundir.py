"""A run directory: its ledger, its lock, and the check that it is the same run.

``DIR/atlasbatch.sqlite3`` is the ledger; ``DIR/.lock`` is held (``flock``) while a process
works on the directory, so a second process gets a clear error instead of a race. The
kernel drops the lock when the holder dies, kill -9 included. ``atlasbatch cancel`` reaches
the holder through the ledger instead (:mod:`._ledger.control`).

A folder whose ledger was deleted while its run still has tasks on the server is refused
(:func:`refuse_lost_run`): starting afresh would submit every target again and leave the
old tasks behind. ``atlasbatch cleanup --orphans`` adopts or deletes them first.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._exceptions import LedgerDamagedError, RunLockedError
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Target
from atlasbatch._runs.registry import forget_runs, lost_runs

if TYPE_CHECKING:  # the target parser needs pandas; this module does not
    from atlasbatch._http.client import AtlasClient  # nor the client: `status` reads run_busy
    from atlasbatch._targets.read import TargetList

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one process is trusted
    fcntl = None  # type: ignore[assignment]

__all__ = ["LEDGER_NAME", "open_run", "record_targets", "refuse_lost_run", "run_busy"]

LEDGER_NAME = "atlasbatch.sqlite3"


def run_busy(folder: Path) -> bool:
    """True when a process holds the run directory's lock (a fetch, cancel or cleanup)."""
    if fcntl is None:  # pragma: no cover - Windows
        return False
    try:
        handle = os.open(folder / ".lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(handle)  # closing drops the shared lock at once
    return False


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    handle = os.open(folder / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunLockedError(
                    f"another atlasbatch process is working on {folder}; "
                    "wait for it to finish or stop it first"
                ) from None
        yield
    finally:
        os.close(handle)  # closing the descriptor releases the lock


@contextlib.contextmanager
def open_run(out_dir: Path | None, *, base_url: str) -> Iterator[Ledger]:
    """The ledger of ``out_dir`` (created if new), locked; a temporary file, deleted at the
    end, when ``out_dir`` is None (SQLite's page cache then bounds its memory, where an
    in-memory ledger would grow with every row and event)."""
    if out_dir is None:
        with tempfile.TemporaryDirectory(prefix="atlasbatch-ledger-") as folder:
            ledger = Ledger(Path(folder) / LEDGER_NAME)
            ledger.bind_server(base_url)
            try:
                yield ledger
            finally:
                ledger.close()
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    asked_before = time.time()
    with _locked(out_dir):
        ledger = Ledger(out_dir / LEDGER_NAME)
        try:
            ledger.bind_server(base_url)
            # A cancel request made before we held the lock was for a process that has
            # ended since; one made from now on is for us (the pipeline watches for it).
            ledger.drop_cancel_request(made_before=asked_before)
            yield ledger
        finally:
            ledger.close()


def record_targets(ledger: Ledger, targets: TargetList) -> int:
    """Put the input rows in the ledger (checked against a previous run) with the rows that
    want images; new rows count."""
    invalid = [
        (Target(line=line, name=name), "; ".join(f"{p.column}: {p.message}" for p in problems))
        for line, name, problems in targets.invalid
    ]
    added = ledger.add_targets(targets.targets, dict(targets.duplicate_of), invalid)
    ledger.want_images(sorted(targets.images))
    return added


async def refuse_lost_run(client: AtlasClient, out_dir: Path | None) -> None:
    """Refuse a folder whose ledger is gone while the server still holds its run's tasks.

    Costs nothing when the ledger is there or the folder never held a registered run; else
    one walk of the task list. A lost run without tasks left is forgotten, and the folder
    starts afresh.
    """
    from atlasbatch._runs.cleanup import run_id_of  # noqa: PLC0415 - see TYPE_CHECKING above

    if out_dir is None:
        return
    lost = {entry.run_id for entry in lost_runs(out_dir, server=client.settings.base_url)}
    if not lost:
        return
    left: dict[str, int] = {}
    async for task in client.iter_tasks():
        run_id = run_id_of(task.get("comment"))
        if run_id in lost:
            left[run_id] = left.get(run_id, 0) + 1
    if not left:
        forget_runs(lost)
        return
    runs = ", ".join(f"run {run_id} ({count} task(s))" for run_id, count in sorted(left.items()))
    raise LedgerDamagedError(
        f"the ledger {out_dir / LEDGER_NAME} is gone, but the server still holds tasks of "
        f"{runs} started in {out_dir}: adopt them with `atlasbatch cleanup --orphans --out DIR` "
        "or delete them with `atlasbatch cleanup --orphans --delete`, then run this command "
        "again (or use another --out)"
    )
