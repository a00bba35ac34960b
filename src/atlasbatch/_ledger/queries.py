"""The query each input row becomes: the window it is asked with, and what the ask got.

A refresh (``fetch --since-last``) asks a target only for what can be new, so the window it
sends is narrower than the row's own. The ``targets`` table keeps the row as the user gave it
(outcomes.csv and the resume check read it); ``query_windows`` holds the lower MJD the
refresh asks from instead, and :meth:`LedgerQueries.target` / :meth:`LedgerQueries.queries_in`
return the query with it, which is what the pipeline submits (or submits again).

:meth:`LedgerQueries.query_records` tells the next refresh what each query got: its state,
its task, when it was asked and when its result was stored.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from atlasbatch._ledger.schema import TARGET_COLUMNS, target_from_row
from atlasbatch._models import State, Target

__all__ = ["QUERY_WINDOWS_SCHEMA", "LedgerQueries", "QueryRecord"]

QUERY_WINDOWS_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS query_windows (line INTEGER PRIMARY KEY, mjd_min REAL NOT NULL);"
)
# The target columns with the asked lower MJD in place of the row's own.
_QUERY_COLUMNS = ", ".join(
    "COALESCE(q.mjd_min, t.mjd_min) AS mjd_min" if name == "mjd_min" else f"t.{name}"
    for name in (column.strip() for column in TARGET_COLUMNS.split(","))
)
_QUERY_FROM = "targets t LEFT JOIN query_windows q ON q.line = t.line"


@dataclass(frozen=True, slots=True)
class QueryRecord:
    """What one distinct query of a run got (for planning the next refresh)."""

    line: int
    state: State
    task_id: int | None
    path: str | None
    asked_at: float | None  # unix time its task's batch was recorded; None: not asked here
    stored_at: float | None  # unix time its result was stored (state "downloaded")


class LedgerQueries:
    """Asked windows and query records (mixed into :class:`Ledger`)."""

    _db: sqlite3.Connection

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...

    def set_query_starts(self, starts: Mapping[int, float]) -> None:
        """Ask these queries (by representative line) from a new lower MJD."""
        with self._tx() as db:
            db.executemany(
                "INSERT OR REPLACE INTO query_windows VALUES (?, ?)", sorted(starts.items())
            )

    def target(self, line: int) -> Target:
        """The stored target of an input line as it is asked: a refresh's narrower window
        included (:meth:`outcomes` gives the rows as the user gave them)."""
        row = self._db.execute(f"SELECT {_QUERY_COLUMNS} FROM {_QUERY_FROM} WHERE t.line = ?",
                               (line,))  # fmt: skip
        return target_from_row(row.fetchone())

    def queries_in(self, *states: State) -> list[Target]:
        """Representative (deduplicated) queries in any of ``states``, input order."""
        return list(self.iter_queries_in(*states))

    def iter_queries_in(self, *states: State) -> Iterator[Target]:
        """:meth:`queries_in` one at a time (no list of them all); write nothing meanwhile."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT {_QUERY_COLUMNS} FROM {_QUERY_FROM} WHERE t.rep = t.line "
            f"AND t.state IN ({marks}) ORDER BY t.line",
            [s.value for s in states],
        )
        return (target_from_row(row) for row in rows)

    def queries_at(self, lines: Sequence[int]) -> list[Target]:
        """The queries of ``lines`` as they are asked (:meth:`target`), in that order."""
        found: dict[int, Target] = {}
        for start in range(0, len(lines), 500):  # SQLite's bound on parameters, with room
            part = lines[start : start + 500]
            rows = self._db.execute(
                f"SELECT {_QUERY_COLUMNS} FROM {_QUERY_FROM} "
                f"WHERE t.line IN ({','.join('?' * len(part))})",
                list(part),
            )
            found.update((target.line, target) for target in map(target_from_row, rows))
        return [found[line] for line in lines]

    def query_records(self) -> dict[int, QueryRecord]:
        """Every distinct query (by representative line) and what it got in this run."""
        rows = self._db.execute(
            "SELECT t.line, t.state, t.task_id, t.path, b.created AS asked_at, "
            "(SELECT MAX(e.at) FROM events e WHERE e.line = t.line AND e.state = ?) AS stored_at "
            "FROM targets t LEFT JOIN tasks k ON k.task_id = t.task_id "
            "LEFT JOIN batches b ON b.batch = k.batch WHERE t.rep = t.line",
            (State.DOWNLOADED.value,),
        )
        return {
            r["line"]: QueryRecord(
                r["line"], State(r["state"]), r["task_id"], r["path"], r["asked_at"], r["stored_at"]
            )
            for r in rows
        }
