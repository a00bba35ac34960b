"""The ledger's tables and the conversions between their rows and records.

Columns added to ``targets`` after the first schema (:data:`ADDED_TARGET_COLUMNS`) are
added to an older ledger when it is opened (:func:`upgrade`): they are NULL in every old
row, which is what those rows meant (no proper motion, no epoch), so an old run directory
stays readable and resumable without a schema version bump; an older atlasbatch still reads
a newer ledger, since every query names its columns.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Final

from atlasbatch._ledger.control_lines import control_link
from atlasbatch._models import State, Target

__all__ = [
    "ADDED_TARGET_COLUMNS",
    "SCHEMA",
    "TARGET_COLUMNS",
    "TARGET_INSERT",
    "OutcomeRow",
    "TaskRow",
    "identity",
    "target_from_row",
    "target_row",
    "upgrade",
]

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS targets (
    line INTEGER PRIMARY KEY, name TEXT NOT NULL, rep INTEGER,
    ra REAL, dec REAL, mpc_name TEXT, mjd_min REAL, mjd_max REAL, use_reduced INTEGER NOT NULL,
    extra TEXT NOT NULL, state TEXT NOT NULL, task_id INTEGER, error TEXT, path TEXT,
    resubmits INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL,
    pmra REAL, pmdec REAL, epoch REAL);
CREATE INDEX IF NOT EXISTS targets_state ON targets(state);
-- a query's rows (its duplicates), e.g. whether any of them wants images: no table scan
CREATE INDEX IF NOT EXISTS targets_rep ON targets(rep);
-- the duplicate rows (few, usually none): status counts them without a table scan
CREATE INDEX IF NOT EXISTS targets_dups ON targets(rep) WHERE rep != line;
CREATE TABLE IF NOT EXISTS batches (
    batch INTEGER PRIMARY KEY, tag TEXT NOT NULL, state TEXT NOT NULL, lines TEXT NOT NULL,
    created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS batches_state ON batches(state);  -- the open ones, without a scan
CREATE TABLE IF NOT EXISTS tasks (
    task_id INTEGER PRIMARY KEY, line INTEGER NOT NULL, batch INTEGER, state TEXT NOT NULL,
    result_url TEXT, error_msg TEXT, deleted INTEGER NOT NULL DEFAULT 0, updated REAL NOT NULL);
CREATE INDEX IF NOT EXISTS tasks_open ON tasks(deleted, state);
CREATE TABLE IF NOT EXISTS events (line INTEGER NOT NULL, state TEXT NOT NULL, at REAL NOT NULL);
"""

#: Target columns the first schema lacked, with their types (:func:`upgrade` adds them).
ADDED_TARGET_COLUMNS: Final = (("pmra", "REAL"), ("pmdec", "REAL"), ("epoch", "REAL"))
TARGET_COLUMNS = (
    "line, name, ra, dec, mpc_name, mjd_min, mjd_max, use_reduced, extra, pmra, pmdec, epoch"
)
TARGET_INSERT = (
    "INSERT INTO targets (line, name, rep, ra, dec, mpc_name, mjd_min, mjd_max, use_reduced, "
    "extra, state, error, updated, pmra, pmdec, epoch) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass(frozen=True, slots=True)
class TaskRow:
    """A remote task this run owns and has not deleted yet."""

    task_id: int
    line: int
    state: State
    result_url: str | None


@dataclass(frozen=True, slots=True)
class OutcomeRow:
    """One input row as the ledger sees it now."""

    target: Target
    state: State
    task_id: int | None
    error: str | None
    path: str | None


def target_from_row(row: sqlite3.Row) -> Target:
    """The target of a ``targets`` row; the query must select :data:`TARGET_COLUMNS`."""
    # (a Row's "in" looks at its values, not its keys)
    if "epoch" not in row.keys():  # noqa: SIM118  a query that forgot them would drop the motion
        msg = "a ledger query that makes targets must select pmra, pmdec, epoch (TARGET_COLUMNS)"
        raise LookupError(msg)
    # A control's link to its target is its line (control_lines.py): no column to migrate.
    parent, index = control_link(row["line"]) or (None, None)
    return Target(
        line=row["line"],
        name=row["name"],
        ra=row["ra"],
        dec=row["dec"],
        mpc_name=row["mpc_name"],
        mjd_min=row["mjd_min"],
        mjd_max=row["mjd_max"],
        use_reduced=bool(row["use_reduced"]),
        extra=json.loads(row["extra"]),
        pmra=row["pmra"],
        pmdec=row["pmdec"],
        epoch=row["epoch"],
        control_of=parent,
        control_index=index,
    )


def identity(target: Target) -> tuple[object, ...]:
    """What must not change between runs for the same line (a moving star's motion is part
    of its window; the tuple of a star that stays put is what it was before motion existed)."""
    return (target.name, target.ra, target.dec, target.mpc_name, *target.window)


def target_row(
    t: Target, rep: int | None, state: State, error: str | None, now: float
) -> tuple[object, ...]:
    """The values of one input row for :data:`TARGET_INSERT`."""
    extra = json.dumps(dict(t.extra), sort_keys=True)
    return (t.line, t.name, rep, t.ra, t.dec, t.mpc_name, t.mjd_min, t.mjd_max,
            int(t.use_reduced), extra, state.value, error, now, t.pmra, t.pmdec,
            t.epoch)  # fmt: skip


def upgrade(db: sqlite3.Connection) -> None:
    """Add the columns an older ledger lacks (call inside a write transaction, so that two
    processes opening the same old ledger cannot both add them)."""
    have = {row[1] for row in db.execute("PRAGMA table_info(targets)")}
    for name, kind in ADDED_TARGET_COLUMNS:
        if name not in have:  # names and types are the constants above, never input
            db.execute(f"ALTER TABLE targets ADD COLUMN {name} {kind}")
