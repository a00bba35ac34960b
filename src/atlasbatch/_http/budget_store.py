"""The throttle mirror's stamps, shared by every atlasbatch process of one account.

The server counts writes and reads per *user*, across every program of that user
(``atlas_api.md`` §9). A mirror that lives in one process starts empty, so ``cancel`` and
then ``cleanup --orphans --delete`` together sent more than the limit in one window and met
429s. The stamps therefore live in one small SQLite file in the config folder
(``budget.sqlite3`` beside ``tokens.json``), one row per request, keyed by scope and by the
*account*: a SHA-256 of the server's base URL and the token. The token itself is never
stored; the hash is enough to tell accounts apart (one DRF token per user).

Why SQLite rather than an ``fcntl``-locked file: it is in the standard library, its locks
work on every platform (``fcntl`` is POSIX only), a process killed mid-transaction leaves
neither a stale lock (the OS drops it) nor a half-written file (the journal rolls it back),
and a claim is a few indexed statements instead of reading and rewriting a whole file.
WAL mode with ``synchronous=NORMAL``: a commit does not wait for the disk (a stamp matters
for one window; losing the last few on a power cut is harmless) and readers never block
the writer.

A claim is atomic across processes: ``BEGIN IMMEDIATE`` takes the write lock *before* the
count, so two processes can never both see N-1 and both take slot N. A claimed row is "in
flight" at its claim time; :meth:`BudgetStore.settle` moves it to the answer time (the
server counted the request no later than that); a 429 deletes it. The rows of a killed
process are never settled: they age out of the window like any other, so they hold a slot
for one window at most, which is right, since their requests may well have reached the
server.

The clock is **wall time** (``time.time``): processes share no monotonic clock. The window
(:mod:`atlasbatch._http.limiter`) never sees these times, only counts and durations, so it keeps
its own monotonic clock for its gate. A wall clock set back leaves stamps in the future:
they are pulled back to now, so each holds its slot for one more window at most; a clock
set forward lets stamps leave early once, which the 429 correction covers. Processes on
*other* machines are not seen (nor are other programs): that too is the 429 correction's
job.

Cost, measured on an ext4 disk with full windows of 60 and of 600 stamps: 0.1-0.25 ms per
claim, 0.05 ms per settle, 0.02-0.1 ms per count. A run makes about one write and a few
reads a second, so that is nothing.

If the file cannot be used (a read-only folder, a damaged file that cannot be replaced, a
lock held for over ``timeout`` seconds), the store says so once and carries on in memory:
that process then counts only its own requests, as every process did before. WAL needs
every process on one machine: a config folder on a network file system shared by several
machines is not shared this way (point ``$ATLASBATCH_CONFIG_DIR`` at a local folder).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from atlasbatch._http.budget_file import (
    account_key,
    budget_path,
    create_private,
    create_schema,
    immediate,
    prepare,
    remove_database,
)

__all__ = ["BudgetStore", "Grant", "WindowCount", "shared_budget"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Grant:
    """The answer to :meth:`BudgetStore.claim`: a ``claim`` id, or ``None`` and the seconds
    to ``wait`` before one more request can fit."""

    claim: int | None
    wait: float = 0.0


@dataclass(frozen=True, slots=True)
class WindowCount:
    """Requests the server still counts in one window: all of them, and the answered ones."""

    total: int
    answered: int


def shared_budget(server: str, *, token: str) -> BudgetStore:
    """The store every atlasbatch process of this account on this server shares."""
    return BudgetStore(budget_path(), account=account_key(server, token))


class BudgetStore:
    """One account's request stamps, per scope, in a file (``path``) or in memory (None).

    ``clock`` must be the same in every process sharing the file: wall time by default.
    """

    def __init__(
        self, path: Path | None, *, account: str, clock: Clock = time.time, timeout: float = 10.0
    ) -> None:
        self.path = path
        self._account = account
        self._clock = clock
        self._timeout = timeout
        self._high = 0  # the highest claim id handed out (see _memory)
        self._db = self._open()

    @classmethod
    def private(cls, *, clock: Clock) -> BudgetStore:
        """A store in memory, on the caller's clock: one process's own requests only."""
        return cls(None, account="", clock=clock)

    @property
    def shared(self) -> bool:
        """True while the stamps live in the file (False in memory, or after a fallback)."""
        return self.path is not None

    def claim(self, scope: str, *, limit: int, span: float) -> Grant:
        """Take a slot if fewer than ``limit`` requests lie in the last ``span`` seconds."""
        return self._run(lambda db: self._claim(db, scope, limit, span))

    def settle(self, scope: str, claim: int) -> None:
        """The request's answer is in: the server counted it no later than now."""
        self._run(lambda db: self._settle(db, scope, claim))

    def drop(self, claim: int) -> None:
        """The server refused the request (429): it does not count."""
        self._run(lambda db: db.execute("DELETE FROM stamps WHERE id = ?", (claim,)))

    def count(self, scope: str, *, span: float) -> WindowCount:
        """Requests in the last ``span`` seconds (every process's, when shared)."""
        return self._run(lambda db: self._count(db, scope, span))

    def close(self) -> None:
        """Close the database (also done when the store is garbage collected)."""
        self._close_db()

    # --- the statements ------------------------------------------------------------------

    def _claim(self, db: sqlite3.Connection, scope: str, limit: int, span: float) -> Grant:
        key = (self._account, scope)
        with immediate(db):  # the write lock before the count: one slot, one taker
            # the time is read under the lock: no other process has a later stamp yet
            now = self._clock()
            # a wall clock set back: stamps "in the future" count from now, for one window
            db.execute(
                "UPDATE stamps SET at = ? WHERE account = ? AND scope = ? AND at > ?",
                (now, *key, now),
            )
            # 2 spans, not 1: another process's margin may be a little wider than ours
            db.execute(
                "DELETE FROM stamps WHERE account = ? AND scope = ? AND at <= ?",
                (*key, now - 2 * span),
            )
            (total,) = db.execute(
                "SELECT count(*) FROM stamps WHERE account = ? AND scope = ? AND at > ?",
                (*key, now - span),
            ).fetchone()
            if total < limit:
                cursor = db.execute(
                    "INSERT INTO stamps (account, scope, at) VALUES (?, ?, ?)", (*key, now)
                )
                claim = int(cursor.lastrowid or 0)
                self._high = max(self._high, claim)
                return Grant(claim=claim)
            # full: wait until enough leave that one more fits
            (leaves,) = db.execute(
                "SELECT at FROM stamps WHERE account = ? AND scope = ? AND at > ? "
                "ORDER BY at LIMIT 1 OFFSET ?",
                (*key, now - span, total - limit),
            ).fetchone()
            return Grant(claim=None, wait=max(leaves + span - now, 0.0))

    def _settle(self, db: sqlite3.Connection, scope: str, claim: int) -> None:
        # REPLACE: a request slower than the window was pruned meanwhile, and counts again now
        db.execute(
            "INSERT OR REPLACE INTO stamps (id, account, scope, at, answered) "
            "VALUES (?, ?, ?, ?, 1)",
            (claim, self._account, scope, self._clock()),
        )

    def _count(self, db: sqlite3.Connection, scope: str, span: float) -> WindowCount:
        total, answered = db.execute(
            "SELECT count(*), coalesce(sum(answered), 0) FROM stamps "
            "WHERE account = ? AND scope = ? AND at > ?",
            (self._account, scope, self._clock() - span),
        ).fetchone()
        return WindowCount(total=int(total), answered=int(answered))

    # --- the file, and the way back to memory ----------------------------------------------

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work``; if the file fails, warn once and run it again in memory."""
        try:
            return work(self._db)
        except sqlite3.Error as exc:
            if self.path is None:
                raise  # memory does not fail like a disk: a bug
            self._fall_back(f"{type(exc).__name__}: {exc}")
            return work(self._db)

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            return self._memory()
        try:
            return self._open_file(self.path)
        except sqlite3.OperationalError as exc:  # locked, unwritable: not damaged
            return self._fall_back(f"{type(exc).__name__}: {exc}")
        except sqlite3.DatabaseError as exc:
            log.info("the shared budget file %s is damaged (%s); starting afresh", self.path, exc)
        except OSError as exc:
            return self._fall_back(exc.strerror or str(exc))
        try:  # damaged: it held a minute's worth of stamps, so a new file loses nothing
            remove_database(self.path)
            return self._open_file(self.path)
        except (OSError, sqlite3.Error) as exc:
            return self._fall_back(f"{type(exc).__name__}: {exc}")

    def _open_file(self, path: Path) -> sqlite3.Connection:
        create_private(path)
        db = self._connect(str(path))
        try:
            prepare(db, now=self._clock())
        except BaseException:
            self._close_db()
            raise
        return db

    def _memory(self) -> sqlite3.Connection:
        db = self._connect(":memory:")
        create_schema(db)
        # ids go on from the file's: a claim made there may still be settled here
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('stamps', ?)", (self._high,))
        return db

    def _connect(self, where: str) -> sqlite3.Connection:
        db = sqlite3.connect(
            where, timeout=self._timeout, isolation_level=None, check_same_thread=False
        )
        # closed with the store (or at exit), never left to the garbage collector's warning
        self._finalizer = weakref.finalize(self, db.close)
        return db

    def _close_db(self) -> None:
        with contextlib.suppress(AttributeError):
            self._finalizer()

    def _fall_back(self, why: str) -> sqlite3.Connection:
        """Stop sharing: stamps in memory from now on, after one warning."""
        log.warning(
            "cannot use the request budget shared with other atlasbatch processes (%s: %s); "
            "this process counts only its own requests",
            self.path,
            why,
        )
        self.path = None
        self._close_db()
        self._db = self._memory()
        return self._db
