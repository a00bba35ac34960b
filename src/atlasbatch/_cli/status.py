"""``atlasbatch status DIR``: where a run stands, from its ledger (and the server, if asked).

Reading the ledger needs no lock (SQLite in WAL mode lets a reader in while a fetch
writes), so status works while the run is going on. What it prints comes from counts on the
ledger's indexes, the few rows it shows and folder counts remembered in the ledger
(file_counts.py), so a run of 100,000 rows answers as fast as a small one; the server
client is imported only for ``--remote``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from atlasbatch._cli.common import (
    RunRecipe,
    add_server_arguments,
    open_existing_ledger,
    settings_from_args,
)
from atlasbatch._cli.progress import print_summary
from atlasbatch._cli.resume import recipe_for_run, resume_hint
from atlasbatch._exceptions import AtlasBatchError
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State
from atlasbatch._runs.refresh import META_KEY, run_finished
from atlasbatch._runs.rundir import run_busy

if TYPE_CHECKING:
    from atlasbatch._config import Settings

__all__ = ["STATUS_HELP", "add_status_arguments", "print_status", "run_status"]

STATUS_HELP = """\
Show where the run in DIR stands: rows by state, failures with reasons, tasks still on the
server, outputs. Works while a fetch is running. With --remote, also asks the server which
of the run's tasks it still holds (needs the token; costs one read per 100 tasks).
"""


def add_status_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``status``."""
    parser.add_argument("dir", metavar="DIR", help="run directory")
    parser.add_argument("--remote", action="store_true",
                        help="also list the run's tasks on the server")  # fmt: skip
    add_server_arguments(parser, from_run=True)


_TO_ASK = (State.PENDING, State.SUBMITTING, State.QUEUED, State.RUNNING)  # a resume's work


def _state_line(ledger: Ledger, out_dir: Path, recipe: RunRecipe | None) -> str:
    if run_busy(out_dir):
        asked = ledger.cancel_requested()
        return "in progress (a process is working on it now)" + (
            "; cancel requested: it stops at its next look at the server" if asked else ""
        )
    if run_finished(ledger):
        return "finished"
    open_queries = ledger.unfinished_queries()
    counts = ledger.counts()
    if not any(counts[state] for state in _TO_ASK):  # after cancel: only results are left
        return (
            f"ended, {ledger.undeleted_count()} task(s) left on the server; download what "
            f"finished and delete them with: atlasbatch cleanup {out_dir}"
        )
    hint = resume_hint(recipe, out_dir, base_url=ledger.meta("base_url"))
    return f"stopped with {open_queries} queries open; resume with: {hint}"


def print_status(console: Console, ledger: Ledger, out_dir: Path) -> None:
    """What ``status`` prints from the run directory alone (no server)."""
    recipe = RunRecipe.load(ledger)
    console.print(f"Run {ledger.run_id} in {out_dir}", style="bold", markup=False, soft_wrap=True)
    console.print(f"  server   {ledger.meta('base_url')}", markup=False, soft_wrap=True)
    if recipe is not None and recipe.targets:
        console.print(f"  targets  {recipe.targets}", markup=False, soft_wrap=True)
    previous = ledger.meta("previous_run")
    if ledger.meta(META_KEY) is not None:
        of = f" of run {previous}" if previous else ""
        console.print(f"  kind     refresh (--since-last){of}", markup=False, soft_wrap=True)
    console.print(
        f"  state    {_state_line(ledger, out_dir, recipe)}", markup=False, soft_wrap=True
    )
    by_state = ledger.open_task_counts()
    detail = ", ".join(f"{state.value} {n}" for state, n in sorted(by_state.items()))
    console.print(
        f"  tasks    {sum(by_state.values())} still on the server per the ledger"
        + (f" ({detail})" if detail else ""),
        markup=False,
        soft_wrap=True,
    )
    print_summary(console, ledger, out_dir)


async def _remote(settings: Settings, token: str, run_id: str, known: set[int]) -> str:
    # Imported here: the client (and the engine's task classifier) only for --remote.
    from atlasbatch._engine.poller import classify  # noqa: PLC0415
    from atlasbatch._http.client import AtlasClient  # noqa: PLC0415
    from atlasbatch._runs.cleanup import run_id_of  # noqa: PLC0415

    async with AtlasClient(token=token, settings=settings) as client:
        found: Counter[str] = Counter()
        ids: set[int] = set()
        async for task in client.iter_tasks():
            if run_id_of(task.get("comment")) == run_id:
                found[classify(task).state.value] += 1
                ids.add(int(task["id"]))
    detail = ", ".join(f"{state} {n}" for state, n in sorted(found.items())) or "none"
    line = f"On the server now: {len(ids)} task(s) of run {run_id} ({detail})"
    unknown, gone = len(ids - known), len(known - ids)
    if unknown:
        line += f"; {unknown} not in the ledger (resume or `atlasbatch cleanup` adopts them)"
    if gone:
        line += f"; {gone} in the ledger but gone from the server"
    return line


def run_status(args: argparse.Namespace) -> int:
    """Run ``status``; the exit code."""
    out_dir = Path(args.dir)
    console = Console()
    ledger = open_existing_ledger(out_dir)
    try:
        print_status(console, ledger, out_dir)
        run_id = ledger.run_id
        known = {task.task_id for task in ledger.open_tasks()} if args.remote else set()
    finally:
        ledger.close()
    if not args.remote:
        return 0
    import anyio  # noqa: PLC0415 - see _remote

    from atlasbatch._http.credentials import resolve_token  # noqa: PLC0415

    settings = settings_from_args(args, recipe_for_run(args, out_dir))  # the run's server
    token = resolve_token(args.token_file, server=settings.base_url)
    try:
        line = anyio.run(_remote, settings, token, run_id, known)
    except AtlasBatchError as exc:
        console.print(f"The server could not be asked: {exc}", markup=False, soft_wrap=True)
        return 1
    console.print(line, markup=False, soft_wrap=True)
    return 0
