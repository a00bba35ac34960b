"""The benchmark machinery: the bound T*, the oracle-free settings, and a tiny plan's rows.

Asserts the shape of the output, the bound's arithmetic and that atlasbatch cleans up after
itself; nothing about time (benchmarks are not timed tests).
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

import anyio
import pytest
from benchmarks._bound import BoundInputs, bound_seconds, bound_terms, first_tick
from benchmarks._cost import CostRow, check_cost, cost_table
from benchmarks._floor import run_floor
from benchmarks._harness import ROW_KEYS
from benchmarks._scenarios import TINY, scale, server_bound
from benchmarks.clients import ClientJob
from benchmarks.clients.atlas import atlas_settings
from benchmarks.run import run_plan, write_json

from atlasbatch.testing import Emulator


def test_bound_includes_the_delete_writes() -> None:
    # 1000 targets: 10 POSTs + 1000 DELETEs = 1010 writes at 60 per 60 s; the 50th write
    # (40 deletes: 3 rounds of 16 tasks of 0.01 s done) opens the last 16 windows
    inputs = BoundInputs(targets=1000, user_slots=16, task_seconds=0.01)
    assert bound_seconds(inputs) == pytest.approx(16 * 60.0 + 3 * 0.01)
    # one running task per user: the runner term wins
    assert bound_seconds(BoundInputs(targets=100, task_seconds=60.0)) == 100 * 60.0


def test_runner_term_adds_first_wake_up_gaps_and_latency_for_one_slot() -> None:
    inputs = BoundInputs(
        targets=3, task_times=(1.0, 2.0, 4.0), user_gap=0.5, first_start=0.25, latency=0.1
    )
    assert bound_terms(inputs)["runner"] == pytest.approx(0.25 + 7.0 + 2 * 0.5 + 0.1)


def test_runner_term_counts_whole_rounds_of_equal_tasks() -> None:
    # 100 tasks on 16 slots: some slot runs 7 of them, with 6 gaps between
    inputs = BoundInputs(targets=100, user_slots=16, task_seconds=0.6, user_gap=0.01)
    assert bound_terms(inputs)["runner"] == pytest.approx(7 * 0.6 + 6 * 0.01)


def test_runner_term_schedules_the_tasks_in_submission_order() -> None:
    # two slots: the 5 s task, submitted last, starts when the first slot is free again
    inputs = BoundInputs(targets=3, user_slots=2, task_times=(1.0, 2.0, 5.0), user_gap=0.5)
    assert bound_terms(inputs)["runner"] == pytest.approx(1.0 + 0.5 + 5.0)


def test_deletes_cannot_precede_the_finishes_they_follow() -> None:
    # 100 targets, 16 slots, tasks of 1 s: 101 writes, 60 per 6 s. The 41st write holds 40
    # deletes, so it comes after the 40th finish (3 rounds: 3 s), and the last 6 s later.
    inputs = BoundInputs(
        targets=100, user_slots=16, task_seconds=1.0, write_requests=60, write_window=6.0
    )
    assert bound_terms(inputs)["writes"] == pytest.approx(3.0 + 6.0)


def test_first_tick_is_on_the_idle_grid_after_the_client_start() -> None:
    # ticks every 5 s through 12.0 (so at 2, 7, 12): the client started at 3.5
    assert first_tick(client_start=3.5, first_start=12.0, idle_poll=5.0) == pytest.approx(3.5)
    assert first_tick(client_start=3.5, first_start=4.0, idle_poll=5.0) == pytest.approx(0.5)
    assert first_tick(client_start=3.5, first_start=None, idle_poll=5.0) == 0.0
    assert first_tick(client_start=3.5, first_start=9.0, idle_poll=0.0) == 0.0


def test_atlasbatch_is_not_told_the_task_time() -> None:
    scenario = server_bound("equal", 10, {}, 10.0)
    job = ClientJob(
        base_url="http://127.0.0.1:1/forcedphot", token="x" * 40, targets=[], mjd_min=60000.0,
        time_scale=scenario.time_scale, deadline=time.monotonic(),
        write_rate=str(scenario.config.write_rate), read_rate=str(scenario.config.read_rate),
        max_queued=500, task_seconds=scenario.config.task_seconds,
    )  # fmt: skip
    settings = atlas_settings(job)
    assert settings.expected_task_seconds is None
    assert settings.task_prior == pytest.approx(60.0 * scenario.time_scale)  # one write window


def test_tiny_plan_writes_rows_for_every_client(tmp_path: Path) -> None:
    rows = run_plan(TINY, scale=False)  # seed rows in the side lane, as the plans run
    out = tmp_path / "rows.json"
    write_json(rows, out)
    data = json.loads(out.read_text(encoding="utf-8"))
    assert len(data) == sum(len(s.clients) for s in TINY.scenarios)
    assert {row["client"] for row in data} == {"atlasbatch", "seed", "naive", "cli", "cli-told"}
    for row in data:
        assert tuple(row) == ROW_KEYS
        assert row["targets"] > 0
        assert set(row["throttled"]) == {"write", "read"}
        assert row["first_result_s"] is not None, row  # the request log saw a download
    for row in data:
        if row["client"] in ("atlasbatch", "cli", "cli-told"):
            assert row["tasks_left"] == 0, row
        if row["client"] == "atlasbatch":
            assert set(row["eta_error"]) == {"25", "50"}, row


def test_the_floor_fetches_and_deletes_every_target_within_the_cap() -> None:
    config = dataclasses.replace(scale(150).config, max_queued=60)
    with Emulator(config) as emu:
        job = {"base_url": emu.base_url, "token": emu.token, "count": 150, "max_queued": 60,
               "mjd_min": 60000.0}  # fmt: skip
        assert anyio.run(run_floor, job) == 150
        stats = emu.stats()
    assert stats["tasks_created"] == stats["tasks_deleted"] == 150
    assert stats["tasks_live"] == 0 and stats["cap_rejections"] == 0
    assert stats["requests"]["POST"] == 3  # waves of 60, 60 and 30: one POST each
    assert stats["downloads"] > 0


def test_cost_rows_are_also_given_as_multiples_of_the_floor() -> None:
    rows = [
        CostRow("floor", 1000, 10.0, 1.5, 40.0, ok=True),
        CostRow("library", 1000, 10.0, 3.0, 120.0, ok=True),
    ]
    assert "| library | 1000 | 10.0 | 3.0 | 3.00 | 2.00 | 120 | 100 |" in cost_table(rows)
    assert check_cost(rows) == ["library 1000: CPU 3.00 s per 1k > 2.0"]
    slow = [CostRow("floor", 1000, 10.0, 2.5, 40.0, ok=True), rows[1]]
    assert check_cost(slow)[0].startswith("floor 1000: the bare requests cost 2.50 s per 1k")
