"""The run: submit within the cap, poll, download, delete — all driven by the ledger.

Four kinds of worker share one task group: one submitter, one watcher (polls), a few
downloaders and a few deleters. They talk through memory streams and a change signal; every
state change goes to the ledger before the next step depends on it. One target's failure is
a per-target outcome, never a cancelled run; a transient fault is waited out, never a
failure; only what no waiting can mend (authentication, TLS set-up, the local disk, the
run's identity) stops the run, and then cleanly: nothing is deleted remotely whose result
is not stored, and the same command resumes.
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream

from atlasbatch._engine.book import Book, Progress
from atlasbatch._engine.deletes import Deletes
from atlasbatch._engine.downloads import Downloads, Job
from atlasbatch._engine.fetcher import ResultSaver, save_result_file, scratch_dir
from atlasbatch._engine.images import ImageStage
from atlasbatch._engine.poller import TaskUpdate
from atlasbatch._engine.settle import OutcomeHandler, Settler
from atlasbatch._engine.submitter import Submitter
from atlasbatch._engine.watch import Watch
from atlasbatch._exceptions import STOPS_RUN, AtlasBatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import FINAL_STATES, State
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._unwrap import unwrapped

if TYPE_CHECKING:  # only for annotations: a run keeps no frame unless asked
    pass

__all__ = ["OutcomeHandler", "Pipeline", "Progress", "ResultSaver"]

log = logging.getLogger(__name__)

_CANCEL_CHECK = 0.25  # seconds between two looks for a cancel request, at least
_DELETERS = 8


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
        if save_result is None and out_dir is not None:
            save_result = partial(save_result_file, out_dir, names=FileNames.of_ledger(ledger))
        self._save = save_result
        self._book = Book()
        self._changed = anyio.Event()
        self._watch = Watch(client, self._book, apply=self._apply, vanished=self._vanished)
        self._deletes = Deletes(client, ledger, self._book, forget=self._forget_task)
        # The DELETE queue (_del_tx) is made by run(): hence the lambdas.
        self._images = ImageStage(
            client, ledger, self._book, out_dir=out_dir,
            delete=lambda task_id: self._del_tx.send(task_id),  # noqa: PLW0108
            forget=self._forget_task,
            notify=self._notify, floor=lambda: self._watch.pace.floor,
            cancelled=ledger.cancel_requested,
        )  # fmt: skip
        self._settle = Settler(
            ledger, self._book, self._images, on_outcome=on_outcome, keep_data=keep_data,
            delete=lambda task_id: self._del_tx.send(task_id),  # noqa: PLW0108
            notify=self._notify,
        )  # fmt: skip
        self._submitter = Submitter(
            client, ledger, self._book, notify=self._notify, on_refused=self._settle.refused
        )

    # --- public ----------------------------------------------------------------------

    async def run(self) -> None:
        """Work until every target has an outcome and every task is deleted (or refused).

        Raises the error (of :data:`~atlasbatch._exceptions.STOPS_RUN`) that stopped the
        run, not an exception group.
        """
        self._book.load(self._ledger)
        down_tx, down_rx = anyio.create_memory_object_stream[Job](math.inf)
        del_tx, del_rx = anyio.create_memory_object_stream[int](math.inf)
        self._down_tx, self._del_tx = down_tx, del_tx
        scratch = self._scratch_dir()
        try:
            with unwrapped():
                async with anyio.create_task_group() as tg, down_tx, del_tx:
                    await self._resume_in_flight()
                    self._start_workers(tg, down_rx, del_rx)
                    while not self._book.done():
                        await self._changed.wait()
                    tg.cancel_scope.cancel()
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @property
    def submitting(self) -> bool:
        """False once :meth:`stop_submitting` was called."""
        return self._submitter.enabled

    def stop_submitting(self) -> None:
        """No new submissions from now on (first Ctrl-C); the rest goes on."""
        self._submitter.enabled = False
        self._notify()

    def progress(self) -> Progress:
        """Counts and budgets as of the last poll, for a progress display."""
        pace, outage = self._watch.pace, self._client.outage
        return Progress(
            counts=self._book.counts(),
            tasks_deleted=self._book.deleted,
            tasks_on_server=len(self._book.undeleted),
            writes_in_window=self._client.writes.in_window(),
            reads_in_window=self._client.reads.in_window(),
            throttled=self._client.writes.throttled + self._client.reads.throttled,
            task_seconds=pace.runtime,
            # tasks still to run: finished ones only wait for a download, a few seconds
            eta_seconds=pace.eta(len(self._book.waiting) + len(self._book.pending)),
            polled_ago=None if pace.last_poll is None else time.monotonic() - pace.last_poll,
            unreachable_since=outage.since,
            next_try_in=outage.seconds_to_next_try(),
            undeletable=self._deletes.refused,
        )

    # --- set-up ----------------------------------------------------------------------

    def _scratch_dir(self) -> Path:
        """Where downloads land before they are checked and stored (same disk as the run)."""
        if self._out_dir is None:
            self._scratch = Path(tempfile.mkdtemp(prefix="atlasbatch-"))
        else:
            self._scratch = scratch_dir(self._out_dir)
        return self._scratch

    async def _resume_in_flight(self) -> None:
        """Batches a crash left "submitting": adopt what the server has, re-queue the rest."""
        for batch, tag, lines in self._ledger.open_batches():
            targets = [self._ledger.target(line) for line in lines]
            await self._submitter.settle(batch, tag, targets)
        for task in self._ledger.open_tasks():
            if task.state is State.FINISHED and task.result_url:
                self._book.downloading += 1
                self._down_tx.send_nowait((task.task_id, task.line, task.result_url))
            elif task.state in FINAL_STATES and not self._images.take(
                task.task_id, task.line, task.state
            ):
                self._del_tx.send_nowait(task.task_id)

    def _start_workers(
        self,
        tg: TaskGroup,
        down_rx: MemoryObjectReceiveStream[Job],
        del_rx: MemoryObjectReceiveStream[int],
    ) -> None:
        tg.start_soon(self._submit_loop)
        tg.start_soon(self._poll_loop)
        tg.start_soon(self._cancel_loop)
        downloads = Downloads(
            self._client, self._ledger, scratch=self._scratch, save=self._save,
            keep_data=self._keep_data, settle=self._settle.task, gone=self._settle.result_gone,
            retry_pause=lambda: self._watch.pace.floor,
        )  # fmt: skip
        for _ in range(self._settings.download_concurrency):
            tg.start_soon(downloads.work, down_rx.clone(), self._downloaded)
        for _ in range(_DELETERS):
            tg.start_soon(self._deletes.work, del_rx.clone())
        tg.start_soon(self._images.work)
        down_rx.close()
        del_rx.close()

    def _downloaded(self) -> None:
        self._book.downloading -= 1
        self._notify()

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
            idle = not self._book.waiting
            pace = self._watch.pace
            # A full queue (our count, or the server's word) frees as tasks start: about a cycle.
            await self._submitter.submit(batch, pause=max(pace.floor, pace.cycle or pace.prior))
            if idle and self._book.waiting:
                pace.created(idle=True)

    # --- polling ---------------------------------------------------------------------

    async def _poll_loop(self) -> None:
        first = True  # on resume, tasks may have finished long ago: look at once
        while True:
            if not self._book.waiting:
                await self._changed.wait()
                continue
            if not first:
                await anyio.sleep(self._watch.delay())
            first = False
            try:
                await self._watch.look()
            except STOPS_RUN:
                raise
            except AtlasBatchError as exc:  # e.g. a retry budget the caller set ran out
                log.warning("poll failed, will try again: %s", exc)

    async def _cancel_loop(self) -> None:
        while True:  # a cheap SQLite read; at the read floor, at most a few times a second
            await self._cancel_if_asked()
            await anyio.sleep(max(self._watch.pace.floor, _CANCEL_CHECK))

    async def _cancel_if_asked(self) -> None:
        """``atlasbatch cancel DIR`` from another terminal: end the run, tasks deleted.

        The request is a mark in the ledger (the other process cannot reach this one any
        other way); it is read a few times a second. What already finished is still stored.
        """
        if not self._ledger.cancel_requested():
            return
        if self._submitter.enabled:
            log.warning("cancel requested by another atlasbatch process: cancelling the run")
            self.stop_submitting()
        book, reason = self._book, "cancelled by the user"
        for line in list(book.pending):
            book.pending.remove(line)
            self._ledger.set_state(line, State.CANCELLED, error=reason)
            await self._settle.outcome(line, State.CANCELLED, error=reason)
        for task_id, line in list(book.waiting.items()):
            del book.waiting[task_id]
            book.unstarted.discard(task_id)
            await self._settle.task(task_id, line, State.CANCELLED, error=reason)

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
                await self._settle.result_gone(update.task_id, line)
            else:
                await self._settle.task(update.task_id, line, update.state, error=update.error_msg)
        if changes:
            self._notify()

    async def _vanished(self, task_id: int, line: int) -> None:
        """The server no longer has a task of ours (purged, or deleted elsewhere)."""
        book = self._book
        book.waiting.pop(task_id, None)
        book.unstarted.discard(task_id)
        self._ledger.task_deleted(task_id)
        self._forget_task(task_id)
        await self._settle.expired(line, reason=f"task {task_id} disappeared from the server")

    def _forget_task(self, task_id: int) -> None:
        self._book.undeleted.discard(task_id)
        self._notify()
