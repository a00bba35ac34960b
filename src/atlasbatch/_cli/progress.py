"""What the terminal shows during and after a run: a live panel, plain log lines, a summary.

The pipeline only offers :class:`~atlasbatch._engine.pipeline.Progress` snapshots; everything here
reads them and renders. On a terminal a rich ``Live`` panel is redrawn a few times a second;
when stderr is a file or a pipe (CI, ``nohup``, a notebook's subprocess) a plain log line is
written every few seconds instead, because cursor movements would garble a log.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from atlasbatch._cli.file_counts import count_files
from atlasbatch._config import Rate, Settings
from atlasbatch._durations import format_duration
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import FINAL_STATES, State

if TYPE_CHECKING:  # the run engine: `status` prints a summary without importing it
    from atlasbatch._engine.pipeline import Pipeline, Progress

__all__ = [
    "LiveView",
    "LogView",
    "ProgressView",
    "describe",
    "output_paths",
    "print_summary",
    "render_progress",
]

log = logging.getLogger("atlasbatch")

ProgressView = Callable[["Pipeline"], Coroutine[Any, Any, None]]

#: Columns of the live panel: label and the states counted under it.
_COLUMNS: tuple[tuple[str, tuple[State, ...]], ...] = (
    ("pending", (State.PENDING, State.SUBMITTING)),
    ("queued", (State.QUEUED,)),
    ("running", (State.RUNNING,)),
    ("downloading", (State.FINISHED,)),
    ("downloaded", (State.DOWNLOADED,)),
    ("no data", (State.NO_DATA,)),
    ("failed", (State.FAILED,)),
    ("invalid", (State.INVALID,)),
    ("cancelled", (State.CANCELLED,)),
)
_ALWAYS = {"pending", "queued", "running", "downloaded", "no data", "failed"}


def _eta(progress: Progress) -> str:
    """The ETA, or what stands in for one while the pace is still being measured."""
    if progress.eta_seconds is None:
        return "estimating…"
    return format_duration(progress.eta_seconds)


def _age(progress: Progress) -> str:
    """How old the counts are: they are what the last poll saw."""
    if progress.polled_ago is None:
        return "not polled yet"
    return f"polled {format_duration(progress.polled_ago)} ago"


def _outage(progress: Progress) -> str | None:
    """'server unreachable since 14:05, next try in 40 s', or None while it answers."""
    if progress.unreachable_since is None:
        return None
    since = progress.unreachable_since.strftime("%H:%M")
    return f"server unreachable since {since}, next try in {progress.next_try_in:.0f} s"


def _count(progress: Progress, states: tuple[State, ...]) -> int:
    return sum(progress.counts.get(state, 0) for state in states)


def _budget(used: int, rate: Rate) -> str:
    return f"{used}/{rate.requests} per {rate.seconds:g} s"


def _pairs(pairs: list[tuple[str, str]]) -> Text:
    """``label value`` pairs on one line (rich wraps them on narrow terminals)."""
    text = Text()
    for i, (label, value) in enumerate(pairs):
        text.append("   " if i else " ")
        text.append(f"{label} ", style="dim")
        text.append(value, style="bold")
    return text


def render_progress(
    progress: Progress, *, settings: Settings, elapsed: float, title: str = ""
) -> RenderableType:
    """The live panel for one snapshot (pure: easy to test and to reuse)."""
    total = sum(progress.counts.values())
    done = sum(progress.counts.get(state, 0) for state in FINAL_STATES)
    head = Table.grid(padding=(0, 1))
    head.add_row(
        Text(title or "atlasbatch", style="bold"),
        ProgressBar(total=max(total, 1), completed=done, width=30),
        Text(f"{done}/{total} targets   ETA {_eta(progress)}   ({_age(progress)})"),
    )
    counts = [(label, str(_count(progress, states))) for label, states in _COLUMNS
              if label in _ALWAYS or _count(progress, states)]  # fmt: skip
    server = [
        ("tasks on server", str(progress.tasks_on_server)),
        ("deleted", str(progress.tasks_deleted)),
        ("writes", _budget(progress.writes_in_window, settings.write_rate)),
        ("reads", _budget(progress.reads_in_window, settings.read_rate)),
        ("throttled", str(progress.throttled)),
        ("task ≈", "estimating…" if progress.task_seconds is None
         else format_duration(progress.task_seconds)),
        ("elapsed", format_duration(elapsed)),
    ]  # fmt: skip
    if progress.undeletable:
        server.append(("not deleted", str(progress.undeletable)))
    outage = _outage(progress)
    lines: list[RenderableType] = [head, _pairs(counts), _pairs(server)]
    if outage is not None:
        lines.append(Text(outage, style="bold yellow"))
    return Group(*lines)


def describe(progress: Progress) -> str:
    """One plain line: counts by state, tasks, budgets and ETA."""
    counts = ", ".join(
        f"{label} {_count(progress, states)}"
        for label, states in _COLUMNS
        if label in _ALWAYS or _count(progress, states)
    )
    outage = _outage(progress)
    return (
        f"{counts} ({_age(progress)}); tasks deleted {progress.tasks_deleted}, on server "
        f"{progress.tasks_on_server}; writes in window {progress.writes_in_window}, reads "
        f"{progress.reads_in_window}; ETA {_eta(progress)}" + (f"; {outage}" if outage else "")
    )


@dataclass(frozen=True, slots=True)
class LiveView:
    """A rich panel on a terminal, redrawn every ``refresh`` seconds until cancelled."""

    console: Console
    settings: Settings
    title: str = ""
    refresh: float = 0.25

    async def __call__(self, pipeline: Pipeline) -> None:
        started = time.monotonic()

        def panel() -> RenderableType:
            elapsed = time.monotonic() - started
            snapshot = pipeline.progress()
            return render_progress(
                snapshot, settings=self.settings, elapsed=elapsed, title=self.title
            )

        with Live(panel(), console=self.console, auto_refresh=False, transient=False) as live:
            try:
                while True:
                    await anyio.sleep(self.refresh)
                    live.update(panel(), refresh=True)
            finally:
                live.update(panel(), refresh=True)  # the final state stays on screen


@dataclass(frozen=True, slots=True)
class LogView:
    """A plain log line every ``every`` seconds (and a last one when the run ends)."""

    every: float = 10.0

    async def __call__(self, pipeline: Pipeline) -> None:
        try:
            while True:
                await anyio.sleep(self.every)
                log.info("progress: %s", describe(pipeline.progress()))
        finally:
            log.info("progress: %s", describe(pipeline.progress()))


# --- the summary -----------------------------------------------------------------------


def output_paths(out_dir: Path, ledger: Ledger | None = None) -> list[tuple[str, Path]]:
    """(what, path) of every output present in a run directory; with its ``ledger``, the
    files of a folder are counted once while the folder does not change (file_counts.py)."""
    found: list[tuple[str, Path]] = []
    for label, name in (
        ("outcomes, one row per input row", "outcomes.csv"),
        ("all light curves in one table", "photometry.parquet"),
        ("the same as CSV", "photometry.csv"),
        ("one point per target, filter and night", "photometry_nightly.parquet"),
        ("the same as CSV", "photometry_nightly.csv"),
        ("overview plot", "overview.png"),
    ):
        if (out_dir / name).exists():
            found.append((label, out_dir / name))
    curves = out_dir / "lightcurves"
    if curves.is_dir():
        count = count_files(curves, ".txt", ledger)
        found.insert(2, (f"{count} light curve(s) in the server's format", curves))
    plots = out_dir / "plots"
    if plots.is_dir():
        found.append((f"{count_files(plots, '.png', ledger)} light-curve plot(s), PNG", plots))
    images = out_dir / "images"
    if images.is_dir():
        count = count_files(images, ".zip", ledger)
        found.append((f"{count} target(s)' image stamps, zip (and previews)", images))
    return found


def print_summary(
    console: Console,
    ledger: Ledger,
    out_dir: Path,
    *,
    max_failures: int = 20,
    interrupted: bool = False,
) -> None:
    """Counts by outcome, failures with reasons, tasks left on the server, output paths."""
    counts = {state: n for state, n in ledger.counts().items() if n}
    table = Table(title="Outcomes", title_justify="left", show_edge=False)
    table.add_column("state")
    table.add_column("rows", justify="right")
    for state, n in counts.items():
        table.add_row(state.value, str(n))
    table.add_row("total", str(sum(counts.values())), style="bold")
    console.print(table)
    not_fetched = (State.FAILED, State.INVALID, State.CANCELLED)
    # The counts say how many were not fetched; only the rows shown are read (by index):
    # `status` of a run of 100,000 rows starts at once, however many of them failed.
    bad = sum(counts.get(state, 0) for state in not_fetched)
    if bad:
        failures = Table(title="Not fetched", title_justify="left", show_edge=False)
        for column in ("line", "name", "state", "reason"):
            failures.add_column(column, overflow="fold")
        for row in ledger.outcomes_in(not_fetched, limit=max_failures):
            failures.add_row(str(row.target.line), row.target.name, row.state.value,
                             row.error or "")  # fmt: skip
        console.print(failures)
        if bad > max_failures:
            console.print(f"… and {bad - max_failures} more: see outcomes.csv")
    left = ledger.undeleted_count()
    if left and not interrupted:  # after an interrupt, the resume deletes them
        console.print(f"{left} task(s) of this run are still on the server (their DELETE kept "
                      f"failing): `atlasbatch cleanup {out_dir}` removes them",
                      style="bold", markup=False, soft_wrap=True)  # fmt: skip
    found = output_paths(out_dir, ledger)
    if not found:
        return
    # Plain lines, never wrapped inside a path: they are made to be copied.
    console.print("Outputs", style="italic")
    width = max(len(str(path)) for _, path in found)
    for label, path in found:
        console.print(f" {path!s:<{width}}  {label}", soft_wrap=True, markup=False,
                      highlight=False)  # fmt: skip
