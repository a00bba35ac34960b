"""The download workers: fetch a finished task's file, store it, hand the outcome back.

File first, ledger second, delete last: the pipeline's ``settle`` records the outcome and
queues the DELETE only after the file is stored, so a crash in between leaves work for the
resume, never a deleted task without its result. Files are stored a group at a time
(:class:`StoreGroups`): one worker-thread call and one folder fsync for several results.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
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
from atlasbatch._outputs.atomic import grouped_directory_syncs
from atlasbatch._storage import storage_error

if TYPE_CHECKING:  # only for annotations: a run keeps no frame unless asked
    import pandas as pd

__all__ = ["GATHER_SECONDS", "Downloads", "Job", "Settle", "StoreGroups"]

log = logging.getLogger(__name__)

#: (task id, line, result URL)
Job = tuple[int, int, str]
#: How long stored results gather before one worker-thread call stores them all. A result
#: waits that much longer for its DELETE: nothing, beside a task's minute on the server.
GATHER_SECONDS = 0.05


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
        gather: float = GATHER_SECONDS,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._scratch = scratch
        self._keep_data = keep_data
        self._settle = settle
        self._gone = gone
        self._retry_pause = retry_pause
        self._stores = None
        if save is not None:
            self._stores = StoreGroups(save, folder=scratch.parent, settle=settle, gather=gather)

    async def work(self, rx: MemoryObjectReceiveStream[Job], done: Callable[[], None]) -> None:
        """Take jobs until the stream closes; ``done`` after each (success or not).

        A stored result is only handed in by then: its query stays open (and its task
        undeleted) until it is settled, so the run cannot end before. Storing is done here,
        outside the download's retries: a failure to store stops the run.
        """
        async with rx:
            async for task_id, line, url in rx:
                try:
                    await self._until_answered(task_id, line, url)
                finally:
                    done()
                if self._stores is not None:
                    await self._stores.lead()

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
        if fetched.rows and self._stores is not None:
            self._stores.hand_in(_Stored(task_id, target, body, fetched.frame))
            return
        body.discard()  # a spilled scratch copy (nothing for a small one)
        state = State.DOWNLOADED if fetched.rows else State.NO_DATA
        error = None if fetched.rows else "No data returned"
        await self._settle(task_id, target.line, state, error=error, data=fetched.frame)


@dataclass(frozen=True, slots=True)
class _Stored:
    """A checked download handed in to be stored, then settled."""

    task_id: int
    target: Target
    body: Body
    frame: pd.DataFrame | None


class StoreGroups:
    """Stores the results the download workers hand in, a group at a time, then settles them.

    The saver fsyncs, so it never runs on the event loop; but a worker-thread call per
    result costs more CPU than the write itself on a busy machine (waking the thread, then
    the loop: ~0.2-0.3 ms here, against ~0.1 ms for the write). So results gather for
    ``gather`` seconds, and one call stores them all: each file's data fsynced, then one
    fsync per folder (:func:`grouped_directory_syncs`). Only then is each result settled
    (ledger, then DELETE); a group that fails to store stops the run before any of its
    results is settled, and the resume fetches them again. One worker at a time leads:
    the one whose hand-in found nobody leading, until nothing is left to store.
    """

    def __init__(
        self, save: ResultSaver, *, folder: Path, settle: Settle, gather: float = GATHER_SECONDS
    ) -> None:
        self._save, self._folder, self._settle, self._gather = save, folder, settle, gather
        self._queue: list[_Stored] = []
        self._leading = False
        self.groups = 0  #: worker-thread calls made (for tests and benchmarks)

    def hand_in(self, stored: _Stored) -> None:
        """Queue a checked download; :meth:`lead` stores it."""
        self._queue.append(stored)

    async def lead(self) -> None:
        """Store and settle every result handed in, unless another worker is at it."""
        if self._leading:
            return
        self._leading = True
        try:
            while self._queue:  # nothing awaits between this test and the end of the lead
                await anyio.sleep(self._gather)
                group, self._queue = self._queue, []
                await self._store(group)
        finally:
            self._leading = False

    async def _store(self, group: list[_Stored]) -> None:
        self.groups += 1
        try:
            paths = await anyio.to_thread.run_sync(_store_group, self._save, group)
        except OSError as exc:  # full, read-only, gone: no waiting mends it
            raise storage_error(exc, folder=self._folder) from exc
        finally:
            for stored in group:
                stored.body.discard()  # spilled scratch copies, stored or not
        for stored, path in zip(group, paths, strict=True):
            await self._settle(stored.task_id, stored.target.line, State.DOWNLOADED, path=path,
                               data=stored.frame)  # fmt: skip


def _store_group(save: ResultSaver, group: list[_Stored]) -> list[str]:
    """Hand checked downloads to the saver (reading spilled ones back from disk); their
    folders are fsynced once, at the end, before any of them counts as stored."""
    with grouped_directory_syncs():
        return [save(stored.target, stored.body.read()) for stored in group]
