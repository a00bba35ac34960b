"""The shared budget's SQLite file: where it lives, whose rows are whose, its schema.

One file, ``budget.sqlite3`` beside ``tokens.json`` in the config folder, private (0600)
from its creation; rows keyed by a hash of the server and the token, never the token. The
schema is a minute's worth of stamps: a file of another version is emptied, not migrated,
and a damaged one is removed and made again (:class:`~.budget_store.BudgetStore` decides).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from atlasbatch._http.credentials import server_key, tokens_path

__all__ = [
    "account_key",
    "budget_path",
    "create_private",
    "create_schema",
    "immediate",
    "prepare",
    "remove_database",
]

FILE = "budget.sqlite3"
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS stamps (
    id INTEGER PRIMARY KEY AUTOINCREMENT,  -- never reused: a late settle cannot hit another's row
    account TEXT NOT NULL,                 -- account_key(): server + token, hashed
    scope TEXT NOT NULL,                   -- "write" or "read"
    at REAL NOT NULL,                      -- wall-clock seconds: counted by the server no later
    answered INTEGER NOT NULL DEFAULT 0    -- 0 while in flight
);
-- covering: a count never reads the table itself
CREATE INDEX IF NOT EXISTS stamps_window ON stamps (account, scope, at, answered);
"""
_FORGET_AFTER = 2 * 86400.0  # DRF's longest window is a day: rows of other accounts past this


def account_key(server: str, token: str) -> str:
    """Whom the server counts, without the token: SHA-256 of the server's URL and token."""
    return hashlib.sha256(f"{server_key(server)}\n{token}".encode()).hexdigest()


def budget_path() -> Path:
    """``budget.sqlite3`` in the config folder (``$ATLASBATCH_CONFIG_DIR``), beside the tokens."""
    return tokens_path().parent / FILE


def create_private(path: Path) -> None:
    """Make the file (and its folder) readable by its owner only, before SQLite opens it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))


def prepare(db: sqlite3.Connection, *, now: float) -> None:
    """WAL, the current schema (another version's stamps dropped), old accounts' rows gone."""
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    with immediate(db):
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version != _SCHEMA_VERSION:  # a minute of stamps: dropped, not migrated
            db.execute("DROP TABLE IF EXISTS stamps")
            create_schema(db)
            db.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")
        db.execute("DELETE FROM stamps WHERE at < ?", (now - _FORGET_AFTER,))


@contextlib.contextmanager
def immediate(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, its lock taken at the start (autocommit connection)."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):  # SQLite may have rolled back already
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def create_schema(db: sqlite3.Connection) -> None:
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            db.execute(statement)


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            path.with_name(path.name + suffix).unlink()
