"""``atlasbatch demo``: the whole product in well under a minute, with no account or network.

It starts the embedded emulator on a loopback port (the real server's rules: throttles,
queue cap, one task at a time per user, result files in the real format; only time runs
faster), fetches the example targets with the live progress display, writes every output
and says how to do the same on the real server.
"""

from __future__ import annotations

import argparse
import importlib.resources
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from rich.console import Console

from atlasbatch._cli.drive import drive, finish_outputs, make_view
from atlasbatch._cli.progress import print_summary
from atlasbatch._config import Rate, Settings
from atlasbatch._durations import format_duration
from atlasbatch._exceptions import InputError
from atlasbatch._http.client import AtlasClient
from atlasbatch._runs.rundir import open_run, record_targets

if TYPE_CHECKING:  # the target parser imports pandas: `atlasbatch --help` does not
    from atlasbatch._targets.read import TargetList

__all__ = ["DEMO_HELP", "add_demo_arguments", "example_targets", "run_demo"]

DEMO_HELP = """\
Fetch the example targets from an emulated ATLAS server on this machine: no account, no
network, about 20 seconds. The emulator follows the real server's rules (rate limits, queue
cap, one task at a time per user, the real result format); only time runs faster. DIR gets
everything a real run writes: photometry.parquet, outcomes.csv, lightcurves/, plots/.
"""

MARKER = ".atlasbatch-demo"
#: The real limits (60 writes and 600 reads a minute) with time running ten times faster.
DEMO_WRITE_RATE = "60/6s"
DEMO_READ_RATE = "600/6s"
DEMO_OBSERVATIONS_PER_DAY = 0.1


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``demo``."""
    parser.add_argument("--out", metavar="DIR", default="atlasbatch-demo",
                        help="output directory (default: ./atlasbatch-demo; a previous demo "
                        "there is replaced)")  # fmt: skip
    parser.add_argument(
        "--targets",
        metavar="FILE",
        help="target file to use instead of the bundled targets_example.csv",
    )
    parser.add_argument(
        "--task-seconds", type=float, default=0.5, metavar="S",
        help="how long one emulated task runs (default 0.5; the real server needs about 60)",
    )  # fmt: skip
    parser.add_argument(
        "--progress", choices=("auto", "live", "plain"), default="auto",
        help="live panel, plain log lines, or auto: live when stderr is a terminal",
    )  # fmt: skip


def example_targets() -> bytes:
    """The bundled ``targets_example.csv``."""
    resource = importlib.resources.files("atlasbatch").joinpath("data/targets_example.csv")
    return resource.read_bytes()


def _prepare_folder(out_dir: Path) -> None:
    """An empty folder for the demo; a previous demo is replaced, anything else refused."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a directory; pick another --out")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / MARKER).exists():
            raise InputError(
                f"{out_dir} is not empty and was not made by `atlasbatch demo`; "
                "pick another --out (nothing was changed)"
            )
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / MARKER).write_text("made by `atlasbatch demo`; replaced by the next demo\n")


def _copy_targets(args: argparse.Namespace, out_dir: Path) -> Path:
    if args.targets:
        source = Path(args.targets)
        try:
            data = source.read_bytes()
        except OSError as exc:
            raise InputError(f"cannot read the target file {source}: {exc.strerror}") from None
        name = source.name
    else:
        data, name = example_targets(), "targets_example.csv"
    copy = out_dir / name
    copy.write_bytes(data)
    return copy


def _settings(base_url: str) -> Settings:
    # Only the emulator's limits, as a user would give them: the task time is learned.
    return Settings(
        base_url=base_url,
        write_rate=Rate.parse(DEMO_WRITE_RATE),
        read_rate=Rate.parse(DEMO_READ_RATE),
        window_margin=0.05,
        timeout=10.0,
        retry_max_wait=1.0,
    )


def run_demo(args: argparse.Namespace) -> int:
    """Run ``demo``; the exit code."""
    from atlasbatch._targets.read import read_targets  # noqa: PLC0415 - pandas
    from atlasbatch.testing import Emulator, EmulatorConfig  # noqa: PLC0415 - starlette, uvicorn

    if args.task_seconds <= 0:
        raise InputError("--task-seconds must be positive")
    if args.targets:
        read_targets(args.targets)  # a bad file fails before anything is created
    out_dir = Path(args.out)
    _prepare_folder(out_dir)
    targets_copy = _copy_targets(args, out_dir)
    targets = read_targets(targets_copy)
    config = EmulatorConfig(
        task_seconds=60.0,  # the real server's; its runner's pauses shrink alike (rates apart)
        user_slots=1,
        write_rate=DEMO_WRITE_RATE,
        read_rate=DEMO_READ_RATE,
        observations_per_day=DEMO_OBSERVATIONS_PER_DAY,
    ).scaled(args.task_seconds / 60.0, rates=False)
    live = {"auto": None, "live": True, "plain": False}[args.progress]
    console = Console()
    started = time.monotonic()
    with Emulator(config) as emu:
        console.print(f"Emulated ATLAS server on {emu.base_url} (loopback only)", markup=False)
        settings = _settings(emu.base_url)
        code = anyio.run(_fetch, targets, settings, emu.token, out_dir, live)
    elapsed = time.monotonic() - started
    _print_next_steps(console, out_dir, targets_copy, targets, elapsed)
    return code


async def _fetch(
    targets: TargetList, settings: Settings, token: str, out_dir: Path, live: bool | None
) -> int:
    async with AtlasClient(token=token, settings=settings) as client:
        with open_run(out_dir, base_url=settings.base_url) as ledger:
            record_targets(ledger, targets)
            view = make_view(settings=settings, title="atlasbatch demo", live=live, every=2.0)
            interrupted = await drive(client, ledger, out_dir, view=view)
            code = finish_outputs(ledger, out_dir, server=settings.base_url,
                                  plots=not interrupted)  # fmt: skip
            print_summary(Console(), ledger, out_dir)
    return 130 if interrupted else code


def _print_next_steps(
    console: Console, out_dir: Path, targets_copy: Path, targets: TargetList, elapsed: float
) -> None:
    real = format_duration(len(targets.unique) * 60.0)
    console.print(
        f"\nDemo finished in {format_duration(elapsed)}. Everything is in {out_dir}/.\n"
        "Load the table:\n"
        f"  python -c \"import pandas as pd; print(pd.read_parquet('{out_dir}/photometry.parquet'))\"\n"  # noqa: E501
        "\nThe same on the real server (one task at a time, about a minute each: "
        f"~{real} for these {len(targets.unique)} targets):\n"
        "  atlasbatch login\n"
        f"  atlasbatch fetch {targets_copy} --dry-run\n"
        f"  atlasbatch fetch {targets_copy} --out my-first-run\n"
        "  atlasbatch status my-first-run        (from another terminal, any time)",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
