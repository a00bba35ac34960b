"""``atlasbatch cancel DIR`` and ``atlasbatch cleanup DIR``: leave the server's queue clean.

Both take the run's lock (so they never race a fetch on the same directory), use the
server and limits the run was started with, and rewrite the outputs afterwards so
outcomes.csv says what happened. ``cleanup --orphans`` lives in :mod:`._cli_orphans`.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anyio
from rich.console import Console

from atlasbatch._cleanup import CleanupReport, cancel_run, cleanup_run
from atlasbatch._cli_common import (
    add_server_arguments,
    finish_outputs,
    read_recipe,
    settings_from_args,
)
from atlasbatch._cli_orphans import add_orphan_arguments, run_orphans
from atlasbatch._client import AtlasClient
from atlasbatch._config import Settings
from atlasbatch._credentials import resolve_token
from atlasbatch._exceptions import InputError
from atlasbatch._filenames import FileNames
from atlasbatch._progress import print_summary
from atlasbatch._refresh import META_KEY, MergingSaver, settle_unchanged
from atlasbatch._rundir import open_run

__all__ = [
    "CANCEL_HELP",
    "CLEANUP_HELP",
    "add_cancel_arguments",
    "add_cleanup_arguments",
    "run_cancel",
    "run_cleanup",
]

CANCEL_HELP = """\
Cancel the run in DIR: delete its queued and running tasks on the server and mark every
target that has no result yet as cancelled. Results already downloaded stay; finished
tasks not yet downloaded are left for `atlasbatch cleanup DIR`. Deletes go through the
same write budget as a fetch.
"""

CLEANUP_HELP = """\
Clean up after the run in DIR: download every finished result not yet saved, then delete
all of the run's remaining tasks from the server (queued and running ones included).

With --orphans instead of DIR: list the tasks on the server that carry an atlasbatch tag
of a run this machine does not know (a deleted folder, a run from elsewhere); --out DIR
adopts them as a run there (downloads what finished, waits for the rest), --delete
deletes them.
"""


def add_cancel_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cancel``."""
    parser.add_argument("dir", metavar="DIR", help="run directory")
    add_server_arguments(parser, from_run=True)


def add_cleanup_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cleanup`` (including ``--orphans``)."""
    parser.add_argument("dir", metavar="DIR", nargs="?", help="run directory")
    add_orphan_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG light curves")
    add_server_arguments(parser, from_run=True)


def _settings(args: argparse.Namespace) -> Settings:
    return settings_from_args(args, read_recipe(Path(args.dir)))


def _report(console: Console, report: CleanupReport, *, verb: str) -> None:
    parts = [f"{report.deleted} task(s) deleted from the server"]
    if report.downloaded:
        parts.insert(0, f"{report.downloaded} finished result(s) downloaded")
    if report.cancelled:
        parts.append(f"{report.cancelled} target(s) cancelled")
    if report.failed:
        parts.append(f"{report.failed} delete(s) failed (run `atlasbatch cleanup` again later)")
    console.print(f"{verb}: " + "; ".join(parts), markup=False, soft_wrap=True)


def run_cancel(args: argparse.Namespace) -> int:
    """Run ``cancel``; the exit code (1 when some deletes failed)."""
    settings = _settings(args)
    token = resolve_token(args.token_file, server=settings.base_url)
    out_dir = Path(args.dir)
    console = Console()
    left: list[int] = []

    async def cancel() -> CleanupReport:
        async with AtlasClient(token=token, settings=settings) as client:
            with open_run(out_dir, base_url=settings.base_url) as ledger:
                report = await cancel_run(client, ledger)
                finish_outputs(ledger, out_dir, server=settings.base_url, plots=False)
                print_summary(console, ledger, out_dir)
                left.append(ledger.undeleted_count())
        return report

    report = anyio.run(cancel)
    _report(console, report, verb="Cancelled")
    if left and left[0]:
        console.print(
            f"{left[0]} finished task(s) left on the server: `atlasbatch cleanup {out_dir}` "
            "downloads and then deletes them",
            markup=False,
            soft_wrap=True,
        )
    return 1 if report.failed else 0


def run_cleanup(args: argparse.Namespace) -> int:
    """Run ``cleanup`` (or ``cleanup --orphans``); the exit code."""
    if args.orphans:
        if args.dir:
            raise InputError("give either DIR or --orphans, not both")
        return run_orphans(args)
    if not args.dir:
        raise InputError("cleanup needs DIR, a run directory (or --orphans)")
    if args.delete or args.adopt_into or args.run_id:
        raise InputError("--delete, --out and --run-id go with --orphans only")
    settings = _settings(args)
    token = resolve_token(args.token_file, server=settings.base_url)
    out_dir = Path(args.dir)
    console = Console()

    async def cleanup() -> CleanupReport:
        async with AtlasClient(token=token, settings=settings) as client:
            with open_run(out_dir, base_url=settings.base_url) as ledger:
                refresh = ledger.meta(META_KEY) is not None
                names = FileNames.of_ledger(ledger) if refresh else None  # keep old epochs
                saver = MergingSaver(out_dir, names=names) if names is not None else None
                report = await cleanup_run(client, ledger, out_dir, save_result=saver)
                settle_unchanged(ledger, out_dir)
                finish_outputs(ledger, out_dir, server=settings.base_url,
                               plots=not args.no_plots)  # fmt: skip
                print_summary(console, ledger, out_dir)
                unsent = ledger.unfinished_queries()
        if unsent:
            console.print(
                f"{unsent} queries are still open (never sent, or removed before they "
                f"finished): resume with `atlasbatch fetch`, or `atlasbatch cancel {out_dir}`",
                markup=False,
                soft_wrap=True,
            )
        return report

    report = anyio.run(cleanup)
    _report(console, report, verb="Cleaned up")
    return 1 if report.failed else 0
