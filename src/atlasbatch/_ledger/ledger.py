"""The run ledger: SQLite, one row per input target and per remote task; the source of truth.

Every state change is one transaction, committed before the next step depends on it, so
a process killed at any instant (kill -9 included) leaves a state that the next run
completes. WAL journaling with ``synchronous=NORMAL`` survives process crashes fully; after
a power cut the last transitions may roll back, which resume also handles (a batch still
"submitting" is reconciled by its tag, a missing result is fetched again).

SQLite errors never escape raw: a file that is not a ledger raises
:class:`LedgerDamagedError`, a full disk or a read-only folder :class:`StorageError`, both
naming the file; a failed transaction is rolled back, so the ledger stays as it was.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from itertools import chain
from pathlib import Path

from atlasbatch._exceptions import RunMismatchError
from atlasbatch._ledger.batches import LedgerBatches
from atlasbatch._ledger.control import LedgerControl
from atlasbatch._ledger.images import IMAGES_SCHEMA, LedgerImages
from atlasbatch._ledger.queries import QUERY_WINDOWS_SCHEMA, LedgerQueries, QueryRecord
from atlasbatch._ledger.reports import LedgerReports
from atlasbatch._ledger.resume_check import new_lines
from atlasbatch._ledger.schema import (
    SCHEMA,
    TARGET_INSERT,
    OutcomeRow,
    TaskRow,
    target_row,
    upgrade,
)
from atlasbatch._models import State, Target
from atlasbatch._storage import LedgerConnection, ledger_error

__all__ = ["SCHEMA_VERSION", "Ledger", "OutcomeRow", "QueryRecord", "TaskRow"]

SCHEMA_VERSION = 1
log = logging.getLogger(__name__)


class Ledger(LedgerQueries, LedgerBatches, LedgerControl, LedgerReports, LedgerImages):
    """A run's durable state. ``path=None`` keeps it in memory (notebooks, tests).

    The mixins add the windows a refresh asks (:mod:`.queries`), the batches of a
    submission (:mod:`.batches`), cancel requests from another process (:mod:`.control`),
    read-only reports (:mod:`.reports`) and image requests (:mod:`.images`).
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        try:
            self._db = sqlite3.connect(
                ":memory:" if path is None else str(path), isolation_level=None,
                check_same_thread=False, factory=LedgerConnection,
            )  # fmt: skip
        except sqlite3.Error as exc:  # cannot even open the file (folder gone or read-only)
            raise ledger_error(exc, path=path, opening=True) from exc
        self._db.ledger_path = path
        self._db.row_factory = sqlite3.Row
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise
        self._db.opening = False

    def _open(self) -> None:
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA + QUERY_WINDOWS_SCHEMA + IMAGES_SCHEMA)
        with self._tx():
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self._db.execute(
                "INSERT OR IGNORE INTO meta VALUES ('run_id', ?)", (secrets.token_hex(4),)
            )
        stored = int(self.meta("schema_version") or 0)
        if stored != SCHEMA_VERSION:
            raise RunMismatchError(
                f"ledger schema {stored} is not {SCHEMA_VERSION}: use a new --out"
            )
        with self._tx():
            upgrade(self._db)  # columns added since: an older run directory gets them

    def close(self) -> None:
        """Close the database (the WAL is checkpointed; if that fails, the next open does it)."""
        try:
            self._db.close()
        except sqlite3.Error as exc:  # a full disk: every committed change is in the WAL
            log.warning("closing the ledger %s: %s", self.path, exc)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
            self._db.execute("COMMIT")  # may fail too (disk full): then roll back as well
        except BaseException:
            if self._db.in_transaction:
                with contextlib.suppress(sqlite3.Error, OSError):
                    sqlite3.Connection.execute(self._db, "ROLLBACK")
            raise

    # --- meta --------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        """A stored setting, or None."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        """Store a setting."""
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def run_id(self) -> str:
        """Random id of this run; part of every submission's tag."""
        return self.meta("run_id") or ""

    @property
    def account(self) -> str | None:
        """The server account (``username``) that made this run's tasks, once known."""
        return self.meta("account")

    def set_account(self, username: str) -> None:
        """Record the account that made the run's newest tasks (the ``username`` the server
        reports on them). :func:`atlasbatch._engine.identity.check_account` compares it with the
        token's account before a resume touches anything."""
        if username and self.account != username:
            self.set_meta("account", username)

    def bind_server(self, base_url: str) -> None:
        """Tie the run to one server: its tasks exist only there."""
        stored = self.meta("base_url")
        if stored is None:
            self.set_meta("base_url", base_url)
        elif stored != base_url:
            raise RunMismatchError(
                f"this run directory belongs to {stored}, not {base_url}; use another --out"
            )

    # --- targets -----------------------------------------------------------------------

    def add_targets(
        self,
        targets: Sequence[Target],
        duplicate_of: dict[int, int],
        invalid: Iterable[tuple[Target, str]] = (),
    ) -> int:
        """Record the input rows; on resume check they match and add new rows. New count.

        ``targets`` is iterated once on a new run (streamed into the table: a lazily made
        sequence is never held whole) and twice on a resume: once to check it against the
        ledger a chunk of rows at a time, once to add the new rows."""
        invalid = list(invalid)
        resumed = self._db.execute("SELECT 1 FROM targets LIMIT 1").fetchone() is not None
        new = new_lines(self._db, targets, invalid) if resumed else None
        now = time.time()
        rows = chain(
            (target_row(t, duplicate_of.get(t.line, t.line), State.PENDING, None, now)
             for t in targets if new is None or t.line in new),
            (target_row(t, None, State.INVALID, err, now) for t, err in invalid
             if new is None or t.line in new),
        )  # fmt: skip
        with self._tx() as db:
            added: int = db.executemany(TARGET_INSERT, rows).rowcount
        return added

    def lines(self) -> list[tuple[int, int | None, State]]:
        """(line, representative line or None for invalid rows, state) of every input row."""
        return list(self.iter_lines())

    def iter_lines(self) -> Iterator[tuple[int, int | None, State]]:
        """:meth:`lines` one at a time (no list of every row); write nothing meanwhile."""
        for r in self._db.execute("SELECT line, rep, state FROM targets ORDER BY line"):
            yield r["line"], r["rep"], State(r["state"])

    def set_state(
        self,
        line: int,
        state: State,
        *,
        task_id: int | None = None,
        error: str | None = None,
        path: str | None = None,
    ) -> None:
        """Move one query to ``state`` (and remember the time it got there)."""
        with self._tx() as db:
            self._set(db, line, state, task_id=task_id, error=error, path=path)

    @staticmethod
    def _set(
        db: sqlite3.Connection,
        line: int,
        state: State,
        *,
        task_id: int | None = None,
        error: str | None = None,
        path: str | None = None,
    ) -> None:
        now = time.time()
        db.execute(
            "UPDATE targets SET state = ?, task_id = COALESCE(?, task_id), error = ?, "
            "path = COALESCE(?, path), updated = ? WHERE line = ?",
            (state.value, task_id, error, path, now, line),
        )
        db.execute("INSERT INTO events VALUES (?, ?, ?)", (line, state.value, now))

    def resubmits(self, line: int) -> int:
        """How often this query was sent again because its result expired."""
        row = self._db.execute("SELECT resubmits FROM targets WHERE line = ?", (line,)).fetchone()
        return int(row["resubmits"])

    def requeue(self, line: int, *, reason: str) -> None:
        """Send a query again (its result expired on the server); counted, and said why."""
        with self._tx() as db:
            db.execute("UPDATE targets SET resubmits = resubmits + 1 WHERE line = ?", (line,))
            self._set(db, line, State.PENDING, error=reason)

    # --- tasks -------------------------------------------------------------------------

    def open_tasks(self) -> list[TaskRow]:
        """Remote tasks not deleted yet, whatever their state."""
        rows = self._db.execute("SELECT * FROM tasks WHERE deleted = 0 ORDER BY task_id")
        return [TaskRow(r["task_id"], r["line"], State(r["state"]), r["result_url"]) for r in rows]

    def task_progress(self, updates: Sequence[tuple[int, State, str | None, str | None]]) -> None:
        """Record what a poll saw: (task id, state, result_url, error_msg) in one transaction."""
        now = time.time()
        with self._tx() as db:
            for task_id, state, result_url, error_msg in updates:
                db.execute(
                    "UPDATE tasks SET state = ?, result_url = ?, error_msg = ?, updated = ? "
                    "WHERE task_id = ?",
                    (state.value, result_url, error_msg, now, task_id),
                )
                line = db.execute("SELECT line FROM tasks WHERE task_id = ?", (task_id,)).fetchone()
                if line is not None:
                    self._set(db, line["line"], state, task_id=task_id, error=error_msg)

    def task_done(self, task_id: int, line: int, state: State, *, error: str | None = None,
                  path: str | None = None) -> None:  # fmt: skip
        """The query behind ``task_id`` reached a final state; the task awaits deletion."""
        with self._tx() as db:
            db.execute("UPDATE tasks SET state = ? WHERE task_id = ?", (state.value, task_id))
            self._set(db, line, state, task_id=task_id, error=error, path=path)

    def task_deleted(self, task_id: int) -> None:
        """The server no longer holds the task."""
        with self._tx() as db:
            db.execute(
                "UPDATE tasks SET deleted = 1, updated = ? WHERE task_id = ?",
                (time.time(), task_id),
            )
