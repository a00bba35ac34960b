"""The batches of a submission in the ledger: recorded before their POST, settled after.

A batch is "submitting" from just before its POST until the server's answer is known; a
crash in between leaves it so, and the resume finds its tasks by the batch's tag
(``atlasbatch:<run id>:<k>``) instead of posting again.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

from atlasbatch._models import State

__all__ = ["LedgerBatches"]


class LedgerBatches:
    """Submission batches (mixed into :class:`~atlasbatch._ledger.ledger.Ledger`)."""

    _db: sqlite3.Connection

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

        @staticmethod
        def _set(
            db: sqlite3.Connection, line: int, state: State, *, task_id: int | None = None
        ) -> None: ...

        @property
        def run_id(self) -> str: ...

    def start_batch(self, lines: Sequence[int]) -> tuple[int, str]:
        """Record "submitting batch k" before its POST; returns (k, tag)."""
        with self._tx() as db:
            row = db.execute("SELECT COALESCE(MAX(batch), 0) + 1 AS k FROM batches").fetchone()
            batch = int(row["k"])
            tag = f"atlasbatch:{self.run_id}:{batch}"
            db.execute(
                "INSERT INTO batches VALUES (?, ?, 'submitting', ?, ?)",
                (batch, tag, json.dumps(list(lines)), time.time()),
            )
            for line in lines:
                self._set(db, line, State.SUBMITTING)
        return batch, tag

    def open_batches(self) -> list[tuple[int, str, list[int]]]:
        """Batches whose POST may or may not have reached the server."""
        rows = self._db.execute("SELECT * FROM batches WHERE state = 'submitting' ORDER BY batch")
        return [(r["batch"], r["tag"], json.loads(r["lines"])) for r in rows]

    def batch_submitted(self, batch: int, created: Sequence[tuple[int, int]]) -> None:
        """The server holds the batch: (line, task id) pairs, now queued."""
        now = time.time()
        with self._tx() as db:
            db.execute("UPDATE batches SET state = 'submitted' WHERE batch = ?", (batch,))
            db.executemany(
                "INSERT OR IGNORE INTO tasks (task_id, line, batch, state, updated) "
                "VALUES (?, ?, ?, 'queued', ?)",
                [(task_id, line, batch, now) for line, task_id in created],
            )
            for line, task_id in created:
                self._set(db, line, State.QUEUED, task_id=task_id)

    def batch_abandoned(self, batch: int) -> None:
        """The POST certainly created nothing: its targets are pending again."""
        with self._tx() as db:
            db.execute("UPDATE batches SET state = 'abandoned' WHERE batch = ?", (batch,))
            lines = db.execute("SELECT lines FROM batches WHERE batch = ?", (batch,)).fetchone()
            for line in json.loads(lines["lines"]):
                self._set(db, line, State.PENDING)
