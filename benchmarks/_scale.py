"""The scale run: atlasbatch alone at 100,000 targets, in a child process (the full plan).

The emulator serves from this process; the client runs in a spawned child, so the child's
``ru_maxrss`` and main-thread CPU time are atlasbatch's own (plus the interpreter and the
libraries it imports), and the two do not share one GIL. The client cost of the library,
the CLI and the outputs, each in its own process, is :mod:`benchmarks._cost`.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import queue
import resource
import time
from typing import Any

from atlasbatch.testing import Emulator
from benchmarks._harness import Measured, Row, build_row, make_job
from benchmarks._measure import probe_latency, server_view
from benchmarks._scenarios import Scenario, make_targets
from benchmarks.clients import ClientJob
from benchmarks.clients.atlas import run_atlasbatch

__all__ = ["run_scale"]


def _child(job: ClientJob, count: int, results: Any) -> None:
    """In the child: build the targets, run atlasbatch, report wall, CPU and peak RSS."""
    job = dataclasses.replace(job, targets=make_targets(count))
    wall0, cpu0 = time.perf_counter(), time.thread_time()
    try:
        result = run_atlasbatch(job)
        error = None
    except Exception as exc:  # reported to the parent, which prints it
        result, error = None, repr(exc)
    wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    results.put({"result": result, "error": error, "wall": wall, "cpu": cpu, "rss_kib": rss_kib})


def run_scale(scenario: Scenario) -> Row:
    """One atlasbatch run of ``scenario.size`` targets, measured in a child process."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    with Emulator(scenario.config) as emu:
        latency = probe_latency(emu)
        emu.reset_stats()
        job = make_job(scenario, emu, 0, time.monotonic() + scenario.time_limit)
        start = emu.now()
        child = context.Process(
            target=_child, args=(job, scenario.size, results), name="bench-scale"
        )
        child.start()
        try:
            payload = results.get(timeout=scenario.time_limit + 120.0)
        except queue.Empty:
            payload = {"result": None, "error": "no answer from the child", "wall": 0.0,
                       "cpu": 0.0, "rss_kib": 0}  # fmt: skip
        finally:
            child.join(timeout=30.0)
            if child.is_alive():
                child.terminate()
                child.join(timeout=10.0)
        stats = emu.stats()
        view = server_view(emu, client_start=start)
    measured = Measured(wall=payload["wall"], cpu=payload["cpu"], rss_mb=payload["rss_kib"] / 1024)
    row = build_row(
        scenario, "atlasbatch", scenario.size, stats, measured=measured, view=view,
        latency=latency,
    )  # fmt: skip
    result = payload["result"]
    if payload["error"]:
        row.notes.append(str(payload["error"]))
    if result is not None:
        row.limit_hit = result.limit_hit
        row.completed = result.completed
        row.late_429 = result.late_429
        if result.failed:
            row.notes.append(f"{result.failed} targets failed")
    return row
