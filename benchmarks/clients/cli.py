"""The command line, as a user runs it: ``atlasbatch fetch`` in a child process.

``cli`` gives it the server's documented limits only; ``cli-told`` adds
``--task-seconds S`` with the emulator's median task time (the oracle the library no longer
needs). The token goes through ``$ATLAS_TOKEN``, the run registry into a temporary config
folder, the run directory into a temporary folder; plots are off (``--no-plots``), so the
child's time is the fetch and the tables. Its CPU time is the child's user + system time.
"""

from __future__ import annotations

import csv
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.clients._common import ClientJob, ClientResult

__all__ = ["run_cli", "run_cli_told"]

_OK = ("downloaded", "no_data")


def _targets_file(folder: Path, job: ClientJob) -> Path:
    path = folder / "targets.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "ra", "dec"])
        writer.writerows([t["name"], t["ra"], t["dec"]] for t in job.targets)
    return path


def _command(job: ClientJob, targets: Path, out: Path, *, told: bool) -> list[str]:
    command = [
        sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
        "--base-url", job.base_url, "--write-rate", job.write_rate,
        "--read-rate", job.read_rate, "--max-queued", str(job.max_queued),
        "--mjd-min", str(job.mjd_min), "--no-plots", "--progress", "plain",
    ]  # fmt: skip
    if told:
        command += ["--task-seconds", str(job.task_seconds)]
    return command


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _count_outcomes(out: Path, result: ClientResult) -> None:
    with (out / "outcomes.csv").open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row["state"] in _OK:
                result.completed += 1
            else:
                result.failed += 1
                result.notes.append(f"{row['name']}: {row['state']} {row['error']}")


def _run(job: ClientJob, *, told: bool) -> ClientResult:
    result = ClientResult()
    with tempfile.TemporaryDirectory(prefix="atlasbatch-bench-cli-") as tmp:
        folder = Path(tmp)
        env = {**os.environ, "ATLAS_TOKEN": job.token,
               "ATLASBATCH_CONFIG_DIR": str(folder / "config")}  # fmt: skip
        out = folder / "run"
        command = _command(job, _targets_file(folder, job), out, told=told)
        cpu0 = _children_cpu()
        with subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True) as child:  # fmt: skip
            try:
                _, stderr = child.communicate(timeout=max(0.0, job.deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()  # our own child, by its handle
                child.communicate()
                result.limit_hit = True
                return result
        result.cpu_s = _children_cpu() - cpu0
        if child.returncode != 0:
            result.notes.append(f"exit {child.returncode}: {stderr.strip()[-300:]}")
        if (out / "outcomes.csv").exists():
            _count_outcomes(out, result)
    return result


def run_cli(job: ClientJob) -> ClientResult:
    """``atlasbatch fetch`` with the server's limits only."""
    return _run(job, told=False)


def run_cli_told(job: ClientJob) -> ClientResult:
    """``atlasbatch fetch`` told the task time (``--task-seconds``)."""
    return _run(job, told=True)
