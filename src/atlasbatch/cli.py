"""The ``atlasbatch`` command line (also ``python -m atlasbatch``).

Commands: demo, login, fetch, status, cancel, cleanup, emulator. Errors are one sentence on
stderr that says what to do (a full disk, a damaged ledger, another account's token, a
rejected certificate), never a traceback of task groups. Exit codes: 0 success (for fetch:
every row downloaded or no_data, no task left on the server); 1 some targets failed, were
cancelled or invalid, tasks were left on the server, the server refused, or a run stopped
part-way; 2 bad usage or input, or a stop before anything was done; 130 interrupted
(resume with the same command).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from atlasbatch._exceptions import AtlasBatchError
from atlasbatch._unwrap import unwrapped

__all__ = ["build_parser", "main"]

Command = Callable[[argparse.Namespace], int]

DESCRIPTION = """\
Fetch ATLAS forced photometry for many targets, within the server's limits, durably.

Start with `atlasbatch demo` (no account needed), then `atlasbatch login` and
`atlasbatch fetch TARGETS.csv --out DIR`. `atlasbatch COMMAND --help` explains each command.
"""

#: name, summary, the module with ``<NAME>_HELP``, ``add_<name>_arguments``, ``run_<name>``
#: (and optionally ``<NAME>_EPILOG``). A command's module (httpx, the run engine, pandas
#: for fetch) is imported only when that command is given: ``--help`` and ``status`` start
#: at once.
_COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "try everything against a local emulated server", "atlasbatch._cli.demo"),
    ("login", "save your API token (asks for username and password)", "atlasbatch._cli.login"),
    ("fetch", "fetch light curves for a target file (resumable)", "atlasbatch._cli.fetch"),
    ("status", "show where a run stands", "atlasbatch._cli.status"),
    ("cancel", "cancel a run's queued and running tasks", "atlasbatch._cli.cleanup"),
    ("cleanup", "download what finished and delete a run's tasks; find orphans",
     "atlasbatch._cli.cleanup"),
)  # fmt: skip
_HANDLER_MARK = "_atlasbatch_cli"


class _Version(argparse.Action):
    """``--version``, reading the installed version only when asked (importlib.metadata
    costs more than the rest of ``--help``)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from atlasbatch import __version__  # noqa: PLC0415 - see the class docstring

        print(f"atlasbatch {__version__}")
        parser.exit()


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The argument parser; the options of the command named in ``argv`` (every command's
    when ``argv`` is None), the others with their one-line summary only."""
    chosen = _command_of(argv)
    parser = argparse.ArgumentParser(
        prog="atlasbatch", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--version", action=_Version)
    parser.add_argument("-v", "--verbose", action="store_true", help="more log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, summary, module_name in _COMMANDS:
        if argv is not None and name != chosen:
            commands.add_parser(name, help=summary)
            continue
        module = importlib.import_module(module_name)
        sub = commands.add_parser(
            name, help=summary, description=getattr(module, f"{name.upper()}_HELP"),
            epilog=getattr(module, f"{name.upper()}_EPILOG", None),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        getattr(module, f"add_{name}_arguments")(sub)
        sub.set_defaults(run=getattr(module, f"run_{name}"))
    commands.add_parser(
        "emulator", help="run the emulated server on loopback (see `atlasbatch emulator --help`)",
        add_help=False,
    )  # fmt: skip
    return parser


def _command_of(argv: Sequence[str] | None) -> str | None:
    """The command ``argv`` names: its first word that is not an option."""
    return next((word for word in argv or () if not word.startswith("-")), None)


def _configure_logging(*, verbose: bool) -> None:
    """Library log lines on stderr: through rich on a terminal (so they print above the
    live panel), plain with timestamps otherwise."""
    logger = logging.getLogger("atlasbatch")
    for handler in [h for h in logger.handlers if getattr(h, _HANDLER_MARK, False)]:
        logger.removeHandler(handler)
    new: logging.Handler
    if sys.stderr.isatty():
        from rich.console import Console  # noqa: PLC0415
        from rich.logging import RichHandler  # noqa: PLC0415

        new = RichHandler(console=Console(stderr=True), show_path=False)
    else:
        new = logging.StreamHandler(sys.stderr)
        new.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    setattr(new, _HANDLER_MARK, True)
    logger.addHandler(new)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _run(args: argparse.Namespace) -> int:
    run: Command = args.run
    with unwrapped():  # a task group's error group: the one error that stopped the command
        return run(args)


#: Arrow's variable for the allocator of its default memory pool, read when pyarrow loads.
ARROW_POOL_ENV = "ARROW_DEFAULT_MEMORY_POOL"


def _system_allocator_for_arrow() -> None:
    """Arrow's buffers from the C library's allocator in this process (unless the user chose).

    Arrow's own (mimalloc) keeps what it freed mapped, per thread, where neither pandas nor
    the next table sync can use it: the end of a 10,000-target run's outputs peaked at
    181 MB with it and 167 MB with the system's, which also gives memory back when
    ``_runs.finish`` trims it. Set before pyarrow is imported, which the command line does
    only once it reads a target list or writes a table; a library caller's process keeps
    its own choice.
    """
    os.environ.setdefault(ARROW_POOL_ENV, "system")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``atlasbatch`` command; returns the exit code."""
    argv = sys.argv[1:] if argv is None else argv
    _system_allocator_for_arrow()
    try:
        if argv[:1] == ["emulator"]:
            # Imported here: the emulator pulls in starlette and uvicorn; fetch never needs them.
            from atlasbatch.testing._cli import main as emulator_main  # noqa: PLC0415

            return emulator_main(argv[1:])
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error (already printed)
        return exit_.code if isinstance(exit_.code, int) else 0
    _configure_logging(verbose=args.verbose)
    try:
        return _run(args)
    except AtlasBatchError as exc:
        from atlasbatch._cli.common import explain  # noqa: PLC0415 - see _COMMANDS

        message, code = explain(exc)
        print(f"atlasbatch: {message}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        print("\natlasbatch: interrupted", file=sys.stderr)
        return 130
