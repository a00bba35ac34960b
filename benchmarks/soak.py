"""Kill-and-resume soak with outages: `atlasbatch fetch` SIGKILLed, the site down, resumed.

    python benchmarks/soak.py [--targets 2000] [--kills 20] [--seed 1] [--json FILE] [--keep DIR]

Time runs 10x fast, as in the other benchmarks: the emulator is the real server's defaults
scaled by 0.1 (writes 60/6s, reads 600/6s, the runner's polls, gaps and cancel checks), with
16 running tasks per user and 10 ms tasks, so the write budget sets the pace (2,000 targets:
20 POSTs + 2,000 DELETEs, at least 202 s). Lost POST answers, dropped DELETEs and 5xx stay on
throughout. The CLI runs as a child process exactly as a user runs it — the limits and
nothing else (no task time, no retry settings) — and is SIGKILLed after a random 3-8 s
(it needs ~2 s to start), ``--kills`` times; then one run goes to the end.

Three outages of the whole site (API and result files) hit those runs (:data:`PLAN`):

1. Apache's 503 page for 20 s from t = 20 s, across a few kills;
2. every connection dropped for 240 s from t = 75 s: across the last kills and the start
   of the final run. The old client (before the shared outage gate) gave up after 10 tries
   with full-jitter waits capped at 60 s, at most :data:`OLD_RETRY_BUDGET` = 183.5 s of the
   CLI's unscaled backoff; at the benchmarks' scale 240 s is 40 minutes against its
   15-minute limit. Either way it would have failed every target in flight;
3. the 503 page for 30 s once the server has deleted 60 % of the tasks (in the final run).

The invariants of issues 5 and 11 are then checked and printed: one outcome per row, all
downloaded, exactly one task per target created, none left on the server, and files
byte-identical to an uninterrupted run on a clean emulator.

Each CLI child imports the package afresh, so while others edit the working tree run it
from a snapshot: ``git archive HEAD src benchmarks | tar -x -C SNAP`` and
``PYTHONPATH=SNAP/src:SNAP python SNAP/benchmarks/soak.py`` (about 12 minutes).
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
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from atlasbatch.testing import TEST_TIMING, Emulator, EmulatorConfig, Faults, OutageMode
from atlasbatch.testing import RequestRecord as Record

SCALE = 0.1  # the benchmarks' time scale: 60/min becomes 60/6s
KILL_AFTER = (3.0, 8.0)  # seconds after the start of a killed run
FINAL_TIMEOUT = 1800.0  # seconds; the final run taking longer is a hang
OLD_RETRY_BUDGET = sum(min(60.0, 0.5 * 2**k) for k in range(9))  # 9 waits between 10 tries
REFERENCE_RATES = ("1000/1s", "10000/1s")  # the clean run only produces files to compare


@dataclass(frozen=True, slots=True)
class PlannedOutage:
    """The whole site down (``mode``) for ``seconds``, from ``at`` s on the emulator's clock,
    or once the server has deleted ``after_share`` of the targets' tasks."""

    mode: OutageMode
    seconds: float
    at: float | None = None
    after_share: float | None = None

    def due(self, emu: Emulator, targets: int) -> bool:
        """Whether this outage should start now."""
        if self.at is not None:
            return emu.now() >= self.at
        return emu.stats()["tasks_deleted"] >= (self.after_share or 0.0) * targets


PLAN = (
    PlannedOutage("503", 20.0, at=20.0),
    PlannedOutage("drop", 240.0, at=75.0),
    PlannedOutage("503", 30.0, after_share=0.6),
)


class OutageDriver:
    """Starts and ends the planned outages in order, from a thread; records what happened."""

    def __init__(self, emu: Emulator, plan: tuple[PlannedOutage, ...], targets: int) -> None:
        self.emu, self.plan, self.targets = emu, plan, targets
        self.windows: list[tuple[float, float, OutageMode]] = []  # start, end, mode
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-outages", daemon=True)

    def __enter__(self) -> OutageDriver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10.0)
        self.emu.end_outage()

    def _run(self) -> None:
        for planned in self.plan:
            if not self._wait_until(planned):
                return
            start = self.emu.now()
            self.emu.outage(planned.mode)
            stopped = self._stop.wait(planned.seconds)
            self.emu.end_outage()
            self.windows.append((start, self.emu.now(), planned.mode))
            if stopped:
                return

    def _wait_until(self, planned: PlannedOutage) -> bool:
        for _ in range(int(2 * FINAL_TIMEOUT / 0.1)):  # bounded; the soak stops it sooner
            if self._stop.is_set():
                return False
            if planned.due(self.emu, self.targets):
                return True
            self._stop.wait(0.1)
        return False


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


Life = dict[str, Any]  # one `atlasbatch fetch` process: start, end, kill_after, exit_code


def fetch(emu: Emulator, targets: Path, out: Path, log: Path, kill_after: float | None) -> Life:
    """One `atlasbatch fetch` child, as a user types it; SIGKILL after ``kill_after`` s, else
    wait (:data:`FINAL_TIMEOUT` at most: exit code ``None`` then, a hang). Its life on the
    emulator's clock and its exit code."""
    config = emu.config
    command = [sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
               "--base-url", emu.base_url, "--write-rate", str(config.write_rate),
               "--read-rate", str(config.read_rate),
               "--no-plots", "--progress", "plain"]  # fmt: skip
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    start = emu.now()
    code: int | None = None
    with log.open("ab") as err:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
        try:
            if kill_after is None:
                code = child.wait(timeout=FINAL_TIMEOUT)
            else:
                time.sleep(kill_after)
                child.send_signal(signal.SIGKILL)
                code = child.wait(timeout=60)
        except subprocess.TimeoutExpired:
            code = None
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
    return {"start": start, "end": emu.now(), "kill_after": kill_after, "exit_code": code}


def light_curves(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "lightcurves").glob("*.txt"))}


def soak_config(seed: int) -> EmulatorConfig:
    """The real server's defaults at the benchmarks' scale, rate-bound, with faults on."""
    faults = Faults(drop_after_commit_rate=0.05, drop_before_commit_rate=0.02,
                    server_error_rate=0.02)  # fmt: skip
    real = EmulatorConfig(slots=16, user_slots=16, task_seconds=0.1, seed=seed, faults=faults,
                          request_log_size=1_000_000)  # fmt: skip
    return real.scaled(SCALE)


def outage_figures(
    windows: list[tuple[float, float, OutageMode]], lives: list[Life], log: list[Record]
) -> list[dict[str, Any]]:
    """Per outage: its length, the requests it refused, the runs it spanned (a kill inside
    it means the killed process was waiting it out), and how long after its end the first
    request was answered normally (the backoff's lag)."""
    figures = []
    for start, end, mode in windows:
        refused = [r for r in log if (r.fault or "").startswith("outage") and start <= r.time]
        refused = [r for r in refused if r.time <= end]
        answered = [r.time for r in log if r.time > end and r.status is not None and not r.fault]
        figures.append({
            "mode": mode, "start_s": round(start, 1), "length_s": round(end - start, 1),
            "requests": len(refused), "by_method": dict(Counter(r.method for r in refused)),
            "runs_spanned": [i for i, life in enumerate(lives)
                             if life["start"] < end and life["end"] > start],
            "kills_inside": [i for i, life in enumerate(lives)
                             if life["kill_after"] is not None and start <= life["end"] <= end],
            "first_answer_after_end_s": round(min(answered) - end, 1) if answered else None,
        })  # fmt: skip
    return figures


def run_lives(emu: Emulator, targets: Path, folder: Path, kills: int, seed: int) -> list[Life]:
    """``kills`` killed runs, then one to the end; each run's life and its requests."""
    rng, log = random.Random(seed), folder / "stderr.log"
    lives = [fetch(emu, targets, folder / "run", log, rng.uniform(*KILL_AFTER))
             for _ in range(kills)]  # fmt: skip
    lives.append(fetch(emu, targets, folder / "run", log, kill_after=None))
    records = emu.requests()
    for life in lives:
        life["requests"] = sum(1 for r in records if life["start"] <= r.time <= life["end"])
    return lives


def soak(
    count: int, kills: int, seed: int, folder: Path, plan: tuple[PlannedOutage, ...] = PLAN
) -> dict[str, Any]:
    """Run the soak in ``folder``; the figures."""
    targets = targets_file(folder, count)
    started = time.monotonic()
    with Emulator(soak_config(seed)) as emu:
        with OutageDriver(emu, plan, count) as driver:
            lives = run_lives(emu, targets, folder, kills, seed)
        stats, records = emu.stats(), emu.requests()
    elapsed = time.monotonic() - started
    clean = EmulatorConfig(slots=16, user_slots=16, task_seconds=0.001, **TEST_TIMING,
                           write_rate=REFERENCE_RATES[0], read_rate=REFERENCE_RATES[1])  # fmt: skip
    with Emulator(clean) as reference:
        fetch(reference, targets, folder / "reference", folder / "stderr.log", kill_after=None)
    with (folder / "run" / "outcomes.csv").open() as handle:
        outcomes = list(csv.DictReader(handle))
    same_files = light_curves(folder / "run") == light_curves(folder / "reference")
    return {
        "targets": count, "kills": kills, "seed": seed, "wall_s": round(elapsed, 1),
        "final_exit_code": lives[-1]["exit_code"],
        "final_run_s": round(lives[-1]["end"] - lives[-1]["start"], 1),
        "killed_runs_that_sent_nothing": sum(1 for life in lives[:-1] if not life["requests"]),
        "exit_codes_of_killed_runs": dict(Counter(str(life["exit_code"]) for life in lives[:-1])),
        "outages_planned": len(plan),
        "outages": outage_figures(driver.windows, lives, records),
        "old_retry_budget_s": OLD_RETRY_BUDGET,
        "outcome_rows": len(outcomes), "states": dict(Counter(r["state"] for r in outcomes)),
        "one_outcome_per_row": [int(r["line"]) for r in outcomes] == list(range(2, count + 2)),
        "tasks_created": stats["tasks_created"], "tasks_live": stats["tasks_live"],
        "requests": stats["requests"], "throttled": stats["throttled"],
        "faults_fired": stats["faults"],
        "files_equal_uninterrupted": same_files,
    }  # fmt: skip


def passed(figures: dict[str, Any]) -> bool:
    """Every invariant held, and every planned outage really happened."""
    count = figures["targets"]
    return bool(
        figures["final_exit_code"] == 0
        and figures["one_outcome_per_row"]
        and figures["states"] == {"downloaded": count}
        and figures["tasks_created"] == count
        and figures["tasks_live"] == 0
        and figures["files_equal_uninterrupted"]
        and len(figures["outages"]) == figures["outages_planned"]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=2000)
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", help="write the figures here too")
    parser.add_argument("--keep", help="work in this (new) folder and keep it, for a post-mortem")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="atlasbatch-soak-") as scratch:
        folder = Path(args.keep or scratch)
        folder.mkdir(parents=True, exist_ok=True)
        os.environ["ATLASBATCH_CONFIG_DIR"] = str(Path(scratch) / "config")  # no real registry
        figures = soak(args.targets, args.kills, args.seed, folder)
    figures["passed"] = passed(figures)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).write_text(text + "\n")
    return 0 if figures["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
