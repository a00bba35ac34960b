"""The download workers: fetch a finished task's file, store it, hand the outcome back.

File first, ledger second, delete last: the pipeline's ``settle`` records the outcome and
queues the DELETE only after the file is stored, so a crash in between leaves work for the
resume, never a deleted task without its result.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from atlasbatch._engine.fetcher import Fetched, ResultSaver, fetch_result
from atlasbatch._exceptions import STOPS_RUN, AtlasBatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.streaming import Body
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target
from atlasbatch._storage import storage_error

if TYPE_CHECKING:  # only for annotations: a run keeps no frame unless asked
    import pandas as pd

__all__ = ["Downloads", "Job", "Settle"]

log = logging.getLogger(__name__)

#: (task id, line, result URL)
Job = tuple[int, int, str]


class Settle(Protocol):
    """The pipeline's way to record a final outcome and queue the task's deletion."""

    async def __call__(
        self,
        task_id: int,
        line: int,
        state: State,
        *,
        error: str | None = None,
        path: str | None = None,
        data: pd.DataFrame | None = None,
    ) -> None: ...


class Downloads:
    """Workers that turn finished tasks into stored results (or permanent failures)."""

    def __init__(
        self,
        client: AtlasClient,
        ledger: Ledger,
        *,
        scratch: Path,
        save: ResultSaver | None,
        keep_data: bool,
        settle: Settle,
        gone: Callable[[int, int], Awaitable[None]],
        retry_pause: Callable[[], float],
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._scratch = scratch
        self._save = save
        self._keep_data = keep_data
        self._settle = settle
        self._gone = gone
        self._retry_pause = retry_pause

    async def work(self, rx: MemoryObjectReceiveStream[Job], done: Callable[[], None]) -> None:
        """Take jobs until the stream closes; ``done`` after each (success or not)."""
        async with rx:
            async for task_id, line, url in rx:
                try:
                    await self._until_answered(task_id, line, url)
                finally:
                    done()

    async def _until_answered(self, task_id: int, line: int, url: str) -> None:
        while True:
            try:
                await self._download(task_id, line, url)
                return
            except STOPS_RUN:
                raise
            except AtlasBatchError as exc:  # a retry budget the caller set ran out
                log.warning("task %d: download failed, will try again: %s", task_id, exc)
                await anyio.sleep(self._retry_pause())

    async def _download(self, task_id: int, line: int, url: str) -> None:
        dest = self._scratch / f"{task_id}.part"
        fetched = await fetch_result(
            self._client, task_id, url, dest=dest, want_frame=self._keep_data
        )
        if fetched.gone:
            await self._gone(task_id, line)
        elif fetched.body is not None:
            await self._store(task_id, self._ledger.target(line), fetched.body, fetched)
        else:
            await self._settle(task_id, line, State.FAILED, error=fetched.problem)

    async def _store(self, task_id: int, target: Target, body: Body, fetched: Fetched) -> None:
        state = State.DOWNLOADED if fetched.rows else State.NO_DATA
        path = None
        try:
            if state is State.DOWNLOADED and self._save is not None:
                # the saver fsyncs: never on the event loop, even for a small file
                path = await anyio.to_thread.run_sync(_store_body, self._save, target, body)
        except OSError as exc:  # full, read-only, gone: no waiting mends it
            raise storage_error(exc, folder=self._scratch.parent) from exc
        finally:
            body.discard()  # a spilled scratch copy, stored or not (nothing for a small one)
        error = None if state is State.DOWNLOADED else "No data returned"
        await self._settle(task_id, target.line, state, error=error, path=path, data=fetched.frame)


def _store_body(save: ResultSaver, target: Target, body: Body) -> str:
    """Hand a checked download to the saver (reading a spilled one back from disk)."""
    return save(target, body.read())
