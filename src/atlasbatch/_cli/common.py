"""What the CLI commands share: server options, settings, the run's recipe, exit codes, errors.

A run directory remembers how it was started (server, rates, target file) in its ledger, so
``status``, ``cancel`` and ``cleanup`` need only the directory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

from atlasbatch._config import PRODUCTION_URL, Rate, Settings
from atlasbatch._exceptions import (
    AtlasBatchError,
    AuthenticationError,
    ConnectionSetupError,
    InputError,
    RunError,
    StorageError,
    TransportError,
)
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State
from atlasbatch._runs.rundir import LEDGER_NAME
from atlasbatch._storage import describe_os_error

__all__ = [
    "RunRecipe",
    "add_server_arguments",
    "exit_code",
    "explain",
    "open_existing_ledger",
    "settings_from_args",
]

_RECIPE_KEY = "cli"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecipe:
    """How a run was started, stored in its ledger for later commands."""

    base_url: str
    write_rate: str
    read_rate: str
    max_queued: int
    task_seconds: float | None
    targets: str | None = None
    resume: list[str] | None = None  # the command line that resumes the run (shell words)

    def store(self, ledger: Ledger) -> None:
        """Write the recipe into the ledger's meta table."""
        ledger.set_meta(_RECIPE_KEY, json.dumps(dataclasses.asdict(self), sort_keys=True))

    @classmethod
    def load(cls, ledger: Ledger) -> RunRecipe | None:
        """The stored recipe, or None for runs started another way (the Python API)."""
        raw = ledger.meta(_RECIPE_KEY)
        if raw is None:
            return None
        values = json.loads(raw)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in names})


def add_server_arguments(parser: argparse.ArgumentParser, *, from_run: bool = False) -> None:
    """Server, token and rate options. ``from_run``: defaults come from the run directory."""
    stored = " (default: as the run was started)" if from_run else ""
    parser.add_argument(
        "--base-url",
        default=None if from_run else os.environ.get("ATLAS_BASE_URL", PRODUCTION_URL),
        help="server base URL (default: "
        + ("the run's server, else " if from_run else "")
        + "$ATLAS_BASE_URL, else the production server)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        help="file holding the API token (default: $ATLAS_TOKEN, else the token saved by "
        "`atlasbatch login --base-url` for this server)",
    )
    group = parser.add_argument_group("server limits (the defaults are the real server's)")
    group.add_argument(
        "--write-rate",
        default=None if from_run else "60/min",
        metavar="N/T",
        help="write limit shared by POST and DELETE" + (stored or " (60/min)"),
    )
    group.add_argument(
        "--read-rate",
        default=None if from_run else "600/min",
        metavar="N/T",
        help="read limit" + (stored or " (600/min)"),
    )
    group.add_argument(
        "--max-queued",
        type=int,
        default=None if from_run else 500,
        metavar="N",
        help="cap on unstarted tasks per user" + (stored or " (500)"),
    )
    group.add_argument(
        "--task-seconds", type=float, default=None, metavar="S",
        help="a first guess of one task's run time, until the server's timestamps measure it"
        + (stored or " (one write window: 60 at the real limits)"),
    )  # fmt: skip


def settings_from_args(args: argparse.Namespace, recipe: RunRecipe | None = None) -> Settings:
    """Settings from the options, falling back to the run's recipe, then the real server."""
    base = recipe or RunRecipe(
        base_url=os.environ.get("ATLAS_BASE_URL", PRODUCTION_URL), write_rate="60/min",
        read_rate="600/min", max_queued=500, task_seconds=None,
    )  # fmt: skip
    given = vars(args)
    chosen = {
        name: base_value if given.get(name) is None else given[name]
        for name, base_value in dataclasses.asdict(base).items()
    }
    task_seconds = chosen["task_seconds"]
    if task_seconds is not None and not (math.isfinite(task_seconds) and task_seconds > 0):
        raise InputError(f"--task-seconds must be a positive number, not {task_seconds:g}")
    return Settings(
        base_url=str(chosen["base_url"]),
        write_rate=Rate.parse(str(chosen["write_rate"])),
        read_rate=Rate.parse(str(chosen["read_rate"])),
        max_queued=int(chosen["max_queued"]),
        expected_task_seconds=task_seconds,
    )


def recipe_of(
    settings: Settings, *, targets: str | None, resume: list[str] | None = None
) -> RunRecipe:
    """The recipe to store for a run started with ``settings``."""
    return RunRecipe(
        base_url=settings.base_url,
        write_rate=f"{settings.write_rate.requests}/{settings.write_rate.seconds:g}s",
        read_rate=f"{settings.read_rate.requests}/{settings.read_rate.seconds:g}s",
        max_queued=settings.max_queued,
        task_seconds=settings.expected_task_seconds,
        targets=targets,
        resume=resume,
    )


def open_existing_ledger(out_dir: Path) -> Ledger:
    """The ledger of an existing run directory (without its lock: for reading)."""
    path = out_dir / LEDGER_NAME
    if not path.is_file():
        raise RunError(f"{out_dir} is not an atlasbatch run directory (it has no {LEDGER_NAME})")
    return Ledger(path)


def read_recipe(out_dir: Path) -> RunRecipe | None:
    """The recipe of a run directory, read without taking its lock."""
    ledger = open_existing_ledger(out_dir)
    try:
        recipe = RunRecipe.load(ledger)
        base = ledger.meta("base_url")
    finally:
        ledger.close()
    if recipe is None and base is not None:
        recipe = RunRecipe(base_url=base, write_rate="60/min", read_rate="600/min",
                           max_queued=500, task_seconds=None)  # fmt: skip
    return recipe


def exit_code(counts: dict[State, int], *, tasks_left: int = 0) -> int:
    """0 when every row ended downloaded or no_data and no task is left on the server."""
    bad = sum(counts.get(s, 0) for s in State if s not in (State.DOWNLOADED, State.NO_DATA))
    return 0 if bad == 0 and tasks_left == 0 else 1


def explain(
    exc: AtlasBatchError, *, folder: Path | None = None, partial: bool = False
) -> tuple[str, int]:
    """One line saying what stopped a command and how to fix it, and the exit code.

    2 when nothing was done (bad input, a refused run directory, a stop before any change);
    1 after a partial run (``partial``) or when the server refused. ``folder`` is the run
    directory, named in storage messages.
    """
    stop = 1 if partial else 2
    if isinstance(exc, InputError):
        return str(exc), 2
    if isinstance(exc, RunError):
        return str(exc), stop
    if isinstance(exc, StorageError):
        cause = exc.__cause__
        text = describe_os_error(cause, folder=folder) if isinstance(cause, OSError) else str(exc)
        return text, stop
    if isinstance(exc, AuthenticationError):
        return (
            f"the server refused the token ({exc.detail or exc.status}); run `atlasbatch login` "
            "again, or check $ATLAS_TOKEN / --token-file",
            1,
        )
    if isinstance(exc, ConnectionSetupError):
        return _setup_failure(exc), stop
    if isinstance(exc, TransportError):
        return f"cannot reach the server: {exc}", 1
    return str(exc), 1


def _setup_failure(exc: ConnectionSetupError) -> str:
    host = urllib.parse.urlsplit(exc.url).hostname or exc.url
    text = str(exc)
    if "certificate" in text.lower():
        reason = text.split("rejected: ", 1)[-1]
        return (
            f"TLS certificate of {host} rejected ({reason}): check --base-url, the system "
            "clock and the CA certificates (SSL_CERT_FILE), then run the same command"
        )
    return f"cannot send a request to {host} ({text}): fix that and run the same command"
