"""Requests to the process that is running a run, from another process (``atlasbatch cancel``).

The only channel two atlasbatch processes share is the run's ledger: SQLite in WAL mode lets
a second process write a meta key while the fetch holds the run directory's lock, and the
fetch's pipeline reads that key before every poll. A request names the wall time it was made,
so the next process to take the lock can tell a stale request (addressed to a process that
has ended since) from one made while it held the lock.
"""

from __future__ import annotations

import sqlite3
import time

__all__ = ["CANCEL_KEY", "LedgerControl"]

#: The meta key of a cancel request; its value is the wall time of the request.
CANCEL_KEY = "cancel_requested"


class LedgerControl:
    """Cancel requests kept in the ledger's ``meta`` table (mixed into :class:`Ledger`)."""

    _db: sqlite3.Connection

    def request_cancel(self) -> None:
        """Ask the process working on this run to cancel it: end with every task deleted."""
        # One statement: atomic on its own in autocommit mode, and it waits (the
        # connection's busy timeout) while the fetch commits a transaction of its own.
        self._db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (CANCEL_KEY, repr(time.time()))
        )

    def cancel_requested(self) -> bool:
        """True while a cancel request is recorded and not yet withdrawn."""
        row = self._db.execute("SELECT 1 FROM meta WHERE key = ?", (CANCEL_KEY,)).fetchone()
        return row is not None

    def cancel_requested_at(self) -> float | None:
        """The wall time of the recorded cancel request, if any."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (CANCEL_KEY,)).fetchone()
        if row is None:
            return None
        try:
            return float(row[0])
        except ValueError:  # not written by request_cancel: treat as very old
            return 0.0

    def drop_cancel_request(self, *, made_before: float) -> bool:
        """Withdraw a request made before ``made_before`` (its process has ended); True if
        one was dropped. A request made later was meant for the caller and stays."""
        # One conditional statement: a request written meanwhile by another process is
        # never dropped by mistake (text that is no number casts to 0: very old).
        cursor = self._db.execute(
            "DELETE FROM meta WHERE key = ? AND CAST(value AS REAL) < ?", (CANCEL_KEY, made_before)
        )
        return cursor.rowcount > 0
