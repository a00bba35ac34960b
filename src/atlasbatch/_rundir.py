"""A run directory: its ledger, its lock, and the check that it is the same run.

``DIR/atlasbatch.sqlite3`` is the ledger; ``DIR/.lock`` is held (``flock``) while a process
works on the directory, so a second process gets a clear error instead of a race. The
kernel drops the lock when the holder dies, kill -9 included.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from atlasbatch._exceptions import RunLockedError
from atlasbatch._ledger import Ledger
from atlasbatch._models import Target
from atlasbatch._targets import TargetList

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks, one process is trusted
    fcntl = None  # type: ignore[assignment]

__all__ = ["LEDGER_NAME", "open_run", "record_targets"]

LEDGER_NAME = "atlasbatch.sqlite3"


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
    """The ledger of ``out_dir`` (created if new), locked; in memory when ``out_dir`` is None."""
    if out_dir is None:
        ledger = Ledger(None)
        ledger.bind_server(base_url)
        try:
            yield ledger
        finally:
            ledger.close()
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    with _locked(out_dir):
        ledger = Ledger(out_dir / LEDGER_NAME)
        try:
            ledger.bind_server(base_url)
            yield ledger
        finally:
            ledger.close()


def record_targets(ledger: Ledger, targets: TargetList) -> int:
    """Put the input rows in the ledger (checked against a previous run); new rows count."""
    invalid = [
        (Target(line=line, name=name), "; ".join(f"{p.column}: {p.message}" for p in problems))
        for line, name, problems in targets.invalid
    ]
    return ledger.add_targets(targets.targets, dict(targets.duplicate_of), invalid)
