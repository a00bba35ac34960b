"""Getting one result file: download it, check it, a fresh URL after a 404.

The pipeline decides what a result means for the run; this module only answers "here is
the file, with so many rows", "it is gone", or "it is not a good file". Transient faults
never get here: the client waits them out. A file that keeps arriving cut or garbled is
tried a few times, then reported as the permanent problem it is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from atlasbatch._engine.poller import classify
from atlasbatch._exceptions import NotFoundError, ResultFileError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.streaming import INLINE_BYTES, Body
from atlasbatch._models import State, Target
from atlasbatch._outputs.atomic import fsync_directory, write_atomic
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.result_check import check_result_bytes, check_result_file
from atlasbatch._outputs.results import parse_result
from atlasbatch._storage import storage_error

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Fetched", "ResultSaver", "fetch_result", "save_result_file", "scratch_dir"]

_TRIES = 3

#: Stores one downloaded result (the bytes of the server's file); returns its path
#: relative to the run directory.
ResultSaver = Callable[[Target, bytes], str]


@dataclass(frozen=True, slots=True)
class Fetched:
    """The result of fetching one task's file: its checked ``body``, or gone, or a problem.

    The body is in memory, or (above the spool threshold) in the scratch file: the caller
    hands it to the saver, then calls its :meth:`~atlasbatch._http.streaming.Body.discard`.
    """

    body: Body | None = None
    rows: int = 0
    frame: pd.DataFrame | None = None
    gone: bool = False
    problem: str | None = None


async def fetch_result(
    client: AtlasClient,
    task_id: int,
    url: str,
    *,
    dest: Path,
    want_frame: bool = False,
    inline: int = INLINE_BYTES,
) -> Fetched:
    """Download ``url`` and check it; re-read the task on 404.

    The file stays in memory up to ``inline`` bytes; a larger one goes to ``dest`` (a
    scratch file). ``want_frame``: also parse the file into a DataFrame (only for callers
    that keep data). Raises only what must stop a run (authentication, local storage, TLS
    set-up).
    """
    problem = "no attempt"
    source = f"task {task_id}"
    for _ in range(_TRIES):
        try:
            body = await client.download_body(url, dest, inline=inline)
            if body.path is not None:  # seconds of work: keep the event loop free meanwhile
                rows, frame = await anyio.to_thread.run_sync(_read, body, source, want_frame)
            else:  # small: checked faster than a thread hop
                rows, frame = _read(body, source, want_frame=want_frame)
        except NotFoundError:
            refreshed = await _fresh_url(client, task_id)
            if refreshed is None:
                return Fetched(gone=True)
            url, problem = refreshed, "result file not found"
            continue
        except ResultFileError as exc:  # cut, garbled or too large: the file is the problem
            problem = str(exc)
            continue
        return Fetched(body=body, rows=rows, frame=frame)
    _discard(dest)
    return Fetched(problem=problem)


def _read(body: Body, source: str, want_frame: bool) -> tuple[int, pd.DataFrame | None]:
    """Rows in a downloaded file, and its DataFrame when wanted (parsed once: the parser
    applies the check's rules itself)."""
    if not want_frame:
        return _check(body, source), None
    data = body.read()
    _check_ending(data[-1:], source)
    frame = parse_result(data.decode("utf-8", "replace"), source=source)
    return len(frame), frame


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def _check(body: Body, source: str) -> int:
    """Rows in a downloaded file, checked line by line without building a frame."""
    if body.data is not None:
        _check_ending(body.data[-1:], source)
        return check_result_bytes(body.data, source=source)
    assert body.path is not None  # one or the other, by construction
    path = body.path
    with path.open("rb") as handle:
        size = handle.seek(0, 2)
        handle.seek(max(size - 1, 0))
        _check_ending(handle.read(1), source)
    return check_result_file(path, source=source)


def _check_ending(last: bytes, source: str) -> None:
    """The runner's files end with a newline (or are empty); a cut one may not."""
    if last not in (b"", b"\n"):
        raise ResultFileError(f"{source}: result file cut short")


def scratch_dir(out_dir: Path) -> Path:
    """Where large downloads land before they are checked and stored: the run's own disk."""
    folder = out_dir / ".downloads"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, folder=out_dir) from exc
    return folder


async def _fresh_url(client: AtlasClient, task_id: int) -> str | None:
    """Read the task again after a 404 on its result: a fresh URL, or None if gone."""
    task = await client.task(task_id)
    if task is None:
        return None
    update = classify(task)
    return update.result_url if update.state is State.FINISHED else None


def save_result_file(
    out_dir: Path, target: Target, data: bytes, *, names: FileNames | None = None
) -> str:
    """The default saver: ``DIR/lightcurves/<stem>.txt`` in the server's own format.

    ``names`` are the run's file names (:meth:`FileNames.of_ledger`): without them the stem
    is that of the name alone, which cannot see another target's name differing only in
    letter case.
    """
    if names is None:
        names = FileNames([target.name])
    relative = Path(names.lightcurve(target.name))
    path = out_dir / relative
    try:
        write_atomic(path, data)
    except FileNotFoundError:  # the run's first result: no lightcurves/ yet (no stat per file)
        _make_folder(path.parent)
        write_atomic(path, data)
    return str(relative)


def _make_folder(folder: Path) -> None:
    """Create ``folder`` and fsync its parent: the new folder's entry must survive a power
    cut as surely as the files put in it."""
    folder.mkdir(parents=True, exist_ok=True)
    fsync_directory(folder.parent)
