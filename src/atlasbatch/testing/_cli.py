"""``atlasbatch emulator``: run the emulator from the shell until SIGINT/SIGTERM.

The first line of standard output is the base URL (``http://127.0.0.1:PORT/forcedphot``), so a
script can start it with ``--port 0`` and read where it listens; the second line is
``token <TOKEN>`` for the default user. Also runnable as ``python -m atlasbatch.testing._cli``.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from ._config import EmulatorConfig, Faults, parse_rate
from ._server import Emulator, is_loopback

__all__ = ["build_parser", "main"]


def _rate(value: str) -> str | None:
    if value.lower() == "none":
        return None
    parse_rate(value)  # raises ValueError -> argparse reports "invalid _rate value"
    return value


def _user(value: str) -> tuple[str, str, str | None]:
    parts = value.split(":")
    if len(parts) not in (2, 3) or not all(parts):
        msg = "expected NAME:PASSWORD or NAME:PASSWORD:TOKEN"
        raise argparse.ArgumentTypeError(msg)
    return parts[0], parts[1], parts[2] if len(parts) == 3 else None


def build_parser(prog: str = "atlasbatch emulator") -> argparse.ArgumentParser:
    """The argument parser (exposed so the main CLI can embed it as a sub-command)."""
    p = argparse.ArgumentParser(prog=prog, description="Run the ATLAS forced-photometry emulator.")
    p.add_argument("--port", type=int, default=0, help="TCP port (0: pick a free one)")
    p.add_argument("--token", help="API token of the default user (default: random)")
    p.add_argument("--user", default="atlas", help="default user's name (default: atlas)")
    p.add_argument("--password", default="atlas-password", help="default user's password")
    p.add_argument(
        "--add-user",
        type=_user,
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:TOKEN]",
        help="another account (repeatable)",
    )
    p.add_argument("--write-rate", type=_rate, default="60/min", help="e.g. 60/min, 10/s, none")
    p.add_argument("--read-rate", type=_rate, default="600/min", help="e.g. 600/min, none")
    p.add_argument("--task-seconds", type=float, default=1.0)
    p.add_argument("--task-jitter", type=float, default=0.0, help="fraction, e.g. 0.2")
    p.add_argument("--max-queued", type=int, default=500, help="queue cap per user")
    p.add_argument("--slots", type=int, default=16)
    p.add_argument("--user-slots", type=int, default=1)
    p.add_argument("--observations-per-day", type=float, default=0.5)
    p.add_argument("--purge-after", type=float, default=None, help="seconds (default: never)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--allow-non-loopback", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--seed", type=int, default=0)
    faults = p.add_argument_group("faults (all off by default)")
    for name in (
        "server-error-rate",
        "drop-before-commit-rate",
        "drop-after-commit-rate",
        "slow-rate",
        "truncate-rate",
        "lose-rate",
        "html-error-rate",
        "garbage-json-rate",
    ):
        faults.add_argument(f"--{name}", type=float, default=0.0, metavar="F")
    faults.add_argument("--slow-seconds", type=float, default=1.0, metavar="S")
    faults.add_argument("--expire-after", type=float, default=None, metavar="S")
    return p


def _config(args: argparse.Namespace) -> EmulatorConfig:
    faults = Faults(
        server_error_rate=args.server_error_rate,
        drop_before_commit_rate=args.drop_before_commit_rate,
        drop_after_commit_rate=args.drop_after_commit_rate,
        slow_rate=args.slow_rate,
        slow_seconds=args.slow_seconds,
        truncate_rate=args.truncate_rate,
        expire_after=args.expire_after,
        lose_rate=args.lose_rate,
        html_error_rate=args.html_error_rate,
        garbage_json_rate=args.garbage_json_rate,
    )
    return EmulatorConfig(
        write_rate=args.write_rate,
        read_rate=args.read_rate,
        max_queued=args.max_queued,
        slots=args.slots,
        user_slots=args.user_slots,
        task_seconds=args.task_seconds,
        task_jitter=args.task_jitter,
        seed=args.seed,
        purge_after=args.purge_after,
        observations_per_day=args.observations_per_day,
        faults=faults,
        host=args.host,
        port=args.port,
        username=args.user,
        password=args.password,
        token=args.token,
    )


def _wait_for_signal() -> None:
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        del signum, frame
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not stop.wait(0.2):
            pass
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the emulator until SIGINT/SIGTERM; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(None if argv is None else list(argv))
    if not args.allow_non_loopback and not is_loopback(args.host):
        print(
            f"refusing to bind the non-loopback address {args.host!r} "
            "(pass --allow-non-loopback to do it anyway)",
            file=sys.stderr,
        )
        return 2
    try:
        config = _config(args)
        emulator = Emulator(config, allow_non_loopback=args.allow_non_loopback)
        for name, password, token in args.add_user:
            emulator.add_user(name, password, token=token)
        emulator.start()
    except (ValueError, OSError) as exc:
        print(f"atlasbatch emulator: {exc}", file=sys.stderr)
        return 2
    try:
        print(emulator.base_url, flush=True)
        print(f"token {emulator.token}", flush=True)
        _wait_for_signal()
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
