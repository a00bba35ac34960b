"""The options of ``atlasbatch emulator``: every one shows its default in ``--help``."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ._config import EmulatorConfig, OutageWindow
from ._fault_settings import ENDPOINTS, METHODS, Faults
from ._rates import parse_rate

__all__ = ["RATE_FAULTS", "build_parser"]

_DEFAULT = EmulatorConfig()
_NO_FAULTS = Faults()
_RATE_FAULT_HELP = {
    "server_error_rate": "fraction of requests answered 500/502/503",
    "drop_before_commit_rate": "fraction of POSTs/DELETEs dropped before they run",
    "drop_after_commit_rate": "fraction of POSTs/DELETEs dropped after they commit",
    "slow_rate": "fraction of answers held back --slow-seconds",
    "truncate_rate": "fraction of result downloads cut mid-line",
    "lose_rate": "fraction of task attempts lost and run again",
    "html_error_rate": "fraction of answers replaced by Apache's 502/503/504 page",
    "garbage_json_rate": "fraction of JSON answers cut in half",
}
RATE_FAULTS = tuple(_RATE_FAULT_HELP)


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


def _outage(value: str) -> OutageWindow:
    parts = value.split(":")
    try:
        start, end = float(parts[0]), float(parts[1])
    except (IndexError, ValueError):
        start = end = -1.0
    if len(parts) != 3 or parts[2] not in ("503", "drop") or not 0 <= start < end:
        msg = "expected START:END:MODE, seconds after the start and 503 or drop, e.g. 10:40:503"
        raise argparse.ArgumentTypeError(msg)
    return start, end, "503" if parts[2] == "503" else "drop"


def _names(known: frozenset[str], *, upper: bool) -> Callable[[str], frozenset[str]]:
    def parse(value: str) -> frozenset[str]:
        names = frozenset(n.strip().upper() if upper else n.strip() for n in value.split(","))
        if not names <= known:
            msg = f"expected a comma-separated list of {', '.join(sorted(known))}"
            raise argparse.ArgumentTypeError(msg)
        return names

    return parse


def _server_options(p: argparse.ArgumentParser) -> None:
    d = _DEFAULT
    p.add_argument("--port", type=int, default=d.port, help="TCP port (0: pick a free one)")
    p.add_argument("--host", default=d.host, help="loopback address to bind")
    p.add_argument("--allow-non-loopback", action="store_true", help="allow a non-loopback --host")
    p.add_argument("--user", default=d.username, help="the default user's name")
    p.add_argument("--password", default=d.password, help="the default user's password")
    p.add_argument(
        "--token", default=d.token, help="the default user's API token; None: a random one"
    )
    p.add_argument(
        "--add-user",
        type=_user,
        action="append",
        default=[],
        metavar="NAME:PASSWORD[:TOKEN]",
        help="another account (repeatable)",
    )
    p.add_argument(
        "--write-rate", type=_rate, default=d.write_rate, help="writes: e.g. 60/6s, none"
    )
    p.add_argument("--read-rate", type=_rate, default=d.read_rate, help="reads: e.g. 600/6s, none")
    p.add_argument("--max-queued", type=int, default=d.max_queued, help="queue cap per user")
    p.add_argument(
        "--purge-after",
        type=float,
        default=d.purge_after,
        help="seconds from finish to deletion (31 days)",
    )
    p.add_argument(
        "--observations-per-day",
        type=float,
        default=d.observations_per_day,
        help="exposures per filter and day in the synthetic light curves",
    )
    p.add_argument(
        "--request-log-size",
        type=int,
        default=d.request_log_size,
        help="requests kept for inspection",
    )
    p.add_argument("--seed", type=int, default=d.seed, help="seed of every random draw")
    p.add_argument(
        "--time-scale",
        type=float,
        default=1.0,
        metavar="F",
        help="multiply every duration, rate windows included, by F (0.1: 10x as fast)",
    )


def _runner_options(p: argparse.ArgumentParser) -> None:
    d = _DEFAULT
    g = p.add_argument_group("task runner (real-server defaults)")
    g.add_argument("--slots", type=int, default=d.slots, help="tasks running at once, all users")
    g.add_argument("--user-slots", type=int, default=d.user_slots, help="... per user")
    g.add_argument("--task-seconds", type=float, default=d.task_seconds, help="median task time")
    g.add_argument(
        "--image-task-seconds",
        type=float,
        default=d.image_task_seconds,
        help="median time of an image request (IMGZIP task)",
    )
    g.add_argument(
        "--task-jitter",
        type=float,
        default=d.task_jitter,
        help="uniform spread, a fraction of the task time",
    )
    g.add_argument(
        "--task-sigma",
        type=float,
        default=d.task_sigma,
        help="log-normal spread of task times (0.6: realistic)",
    )
    g.add_argument(
        "--long-task-rate",
        type=float,
        default=d.long_task_rate,
        help="fraction of tasks that run --long-task-factor times longer",
    )
    g.add_argument("--long-task-factor", type=float, default=d.long_task_factor, help="see above")
    g.add_argument(
        "--runner-idle-poll",
        type=float,
        default=d.runner_idle_poll,
        help="seconds between the idle runner's polls",
    )
    g.add_argument(
        "--runner-busy-poll",
        type=float,
        default=d.runner_busy_poll,
        help="seconds between the busy runner's polls",
    )
    g.add_argument(
        "--user-gap",
        type=float,
        default=d.user_gap,
        help="seconds from a task's finish to its user's next start",
    )
    g.add_argument(
        "--cancel-check",
        type=float,
        default=d.cancel_check,
        help="seconds between checks for a deleted running task",
    )
    g.add_argument(
        "--background-users",
        type=int,
        default=d.background_users,
        help="other users who always keep a task queued",
    )
    g.add_argument(
        "--background-task-seconds",
        type=float,
        default=d.background_task_seconds,
        help="their median task time; None: --task-seconds",
    )


def _fault_options(p: argparse.ArgumentParser) -> None:
    f = _NO_FAULTS
    g = p.add_argument_group("faults (all off by default)")
    for name in RATE_FAULTS:
        flag = "--" + name.replace("_", "-")
        text = _RATE_FAULT_HELP[name]
        g.add_argument(flag, type=float, default=getattr(f, name), metavar="F", help=text)
    g.add_argument(
        "--slow-seconds",
        type=float,
        default=f.slow_seconds,
        metavar="S",
        help="how long a slow answer is held back",
    )
    g.add_argument(
        "--expire-after",
        type=float,
        default=f.expire_after,
        metavar="S",
        help="seconds from finish until the result file disappears",
    )
    g.add_argument(
        "--fault-methods",
        type=_names(METHODS, upper=True),
        default=None,
        metavar="M,M",
        help="the faults hit only these methods (e.g. DELETE); with neither this nor "
        "--fault-endpoints each fault keeps its natural scope",
    )
    g.add_argument(
        "--fault-endpoints",
        type=_names(ENDPOINTS, upper=False),
        default=None,
        metavar="E,E",
        help="the faults hit only these endpoints: " + ", ".join(sorted(ENDPOINTS)),
    )
    g.add_argument(
        "--outage",
        type=_outage,
        action="append",
        default=[],
        metavar="START:END:MODE",
        help="site down from START to END seconds after the start: MODE 503 (Apache's "
        "HTML page) or drop (no answer); repeatable",
    )


def build_parser(prog: str = "atlasbatch emulator") -> argparse.ArgumentParser:
    """The argument parser (exposed so the main CLI can embed it as a sub-command)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run the ATLAS forced-photometry emulator on loopback. Defaults are the "
        "real server's; --time-scale 0.1 runs everything ten times as fast.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    _server_options(p)
    _runner_options(p)
    _fault_options(p)
    return p
