"""The ledger's read-only summaries: counts by state, outcomes, what is left on the server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence

from atlasbatch._ledger.control_lines import CONTROL_LINE_BASE
from atlasbatch._ledger.schema import OutcomeRow, target_from_row
from atlasbatch._models import FINAL_STATES, State

__all__ = ["LedgerReports"]

# The duplicate rows (another row asks the same query) through their partial index
# ``targets_dups`` (schema.py), named: without statistics SQLite would rather scan every row.
_DUPLICATES = "targets t INDEXED BY targets_dups"
_DUPLICATE = "t.rep != t.line"  # the index's condition, which the query must repeat
_OPEN = ",".join(f"'{s.value}'" for s in State if s not in FINAL_STATES)
_OUTCOME_COLUMNS = (
    "t.line, t.name, t.ra, t.dec, t.mpc_name, t.mjd_min, t.mjd_max, t.use_reduced, t.extra, "
    "t.pmra, t.pmdec, t.epoch"
)


class LedgerReports:
    """Queries over a ledger's tables for displays, exit codes and outputs (no writes)."""

    _db: sqlite3.Connection

    def counts(self) -> dict[State, int]:
        """Input rows per state (duplicates count with their representative's state).

        Counted on the state index, then corrected for the duplicates (few: found by their
        partial index), instead of joining every row to its representative: ``status`` of a
        run of 100,000 rows stays quick."""
        counts = dict.fromkeys(State, 0)
        for row in self._db.execute("SELECT state, COUNT(*) AS n FROM targets GROUP BY state"):
            counts[State(row["state"])] = row["n"]
        for row in self._db.execute(
            f"SELECT t.state AS own, r.state AS rep_state, COUNT(*) AS n FROM {_DUPLICATES} "
            f"JOIN targets r ON r.line = t.rep WHERE {_DUPLICATE} GROUP BY own, rep_state"
        ):
            counts[State(row["own"])] -= row["n"]
            counts[State(row["rep_state"])] += row["n"]
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

    def open_task_counts(self) -> dict[State, int]:
        """Remote tasks not deleted yet, by state (only the states that have some)."""
        rows = self._db.execute(
            "SELECT state, COUNT(*) AS n FROM tasks WHERE deleted = 0 GROUP BY state"
        )
        return {State(row["state"]): int(row["n"]) for row in rows}

    def unfinished_queries(self) -> int:
        """Representative queries not yet in a final state."""
        # IN over the open states, not NOT IN over the final ones: the state index then
        # reads only the open rows (none once a run is over).
        sql = f"SELECT COUNT(*) FROM targets WHERE rep = line AND state IN ({_OPEN})"
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
            f"SELECT {_OUTCOME_COLUMNS}, COALESCE(r.state, t.state) AS s, "
            "COALESCE(r.task_id, t.task_id) AS task, "
            "COALESCE(r.error, t.error) AS err, COALESCE(r.path, t.path) AS p "
            f"FROM targets t LEFT JOIN targets r ON r.line = t.rep {where}ORDER BY t.line",
            params,
        )
        for r in rows:
            yield OutcomeRow(target_from_row(r), State(r["s"]), r["task"], r["err"], r["p"])

    def iter_valid_names(self) -> Iterator[str]:
        """The target name of every row that is not invalid (duplicates included), one at a
        time: what :meth:`FileNames.of_ledger <atlasbatch._outputs.filenames.FileNames.of_ledger>`
        needs, without an :class:`OutcomeRow` per row."""
        rows = self._db.execute(
            "SELECT t.name FROM targets t LEFT JOIN targets r ON r.line = t.rep "
            "WHERE COALESCE(r.state, t.state) != ?",
            (State.INVALID.value,),
        )
        for (name,) in rows:
            yield name

    def outcomes_in(self, states: Sequence[State], *, limit: int) -> list[OutcomeRow]:
        """The first ``limit`` rows (input order) whose own or representative's state is in
        ``states``, as :meth:`iter_outcomes` gives them; found through the state index and
        the duplicates' index, so the cost follows the rows asked for, not the run's size."""
        marks = ",".join("?" * len(states))
        rows = self._db.execute(
            f"SELECT {_OUTCOME_COLUMNS}, t.state AS s, t.task_id AS task, t.error AS err, "
            f"t.path AS p FROM targets t WHERE t.state IN ({marks}) "
            "AND (t.rep IS NULL OR t.rep = t.line) UNION ALL "
            f"SELECT {_OUTCOME_COLUMNS}, r.state AS s, COALESCE(r.task_id, t.task_id) AS task, "
            f"COALESCE(r.error, t.error) AS err, COALESCE(r.path, t.path) AS p FROM {_DUPLICATES} "
            f"JOIN targets r ON r.line = t.rep WHERE {_DUPLICATE} AND r.state IN ({marks}) "
            "ORDER BY line LIMIT ?",
            [*(s.value for s in states), *(s.value for s in states), limit],
        )
        return [OutcomeRow(target_from_row(r), State(r["s"]), r["task"], r["err"], r["p"])
                for r in rows]  # fmt: skip

    def pass_through_columns(self) -> list[str]:
        """The names of every input row's pass-through columns, sorted."""
        rows = self._db.execute(
            "SELECT DISTINCT j.key FROM targets, json_each(targets.extra) AS j ORDER BY j.key"
        )
        return [str(r[0]) for r in rows]

    def duplicates(self) -> dict[int, list[int]]:
        """Representative line -> the lines of the rows that ask the same (few, usually none)."""
        found: dict[int, list[int]] = {}
        sql = f"SELECT line, rep FROM {_DUPLICATES} WHERE {_DUPLICATE} ORDER BY line"
        for r in self._db.execute(sql):
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
