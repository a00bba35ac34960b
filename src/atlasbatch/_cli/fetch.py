"""``atlasbatch fetch``: a target file in, light curves and outcomes out, resumable.

Run again with the same arguments to resume (an existing run directory's server and limits
are the defaults). ``--dry-run`` only counts; ``--since-last`` starts a refresh generation
that asks each target only for what can exist now (:mod:`._runs.refresh_plan`).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from rich.console import Console

from atlasbatch._cli.common import (
    RunRecipe,
    add_server_arguments,
    explain,
    recipe_of,
    settings_from_args,
)
from atlasbatch._cli.drive import drive, finish_outputs, make_view
from atlasbatch._cli.dryrun import plan_run, render_plan
from atlasbatch._cli.progress import print_summary
from atlasbatch._cli.resume import recipe_for_run, resume_words
from atlasbatch._cli.science import add_science_arguments, control_setting, nightly_options
from atlasbatch._config import Settings
from atlasbatch._engine.identity import check_account
from atlasbatch._exceptions import AtlasBatchError, InputError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.credentials import resolve_token
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.nightly_files import remember_nightly
from atlasbatch._runs.controls import record_control_setting, with_controls
from atlasbatch._runs.refresh import (
    MergingSaver,
    RefreshPlan,
    apply_refresh,
    asked_targets,
    describe_plan,
    preview_refresh,
    settle_unchanged,
    start_generation,
    stored_plan,
)
from atlasbatch._runs.refresh_plan import Ask
from atlasbatch._runs.registry import register_run
from atlasbatch._runs.rundir import open_run, record_targets, refuse_lost_run

if TYPE_CHECKING:  # the target parser imports pandas: only `fetch` itself needs it
    from atlasbatch._targets.read import TargetList

__all__ = ["add_fetch_arguments", "run_fetch"]

log = logging.getLogger("atlasbatch")

FETCH_HELP = """\
Fetch forced photometry for every row of TARGETS into the run directory DIR.

TARGETS is a CSV (or TSV) with a name column and either ra/dec (decimal degrees, or
sexagesimal with RA in hours) or mpc_name; optional mjd_min, mjd_max, use_reduced columns;
any other column is passed through to the outputs. Every row is checked before anything is
sent. The run is durable: run the same command again to resume after Ctrl-C, a crash or a
reboot. DIR receives lightcurves/<name>.txt, outcomes.csv, photometry.parquet and plots.

exit status: 0 every row downloaded or no_data; 1 some failed, were cancelled or invalid,
tasks were left on the server, or the run stopped part-way (a full disk: fix it and run the
same command); 2 bad usage or input, or a stop before anything was done; 130 interrupted
(resume with the same command).
"""

FETCH_EPILOG = """\
examples:
  atlasbatch fetch targets.csv --dry-run          how many requests, how long; sends nothing
  atlasbatch fetch targets.csv --out run1         fetch (and resume: run it again)
  atlasbatch fetch targets.csv --out run1 --since-last
                                                  later: only epochs after the stored ones
  atlasbatch status run1                          where a run stands

The token comes from --token-file, else $ATLAS_TOKEN, else `atlasbatch login`.
"""


def add_fetch_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``fetch``."""
    parser.add_argument("targets", metavar="TARGETS", help="CSV/TSV file of targets")
    parser.add_argument(
        "--out", metavar="DIR", help="run directory (created; reused to resume); needed "
        "unless --dry-run",
    )  # fmt: skip
    window = parser.add_argument_group("what to ask for")
    window.add_argument(
        "--mjd-min",
        type=float,
        metavar="MJD",
        help="lower MJD for rows without one (default: the whole history)",
    )
    window.add_argument(
        "--mjd-max",
        type=float,
        metavar="MJD",
        help="upper MJD for rows without one (default: up to now)",
    )
    window.add_argument(
        "--reduced",
        action="store_true",
        help="photometry on reduced images instead of difference images",
    )
    window.add_argument(
        "--keep-going",
        action="store_true",
        help="skip bad rows (reported as invalid) instead of refusing the file",
    )
    window.add_argument(
        "--images", action="store_true",
        help="also fetch image stamps (images/<name>.zip, and the preview .jpg) for every "
        "row; an images column with 1 chooses rows instead. Each takes ~15 min of server "
        "time, at most 5 at once: see --dry-run",
    )  # fmt: skip
    window.add_argument(
        "--since-last", action="store_true",
        help="refresh DIR: ask each target only for what can exist now (after its last "
        "stored epoch; nothing for windows that closed before the last run) and merge it "
        "into its file (the previous ledger moves to DIR/history/)",
    )  # fmt: skip
    add_science_arguments(parser)
    add_server_arguments(parser, from_run=True)  # an existing DIR's server and limits
    out = parser.add_argument_group("output and display")
    out.add_argument(
        "--dry-run",
        action="store_true",
        help="validate TARGETS, print the requests and time needed; send nothing",
    )
    out.add_argument("--csv", action="store_true", help="also write photometry.csv")
    out.add_argument("--no-plots", action="store_true", help="skip the PNG light curves")
    out.add_argument(
        "--progress", choices=("auto", "live", "plain"), default="auto",
        help="live panel, plain log lines, or auto: live when stderr is a terminal",
    )  # fmt: skip


def load_targets(args: argparse.Namespace) -> TargetList:
    """The validated target list of ``args`` with its control positions (raises before
    anything is sent)."""
    from atlasbatch._targets.images import with_images  # noqa: PLC0415 - as read_targets
    from atlasbatch._targets.read import read_targets  # noqa: PLC0415 - see the import block

    targets = read_targets(
        args.targets,
        mjd_min=args.mjd_min,
        mjd_max=args.mjd_max,
        use_reduced=args.reduced,
        keep_going=args.keep_going,
    )
    return with_images(with_controls(targets, control_setting(args)), every=args.images)


_FLAGS = ("reduced", "keep_going", "csv", "no_plots", "images")  # on/off options to repeat


def _dry_run(args: argparse.Namespace, targets: TargetList, settings: Settings) -> int:
    refresh, refreshed = None, 0
    if args.since_last and args.out:
        preview = preview_refresh(Path(args.out), targets)
        if isinstance(preview, RefreshPlan):
            refresh = describe_plan(preview, targets)
            refreshed = preview.counts()[Ask.AFTER_EPOCH]
            targets = asked_targets(targets, preview)  # what is asked: closed rows are not
        else:
            print(f"atlasbatch: note: a real run would stop: {preview}", file=sys.stderr)
    plan_text = render_plan(
        plan_run(targets, settings), source=args.targets, settings=settings, refreshed=refreshed
    )
    print(plan_text)
    if refresh is not None:
        print(refresh)
    try:  # a dry run needs no token, but says now what would stop the real run
        resolve_token(args.token_file, server=settings.base_url)
    except InputError as exc:
        print(f"atlasbatch: note: a real run would stop: {exc}", file=sys.stderr)
    return 0


def run_fetch(args: argparse.Namespace) -> int:
    """Run ``fetch``; the exit code."""
    out_dir = Path(args.out) if args.out else None
    stored = recipe_for_run(args, out_dir)  # an existing run's server and limits by default
    settings = settings_from_args(args, stored)
    targets = load_targets(args)
    nightly_options(args)  # bad thresholds stop the command now, not after a run of days
    if args.dry_run:
        return _dry_run(args, targets, settings)
    if out_dir is None:
        raise InputError("fetch needs --out DIR, the run directory (or use --dry-run)")
    token = resolve_token(args.token_file, server=settings.base_url)
    live = {"auto": None, "live": True, "plain": False}[args.progress]
    resume = resume_words(args, base_url=settings.base_url, flags=_FLAGS)
    if args.controls:  # the controls are rows of the run: a resume must ask for the same
        resume += control_setting(args).describe().split()
    recipe = recipe_of(settings, targets=os.path.abspath(args.targets), resume=resume)
    held = [targets]  # handed over: once in the ledger, no Target is kept per row
    del targets
    code, interrupted = anyio.run(_fetch, args, held, recipe, token, live)
    if interrupted:
        print(f"interrupted; resume with the same command: {shlex.join(resume)}",
              file=sys.stderr)  # fmt: skip
        return 130
    return code


async def _fetch(
    args: argparse.Namespace,
    held: list[TargetList],
    recipe: RunRecipe,
    token: str,
    live: bool | None,
) -> tuple[int, bool]:
    out_dir = Path(args.out)
    settings = settings_from_args(args, recipe)
    async with AtlasClient(token=token, settings=settings) as client:
        await refuse_lost_run(client, out_dir)  # a deleted ledger must not resubmit everything
        with open_run(out_dir, base_url=settings.base_url) as opened:
            targets = held.pop()
            ledger = start_generation(
                out_dir, opened, targets, base_url=settings.base_url, since_last=args.since_last
            )
            try:
                record_control_setting(ledger, control_setting(args))
                added = record_targets(ledger, targets)
                del targets  # memory flat in the number of rows: the ledger has them
                closed = apply_refresh(ledger)
                recipe.store(ledger)
                register_run(ledger.run_id, folder=out_dir, server=settings.base_url)
                note = f", {closed} not asked again (window closed)" if closed else ""
                log.info("%s: run %s, %d new rows, %d in all%s", out_dir, ledger.run_id, added,
                         len(ledger.lines()), note)  # fmt: skip
                await check_account(client, ledger)  # before anything is sent or deleted
                refresh = stored_plan(ledger) is not None
                view = make_view(settings=settings, title=f"atlasbatch → {out_dir}", live=live)
                names = FileNames.of_ledger(ledger) if refresh else None
                saver = MergingSaver(out_dir, names=names) if names is not None else None
                mark = ledger.work_mark()
                try:
                    interrupted = await drive(client, ledger, out_dir, view=view, saver=saver)
                except AtlasBatchError as exc:  # a full disk, a rejected certificate, …
                    return _stopped(exc, ledger, out_dir, mark=mark), False
                if ledger.cancel_requested():
                    print("cancelled by `atlasbatch cancel` from another process",
                          file=sys.stderr)  # fmt: skip
                settle_unchanged(ledger, out_dir)
                remember_nightly(ledger, nightly_options(args))
                code = finish_outputs(ledger, out_dir, server=settings.base_url, csv=args.csv,
                                      plots=not args.no_plots and not interrupted)  # fmt: skip
                print_summary(Console(), ledger, out_dir, interrupted=interrupted)
            finally:
                if ledger is not opened:
                    ledger.close()
    return code, interrupted


def _stopped(exc: AtlasBatchError, ledger: Ledger, out_dir: Path, *, mark: object) -> int:
    """A run that cannot go on: one line on stderr; exit 1 if it did anything, else 2."""
    try:
        partial = ledger.work_mark() != mark
    except AtlasBatchError:  # the ledger itself failed: assume the worst
        partial = True
    message, code = explain(exc, folder=out_dir, partial=partial)
    print(f"atlasbatch: {message}", file=sys.stderr)
    return code
