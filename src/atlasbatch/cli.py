"""The ``atlasbatch`` command line: fetch, emulator (and more subcommands).

Exit codes: 0 every target downloaded or no_data; 1 some failed, were cancelled or invalid;
2 bad usage or input (nothing sent); 130 interrupted (resume with the same command).
"""

from __future__ import annotations

import argparse
import logging
import sys

from atlasbatch import __version__
from atlasbatch._cli_fetch import add_fetch_arguments, run_fetch
from atlasbatch._exceptions import AtlasBatchError, InputError, RunError

__all__ = ["build_parser", "main"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="atlasbatch",
        description="Fetch ATLAS forced photometry for many targets, within the server's limits.",
    )
    parser.add_argument("--version", action="version", version=f"atlasbatch {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="more log lines")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    fetch = commands.add_parser("fetch", help="fetch light curves for a target file (resumable)")
    add_fetch_arguments(fetch)
    commands.add_parser("emulator", help="run the offline server emulator (see --help)",
                        add_help=False)  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``atlasbatch`` command."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["emulator"]:
        # Imported here: the emulator pulls in starlette and uvicorn, which fetch never needs.
        from atlasbatch.testing._cli import main as emulator_main  # noqa: PLC0415

        return emulator_main(argv[1:])
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        return run_fetch(args)
    except (InputError, RunError) as exc:
        print(f"atlasbatch: {exc}", file=sys.stderr)
        return 2
    except AtlasBatchError as exc:
        print(f"atlasbatch: {exc}", file=sys.stderr)
        return 1
