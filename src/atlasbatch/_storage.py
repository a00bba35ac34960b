"""Local storage faults in words: a full disk, a read-only folder, a damaged ledger.

Waiting does not fix these, so the run stops at once with one sentence that says what
happened and what to do; every ledger transaction is atomic and a result is deleted on the
server only after it is stored, so the same command resumes once the cause is fixed.
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

from atlasbatch._exceptions import LedgerDamagedError, StorageError
from atlasbatch._models import Target

__all__ = [
    "LedgerConnection",
    "Saver",
    "describe_os_error",
    "guard_saver",
    "ledger_error",
    "storage_error",
]

#: Writes one downloaded result; returns its path relative to the run directory.
Saver = Callable[[Target, bytes], str]

_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_READ_ONLY = {errno.EROFS, errno.EACCES, errno.EPERM}
_RESUME = "run the same command to resume"

# SQLite's primary result codes (https://sqlite.org/rescode.html).
_SQLITE_PERM, _SQLITE_READONLY, _SQLITE_IOERR = 3, 8, 10
_SQLITE_CORRUPT, _SQLITE_FULL, _SQLITE_CANTOPEN = 11, 13, 14
_SQLITE_FORMAT, _SQLITE_NOTADB = 24, 26
_SQLITE_DAMAGED = {_SQLITE_CORRUPT, _SQLITE_FORMAT, _SQLITE_NOTADB}
_SQLITE_STORAGE = {
    _SQLITE_FULL: errno.ENOSPC,
    _SQLITE_READONLY: errno.EROFS,
    _SQLITE_PERM: errno.EACCES,
    _SQLITE_CANTOPEN: errno.EACCES,
    _SQLITE_IOERR: errno.EIO,
}


def describe_os_error(exc: OSError, *, folder: Path | None) -> str:
    """One sentence for a failed write: what happened to which folder, and the fix."""
    where = folder if folder is not None else _folder_of(exc)
    if exc.errno in _FULL:
        return f"the disk is full: free space in {where} and {_RESUME}"
    if exc.errno in _READ_ONLY:  # name the folder that refused, which may be inside DIR
        refused = _folder_of(exc) if exc.filename else where
        return f"{refused} is read-only ({exc.strerror}): make it writable and {_RESUME}"
    reason = exc.strerror or str(exc)
    name = f" {exc.filename}" if exc.filename else ""
    return f"cannot write{name} in {where} ({reason}): fix that and {_RESUME}"


def _folder_of(exc: OSError) -> str:
    """The folder of the file a write failed on (the file itself may be a temp file)."""
    return str(Path(exc.filename).parent) if exc.filename else "the run directory"


def storage_error(exc: OSError, *, folder: Path | None) -> StorageError:
    """The StorageError for an OSError met while writing into ``folder`` (chain it)."""
    return StorageError(describe_os_error(exc, folder=folder))


def guard_saver(saver: Saver, *, folder: Path | None) -> Saver:
    """``saver`` with its OSErrors (disk full, read-only) raised as StorageError."""

    def save(target: Target, data: bytes) -> str:
        try:
            return saver(target, data)
        except OSError as exc:
            raise storage_error(exc, folder=folder) from exc

    return save


def ledger_error(exc: sqlite3.Error, *, path: Path | None, opening: bool) -> Exception:
    """Our error for a SQLite error on the ledger at ``path``; ``exc`` itself if not ours.

    A file that is not a database (or a corrupt one) is damaged; a full disk or a read-only
    folder is storage. When ``opening``, any other database error means the file is not an
    atlasbatch ledger either; later, it is a bug and stays as it is.
    """
    code = getattr(exc, "sqlite_errorcode", None)
    primary = None if code is None else code & 0xFF
    shown = path if path is not None else Path("(memory)")
    if primary in _SQLITE_STORAGE:
        cause = OSError(_SQLITE_STORAGE[primary], str(exc), str(shown))
        return storage_error(cause, folder=shown.parent)
    if primary in _SQLITE_DAMAGED or (opening and isinstance(exc, sqlite3.DatabaseError)):
        return LedgerDamagedError(
            f"the ledger {shown} is damaged ({exc}): move it away and use `atlasbatch cleanup "
            "--orphans` to adopt or delete the run's tasks on the server; the same command then "
            "starts the run afresh"
        )
    return exc


class LedgerConnection(sqlite3.Connection):
    """A connection whose errors say what is wrong with the ledger file, and where."""

    ledger_path: Path | None = None
    opening = True

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        try:
            return super().execute(sql, parameters)
        except sqlite3.Error as exc:
            self._raise(exc)

    def executemany(self, sql: str, parameters: Any, /) -> sqlite3.Cursor:
        try:
            return super().executemany(sql, parameters)
        except sqlite3.Error as exc:
            self._raise(exc)

    def executescript(self, script: str, /) -> sqlite3.Cursor:
        try:
            return super().executescript(script)
        except sqlite3.Error as exc:
            self._raise(exc)

    def _raise(self, exc: sqlite3.Error) -> NoReturn:
        ours = ledger_error(exc, path=self.ledger_path, opening=self.opening)
        if ours is exc:
            raise exc
        raise ours from exc
