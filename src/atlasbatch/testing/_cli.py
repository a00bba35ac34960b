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

from ._cli_options import RATE_FAULTS, build_parser
from ._config import EmulatorConfig
from ._fault_settings import Faults
from ._server import Emulator, is_loopback

__all__ = ["build_parser", "main"]


def _config(args: argparse.Namespace) -> EmulatorConfig:
    faults = Faults(
        **{name: getattr(args, name) for name in RATE_FAULTS},
        slow_seconds=args.slow_seconds,
        expire_after=args.expire_after,
        methods=args.fault_methods,
        endpoints=args.fault_endpoints,
    )
    config = EmulatorConfig(
        write_rate=args.write_rate,
        read_rate=args.read_rate,
        max_queued=args.max_queued,
        slots=args.slots,
        user_slots=args.user_slots,
        task_seconds=args.task_seconds,
        image_task_seconds=args.image_task_seconds,
        task_jitter=args.task_jitter,
        task_sigma=args.task_sigma,
        long_task_rate=args.long_task_rate,
        long_task_factor=args.long_task_factor,
        runner_idle_poll=args.runner_idle_poll,
        runner_busy_poll=args.runner_busy_poll,
        user_gap=args.user_gap,
        cancel_check=args.cancel_check,
        background_users=args.background_users,
        background_task_seconds=args.background_task_seconds,
        seed=args.seed,
        purge_after=args.purge_after,
        observations_per_day=args.observations_per_day,
        faults=faults,
        outages=tuple(args.outage),
        request_log_size=args.request_log_size,
        host=args.host,
        port=args.port,
        username=args.user,
        password=args.password,
        token=args.token,
    )
    return config if args.time_scale == 1.0 else config.scaled(args.time_scale)


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
