"""A resume's target list checked against the rows its ledger already has.

The same command must give the same rows: a row the ledger has must come back unchanged
(name, position, window), and none may be missing; rows at new lines are added. Rows are
compared a chunk at a time, found by line: holding every ledger row in a dict to compare
them cost a resume of 100,000 targets ~100 MB (issue 12).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from itertools import chain, islice

from atlasbatch._exceptions import RunMismatchError
from atlasbatch._ledger.schema import TARGET_COLUMNS, identity, target_from_row
from atlasbatch._models import Target

__all__ = ["new_lines"]

_LINES_PER_LOOKUP = 900  # well under SQLite's limit on the parameters of one statement


def new_lines(
    db: sqlite3.Connection, targets: Sequence[Target], invalid: Sequence[tuple[Target, str]]
) -> set[int]:
    """The input lines the ledger does not have yet, after checking that the rows it has
    are the input's (``RunMismatchError`` otherwise, naming up to 20 rows)."""
    new: set[int] = set()
    problems: list[str] = []
    found = 0
    rows = chain(((t, True) for t in targets), ((t, False) for t, _ in invalid))
    while chunk := list(islice(rows, _LINES_PER_LOOKUP)):
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {TARGET_COLUMNS} FROM targets WHERE line IN ({marks})"
        known = {row["line"]: row for row in db.execute(sql, [t.line for t, _ in chunk])}
        for t, valid in chunk:
            if (row := known.get(t.line)) is None:
                new.add(t.line)
                continue
            found += 1
            if valid and identity(target_from_row(row)) != identity(t):
                problems.append(f"line {t.line}: was {row['name']!r}, now {t.name!r} "
                                "or its position/window")  # fmt: skip
    if found < int(db.execute("SELECT COUNT(*) FROM targets").fetchone()[0]):
        problems += _gone(db, targets, invalid)
    if problems:
        shown = "\n  ".join(problems[:20])
        raise RunMismatchError(
            "the targets differ from those this run directory was started with "
            f"(use a new --out, or restore the file):\n  {shown}"
        )
    return new


def _gone(
    db: sqlite3.Connection, targets: Sequence[Target], invalid: Sequence[tuple[Target, str]]
) -> list[str]:
    """A problem for each ledger row no longer in the input (a mismatch: memory no matter)."""
    lines = {t.line for t in targets} | {t.line for t, _ in invalid}
    rows = db.execute("SELECT line, name FROM targets ORDER BY line")
    return [f"line {r['line']} ({r['name']!r}) is no longer in the input"
            for r in rows if r["line"] not in lines]  # fmt: skip
