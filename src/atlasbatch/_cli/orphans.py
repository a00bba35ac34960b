"""``atlasbatch cleanup --orphans``: atlasbatch tasks on the server that no local run knows.

A task is an orphan when its tag names a run id that is not registered on this machine with
its folder still in place (see :mod:`._runs.registry`). Orphans are listed; ``--delete`` deletes
them; ``--out DIR`` adopts each orphan run as an ordinary run directory ``DIR/<run-id>``
(its targets rebuilt from the tasks, ``targets.csv`` written so that the usual
``atlasbatch fetch DIR/<run-id>/targets.csv --out DIR/<run-id>`` resumes it), then runs the
pipeline on it: finished results are downloaded, the rest waited for, every task deleted.
"""

from __future__ import annotations

import argparse
import csv
import io
from collections import Counter
from pathlib import Path
from typing import Any

import anyio
from rich.console import Console
from rich.table import Table

from atlasbatch._cli.common import (
    recipe_of,
    settings_from_args,
)
from atlasbatch._cli.drive import drive, finish_outputs, make_view
from atlasbatch._cli.progress import print_summary
from atlasbatch._config import Settings
from atlasbatch._exceptions import AtlasBatchError, InputError, RunMismatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.credentials import resolve_token
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target
from atlasbatch._outputs.csv_cells import csv_cell
from atlasbatch._outputs.results import write_atomic
from atlasbatch._runs.cleanup import Orphan, find_orphans, run_id_of
from atlasbatch._runs.registry import live_run_ids, register_run
from atlasbatch._runs.rundir import open_run

__all__ = ["add_orphan_arguments", "run_orphans", "seed_adopted_run"]

Json = dict[str, Any]
_TARGET_COLUMNS = ("name", "ra", "dec", "mpc_name", "mjd_min", "mjd_max", "use_reduced",
                   "task_id", "tag")  # fmt: skip


def add_orphan_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--orphans`` options of ``cleanup``."""
    group = parser.add_argument_group("orphans (tasks of runs this machine does not know)")
    group.add_argument(
        "--orphans",
        action="store_true",
        help="list atlasbatch-tagged tasks that no local run knows",
    )
    group.add_argument(
        "--delete",
        action="store_true",
        help="with --orphans: delete them (queued and running ones included)",
    )
    group.add_argument(
        "--out",
        dest="adopt_into",
        metavar="DIR",
        help="with --orphans: adopt each orphan run into DIR/<run-id>",
    )
    group.add_argument("--run-id", metavar="ID", help="with --orphans: act on this run only")
    group.add_argument("--progress", choices=("auto", "live", "plain"), default="auto",
                       help="display while adopting (auto: live on a terminal)")  # fmt: skip


def _listing(found: dict[str, list[Orphan]]) -> Table:
    table = Table(title="Orphan tasks", title_justify="left", show_edge=False)
    table.add_column("run id")
    table.add_column("tasks", justify="right")
    states = (State.QUEUED, State.RUNNING, State.FINISHED, State.NO_DATA, State.FAILED)
    for state in states:
        table.add_column(state.value, justify="right")
    for run_id, orphans in sorted(found.items()):
        counts = Counter(o.state for o in orphans)
        table.add_row(run_id, str(len(orphans)), *(str(counts.get(s, 0)) for s in states))
    return table


def _float(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _target(line: int, task: Json) -> Target:
    mpc = task.get("mpc_name")
    return Target(
        line=line,
        name=f"task{int(task['id'])}",
        ra=None if mpc else _float(task.get("ra")),
        dec=None if mpc else _float(task.get("dec")),
        mpc_name=str(mpc) if mpc else None,
        mjd_min=_float(task.get("mjd_min")),
        mjd_max=_float(task.get("mjd_max")),
        use_reduced=bool(task.get("use_reduced")),
        extra={"task_id": str(task["id"]), "tag": str(task.get("comment") or "")},
    )


def _targets_csv(targets: list[Target]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(_TARGET_COLUMNS)
    for t in targets:
        reduced = "true" if t.use_reduced else "false"
        cells = (t.name, t.ra, t.dec, t.mpc_name, t.mjd_min, t.mjd_max, reduced,
                 t.extra["task_id"], t.extra["tag"])  # fmt: skip
        writer.writerow([csv_cell(c) for c in cells])
    return buffer.getvalue().encode("utf-8")


def seed_adopted_run(ledger: Ledger, run_id: str, tasks: list[Json], folder: Path) -> None:
    """Make a fresh ledger the owner of an orphan run's tasks (recorded as queued)."""
    ordered = sorted(tasks, key=lambda task: int(task["id"]))
    targets = [_target(line, task) for line, task in enumerate(ordered, start=2)]
    write_atomic(folder / "targets.csv", _targets_csv(targets))
    ledger.set_meta("run_id", run_id)  # the tasks' tags name it: cancel/cleanup find them
    ledger.add_targets(targets, {})
    batch, _tag = ledger.start_batch([t.line for t in targets])
    ledger.batch_submitted(
        batch, [(t.line, int(task["id"])) for t, task in zip(targets, ordered, strict=True)]
    )


async def _adopt(
    client: AtlasClient, run_id: str, tasks: list[Json], folder: Path, args: argparse.Namespace
) -> int:
    settings = client.settings
    with open_run(folder, base_url=settings.base_url) as ledger:
        if not ledger.lines():
            seed_adopted_run(ledger, run_id, tasks, folder)
        elif ledger.run_id != run_id:
            raise RunMismatchError(f"{folder} already holds run {ledger.run_id}; use another --out")
        recipe_of(settings, targets=str((folder / "targets.csv").resolve())).store(ledger)
        register_run(run_id, folder=folder, server=settings.base_url)
        live = {"auto": None, "live": True, "plain": False}[args.progress]
        view = make_view(settings=settings, title=f"adopting {run_id} → {folder}", live=live)
        interrupted = await drive(client, ledger, folder, view=view)
        code = finish_outputs(ledger, folder, server=settings.base_url, plots=not args.no_plots)
        print_summary(Console(), ledger, folder)
    return 130 if interrupted else code


async def _delete(client: AtlasClient, found: dict[str, list[Orphan]]) -> tuple[int, int]:
    deleted = failed = 0
    for orphans in found.values():
        for orphan in orphans:
            try:
                await client.delete(orphan.task_id)
            except AtlasBatchError:
                failed += 1
            else:
                deleted += 1
    return deleted, failed


async def _orphans(args: argparse.Namespace, settings: Settings, token: str) -> int:
    console = Console()
    async with AtlasClient(token=token, settings=settings) as client:
        found = await find_orphans(client, live_run_ids())
        if args.run_id:
            found = {k: v for k, v in found.items() if k == args.run_id}
        if not found:
            console.print("No orphan tasks: every atlasbatch task on the server belongs to a "
                          "run this machine knows.")  # fmt: skip
            return 0
        console.print(_listing(found))
        if args.delete:
            deleted, failed = await _delete(client, found)
            console.print(f"Deleted {deleted} orphan task(s)"
                          + (f"; {failed} failed, try again later" if failed else ""))  # fmt: skip
            return 1 if failed else 0
        if args.adopt_into:
            by_run: dict[str, list[Json]] = {run_id: [] for run_id in found}
            async for task in client.iter_tasks():
                run_id = run_id_of(task.get("comment"))
                if run_id in by_run:
                    by_run[run_id].append(task)
            codes = [await _adopt(client, run_id, tasks, Path(args.adopt_into) / run_id, args)
                     for run_id, tasks in sorted(by_run.items()) if tasks]  # fmt: skip
            return max(codes, default=0)
    console.print(
        "Tasks of runs started from Python (atlasbatch.Session) are not in the registry: make "
        "sure none of these is still in use. Then adopt them (download what finished, wait for "
        "the rest): atlasbatch cleanup --orphans --out DIR; or delete them: atlasbatch cleanup "
        "--orphans --delete (add --run-id ID to pick one run).",
        markup=False,
    )
    return 0


def run_orphans(args: argparse.Namespace) -> int:
    """Run ``cleanup --orphans``; the exit code."""
    if args.delete and args.adopt_into:
        raise InputError("choose --delete or --out DIR, not both")
    settings = settings_from_args(args)
    token = resolve_token(args.token_file, server=settings.base_url)
    return int(anyio.run(_orphans, args, settings, token))
