"""Running a pipeline from the command line: the progress view, signals, the outputs.

The first Ctrl-C (or SIGTERM) stops new submissions and lets the run settle; the second
quits at once, which is safe because every state change is already in the ledger. While
the run goes on, ``photometry.parquet/`` grows beside it; at the end the outputs are
written and the exit code says whether every row got its answer.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from functools import partial
from pathlib import Path

import anyio

from atlasbatch._cli.common import exit_code
from atlasbatch._cli.progress import LiveView, LogView, ProgressView
from atlasbatch._config import Settings
from atlasbatch._engine.fetcher import save_result_file
from atlasbatch._engine.pipeline import Pipeline, ResultSaver
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._runs.finish import OutputOptions, keep_table_current, write_outputs
from atlasbatch._storage import guard_saver
from atlasbatch._unwrap import unwrapped

__all__ = ["drive", "finish_outputs", "make_view"]


def make_view(
    *, settings: Settings, title: str, live: bool | None = None, every: float = 10.0
) -> ProgressView:
    """A live panel on a terminal, else plain log lines every ``every`` seconds."""
    if live is None:
        live = sys.stderr.isatty()
    if live:
        from rich.console import Console  # noqa: PLC0415 - only terminals need it

        return LiveView(Console(stderr=True), settings, title=title)
    return LogView(every=every)


async def _watch_signals(scope: anyio.CancelScope, pipeline: Pipeline) -> None:
    """First Ctrl-C/SIGTERM: stop and flush (the ledger is consistent); second: exit now."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if pipeline.submitting:
                pipeline.stop_submitting()
                print(
                    "\nstopping: no new submissions; Ctrl-C again to quit at once",
                    file=sys.stderr,
                )
                scope.cancel()
            else:
                os._exit(130)  # every state change is already committed to the ledger


async def drive(
    client: AtlasClient,
    ledger: Ledger,
    out_dir: Path,
    *,
    view: ProgressView,
    saver: ResultSaver | None = None,
) -> bool:
    """Run the pipeline with a progress view and signal handling; True when interrupted.

    A result that cannot be stored (disk full, read-only) stops the run as a StorageError
    that names ``out_dir``; the pipeline deletes no task whose result is not stored.
    """
    chosen = saver or partial(save_result_file, out_dir, names=FileNames.of_ledger(ledger))
    guarded = guard_saver(chosen, folder=out_dir)
    pipeline = Pipeline(client, ledger, out_dir=out_dir, save_result=guarded)
    interrupted = True
    with unwrapped():  # what stopped the run (a full disk…), not a task-group traceback
        async with anyio.create_task_group() as tg:
            if threading.current_thread() is threading.main_thread():
                tg.start_soon(_watch_signals, tg.cancel_scope, pipeline)
            tg.start_soon(view, pipeline)
            if ledger.path is not None:  # photometry.parquet/ grows as results are stored
                server = client.settings.base_url
                tg.start_soon(partial(keep_table_current, ledger.path, server=server))
            await pipeline.run()
            interrupted = False
            tg.cancel_scope.cancel()
    return interrupted


def finish_outputs(
    ledger: Ledger,
    out_dir: Path,
    *,
    server: str,
    csv: bool = False,
    plots: bool = True,
) -> int:
    """Write outcomes, the photometry table and plots; the exit code of the run (1 also
    when tasks are left on the server: their DELETE kept failing)."""
    write_outputs(ledger, out_dir, server=server, options=OutputOptions(csv=csv, plots=plots))
    return exit_code(ledger.counts(), tasks_left=ledger.undeleted_count())
