"""The CLI's pure parts: progress rendering, the dry-run plan, the run registry."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from atlasbatch._cli.dryrun import plan_run, render_plan
from atlasbatch._cli.progress import describe, render_progress
from atlasbatch._config import Rate, Settings
from atlasbatch._durations import format_duration
from atlasbatch._engine.pipeline import Progress
from atlasbatch._models import State
from atlasbatch._runs.registry import known_runs, live_run_ids, register_run, registry_path
from atlasbatch._runs.rundir import open_run
from atlasbatch._targets.read import read_targets

from .helpers import grid_targets


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))


def snapshot(**counts: int) -> Progress:
    return Progress(
        counts={State(k): v for k, v in counts.items()},
        tasks_deleted=7, tasks_on_server=12, writes_in_window=41, reads_in_window=9,
        throttled=1, task_seconds=61.0, eta_seconds=3 * 3600 + 5 * 60,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(None, "unknown"), (0.25, "0.2 s"), (42, "42 s"), (600, "10 min"),
     (3 * 3600 + 5 * 60, "3 h 05 min"), (3 * 86400 + 4 * 3600, "3 d 04 h")],
)  # fmt: skip
def test_format_duration(seconds: float | None, text: str) -> None:
    assert format_duration(seconds) == text


def test_live_panel_shows_counts_budgets_and_eta() -> None:
    progress = snapshot(pending=3, queued=5, running=1, finished=1, downloaded=7, no_data=2)
    console = Console(file=io.StringIO(), width=100, force_terminal=False)
    console.print(render_progress(progress, settings=Settings(), elapsed=75, title="run1"))
    text = console.file.getvalue()  # type: ignore[attr-defined]
    assert "run1" in text and "9/19 targets" in text and "ETA 3 h 05 min" in text
    for part in ("pending 3", "queued 5", "running 1", "downloading 1", "downloaded 7",
                 "no data 2", "failed 0", "tasks on server 12", "deleted 7",
                 "writes 41/60 per 60 s", "reads 9/600 per 60 s", "throttled 1"):  # fmt: skip
        assert part in text
    assert "cancelled" not in text  # columns that are zero and rare stay hidden


def test_plain_progress_line() -> None:
    line = describe(snapshot(queued=2, downloaded=1, failed=1))
    assert line.startswith("pending 0, queued 2, running 0, downloaded 1, no data 0, failed 1")
    assert "tasks deleted 7, on server 12" in line and "ETA 3 h 05 min" in line


def test_plan_counts_batches_per_window_and_time_at_the_limits() -> None:
    rows = grid_targets(350)
    for row in rows[:120]:
        row["mjd_min"] = 60000
    targets = read_targets(rows)
    settings = Settings(expected_task_seconds=60.0)
    plan = plan_run(targets, settings)
    # 120 targets in one window make 2 batches, 230 in the other 3
    assert (plan.posts, plan.deletes, plan.windows, plan.queries) == (5, 350, 2, 350)
    assert plan.writes == 355
    assert plan.total_seconds == 350 * 60.0  # one task at a time dominates
    assert plan.budget_seconds == 5 * 60.0  # 355 writes at 60 a minute
    fast = plan_run(targets, Settings(expected_task_seconds=0.1, write_rate=Rate(60, 60)))
    assert fast.total_seconds == fast.write_seconds == 300.0  # then the write budget rules
    text = render_plan(plan, source="t.csv", settings=settings)
    assert "POST   /queue/              5" in text
    assert "Estimated time: 5 h 50 min" in text


def test_registry_knows_runs_whose_folder_still_holds_them(tmp_path: Path) -> None:
    with open_run(tmp_path / "a", base_url="https://example.org/forcedphot") as ledger:
        run_a = ledger.run_id
    register_run(run_a, folder=tmp_path / "a", server="https://example.org/forcedphot")
    register_run(run_a, folder=tmp_path / "a", server="https://example.org/forcedphot")
    register_run("gone0001", folder=tmp_path / "b", server="https://example.org/forcedphot")
    assert set(known_runs()) == {run_a, "gone0001"}
    assert live_run_ids() == {run_a}
    shutil.rmtree(tmp_path / "a")
    assert live_run_ids() == set()
    assert json.loads(registry_path().read_text())["runs"][run_a]["folder"].endswith("/a")


def test_a_damaged_registry_does_not_stop_a_run(tmp_path: Path) -> None:
    registry_path().parent.mkdir(parents=True)
    registry_path().write_text("{not json")
    assert known_runs() == {}
    register_run("abcd1234", folder=tmp_path, server="https://example.org/forcedphot")
    assert set(known_runs()) == {"abcd1234"}
