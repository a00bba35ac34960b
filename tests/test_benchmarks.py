"""Smoke test of the benchmark machinery: a tiny plan, all three clients, JSON rows.

Asserts the shape of the output and that atlasbatch cleans up after itself; nothing about
time (benchmarks are not timed tests).
"""

from __future__ import annotations

import json
from pathlib import Path

from benchmarks._bound import BoundInputs, bound_seconds
from benchmarks._harness import ROW_KEYS
from benchmarks._scenarios import TINY
from benchmarks.run import run_plan, write_json


def test_bound_includes_the_delete_writes() -> None:
    # 1000 targets: 10 POSTs + 1000 DELETEs = 1010 writes at 60 per 60 s -> 16 full windows
    inputs = BoundInputs(targets=1000, user_slots=16, task_seconds=0.01)
    assert bound_seconds(inputs) == 16 * 60.0
    # one running task per user: the runner term wins
    assert bound_seconds(BoundInputs(targets=100, task_seconds=60.0)) == 100 * 60.0


def test_tiny_plan_writes_rows_for_every_client(tmp_path: Path) -> None:
    rows = run_plan(TINY, serial=True, scale=False)
    out = tmp_path / "rows.json"
    write_json(rows, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data) == len(TINY.scenarios) * 3
    assert {row["client"] for row in data} == {"atlasbatch", "seed", "naive"}
    for row in data:
        assert tuple(row) == ROW_KEYS
        assert row["targets"] > 0
        assert set(row["throttled"]) == {"write", "read"}
    for row in data:
        if row["client"] == "atlasbatch":
            assert row["tasks_left"] == 0, row
