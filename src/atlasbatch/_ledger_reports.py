"""The ledger's read-only summaries: counts by state, outcomes, what is left on the server."""

from __future__ import annotations

import sqlite3

from atlasbatch._ledger_schema import OutcomeRow, target_from_row
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
        rows = self._db.execute(
            "SELECT t.line, t.name, t.ra, t.dec, t.mpc_name, t.mjd_min, t.mjd_max, t.use_reduced, "
            "t.extra, COALESCE(r.state, t.state) AS s, COALESCE(r.task_id, t.task_id) AS task, "
            "COALESCE(r.error, t.error) AS err, COALESCE(r.path, t.path) AS p "
            "FROM targets t LEFT JOIN targets r ON r.line = t.rep ORDER BY t.line"
        )
        return [
            OutcomeRow(target_from_row(r), State(r["s"]), r["task"], r["err"], r["p"]) for r in rows
        ]
