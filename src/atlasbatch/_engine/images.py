"""The image stage: image stamps for the targets that asked, once each, within the limit.

The pipeline hands over a photometry task whose query wants images once its light curve is
stored, instead of deleting it: the server makes an image request only of a task it still
has (API §14). For each such parent, driven by its row in the ledger (:mod:`._ledger.images`)
so that a resume after ``kill -9`` carries on where the process died:

1. wait for one of :data:`MAX_IMAGE_REQUESTS` slots: the server refuses a sixth live IMGZIP
   task of a user (finished ones count until deleted), so a slot is held from the request
   until its child is deleted;
2. record "requesting", then ``POST /queue/<id>/requestimages/`` (not throttled); the 302
   names the child. A lost answer is reconciled by reading the parent's
   ``imagerequest_task_id``, never by asking again blindly; a 429 (the user's other image
   requests fill the limit) is waited out, a bounded number of times;
3. read the child (``GET /queue/<child>/``) on a growing schedule until it finishes (a
   quarter of the time waited, within the read share and a minute): image requests queue
   behind the user's light curves and take about 15 minutes;
4. store the zip as ``images/<stem>.zip`` and the parent's preview, when it has one, as
   ``images/<stem>.jpg`` (:mod:`._engine.image_files`), and record them;
5. delete the child (the slot frees), record that, and hand the parent to the deleters.

A cancel (``atlasbatch cancel``) ends each request at its next step, its child deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Final

import anyio

from atlasbatch._engine.book import Book
from atlasbatch._engine.image_files import store_preview, store_zip
from atlasbatch._exceptions import STOPS_RUN, AtlasBatchError, SubmissionUncertainError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.responses import image_child_id, image_refusal
from atlasbatch._ledger.images import ImageRow, ImageState
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._targets.images import MAX_IMAGE_REQUESTS

__all__ = ["ImageStage"]

log = logging.getLogger(__name__)

_GROWTH: Final = 0.25  # a probe waits this fraction of the time already waited
_CEILING: Final = 60.0  # seconds: the longest wait between two reads of a child
_READS: Final = 50_000  # reads of one child at most: weeks at one a minute
_REFUSALS: Final = 200  # 429s waited out per request (hours at the ceiling)
_ATTEMPTS: Final = 10  # steps that fail on a retry budget the caller set
CANCELLED: Final = "cancelled by the user"


class _CancelledError(Exception):
    """A cancel was asked for while a request was under way."""


class ImageStage:
    """Requests, waits for, stores and deletes image requests; ``refused`` counts children
    the server would not delete (left for ``atlasbatch cleanup``)."""

    def __init__(
        self,
        client: AtlasClient,
        ledger: Ledger,
        book: Book,
        *,
        out_dir: Path | None,
        delete: Callable[[int], Awaitable[None]],
        forget: Callable[[int], None],
        notify: Callable[[], None],
        floor: Callable[[], float],
        cancelled: Callable[[], bool],
    ) -> None:
        self._client, self._ledger, self._book = client, ledger, book
        self._out_dir = out_dir
        self._delete, self._forget, self._notify = delete, forget, notify
        self._floor, self._cancelled = floor, cancelled
        self._names: FileNames | None = None
        self._live: set[int] = set()  # parents whose child is (or may be) on the server
        self._freed = anyio.Event()
        self._handed: list[tuple[int, int]] = []  # (parent, line) not yet started
        self._arrived = anyio.Event()
        self.refused = 0
        if out_dir is None and ledger.has_image_wants():
            log.warning("images were asked for, but a run without a folder has nowhere to keep "
                        "them: none are requested (give out_dir)")  # fmt: skip

    def take(self, task_id: int, line: int, state: State) -> bool:
        """Take over a settled photometry task if its query wants images (or the stage had
        it before a resume); False: the caller deletes it as usual."""
        if self._out_dir is None:  # nowhere to keep images: not worth the server's time
            return False
        row = self._ledger.image_request(task_id)
        if row is None and not (state is State.DOWNLOADED and self._ledger.wants_images(line)):
            return False
        if row is not None and not row.over:
            self._live.add(task_id)  # resumed with a child (maybe) live: it holds a slot
        self._book.images += 1
        self._handed.append((task_id, line))
        self._arrived.set()
        return True

    async def work(self) -> None:
        """Run every request handed over, each in its own task (slots bound the server's)."""
        async with anyio.create_task_group() as tg:
            while True:
                handed, self._handed = self._handed, []
                for parent, line in handed:
                    tg.start_soon(self._one, parent, line)
                await self._arrived.wait()
                self._arrived = anyio.Event()

    # --- one parent -------------------------------------------------------------------

    async def _one(self, parent: int, line: int) -> None:
        try:
            for _ in range(_ATTEMPTS):
                try:
                    await self._advance(parent, line)
                    return
                except STOPS_RUN:
                    raise
                except AtlasBatchError as exc:  # a retry budget the caller set ran out
                    log.warning("images of task %d: %s; trying again", parent, exc)
                    await anyio.sleep(self._floor())
            log.error("images of task %d: giving up for now; resume or clean up later", parent)
            self._forget(parent)  # left on the server, as the ledger says: the run may end
        finally:
            self._release(parent)
            self._book.images -= 1
            self._notify()

    async def _advance(self, parent: int, line: int) -> None:
        """Take the request from where the ledger has it to its end, then delete the parent."""
        for _ in range(4):  # requested, stored or failed, child deleted: one step each
            row = self._ledger.image_request(parent)
            if row is None or row.state is ImageState.REQUESTING:
                await self._request(parent, line, resumed=row is not None)
            elif row.state is ImageState.REQUESTED:
                await self._collect(row)
            elif row.over or not await self._delete_child(row):
                break
        await self._delete(parent)

    # --- 1, 2: the request ------------------------------------------------------------

    async def _request(self, parent: int, line: int, *, resumed: bool) -> None:
        await self._acquire(parent)
        if resumed and await self._adopt(parent, line):  # the last POST may have made one
            return
        if self._cancelled():
            self._fail(parent, line, CANCELLED)
            return
        self._ledger.image_requesting(parent, line)
        started, answer = time.monotonic(), ""
        for _ in range(_REFUSALS):
            try:
                status, answer = await self._client.request_images(parent)
            except SubmissionUncertainError:
                if await self._adopt(parent, line):
                    return
                continue  # it made nothing: ask again
            if status == 302 and (child := image_child_id(answer)) is not None:
                self._ledger.image_requested(parent, child)
                return
            if status == 302 and await self._adopt(parent, line):  # a Location without id
                return
            if status != 429:
                break
            await anyio.sleep(self._probe(started))  # other image requests of this user
        self._fail(parent, line, image_refusal(answer))

    async def _adopt(self, parent: int, line: int) -> bool:
        """Read the parent: a request it shows is ours. True when the row moved on."""
        task = await self._client.task(parent)
        if task is None:
            self._fail(parent, line, "its photometry task is gone from the server")
            return True
        child = task.get("imagerequest_task_id")
        if isinstance(child, int) and not isinstance(child, bool):
            self._ledger.image_requested(parent, child)
            return True
        return False

    def _fail(self, parent: int, line: int, error: str) -> None:
        """No images for this parent; a slot held for a request never made is free."""
        log.warning("images of line %d (task %d): %s", line, parent, error)
        self._ledger.image_failed(parent, line, error)
        row = self._ledger.image_request(parent)
        if row is not None and row.child is None:
            self._release(parent)

    # --- 3, 4: the wait and the files --------------------------------------------------

    async def _collect(self, row: ImageRow) -> None:
        assert row.child is not None
        try:
            task = await self._wait(row.child)
        except _CancelledError:
            self._ledger.image_failed(row.parent, row.line, CANCELLED)
            return
        if task is None:
            self._fail(row.parent, row.line, f"image request {row.child} vanished")
            self._ledger.image_child_deleted(row.parent)
            self._release(row.parent)
        elif task.get("error_msg"):
            self._fail(row.parent, row.line, str(task["error_msg"]))
        else:
            await self._store(row, task)

    async def _wait(self, child: int) -> dict[str, Any] | None:
        """The child's JSON once it finished; None when the server no longer has it."""
        since = time.monotonic()
        running = False
        for _ in range(_READS):
            if self._cancelled():
                raise _CancelledError
            task = await self._client.task(child)
            if task is None or task.get("finishtimestamp"):
                return task
            if task.get("starttimestamp") and not running:  # probe afresh from its start
                since, running = time.monotonic(), True
            await anyio.sleep(self._probe(since))
        raise AtlasBatchError(f"image request {child} did not finish after {_READS} reads")

    async def _store(self, row: ImageRow, task: dict[str, Any]) -> None:
        assert row.child is not None
        assert self._out_dir is not None
        if self._names is None:  # the run's file names, made when first needed
            self._names = FileNames.of_ledger(self._ledger)
        name = self._ledger.target(row.line).name
        zip_path, jpg_path = self._names.images(name), self._names.preview(name)
        url = task.get("result_imagezip_url") or self._client.url(f"queue/{row.child}/images.zip")
        problem = await store_zip(self._client, str(url), self._out_dir / zip_path)
        if problem is not None:
            self._fail(row.parent, row.line, problem)
            return
        preview = None
        parent = await self._client.task(row.parent)
        preview_url = None if parent is None else parent.get("previewimage_url")
        if preview_url and await store_preview(
            self._client, str(preview_url), self._out_dir / jpg_path
        ):
            preview = str(jpg_path)
        self._ledger.image_stored(row.parent, zip_path=str(zip_path), preview_path=preview)
        log.info("line %d: images stored in %s", row.line, zip_path)

    # --- 5: the end ------------------------------------------------------------------

    async def _delete_child(self, row: ImageRow) -> bool:
        """Delete the child; whether the server no longer has it."""
        assert row.child is not None  # a row without one is over
        try:
            await self._client.delete(row.child)
        except STOPS_RUN:
            raise
        except AtlasBatchError as exc:
            self.refused += 1
            log.error("image request %d could not be deleted (%s); `atlasbatch cleanup` will "
                      "retry", row.child, exc)  # fmt: skip
            return False
        self._ledger.image_child_deleted(row.parent)
        self._release(row.parent)
        return True

    # --- slots and pace ----------------------------------------------------------------

    async def _acquire(self, parent: int) -> None:
        while parent not in self._live and len(self._live) >= MAX_IMAGE_REQUESTS:
            await self._freed.wait()
        self._live.add(parent)

    def _release(self, parent: int) -> None:
        if parent in self._live:
            self._live.discard(parent)
            self._freed.set()
            self._freed = anyio.Event()

    def _probe(self, since: float) -> float:
        """A quarter of the time waited, within the read share's floor and a minute."""
        waited = time.monotonic() - since
        return min(_CEILING, max(self._floor(), _GROWTH * waited))
