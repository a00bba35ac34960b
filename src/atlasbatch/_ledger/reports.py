"""The ledger's read-only summaries: counts by state, outcomes, what is left on the server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from atlasbatch._ledger.control_lines import CONTROL_LINE_BASE
from atlasbatch._ledger.schema import OutcomeRow, target_from_row
from atlasbatch._models import FINAL_STATES, State

__all__ = ["LedgerReports"]


class LedgerReports:
    """Queries over a ledger's tables for displays, exit codes and outputs (no writes)."""

    _db: sqlite3.Connection

    def counts(self) -> dict[State, int]:
        """Input rows per state (duplicates count with their representative's state)."""
        counts = dict.fromkeys(State, 0)
        for row in self._db.execute(
            "SELECT COALESCE(r.state, t.state) AS s, COUNT(*) AS n FROM targets t "
            "LEFT JOIN targets r ON r.line = t.rep GROUP BY s"
        ):
            counts[State(row["s"])] = row["n"]
        return counts

    def work_mark(self) -> tuple[int, int, int]:
        """(tasks made, tasks deleted, queries final): changes when a run has done anything."""
        tasks = self._db.execute("SELECT COUNT(*), COALESCE(SUM(deleted), 0) FROM tasks")
        made, deleted = tasks.fetchone()
        finals = ",".join(f"'{s.value}'" for s in FINAL_STATES)
        final = self._db.execute(f"SELECT COUNT(*) FROM targets WHERE state IN ({finals})")
        return int(made), int(deleted), int(final.fetchone()[0])

    def has_controls(self) -> bool:
        """Whether the run's rows include control positions (``--controls``)."""
        sql = "SELECT EXISTS(SELECT 1 FROM targets WHERE line >= ?)"
        return bool(self._db.execute(sql, (CONTROL_LINE_BASE,)).fetchone()[0])

    def undeleted_count(self) -> int:
        """Remote tasks of this run still on the server (as far as we know)."""
        return int(self._db.execute("SELECT COUNT(*) FROM tasks WHERE deleted = 0").fetchone()[0])

    def unfinished_queries(self) -> int:
        """Representative queries not yet in a final state."""
        finals = ",".join(f"'{s.value}'" for s in FINAL_STATES)
        sql = f"SELECT COUNT(*) FROM targets WHERE rep = line AND state NOT IN ({finals})"
        return int(self._db.execute(sql).fetchone()[0])

    def outcomes(self) -> list[OutcomeRow]:
        """Every input row with its own or its representative's state, input order."""
        return list(self.iter_outcomes())

    def iter_outcomes(self, lines: Sequence[int] | None = None) -> Iterator[OutcomeRow]:
        """:meth:`outcomes` one row at a time (memory flat in the number of rows), or only
        the rows of ``lines`` (in input order)."""
        where, params = "", list(lines or ())
        if lines is not None:
            where = f"WHERE t.line IN ({','.join('?' * len(params))}) "
        rows = self._db.execute(
            "SELECT t.line, t.name, t.ra, t.dec, t.mpc_name, t.mjd_min, t.mjd_max, t.use_reduced, "
            "t.extra, t.pmra, t.pmdec, t.epoch, COALESCE(r.state, t.state) AS s, "
            "COALESCE(r.task_id, t.task_id) AS task, "
            "COALESCE(r.error, t.error) AS err, COALESCE(r.path, t.path) AS p "
            f"FROM targets t LEFT JOIN targets r ON r.line = t.rep {where}ORDER BY t.line",
            params,
        )
        for r in rows:
            yield OutcomeRow(target_from_row(r), State(r["s"]), r["task"], r["err"], r["p"])

    def pass_through_columns(self) -> list[str]:
        """The names of every input row's pass-through columns, sorted."""
        rows = self._db.execute(
            "SELECT DISTINCT j.key FROM targets, json_each(targets.extra) AS j ORDER BY j.key"
        )
        return [str(r[0]) for r in rows]

    def duplicates(self) -> dict[int, list[int]]:
        """Representative line -> the lines of the rows that ask the same (few, usually none)."""
        found: dict[int, list[int]] = {}
        for r in self._db.execute("SELECT line, rep FROM targets WHERE rep != line ORDER BY line"):
            found.setdefault(r["rep"], []).append(r["line"])
        return found

    def last_event(self) -> int:
        """The number of the newest ledger event (0: none). Event numbers only grow: the
        ``events`` table is append-only."""
        return int(self._db.execute("SELECT COALESCE(MAX(rowid), 0) FROM events").fetchone()[0])

    def downloads_after(
        self, event: int, *, upto: int, limit: int
    ) -> list[tuple[int, float, OutcomeRow]]:
        """Queries recorded as downloaded in events ``event+1 … upto`` and still downloaded:
        (event number, time recorded, the query's row), at most ``limit``, in event order."""
        rows = self._db.execute(
            "SELECT e.rowid AS event, e.at, t.line, t.name, t.ra, t.dec, t.mpc_name, t.mjd_min, "
            "t.mjd_max, t.use_reduced, t.extra, t.pmra, t.pmdec, t.epoch, t.state AS s, "
            "t.task_id AS task, t.error AS err, "
            "t.path AS p FROM events e JOIN targets t ON t.line = e.line WHERE e.rowid > ? "
            "AND e.rowid <= ? AND e.state = ? AND t.state = ? ORDER BY e.rowid LIMIT ?",
            (event, upto, State.DOWNLOADED.value, State.DOWNLOADED.value, limit),
        )
        return [
            (int(r["event"]), float(r["at"]),
             OutcomeRow(target_from_row(r), State(r["s"]), r["task"], r["err"], r["p"]))
            for r in rows
        ]  # fmt: skip
