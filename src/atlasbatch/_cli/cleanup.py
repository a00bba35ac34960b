"""``atlasbatch cancel DIR`` and ``atlasbatch cleanup DIR``: leave the server's queue clean.

Both take the run's lock (so they never race a fetch on the same directory), use the
server and limits the run was started with, and rewrite the outputs afterwards so
outcomes.csv says what happened. ``cleanup --orphans`` lives in :mod:`._cli.orphans`.

``cancel`` on a directory a fetch is working on cannot take the lock: it records a cancel
request in the ledger instead (the fetch's pipeline reads it before every poll, then ends
with its queries cancelled and its tasks deleted), waits a bounded time for the fetch to
end, reports what the fetch did, and then finishes the job itself under the lock.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import anyio
from rich.console import Console

from atlasbatch._cli.common import (
    RunRecipe,
    add_server_arguments,
    open_existing_ledger,
    settings_from_args,
)
from atlasbatch._cli.drive import finish_outputs
from atlasbatch._cli.orphans import add_orphan_arguments, run_orphans
from atlasbatch._cli.progress import print_summary
from atlasbatch._cli.resume import recipe_for_run, resume_hint
from atlasbatch._config import Settings
from atlasbatch._exceptions import InputError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.credentials import resolve_token
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._runs.cleanup import CleanupReport, cancel_run, cleanup_run
from atlasbatch._runs.refresh import META_KEY, MergingSaver, settle_unchanged
from atlasbatch._runs.rundir import open_run, run_busy

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

While a fetch is working on DIR (in another terminal), cancel asks it to stop: the fetch
cancels its queries and deletes its tasks at its next look at the server, and cancel waits
for it to end (at most --wait seconds) and says what it did.
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
    parser.add_argument(
        "--wait", type=float, default=600.0, metavar="S",
        help="when a fetch is working on DIR: how long to wait for it to end (default 600)",
    )  # fmt: skip
    add_server_arguments(parser, from_run=True)


def add_cleanup_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``cleanup`` (including ``--orphans``)."""
    parser.add_argument("dir", metavar="DIR", nargs="?", help="run directory")
    add_orphan_arguments(parser)
    parser.add_argument("--no-plots", action="store_true", help="skip the PNG light curves")
    add_server_arguments(parser, from_run=True)


def _settings(args: argparse.Namespace) -> Settings:
    path = Path(args.dir)
    open_existing_ledger(path).close()  # a clear error for a folder that holds no run
    return settings_from_args(args, recipe_for_run(args, path))


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
    if run_busy(out_dir) and not _stop_running_fetch(out_dir, console, wait=args.wait):
        return 1

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


def _tally(ledger: Ledger) -> tuple[int, int, int]:
    """(rows cancelled, tasks deleted, rows downloaded) so far."""
    counts = ledger.counts()
    return counts[State.CANCELLED], ledger.work_mark()[1], counts[State.DOWNLOADED]


def _stop_running_fetch(out_dir: Path, console: Console, *, wait: float) -> bool:
    """Ask the process working on ``out_dir`` to cancel, through the ledger, and wait (at
    most ``wait`` seconds) for it to end; True once it has, after saying what it did."""
    ledger = open_existing_ledger(out_dir)
    try:
        before = _tally(ledger)
        ledger.request_cancel()
    finally:
        ledger.close()
    console.print(
        f"A fetch is working on {out_dir}: asked it to cancel (it does at its next look at "
        f"the server); waiting for it to end (at most {wait:g} s) …",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    deadline = time.monotonic() + wait
    while run_busy(out_dir):
        if time.monotonic() >= deadline:
            console.print(
                f"The fetch has not ended yet; it will cancel at its next look at the server. "
                f"`atlasbatch status {out_dir}` shows where it stands; run `atlasbatch cancel "
                f"{out_dir}` again once it has ended to check that nothing is left.",
                markup=False, soft_wrap=True,
            )  # fmt: skip
            return False
        time.sleep(0.2)
    ledger = open_existing_ledger(out_dir)
    try:
        after = _tally(ledger)
    finally:
        ledger.close()
    cancelled, deleted, downloaded = (a - b for a, b in zip(after, before, strict=True))
    console.print(
        f"The fetch ended: it cancelled {cancelled} target(s), deleted {deleted} task(s) "
        f"and stored {downloaded} result(s) meanwhile. Checking what is left …",
        markup=False, soft_wrap=True,
    )  # fmt: skip
    return True


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
                recipe, server = RunRecipe.load(ledger), ledger.meta("base_url")
        if unsent:
            console.print(
                f"{unsent} queries are still open (never sent, or removed before they "
                f"finished): resume with `{resume_hint(recipe, out_dir, base_url=server)}`, "
                f"or `atlasbatch cancel {out_dir}`",
                markup=False,
                soft_wrap=True,
            )
        return report

    report = anyio.run(cleanup)
    _report(console, report, verb="Cleaned up")
    return 1 if report.failed else 0
