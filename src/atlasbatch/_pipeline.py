"""The run: submit within the cap, poll, download, delete — all driven by the ledger.

Four kinds of worker share one task group: one submitter, one poller, a few downloaders
and a few deleters. They talk through memory streams and a change signal; every state
change goes to the ledger before the next step depends on it. One target's failure is a
per-target outcome, never a cancelled run.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path

import anyio
import pandas as pd
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from atlasbatch._book import Book, Progress
from atlasbatch._client import AtlasClient
from atlasbatch._exceptions import (
    AtlasBatchError,
    AuthenticationError,
)
from atlasbatch._fetcher import ResultSaver, fetch_result, save_result_file
from atlasbatch._ledger import Ledger
from atlasbatch._models import FINAL_STATES, Outcome, State, Target
from atlasbatch._poller import Poller, PollPacer, TaskUpdate, classify
from atlasbatch._submitter import Submitter

__all__ = ["Pipeline", "Progress", "ResultSaver"]

log = logging.getLogger(__name__)

OutcomeHandler = Callable[[Outcome], Awaitable[None]]
_DELETERS = 8
_DELETE_TRIES = 5


class Pipeline:
    """Runs every unfinished target of ``ledger`` to an outcome, within the server's limits."""

    def __init__(
        self,
        client: AtlasClient,
        ledger: Ledger,
        *,
        out_dir: Path | None = None,
        keep_data: bool = False,
        on_outcome: OutcomeHandler | None = None,
        save_result: ResultSaver | None = None,
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._settings = client.settings
        self._out_dir = out_dir
        self._keep_data = keep_data
        self._on_outcome = on_outcome
        self._save = save_result or (partial(save_result_file, out_dir) if out_dir else None)
        self._poller = Poller(client)
        self._pacer = PollPacer(self._settings)
        self._book = Book()
        self._changed = anyio.Event()
        self._submitter = Submitter(
            client, ledger, self._book, notify=self._notify, on_refused=self._refused
        )
        self._last_progress = time.monotonic()

    # --- public ----------------------------------------------------------------------

    async def run(self) -> None:
        """Work until every target has an outcome and every task is deleted."""
        self._book.load(self._ledger)
        down_tx, down_rx = anyio.create_memory_object_stream[tuple[int, int, str]](math.inf)
        del_tx, del_rx = anyio.create_memory_object_stream[int](math.inf)
        self._down_tx, self._del_tx = down_tx, del_tx
        async with anyio.create_task_group() as tg, down_tx, del_tx:
            await self._resume_in_flight()
            self._start_workers(tg, down_rx, del_rx)
            while not self._book.done():
                await self._changed.wait()
            tg.cancel_scope.cancel()

    @property
    def submitting(self) -> bool:
        """False once :meth:`stop_submitting` was called."""
        return self._submitter.enabled

    def stop_submitting(self) -> None:
        """No new submissions from now on (first Ctrl-C); the rest goes on."""
        self._submitter.enabled = False
        self._notify()

    def progress(self) -> Progress:
        """Counts and budgets now, for a progress display."""
        left = self._book.open
        return Progress(
            counts=self._book.counts(),
            tasks_deleted=self._book.deleted,
            tasks_on_server=len(self._book.undeleted),
            writes_in_window=self._client.writes.in_window(),
            reads_in_window=self._client.reads.in_window(),
            throttled=self._client.writes.throttled + self._client.reads.throttled,
            task_seconds=self._pacer.task_seconds,
            eta_seconds=left * self._pacer.task_seconds,
        )

    # --- set-up ----------------------------------------------------------------------

    async def _resume_in_flight(self) -> None:
        """Batches a crash left "submitting": adopt what the server has, re-queue the rest."""
        for batch, tag, lines in self._ledger.open_batches():
            targets = [self._ledger.target(line) for line in lines]
            await self._submitter.settle(batch, tag, targets)
        for task in self._ledger.open_tasks():
            if task.state is State.FINISHED and task.result_url:
                self._book.downloading += 1
                self._down_tx.send_nowait((task.task_id, task.line, task.result_url))
            elif task.state in FINAL_STATES:
                self._del_tx.send_nowait(task.task_id)

    def _start_workers(
        self,
        tg: TaskGroup,
        down_rx: MemoryObjectReceiveStream[tuple[int, int, str]],
        del_rx: MemoryObjectReceiveStream[int],
    ) -> None:
        tg.start_soon(self._submit_loop)
        tg.start_soon(self._poll_loop)
        for _ in range(self._settings.download_concurrency):
            tg.start_soon(self._download_loop, down_rx.clone())
        for _ in range(_DELETERS):
            tg.start_soon(self._delete_loop, del_rx.clone())
        down_rx.close()
        del_rx.close()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    # --- submitting ------------------------------------------------------------------

    async def _submit_loop(self) -> None:
        while True:
            batch = self._submitter.next_batch()
            if batch is None:
                await self._changed.wait()
                continue
            pause = max(self._pacer.floor, self._pacer.task_seconds)
            await self._submitter.submit(batch, pause=pause)

    async def _refused(self, target: Target, reason: str) -> None:
        self._ledger.set_state(target.line, State.FAILED, error=reason)
        await self._finalise(target.line, State.FAILED, error=reason)

    # --- polling ---------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        first = True  # on resume, tasks may have finished long ago: look at once
        while True:
            if not self._book.waiting:
                await self._changed.wait()
                continue
            if not first:
                await anyio.sleep(self._pacer.interval(active=len(self._book.waiting)))
            first = False
            try:
                updates, seen = await self._poller.poll(self._book.waiting)
            except AuthenticationError:
                raise
            except AtlasBatchError as exc:
                log.warning("poll failed, will try again: %s", exc)
                continue
            self._pacer.observe(
                sum(u.state in FINAL_STATES or u.state is State.FINISHED for u in updates),
                [u.runtime for u in updates if u.runtime is not None],
            )
            await self._apply(updates)
            if seen is not None:
                await self._check_stragglers(seen)
            await self._audit_if_stalled(progressed=bool(updates))

    async def _apply(self, updates: list[TaskUpdate]) -> None:
        book = self._book
        changes = [u for u in updates if u.task_id in book.waiting]
        self._ledger.task_progress(
            [(u.task_id, u.state, u.result_url, u.error_msg) for u in changes]
        )
        for update in changes:
            line = book.waiting[update.task_id]
            book.set(line, update.state)
            if update.state is State.QUEUED:
                continue
            book.unstarted.discard(update.task_id)
            if update.state is State.RUNNING:
                continue
            del book.waiting[update.task_id]
            if update.state is State.FINISHED and update.result_url:
                book.downloading += 1
                await self._down_tx.send((update.task_id, line, update.result_url))
            elif update.state is State.FINISHED:
                await self._result_gone(update.task_id, line)
            else:
                await self._finished_without_file(update, line)
        if changes:
            self._notify()

    async def _finished_without_file(self, update: TaskUpdate, line: int) -> None:
        self._ledger.task_done(update.task_id, line, update.state, error=update.error_msg)
        await self._finalise(line, update.state, task_id=update.task_id, error=update.error_msg)
        await self._del_tx.send(update.task_id)

    async def _check_stragglers(self, seen: set[int]) -> None:
        """A running task missing from the listing: read it alone (it may be gone)."""
        book = self._book
        missing = [tid for tid, line in book.waiting.items()
                   if book.state.get(line) is State.RUNNING and tid not in seen]  # fmt: skip
        for task_id in missing[:5]:
            task = await self._client.task(task_id)
            if task is None:
                await self._vanished(task_id, book.waiting[task_id])
            else:
                await self._apply([classify(task)])

    async def _audit_if_stalled(self, *, progressed: bool) -> None:
        """No news for long: check that our queued tasks still exist (deleted on the web?)."""
        now = time.monotonic()
        if progressed:
            self._last_progress = now
            return
        stall = max(20 * self._pacer.task_seconds, self._settings.stall_audit_seconds)
        if now - self._last_progress < stall:
            return
        self._last_progress = now
        on_server = {int(task["id"]) async for task in self._client.iter_tasks()}
        for task_id, line in list(self._book.waiting.items()):
            if task_id not in on_server:
                await self._vanished(task_id, line)

    async def _vanished(self, task_id: int, line: int) -> None:
        """The server no longer has a task of ours (purged, or deleted elsewhere)."""
        book = self._book
        book.waiting.pop(task_id, None)
        book.unstarted.discard(task_id)
        self._forget_task(task_id)
        await self._expired(line, reason=f"task {task_id} disappeared from the server")

    # --- downloading -----------------------------------------------------------------

    async def _download_loop(self, rx: MemoryObjectReceiveStream[tuple[int, int, str]]) -> None:
        async with rx:
            async for task_id, line, url in rx:
                try:
                    await self._download(task_id, line, url)
                finally:
                    self._book.downloading -= 1
                    self._notify()

    async def _download(self, task_id: int, line: int, url: str) -> None:
        fetched = await fetch_result(self._client, task_id, url)
        if fetched.gone:
            await self._result_gone(task_id, line)
        elif fetched.data is not None and fetched.frame is not None:
            await self._store(task_id, self._ledger.target(line), fetched.data, fetched.frame)
        else:
            self._ledger.task_done(task_id, line, State.FAILED, error=fetched.problem)
            await self._finalise(line, State.FAILED, task_id=task_id, error=fetched.problem)
            await self._del_tx.send(task_id)

    async def _store(self, task_id: int, target: Target, data: bytes, frame: pd.DataFrame) -> None:
        """File first, ledger second, delete last: a crash between leaves work for resume."""
        state = State.DOWNLOADED if len(frame) else State.NO_DATA
        path = self._save(target, data) if state is State.DOWNLOADED and self._save else None
        error = None if state is State.DOWNLOADED else "No data returned"
        self._ledger.task_done(task_id, target.line, state, error=error, path=path)
        await self._finalise(
            target.line, state, task_id=task_id, error=error, path=path, data=frame
        )
        await self._del_tx.send(task_id)

    async def _result_gone(self, task_id: int, line: int) -> None:
        """The result expired on the server (31-day retention): delete the task, ask again."""
        await self._del_tx.send(task_id)
        await self._expired(line, reason=f"result of task {task_id} expired on the server")

    async def _expired(self, line: int, *, reason: str) -> None:
        if self._ledger.resubmits(line) >= 1:
            reason = f"{reason} (already re-submitted once)"
            self._ledger.set_state(line, State.FAILED, error=reason)
            await self._finalise(line, State.FAILED, error=reason)
            return
        log.warning("line %d: %s; submitting it once more", line, reason)
        self._ledger.requeue(line, reason=reason)
        self._book.requeue([self._ledger.target(line)])
        self._notify()

    # --- deleting --------------------------------------------------------------------

    async def _delete_loop(self, rx: MemoryObjectReceiveStream[int]) -> None:
        async with rx:
            async for task_id in rx:
                await self._delete(task_id)

    async def _delete(self, task_id: int) -> None:
        for attempt in range(_DELETE_TRIES):
            try:
                await self._client.delete(task_id)
            except AuthenticationError:
                raise
            except AtlasBatchError as exc:
                log.warning("delete of task %d failed (try %d): %s", task_id, attempt + 1, exc)
                await anyio.sleep(self._pacer.floor * (attempt + 1))
                continue
            self._ledger.task_deleted(task_id)
            self._book.deleted += 1
            self._forget_task(task_id)
            return
        log.error("task %d could not be deleted; `atlasbatch cleanup` will retry", task_id)
        self._forget_task(task_id)

    def _forget_task(self, task_id: int) -> None:
        self._book.undeleted.discard(task_id)
        self._notify()

    # --- outcomes --------------------------------------------------------------------

    async def _finalise(
        self,
        line: int,
        state: State,
        *,
        task_id: int | None = None,
        error: str | None = None,
        path: str | None = None,
        data: pd.DataFrame | None = None,
    ) -> None:
        # Outcomes first: once the book says "final", run() may end the task group at once.
        if self._on_outcome is not None:
            kept = data if self._keep_data else None
            for member in (line, *self._book.members.get(line, ())):
                target = self._ledger.target(member)
                outcome = Outcome(target=target, state=state, task_id=task_id, error=error,
                                  path=path, data=kept)  # fmt: skip
                await self._on_outcome(outcome)
        self._book.set(line, state)
        self._notify()
