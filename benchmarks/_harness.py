"""One row = one client on a fresh emulator: run it in its own thread, measure, compute T*.

Measurements and where they come from:

* ``makespan_s``: wall time from calling the client to its return (its own set-up included);
* ``first_result_s``, ``task_s``, ``server_span_s``, ``startup_s`` (client start to its
  first request), ``tail_s`` (last task's finish to the client's last request) and T*'s
  inputs: the emulator's task timings and request log, on its clock
  (:mod:`benchmarks._measure`);
* ``eta_error``: atlasbatch's own ETA at 25 % and 50 % of the targets final, against the
  remaining time it really took (:mod:`benchmarks.clients.atlas`); other clients have none;
* ``cpu_s_per_1k``: ``time.thread_time()`` of the client's thread (the emulator serves from
  uvicorn's thread, so its work is not in this number); for the CLI, the child's user+system
  time;
* ``peak_rss_mb``: ``getrusage(RUSAGE_SELF).ru_maxrss`` when the row ends: the peak of the
  whole process so far, emulator and earlier rows included (the scale run measures atlasbatch
  alone in a child process, see :mod:`benchmarks._scale`);
* ``throttled``, ``cap_rejections``, requests, ``tasks_left``: the emulator's own counters
  (429s of both budgets; ``tasks_left`` = ``tasks_live`` after the client returned).
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from atlasbatch.testing import Emulator
from benchmarks._measure import ServerView, bound_for, probe_latency, server_view
from benchmarks._scenarios import Scenario, make_targets, mjd_now
from benchmarks.clients import CLIENTS, ClientJob, ClientResult

__all__ = ["ROW_KEYS", "Row", "build_row", "make_job", "run_in_thread", "run_row"]

ROW_KEYS = (
    "scenario",
    "client",
    "targets",
    "time_scale",
    "makespan_s",
    "bound_s",
    "bound_term",
    "ratio",
    "task_s",
    "first_result_s",
    "eta_error",
    "throttled",
    "cap_rejections",
    "writes_per_target",
    "reads_per_target",
    "server_span_s",
    "startup_s",
    "tail_s",
    "cpu_s_per_1k",
    "peak_rss_mb",
    "tasks_left",
)
T = TypeVar("T")


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of the table; :meth:`as_json` has exactly :data:`ROW_KEYS`."""

    scenario: str
    client: str
    targets: int
    time_scale: float
    makespan_s: float
    bound_s: float
    bound_term: str
    ratio: float
    task_s: float | None
    first_result_s: float | None
    throttled: dict[str, int]
    cap_rejections: int
    writes_per_target: float
    reads_per_target: float
    server_span_s: float | None
    startup_s: float | None
    tail_s: float | None
    cpu_s_per_1k: float
    peak_rss_mb: float
    tasks_left: int
    median_task_s: float = 0.0  # the emulator's configured median (for the targets' check)
    eta_error: dict[int, float | None] = field(default_factory=dict)
    limit_hit: bool = False
    completed: int = 0
    late_429: int | None = None
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """The row as the ``--json`` file holds it."""
        client = f"{self.client} (time limit)" if self.limit_hit else self.client
        values: dict[str, Any] = {
            "scenario": self.scenario,
            "client": client,
            "targets": self.targets,
            "time_scale": self.time_scale,
            "makespan_s": round(self.makespan_s, 3),
            "bound_s": round(self.bound_s, 3),
            "bound_term": self.bound_term,
            "ratio": round(self.ratio, 4),
            "task_s": _rounded(self.task_s, 5),
            "first_result_s": _rounded(self.first_result_s, 5),
            "eta_error": {str(k): _rounded(v, 4) for k, v in self.eta_error.items()} or None,
            "throttled": dict(self.throttled),
            "cap_rejections": self.cap_rejections,
            "writes_per_target": round(self.writes_per_target, 4),
            "reads_per_target": round(self.reads_per_target, 4),
            "server_span_s": _rounded(self.server_span_s, 3),
            "startup_s": _rounded(self.startup_s, 4),
            "tail_s": _rounded(self.tail_s, 4),
            "cpu_s_per_1k": round(self.cpu_s_per_1k, 3),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "tasks_left": self.tasks_left,
        }
        assert tuple(values) == ROW_KEYS
        return values


def peak_rss_mb() -> float:
    """``ru_maxrss`` of this process in MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@dataclass(slots=True)
class Timed:
    """A call's result with the wall and thread-CPU seconds it took."""

    value: Any
    wall: float
    cpu: float


def run_in_thread(call: Callable[[], T], *, name: str) -> Timed:
    """Run ``call`` in a new thread and measure that thread alone; re-raise its exception."""
    box: dict[str, Any] = {}

    def body() -> None:
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            box["value"] = call()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc
        box["wall"] = time.perf_counter() - wall0
        box["cpu"] = time.thread_time() - cpu0

    thread = threading.Thread(target=body, name=name, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return Timed(box["value"], box["wall"], box["cpu"])


def _count(mapping: object, key: str) -> int:
    return int(mapping.get(key, 0)) if isinstance(mapping, Mapping) else 0


def make_job(scenario: Scenario, emu: Emulator, targets: int, deadline: float) -> ClientJob:
    """What a client is given for this row: the server's documented limits, never its task
    time (only the ``cli-told`` client passes ``task_seconds`` on, as ``--task-seconds``)."""
    config = scenario.config
    return ClientJob(
        base_url=emu.base_url,
        token=emu.token,
        targets=make_targets(targets),
        mjd_min=round(mjd_now() - scenario.window_days, 5),
        time_scale=scenario.time_scale,
        deadline=deadline,
        write_rate=str(config.write_rate),
        read_rate=str(config.read_rate),
        max_queued=config.max_queued,
        task_seconds=config.task_seconds,
        downloads_per_second=scenario.downloads_per_second,
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class Measured:
    """A client's own measurements: wall and CPU seconds, peak RSS."""

    wall: float
    cpu: float
    rss_mb: float


def build_row(
    scenario: Scenario,
    client: str,
    targets: int,
    stats: Mapping[str, object],
    *,
    measured: Measured,
    view: ServerView,
    latency: float,
) -> Row:
    """Turn measurements, the server's view and its counters into a row."""
    throttled = stats.get("throttled", {})
    scoped = stats.get("scope_requests", {})
    n = max(targets, 1)
    terms = bound_for(scenario.config, targets, view=view, latency=latency)
    term = max(terms, key=terms.__getitem__)
    bound = terms[term]
    return Row(
        scenario=scenario.name, client=client, targets=targets,
        time_scale=scenario.time_scale, makespan_s=measured.wall, bound_s=bound,
        bound_term=term, ratio=measured.wall / bound if bound > 0 else float("nan"),
        task_s=view.mean_task, first_result_s=view.first_result,
        throttled={"write": _count(throttled, "write"), "read": _count(throttled, "read")},
        cap_rejections=int(str(stats.get("cap_rejections", 0))),
        writes_per_target=_count(scoped, "write") / n,
        reads_per_target=_count(scoped, "read") / n,
        server_span_s=view.span, startup_s=view.startup, tail_s=view.tail,
        cpu_s_per_1k=measured.cpu * 1000.0 / n,
        peak_rss_mb=measured.rss_mb, tasks_left=int(str(stats.get("tasks_live", 0))),
        median_task_s=scenario.median_task_seconds,
    )  # fmt: skip


def apply_result(row: Row, result: ClientResult) -> Row:
    """Copy what the client itself reported onto its row."""
    row.limit_hit = result.limit_hit
    row.completed = result.completed
    row.late_429 = result.late_429
    row.eta_error = dict(result.eta_error)
    row.notes = [*result.notes[:5]]
    if result.failed:
        row.notes.insert(0, f"{result.failed} targets failed")
    return row


def run_row(scenario: Scenario, client: str) -> Row:
    """``client`` against a fresh emulator configured for ``scenario``."""
    targets = scenario.targets_for(client)
    with Emulator(scenario.config) as emu:
        latency = probe_latency(emu)
        emu.reset_stats()
        job = make_job(scenario, emu, targets, time.monotonic() + scenario.time_limit)
        start = emu.now()
        timed = run_in_thread(lambda: CLIENTS[client](job), name=f"bench-{client}")
        stats = emu.stats()
        view = server_view(emu, client_start=start)
    result: ClientResult = timed.value
    cpu = timed.cpu if result.cpu_s is None else result.cpu_s
    measured = Measured(wall=timed.wall, cpu=cpu, rss_mb=peak_rss_mb())
    row = build_row(scenario, client, targets, stats, measured=measured, view=view, latency=latency)
    return apply_result(row, result)
