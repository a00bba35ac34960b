"""One row = one client on a fresh emulator: run it in its own thread, measure, compute T*.

Measurements and where they come from:

* ``makespan_s``: wall time from calling the client to its return (its own set-up included);
* ``cpu_s_per_1k``: ``time.thread_time()`` of the client's thread. The emulator serves from
  another thread (uvicorn's), so its work is not in this number; atlasbatch and the naive
  client do everything on their event loop in that thread;
* ``peak_rss_mb``: ``getrusage(RUSAGE_SELF).ru_maxrss`` when the row ends: the peak of the
  whole process so far, emulator and earlier rows included (the scale run measures atlasbatch
  alone in a child process, see :mod:`benchmarks._scale`);
* ``throttled``, ``cap_rejections``, requests, ``tasks_left``: the emulator's own counters
  (429s of both budgets; ``tasks_left`` = ``tasks_live`` after the client returned).
"""

from __future__ import annotations

import resource
import statistics
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx

from atlasbatch.testing import Emulator, EmulatorConfig
from benchmarks._bound import BoundInputs, bound_seconds
from benchmarks._scenarios import Scenario, make_targets, mjd_now
from benchmarks.clients import CLIENTS, ClientJob, ClientResult

__all__ = ["ROW_KEYS", "Row", "run_in_thread", "run_row"]

ROW_KEYS = (
    "scenario",
    "client",
    "targets",
    "makespan_s",
    "bound_s",
    "ratio",
    "throttled",
    "cap_rejections",
    "writes_per_target",
    "reads_per_target",
    "cpu_s_per_1k",
    "peak_rss_mb",
    "tasks_left",
)
_PROBES = 15
T = TypeVar("T")


@dataclass(slots=True, kw_only=True)
class Row:
    """One line of the table; :meth:`as_json` has exactly :data:`ROW_KEYS`."""

    scenario: str
    client: str
    targets: int
    makespan_s: float
    bound_s: float
    ratio: float
    throttled: dict[str, int]
    cap_rejections: int
    writes_per_target: float
    reads_per_target: float
    cpu_s_per_1k: float
    peak_rss_mb: float
    tasks_left: int
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
            "makespan_s": round(self.makespan_s, 3),
            "bound_s": round(self.bound_s, 3),
            "ratio": round(self.ratio, 4),
            "throttled": dict(self.throttled),
            "cap_rejections": self.cap_rejections,
            "writes_per_target": round(self.writes_per_target, 4),
            "reads_per_target": round(self.reads_per_target, 4),
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


def probe_latency(emu: Emulator) -> float:
    """Median loopback round trip to the emulator (its unthrottled stats endpoint)."""
    url = f"{emu.base_url}/_emulator/stats.json"
    samples = []
    with httpx.Client(timeout=10.0) as http:
        for _ in range(_PROBES):
            start = time.perf_counter()
            http.get(url).raise_for_status()
            samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def measured_task_seconds(emu: Emulator, default: float) -> float:
    """Mean run time of the tasks the emulator ran (its private store), else ``default``."""
    store = getattr(emu, "_store", None)
    if store is None:
        return default
    with store.lock:
        spans = [
            task.finished_at - task.started_at
            for task in store.all_tasks(include_archived=True)
            if task.started_at is not None and task.finished_at is not None
        ]
    return statistics.fmean(spans) if spans else default


def _count(mapping: object, key: str) -> int:
    return int(mapping.get(key, 0)) if isinstance(mapping, Mapping) else 0


def bound_for(scenario: Scenario, targets: int, *, task_seconds: float, latency: float) -> float:
    """T* of ``design.md`` (+ the delete term) for this scenario, size and measured times."""
    from atlasbatch.testing import parse_rate  # noqa: PLC0415

    write = parse_rate(str(scenario.emulator["write_rate"]))
    emu = scenario.emulator
    inputs = BoundInputs(
        targets=targets,
        write_requests=write.num_requests,
        write_window=write.duration,
        user_slots=min(int(emu.get("user_slots", 1)), int(emu.get("slots", 16))),
        task_seconds=task_seconds,
        latency=3 * latency,  # hear of the finish, download, delete
        queue_cap=int(emu.get("max_queued", 500)),
        queue_wait=0.0,  # a free slot takes a task at once
        refill_delay=latency,  # the least time to hear of a start
    )
    return bound_seconds(inputs)


def make_job(scenario: Scenario, emu: Emulator, targets: int, deadline: float) -> ClientJob:
    """What a client is given for this row."""
    emu_config = scenario.emulator
    return ClientJob(
        base_url=emu.base_url,
        token=emu.token,
        targets=make_targets(targets),
        mjd_min=round(mjd_now() - scenario.window_days, 5),
        time_scale=scenario.time_scale,
        deadline=deadline,
        write_rate=str(emu_config["write_rate"]),
        read_rate=str(emu_config["read_rate"]),
        max_queued=int(emu_config["max_queued"]),
        task_seconds=float(emu_config["task_seconds"]),
        downloads_per_second=scenario.downloads_per_second,
    )


def build_row(
    scenario: Scenario,
    client: str,
    targets: int,
    stats: Mapping[str, object],
    *,
    wall: float,
    cpu: float,
    rss_mb: float,
    bound: float,
) -> Row:
    """Turn measurements and emulator counters into a row."""
    throttled = stats.get("throttled", {})
    scoped = stats.get("scope_requests", {})
    n = max(targets, 1)
    return Row(
        scenario=scenario.name,
        client=client,
        targets=targets,
        makespan_s=wall,
        bound_s=bound,
        ratio=wall / bound if bound > 0 else float("nan"),
        throttled={"write": _count(throttled, "write"), "read": _count(throttled, "read")},
        cap_rejections=int(str(stats.get("cap_rejections", 0))),
        writes_per_target=_count(scoped, "write") / n,
        reads_per_target=_count(scoped, "read") / n,
        cpu_s_per_1k=cpu * 1000.0 / n,
        peak_rss_mb=rss_mb,
        tasks_left=int(str(stats.get("tasks_live", 0))),
    )


def run_row(scenario: Scenario, client: str) -> Row:
    """``client`` against a fresh emulator configured for ``scenario``."""
    targets = scenario.targets_for(client)
    config = EmulatorConfig(**scenario.emulator)
    with Emulator(config) as emu:
        latency = probe_latency(emu)
        emu.reset_stats()
        job = make_job(scenario, emu, targets, time.monotonic() + scenario.time_limit)
        timed = run_in_thread(lambda: CLIENTS[client](job), name=f"bench-{client}")
        stats = emu.stats()
        task_seconds = measured_task_seconds(emu, float(config.task_seconds))
    result: ClientResult = timed.value
    bound = bound_for(scenario, targets, task_seconds=task_seconds, latency=latency)
    row = build_row(
        scenario, client, targets, stats,
        wall=timed.wall, cpu=timed.cpu, rss_mb=peak_rss_mb(), bound=bound,
    )  # fmt: skip
    row.limit_hit = result.limit_hit
    row.completed = result.completed
    row.late_429 = result.late_429
    row.notes = [*result.notes[:5]]
    if result.failed:
        row.notes.insert(0, f"{result.failed} targets failed")
    return row
