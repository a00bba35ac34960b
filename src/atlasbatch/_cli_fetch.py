"""``atlasbatch fetch``: a target file in, light curves and outcomes out, resumable."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import anyio

from atlasbatch._client import AtlasClient
from atlasbatch._config import PRODUCTION_URL, Rate, Settings
from atlasbatch._credentials import resolve_token
from atlasbatch._finish import OutputOptions, write_outputs
from atlasbatch._ledger import Ledger
from atlasbatch._models import State
from atlasbatch._pipeline import Pipeline, Progress
from atlasbatch._rundir import open_run, record_targets
from atlasbatch._targets import TargetList, read_targets

__all__ = ["add_fetch_arguments", "exit_code", "run_fetch", "settings_from_args"]

log = logging.getLogger("atlasbatch")

ProgressView = Callable[[Pipeline], Coroutine[Any, Any, None]]


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fetch`` (shared with ``demo`` where they make sense)."""
    parser.add_argument("targets", help="CSV of targets: name, ra, dec (or mpc_name), mjd_min…")
    parser.add_argument("--out", required=True, help="run directory (created; reused to resume)")
    add_server_arguments(parser)
    parser.add_argument("--mjd-min", type=float, help="default lower MJD (else whole history)")
    parser.add_argument("--mjd-max", type=float, help="default upper MJD (else up to now)")
    parser.add_argument("--reduced", action="store_true", help="photometry on reduced images")
    parser.add_argument(
        "--keep-going",
        action="store_true",
        help="skip bad rows (reported as invalid) instead of refusing the file",
    )
    parser.add_argument("--csv", action="store_true", help="also write photometry.csv")
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG light curves")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """Server, token and rate options."""
    parser.add_argument(
        "--base-url",
        default=os.environ.get("ATLAS_BASE_URL", PRODUCTION_URL),
        help="server base URL (default $ATLAS_BASE_URL or the production server)",
    )
    parser.add_argument(
        "--token-file",
        help="file holding the API token (else $ATLAS_TOKEN "
        "or the token saved by `atlasbatch login`)",
    )
    parser.add_argument("--write-rate", default="60/min", help="server write limit (60/min)")
    parser.add_argument("--read-rate", default="600/min", help="server read limit (600/min)")
    parser.add_argument("--max-queued", type=int, default=500, help="server queue cap (500)")
    parser.add_argument(
        "--task-seconds",
        type=float,
        default=60.0,
        help="expected run time of one task before any is measured (60)",
    )


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Settings from the command line (rates in DRF syntax)."""
    return Settings(
        base_url=args.base_url,
        write_rate=Rate.parse(args.write_rate),
        read_rate=Rate.parse(args.read_rate),
        max_queued=args.max_queued,
        expected_task_seconds=args.task_seconds,
        poll_min_interval=min(1.0, args.task_seconds / 4),
    )


def load_targets(args: argparse.Namespace) -> TargetList:
    """The validated target list of ``args``."""
    return read_targets(
        args.targets,
        mjd_min=args.mjd_min,
        mjd_max=args.mjd_max,
        use_reduced=args.reduced,
        keep_going=args.keep_going,
    )


def exit_code(counts: dict[State, int]) -> int:
    """0 when every row ended downloaded or no_data, 1 otherwise."""
    bad = sum(counts.get(s, 0) for s in State if s not in (State.DOWNLOADED, State.NO_DATA))
    return 0 if bad == 0 else 1


async def _watch_signals(scope: anyio.CancelScope, pipeline: Pipeline) -> None:
    """First Ctrl-C/SIGTERM: stop and flush (in-flight writes finish); second: exit now."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if pipeline.submitting:
                pipeline.stop_submitting()
                print(
                    "\nstopping: finishing requests in flight; Ctrl-C again to quit now",
                    file=sys.stderr,
                )
                scope.cancel()
            else:
                os._exit(130)  # the ledger is consistent after every transaction


async def _log_progress(pipeline: Pipeline) -> None:
    """Plain progress lines (for logs and non-terminals)."""
    while True:
        await anyio.sleep(10)
        log.info("progress: %s", describe(pipeline.progress()))


def describe(progress: Progress) -> str:
    """One line: counts by state and what is left on the server."""
    counts = ", ".join(f"{s.value} {n}" for s, n in progress.counts.items() if n)
    return f"{counts}; tasks on server {progress.tasks_on_server}, deleted {progress.tasks_deleted}"


async def _run(
    args: argparse.Namespace,
    targets: TargetList,
    settings: Settings,
    token: str,
    view: ProgressView,
) -> tuple[int, bool]:
    out_dir = Path(args.out)
    async with AtlasClient(token=token, settings=settings) as client:
        with open_run(out_dir, base_url=settings.base_url) as ledger:
            added = record_targets(ledger, targets)
            log.info("%s: %d new rows, %d in the run", out_dir, added, len(ledger.lines()))
            pipeline = Pipeline(client, ledger, out_dir=out_dir)
            interrupted = True
            async with anyio.create_task_group() as tg:
                tg.start_soon(_watch_signals, tg.cancel_scope, pipeline)
                tg.start_soon(view, pipeline)
                await pipeline.run()
                interrupted = False
                tg.cancel_scope.cancel()
            return _finish(args, ledger, out_dir, settings, interrupted=interrupted), interrupted


def _finish(
    args: argparse.Namespace,
    ledger: Ledger,
    out_dir: Path,
    settings: Settings,
    *,
    interrupted: bool,
) -> int:
    options = OutputOptions(csv=args.csv, plots=not args.no_plots and not interrupted)
    write_outputs(ledger, out_dir, server=settings.base_url, options=options)
    return exit_code(ledger.counts())


def run_fetch(args: argparse.Namespace, *, view: ProgressView | None = None) -> int:
    """Run ``fetch``; the exit code."""
    settings = settings_from_args(args)
    targets = load_targets(args)
    token = resolve_token(args.token_file)
    code, interrupted = anyio.run(_run, args, targets, settings, token, view or _log_progress)
    if interrupted:
        print(
            f"interrupted; resume with the same command: atlasbatch fetch {args.targets} "
            f"--out {args.out}",
            file=sys.stderr,
        )
        return 130
    return code
