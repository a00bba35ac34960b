"""Kill-and-resume soak: `atlasbatch fetch` SIGKILLed at random moments, resumed each time.

    python benchmarks/soak.py [--targets 2000] [--kills 20] [--seed 1] [--json FILE]

The emulator runs in this process on loopback with lost POST answers and 5xx faults on;
the CLI runs as a child process, exactly as a user runs it, and is killed with SIGKILL
after a random 2-6 s (it needs ~2 s to start). After the kills one run goes to the end.
Then the invariants of issue 5 are checked and printed: one outcome per row, no task
created twice, nothing left on the server, files identical to an uninterrupted run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from atlasbatch.testing import Emulator, EmulatorConfig, Faults

RATES = {"write_rate": "200/1s", "read_rate": "2000/1s"}


def targets_file(folder: Path, count: int) -> Path:
    """``count`` distinct positions with a fixed window (files independent of today)."""
    path = folder / "targets.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "ra", "dec", "mjd_min", "mjd_max"])
        for i in range(count):
            writer.writerow([f"s{i:05d}", f"{(i * 0.1) % 360:.6f}", 10 + (i // 3600) * 0.1,
                             58000, 58100])  # fmt: skip
    return path


def fetch(emu: Emulator, targets: Path, out: Path, log: Path, kill_after: float | None) -> int:
    """One `atlasbatch fetch` child; SIGKILL after ``kill_after`` s, else wait (10 min max)."""
    config = emu.config
    command = [sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
               "--base-url", emu.base_url, "--write-rate", str(config.write_rate),
               "--read-rate", str(config.read_rate), "--task-seconds", str(config.task_seconds),
               "--no-plots", "--progress", "plain"]  # fmt: skip
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    with log.open("ab") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            if kill_after is None:
                return child.wait(timeout=600)
            time.sleep(kill_after)
            child.send_signal(signal.SIGKILL)
            return child.wait(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()


def light_curves(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "lightcurves").glob("*.txt"))}


def soak(count: int, kills: int, seed: int, folder: Path) -> dict[str, Any]:
    """Run the soak in ``folder``; the figures."""
    targets = targets_file(folder, count)
    log = folder / "stderr.log"
    rng = random.Random(seed)
    faults = Faults(drop_after_commit_rate=0.05, drop_before_commit_rate=0.02,
                    server_error_rate=0.02)  # fmt: skip
    config = EmulatorConfig(task_seconds=0.005, user_slots=8, seed=seed, faults=faults, **RATES)
    started = time.monotonic()
    with Emulator(config) as emu:
        for _ in range(kills):
            fetch(emu, targets, folder / "run", log, kill_after=rng.uniform(2.0, 6.0))
        final_code = fetch(emu, targets, folder / "run", log, kill_after=None)
        stats = emu.stats()
    elapsed = time.monotonic() - started
    with Emulator(EmulatorConfig(task_seconds=0.005, user_slots=8, **RATES)) as clean:
        fetch(clean, targets, folder / "reference", log, kill_after=None)
    with (folder / "run" / "outcomes.csv").open() as handle:
        outcomes = list(csv.DictReader(handle))
    same_files = light_curves(folder / "run") == light_curves(folder / "reference")
    states: dict[str, int] = {}
    for row in outcomes:
        states[row["state"]] = states.get(row["state"], 0) + 1
    return {
        "targets": count, "kills": kills, "final_exit_code": final_code,
        "outcome_rows": len(outcomes), "states": states,
        "one_outcome_per_row": [int(r["line"]) for r in outcomes] == list(range(2, count + 2)),
        "tasks_created": stats["tasks_created"], "tasks_live": stats["tasks_live"],
        "faults_fired": stats["faults"], "throttled": stats["throttled"],
        "files_equal_uninterrupted": same_files,
        "wall_s": round(elapsed, 1),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlasbatch-soak-") as scratch:
        os.environ["ATLASBATCH_CONFIG_DIR"] = str(Path(scratch) / "config")  # no real registry
        figures = soak(args.targets, args.kills, args.seed, Path(scratch))
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    ok = (figures["one_outcome_per_row"] and figures["tasks_created"] == args.targets
          and figures["tasks_live"] == 0 and figures["files_equal_uninterrupted"])  # fmt: skip
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
