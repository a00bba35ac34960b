"""Files replaced whole or not at all, and durable before anyone is told they exist.

A temporary sibling is written and fsynced, renamed over the final name, and the folder is
fsynced so the rename survives a power cut. A run stores one file per target, so each
write makes only the system calls that this needs (see :func:`write_atomic`), and files
stored together share one fsync of their folder (:func:`grouped_directory_syncs`).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path

__all__ = ["AtomicFile", "fsync_directory", "grouped_directory_syncs", "write_atomic"]

# O_BINARY: no newline translation by os.write on Windows; O_CLOEXEC: no leak to children.
_BINARY = getattr(os, "O_BINARY", 0)
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _BINARY | getattr(os, "O_CLOEXEC", 0)
#: The folders whose fsync waits for the end of the current grouped_directory_syncs block.
_DEFERRED: ContextVar[dict[Path, None] | None] = ContextVar("_DEFERRED", default=None)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` is either the old file or the whole new one.

    The bytes go to a temporary file in the same directory, are fsynced, renamed over
    ``path``, and the directory is fsynced so the rename itself survives a power cut (at
    the end of the enclosing :func:`grouped_directory_syncs` block, if there is one). One
    descriptor does it all: no second open to fsync, no buffered layer (its isatty, fstat
    and lseek calls), no stat.
    """
    temp, fd = _open_temp(path)
    try:
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _sync_directory(path.parent)


@contextmanager
def grouped_directory_syncs() -> Iterator[None]:
    """Within this block, :func:`write_atomic` and :meth:`AtomicFile.commit` leave the fsync
    of their folder to the block's end: one fsync per folder for a group of files.

    Each file's data is still fsynced before its rename; only the renames wait, so what is
    written inside survives a crash at once but a power cut only once the block has exited:
    record the files as stored after it. Blocks nest: the outermost one syncs.
    """
    if _DEFERRED.get() is not None:
        yield
        return
    folders: dict[Path, None] = {}  # an insertion-ordered set
    reset = _DEFERRED.set(folders)
    try:
        yield
    finally:
        _DEFERRED.reset(reset)
        for folder in folders:
            fsync_directory(folder)


class AtomicFile:
    """A temporary sibling of ``path`` that becomes ``path`` on :meth:`commit`.

    For files written by other libraries (pyarrow's Parquet and CSV writers), which need a
    file name rather than bytes: write to :attr:`temp`, then commit or discard.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self.temp, fd = _open_temp(path)
        os.close(fd)

    def commit(self) -> None:
        """Flush the temporary file to disk and rename it over :attr:`path`."""
        # Read-write: Windows refuses fsync on a read-only descriptor.
        fd = os.open(self.temp, os.O_RDWR | _BINARY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.temp, self.path)
        _sync_directory(self.path.parent)

    def discard(self) -> None:
        """Remove the temporary file, leaving :attr:`path` as it was."""
        self.temp.unlink(missing_ok=True)


def _open_temp(path: Path) -> tuple[Path, int]:
    """Create a unique, hidden temp file next to ``path`` (same filesystem), open to write.

    Mode 0o666 lets the umask decide the permissions, as for a plain ``open``; ``mkstemp``
    would make every output private (0600).
    """
    while True:
        temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return temp, os.open(temp, _CREATE, 0o666)
        except FileExistsError:  # pragma: no cover - 48 random bits
            continue


def _write_all(fd: int, data: bytes) -> None:
    """os.write may write less than asked (a signal, a pipe): write the rest."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _sync_directory(directory: Path) -> None:
    """Persist a rename now, or at the end of the enclosing grouped block."""
    deferred = _DEFERRED.get()
    if deferred is None:
        fsync_directory(directory)
    else:
        deferred[directory] = None


def fsync_directory(directory: Path) -> None:
    """Persist a rename on POSIX; Windows cannot open directories, so skip quietly there."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some filesystems refuse fsync on a directory
            os.fsync(fd)
    finally:
        os.close(fd)
