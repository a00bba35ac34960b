"""Benchmark atlasbatch against the guide's loop and a naive gather, on the realistic emulator.

    python benchmarks/run.py [--quick] [--json FILE] [--serial] [--no-scale]

Every (scenario, client) pair gets a fresh loopback emulator with the real server's timing,
scaled per scenario (0.1, 0.01 or 0.002). atlasbatch is given the server's documented limits
only, never the task time. The seed rows (cheap: one request at a time) run in a second lane
beside the others unless ``--serial``; the CLI rows (``atlasbatch fetch`` told and not told
the task time) and the scale run (full plan only) run in the main lane. See README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._harness import ROW_KEYS, Row, run_row
from benchmarks._scenarios import FULL, QUICK, TINY, Plan, Scenario
from benchmarks._table import check_targets, cli_table, markdown_table

__all__ = ["main", "run_plan"]

_CLIENT_ORDER = {"atlasbatch": 0, "seed": 1, "naive": 2, "cli": 3, "cli-told": 4}


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _run_lane(pairs: list[tuple[Scenario, str]], rows: list[Row], lock: threading.Lock) -> None:
    for scenario, client in pairs:
        start = time.monotonic()
        _say(f"  {scenario.name} / {client}: {scenario.targets_for(client)} targets …")
        row = run_row(scenario, client)
        flag = " (time limit)" if row.limit_hit else ""
        _say(
            f"  {scenario.name} / {client}: {row.makespan_s:.2f} s, ratio {row.ratio:.3f}"
            f"{flag} [{time.monotonic() - start:.1f} s]"
        )
        with lock:
            rows.append(row)


def run_plan(plan: Plan, *, serial: bool = False, scale: bool = True) -> list[Row]:
    """Every row of ``plan``, ordered by scenario then client."""
    pairs = [(s, c) for s in plan.scenarios for c in s.clients]
    side = [] if serial else [(s, c) for s, c in pairs if c == "seed"]
    main = [pair for pair in pairs if pair not in side]
    rows: list[Row] = []
    lock = threading.Lock()
    lane = threading.Thread(target=_run_lane, args=(side, rows, lock), name="bench-seed-lane")
    lane.start()
    try:
        _run_lane(main, rows, lock)
    finally:
        lane.join()
    order = {s.name: i for i, s in enumerate(plan.scenarios)}
    rows.sort(key=lambda r: (order[r.scenario], _CLIENT_ORDER.get(r.client, 9)))
    if scale and plan.scale_targets:
        from benchmarks._scale import run_scale  # noqa: PLC0415
        from benchmarks._scenarios import scale as scale_scenario  # noqa: PLC0415

        scenario = scale_scenario(plan.scale_targets)
        _say(f"  {scenario.name} / atlasbatch (child process) …")
        rows.append(run_scale(scenario))
    return rows


def write_json(rows: list[Row], path: Path) -> None:
    """The rows as a JSON list of objects with exactly :data:`ROW_KEYS`."""
    data = [row.as_json() for row in rows]
    assert all(tuple(item) == ROW_KEYS for item in data)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, < 3 min, no scale run")
    parser.add_argument("--json", type=Path, metavar="FILE", help="write the rows as JSON")
    parser.add_argument("--serial", action="store_true", help="no side lane for the seed rows")
    parser.add_argument("--no-scale", action="store_true", help="skip the 100k scale run")
    parser.add_argument(
        "--scale-only", type=int, nargs="+", metavar="N",
        help="only the client cost at N targets (several N: memory growth between them): "
        "the library, the CLI and the outputs, each in its own process",
    )  # fmt: skip
    parser.add_argument(
        "--parse-only", type=int, metavar="N", help="only target-list parsing, N rows per file"
    )
    parser.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.parse_only:
        from benchmarks._parse import main as parse_main  # noqa: PLC0415

        return parse_main(args.parse_only)
    if args.scale_only:
        from benchmarks._cost import main as cost_main  # noqa: PLC0415

        return cost_main(args.scale_only)
    plan = TINY if args.tiny else QUICK if args.quick else FULL
    label = "tiny" if args.tiny else "quick" if args.quick else "full"
    started = time.monotonic()
    _say(f"benchmark plan: {label}")
    rows = run_plan(plan, serial=args.serial, scale=not args.no_scale)
    print(markdown_table(rows))
    if cli := cli_table(rows):
        print()
        print(cli)
    notes = [f"{r.scenario}/{r.client}: {'; '.join(r.notes)}" for r in rows if r.notes]
    misses = check_targets(rows)
    print()
    print("atlasbatch targets: " + ("all met" if not misses else "MISSED"))
    for miss in misses:
        print(f"  - {miss}")
    for note in notes:
        print(f"  note {note}")
    print(f"\n(total {time.monotonic() - started:.0f} s)")
    if args.json:
        write_json(rows, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
