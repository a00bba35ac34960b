"""Getting one result file: download, check, parse; a fresh URL after a 404.

The pipeline decides what a result means for the run; this module only answers "what is
in the file", "it is gone", or "it could not be had", after a bounded number of tries.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from atlasbatch._client import AtlasClient
from atlasbatch._exceptions import (
    AtlasBatchError,
    AuthenticationError,
    NotFoundError,
    ResultFileError,
)
from atlasbatch._filenames import FileNames
from atlasbatch._models import State, Target
from atlasbatch._poller import classify
from atlasbatch._results import parse_result, write_atomic

__all__ = ["Fetched", "ResultSaver", "fetch_result", "save_result_file"]

_TRIES = 3

#: Writes one downloaded result; returns its path relative to the run directory.
ResultSaver = Callable[[Target, bytes], str]


@dataclass(frozen=True, slots=True)
class Fetched:
    """The result of fetching one task's file: data, or gone, or a problem."""

    data: bytes | None = None
    frame: pd.DataFrame | None = None
    gone: bool = False
    problem: str | None = None


async def fetch_result(client: AtlasClient, task_id: int, url: str) -> Fetched:
    """Download and parse a result; retries garbled or cut files, re-reads the task on 404."""
    problem = "no attempt"
    for _ in range(_TRIES):
        try:
            data = await client.download(url)
            if data and not data.endswith(b"\n"):  # the runner's files end with a newline
                raise ResultFileError(f"task {task_id}: result file cut short")
            frame = parse_result(data.decode("utf-8", "replace"), source=f"task {task_id}")
        except NotFoundError:
            refreshed = await _fresh_url(client, task_id)
            if refreshed is None:
                return Fetched(gone=True)
            url, problem = refreshed, "result file not found"
            continue
        except AuthenticationError:
            raise
        except AtlasBatchError as exc:  # truncated or garbled file, 5xx, transport
            problem = str(exc)
            continue
        return Fetched(data=data, frame=frame)
    return Fetched(problem=problem)


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
    path = out_dir / names.lightcurve(target.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)
    return str(path.relative_to(out_dir))
