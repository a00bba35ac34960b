"""The registry of local runs: which run ids this machine knows, and where their folders are.

``atlasbatch cleanup --orphans`` needs it: a remote task carries its run id in its tag, and
a tag no local run knows belongs to an orphan (a deleted folder, a crashed scratch run, a
run from another machine). The registry is one JSON file, ``runs.json``, in the user data
folder (platformdirs; ``$ATLASBATCH_CONFIG_DIR`` overrides it, as for the token). Writers
take an advisory lock and replace the file atomically, so two fetches starting at the same
moment cannot lose each other's entry. The file is private (0600): it maps the user's
folders.

A folder whose ledger is gone while the registry still knows its run is a "lost run": its
tasks may still be on the server, and starting afresh there would submit every target again
and orphan them. :func:`lost_runs` finds such entries; :func:`forget_runs` drops them once
the server holds none of their tasks.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import platformdirs

from atlasbatch._outputs.results import AtomicFile

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no advisory locks
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "RunEntry",
    "forget_runs",
    "known_runs",
    "live_run_ids",
    "lost_runs",
    "register_run",
    "registry_path",
]

_FILE = "runs.json"
_LEDGER = "atlasbatch.sqlite3"  # as in rundir.py (which imports this module)
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunEntry:
    """One local run: its folder, server and when it was first registered."""

    run_id: str
    folder: str
    server: str
    registered: str


def registry_path() -> Path:
    """``runs.json`` in the user data folder (or in ``$ATLASBATCH_CONFIG_DIR``)."""
    folder = os.environ.get("ATLASBATCH_CONFIG_DIR") or platformdirs.user_data_dir("atlasbatch")
    return Path(folder) / _FILE


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    handle = os.open(path.with_name(f".{path.name}.lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        if fcntl is not None:
            fcntl.flock(handle, fcntl.LOCK_EX)  # held for milliseconds: just wait
        yield
    finally:
        os.close(handle)


def _read(path: Path) -> dict[str, RunEntry]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError):
        return {}  # a damaged registry must not stop a fetch; it is rebuilt from here on
    runs = raw.get("runs", {}) if isinstance(raw, dict) else {}
    entries: dict[str, RunEntry] = {}
    for run_id, entry in runs.items():
        if isinstance(entry, dict):
            entries[run_id] = RunEntry(
                run_id=run_id,
                folder=str(entry.get("folder", "")),
                server=str(entry.get("server", "")),
                registered=str(entry.get("registered", "")),
            )
    return entries


def register_run(run_id: str, *, folder: Path, server: str) -> None:
    """Remember a run (idempotent). A registry that cannot be written is logged, not fatal:
    the fetch matters more than the orphan finder."""
    try:
        _register(run_id, folder=folder, server=server)
    except OSError as exc:
        log.warning("could not record run %s in %s: %s", run_id, registry_path(), exc)


def _register(run_id: str, *, folder: Path, server: str) -> None:
    path = registry_path()
    with _locked(path):
        entries = _read(path)
        if run_id in entries and entries[run_id].folder == str(folder.resolve()):
            return
        entries[run_id] = RunEntry(
            run_id=run_id,
            folder=str(folder.resolve()),
            server=server,
            registered=datetime.now(UTC).isoformat(timespec="seconds"),
        )
        _write(path, entries)


def _write(path: Path, entries: dict[str, RunEntry]) -> None:
    """Replace the registry atomically; the file is private from its first byte."""
    body = {"runs": {k: {f: v for f, v in asdict(e).items() if f != "run_id"}
                     for k, e in sorted(entries.items())}}  # fmt: skip
    pending = AtomicFile(path)
    try:
        os.chmod(pending.temp, 0o600)  # before any content is written
        pending.temp.write_bytes((json.dumps(body, indent=1) + "\n").encode("utf-8"))
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def lost_runs(folder: Path, *, server: str) -> list[RunEntry]:
    """Runs registered for ``folder`` on ``server`` whose ledger is no longer there."""
    if (folder / _LEDGER).exists():
        return []
    where = str(folder.resolve())
    return [e for e in known_runs().values() if e.folder == where and e.server == server]


def forget_runs(run_ids: set[str]) -> None:
    """Drop runs from the registry (their ledger and tasks are gone); failures are logged."""
    try:
        _forget(run_ids)
    except OSError as exc:
        log.warning("could not update %s: %s", registry_path(), exc)


def _forget(run_ids: set[str]) -> None:
    path = registry_path()
    with _locked(path):
        entries = _read(path)
        kept = {k: e for k, e in entries.items() if k not in run_ids}
        if kept != entries:
            _write(path, kept)


def known_runs() -> dict[str, RunEntry]:
    """Every registered run, by run id."""
    return _read(registry_path())


def _ledger_run_id(folder: Path) -> str | None:
    """The run id of the ledger in ``folder``, read without creating or locking anything."""
    path = folder / _LEDGER
    if not path.is_file():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'run_id'").fetchone()
    except sqlite3.Error:
        return None
    finally:
        db.close()
    return None if row is None else str(row[0])


def live_run_ids() -> set[str]:
    """Registered runs whose folder still holds their ledger: their tasks are not orphans.

    A run whose folder was deleted (or now holds another run) no longer counts, so its
    tasks show up as orphans and can be adopted or deleted.
    """
    return {
        run_id
        for run_id, entry in known_runs().items()
        if _ledger_run_id(Path(entry.folder)) == run_id
    }
