"""The ledger's per-task queries find their rows by index: a run asks them once per settled
task, so a scan of every row would make a run of N targets cost O(N²) (it did: the image
check scanned ``targets`` for each result, 12 % of a 20,000-target CLI run's CPU)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from atlasbatch._ledger.images import WANTS_IMAGES_SQL
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Target


def _plan(path: Path, sql: str, *params: object) -> str:
    with sqlite3.connect(path) as db:
        rows = db.execute(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
    return " | ".join(str(row[-1]) for row in rows)


def test_whether_a_query_wants_images_is_found_by_index(tmp_path: Path) -> None:
    path = tmp_path / "atlasbatch.sqlite3"
    ledger = Ledger(path)
    targets = [Target(line=n, name=f"t{n}", ra=n * 0.1, dec=10.0) for n in range(2, 2002)]
    ledger.add_targets(targets, {})
    ledger.want_images([5])
    assert ledger.wants_images(5) and not ledger.wants_images(6)
    ledger.close()
    plan = _plan(path, WANTS_IMAGES_SQL, 5)
    assert "SCAN t" not in plan, plan
    assert "INDEX targets_rep" in plan, plan
