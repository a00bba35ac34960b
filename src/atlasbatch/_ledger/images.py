"""Image requests in the ledger: which rows want images, and each request's progress.

``image_wants`` holds the input lines that asked for images (an ``images`` column or
``--images``); a query wants images when any of its rows does. ``image_requests`` holds one
row per photometry task (the parent) that the image stage took over, written before each
step depends on it, so a process killed at any instant resumes exactly where it was:

* ``requesting``: the POST may be in flight; a resume reads the parent's
  ``imagerequest_task_id`` before asking again (a lost answer is adopted, never doubled);
* ``requested``: the child (IMGZIP task) exists on the server: wait for it;
* ``stored``: the zip (and the preview) are on disk; ``failed``: ``error`` says why;
* ``child_deleted``: the child is gone from the server; only then is the parent deleted.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from atlasbatch._models import State

__all__ = ["IMAGES_SCHEMA", "WANTS_IMAGES_SQL", "ImageRow", "ImageState", "LedgerImages"]

#: Asked once per settled task: by the index on ``targets.rep``, never a scan of every row.
WANTS_IMAGES_SQL = (
    "SELECT 1 FROM image_wants w JOIN targets t ON t.line = w.line WHERE t.rep = ? LIMIT 1"
)
IMAGES_SCHEMA = """
CREATE TABLE IF NOT EXISTS image_wants (line INTEGER PRIMARY KEY);
CREATE TABLE IF NOT EXISTS image_requests (
    parent INTEGER PRIMARY KEY, line INTEGER NOT NULL, state TEXT NOT NULL, child INTEGER,
    child_deleted INTEGER NOT NULL DEFAULT 0, zip_path TEXT, preview_path TEXT, error TEXT,
    updated REAL NOT NULL);
"""


class ImageState(StrEnum):
    """Where one image request is."""

    REQUESTING = "requesting"
    REQUESTED = "requested"
    STORED = "stored"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class ImageRow:
    """One parent task's image request as the ledger has it."""

    parent: int
    line: int
    state: ImageState
    child: int | None
    child_deleted: bool
    zip_path: str | None
    preview_path: str | None
    error: str | None

    @property
    def over(self) -> bool:
        """Nothing left to do but delete the parent."""
        finished = self.state in (ImageState.STORED, ImageState.FAILED)
        return finished and (self.child is None or self.child_deleted)


def _row(r: sqlite3.Row) -> ImageRow:
    return ImageRow(r["parent"], r["line"], ImageState(r["state"]), r["child"],
                    bool(r["child_deleted"]), r["zip_path"], r["preview_path"],
                    r["error"])  # fmt: skip


class LedgerImages:
    """Image wants and requests (mixed into :class:`~atlasbatch._ledger.ledger.Ledger`)."""

    _db: sqlite3.Connection

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def want_images(self, lines: Iterable[int]) -> None:
        """These input lines asked for images (a resume may add lines, never drops any)."""
        with self._tx() as db:
            db.executemany("INSERT OR IGNORE INTO image_wants VALUES (?)", [(n,) for n in lines])

    def wants_images(self, rep: int) -> bool:
        """Whether the query of representative line ``rep`` wants images (any of its rows)."""
        return self._db.execute(WANTS_IMAGES_SQL, (rep,)).fetchone() is not None

    def has_image_wants(self) -> bool:
        """Whether any row of the run asked for images."""
        return self._db.execute("SELECT 1 FROM image_wants LIMIT 1").fetchone() is not None

    def image_request(self, parent: int) -> ImageRow | None:
        """The image request of photometry task ``parent``, if the stage ever took it."""
        row = self._db.execute("SELECT * FROM image_requests WHERE parent = ?", (parent,))
        found = row.fetchone()
        return None if found is None else _row(found)

    def open_image_children(self) -> list[ImageRow]:
        """Requests whose child may still be on the server (for cleanup and cancel)."""
        rows = self._db.execute(
            "SELECT * FROM image_requests WHERE child_deleted = 0 AND "
            "(child IS NOT NULL OR state = ?) ORDER BY parent",
            (ImageState.REQUESTING.value,),
        )
        return [_row(r) for r in rows]

    def image_requesting(self, parent: int, line: int) -> None:
        """About to POST ``requestimages`` for ``parent`` (recorded before the POST)."""
        self._write(
            "INSERT INTO image_requests (parent, line, state, updated) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(parent) DO UPDATE SET state = excluded.state, updated = excluded.updated",
            (parent, line, ImageState.REQUESTING.value, time.time()),
        )

    def image_requested(self, parent: int, child: int) -> None:
        """The server made image request ``child`` for ``parent``."""
        self._update(parent, state=ImageState.REQUESTED, child=child)

    def image_stored(self, parent: int, *, zip_path: str, preview_path: str | None) -> None:
        """The zip (and the preview, if the server had one) are stored."""
        self._update(parent, state=ImageState.STORED, zip_path=zip_path, preview_path=preview_path)

    def image_failed(self, parent: int, line: int, error: str) -> None:
        """No images for ``parent``: ``error`` says why (a row is made if there was none)."""
        self._write(
            "INSERT INTO image_requests (parent, line, state, error, updated) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT(parent) DO UPDATE SET state = excluded.state, "
            "error = excluded.error, updated = excluded.updated",
            (parent, line, ImageState.FAILED.value, error, time.time()),
        )

    def image_child_deleted(self, parent: int) -> None:
        """The server no longer holds ``parent``'s image request."""
        self._update(parent, child_deleted=1)

    def image_column(self) -> dict[int, str]:
        """Input line -> the ``images`` cell of outcomes.csv: the zip's path, or why not."""
        rows = self._db.execute(
            "SELECT w.line, r.state AS query_state, i.state, i.zip_path, i.error, "
            "(SELECT deleted FROM tasks WHERE task_id = r.task_id) AS parent_deleted "
            "FROM image_wants w JOIN targets t ON t.line = w.line "
            "LEFT JOIN targets r ON r.line = t.rep "
            "LEFT JOIN image_requests i ON i.parent = (SELECT MAX(parent) FROM image_requests "
            "WHERE line = t.rep)"
        )
        return {int(r["line"]): _cell(r) for r in rows}

    def _update(self, parent: int, **values: object) -> None:
        names = ", ".join(f"{name} = ?" for name in values)  # names: this module's, not input
        params = [v.value if isinstance(v, StrEnum) else v for v in values.values()]
        self._write(f"UPDATE image_requests SET {names}, updated = ? WHERE parent = ?",
                    (*params, time.time(), parent))  # fmt: skip

    def _write(self, sql: str, params: tuple[object, ...]) -> None:
        with self._tx() as db:
            db.execute(sql, params)


def _cell(row: sqlite3.Row) -> str:
    """What one wanted row got: the zip's path, the reason there is none, or "pending"."""
    state = row["state"]
    if state == ImageState.STORED.value:
        return str(row["zip_path"])
    if state == ImageState.FAILED.value:
        return f"failed: {row['error']}"
    if state is not None:
        return "pending: requested"
    query = row["query_state"]
    if query is None:  # an invalid row: it never had a query
        return "not requested: invalid row"
    reasons = {
        State.NO_DATA.value: "not requested: no photometry in the window",
        State.FAILED.value: "not requested: the photometry failed",
        State.CANCELLED.value: "not requested: cancelled",
        State.INVALID.value: "not requested: invalid row",
    }
    if query == State.DOWNLOADED.value and row["parent_deleted"]:
        return "not requested: asked after its photometry task was deleted"
    return reasons.get(query, "pending")
