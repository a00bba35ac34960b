"""What the emulator saw of one row, on its own clock, and the bound T* that follows from it.

Everything here is read from the server's side, so it is measured the same way for every
client: the task timings (:meth:`Emulator.task_timings`: exact submit, start and finish
instants) give the measured task times S_i and the first finish; the request log
(:meth:`Emulator.requests`) gives the first result download and the span of the run.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import httpx

from atlasbatch.testing import Emulator, EmulatorConfig, RequestRecord
from benchmarks._bound import BoundInputs, bound_terms, first_tick

__all__ = ["ServerView", "bound_for", "probe_latency", "server_view"]

_PROBES = 15
_RESULT_PATHS = ("/static/results/", "/data.txt")


@dataclass(frozen=True, slots=True)
class ServerView:
    """One row as the server saw it (seconds on the emulator's clock)."""

    task_times: list[float]  # finish - start of every task of the user that finished
    first_start: float | None  # first task's start
    first_finish: float | None  # first task's finish
    first_download: float | None  # first result file served (None: none, or log overflowed)
    first_request: float | None  # the client's first request
    last_finish: float | None  # last task's finish
    last_request: float | None  # the client's last request
    client_start: float  # the emulator's clock when the client was called

    @property
    def first_result(self) -> float | None:
        """Time to first result: the first download minus the first task's finish."""
        if self.first_download is None or self.first_finish is None:
            return None
        return self.first_download - self.first_finish

    @property
    def span(self) -> float | None:
        """From the client's first request to its last."""
        if self.first_request is None or self.last_request is None:
            return None
        return self.last_request - self.first_request

    @property
    def startup(self) -> float | None:
        """From the client's start to its first request (its set-up)."""
        return None if self.first_request is None else self.first_request - self.client_start

    @property
    def tail(self) -> float | None:
        """From the last task's finish to the client's last request (hear, fetch, delete)."""
        if self.last_finish is None or self.last_request is None:
            return None
        return self.last_request - self.last_finish

    @property
    def mean_task(self) -> float | None:
        """Mean measured task time; None if no task finished."""
        return statistics.fmean(self.task_times) if self.task_times else None


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


def _is_download(record: RequestRecord) -> bool:
    return (
        record.method == "GET"
        and record.status == 200
        and (any(part in record.path for part in _RESULT_PATHS))
    )


def server_view(emu: Emulator, *, client_start: float) -> ServerView:
    """Read the task timings and the request log of the emulator's default user."""
    user = emu.config.username
    timings = [t for t in emu.task_timings() if t.username == user]
    starts = [t.started_at for t in timings if t.started_at is not None]
    finished = [t for t in timings if t.finished_at is not None and t.started_at is not None]
    records = emu.requests()
    # a full log may have dropped the oldest records, the first download among them
    overflowed = len(records) >= emu.config.request_log_size
    downloads = [r.time for r in records if _is_download(r)]
    return ServerView(
        task_times=[t.finished_at - t.started_at for t in finished],  # type: ignore[operator]
        first_start=min(starts, default=None),
        first_finish=min((t.finished_at for t in finished), default=None),  # type: ignore[type-var]
        first_download=None if overflowed or not downloads else downloads[0],
        first_request=None if overflowed or not records else records[0].time,
        last_finish=max((t.finished_at for t in finished), default=None),  # type: ignore[type-var]
        last_request=records[-1].time if records else None,
        client_start=client_start,
    )


def bound_for(
    config: EmulatorConfig, targets: int, *, view: ServerView, latency: float
) -> dict[str, float]:
    """The terms of T* for this emulator, size and what the server measured."""
    write = config.write
    assert write is not None, "every scenario throttles writes"
    inputs = BoundInputs(
        targets=targets,
        write_requests=write.num_requests,
        write_window=write.duration,
        user_slots=min(config.user_slots, config.slots),
        task_seconds=config.task_seconds,
        # the tasks of this row (tasks that never finished count at the mean of the others)
        task_times=tuple(view.task_times[:targets]),
        user_gap=config.user_gap,
        first_start=first_tick(
            client_start=view.client_start,
            first_start=view.first_start,
            idle_poll=config.runner_idle_poll,
        ),
        latency=3 * latency,  # hear of the finish, download, delete
        queue_cap=config.max_queued,
        queue_wait=0.0,  # a free slot takes a task at once
        refill_delay=latency,  # the least time to hear of a start
    )
    return bound_terms(inputs)
