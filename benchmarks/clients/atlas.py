"""atlasbatch itself, not told the task time, with its progress (ETA) sampled on the way.

The settings are the library's defaults for the real server with every duration scaled by
the emulator's factor (``window_margin`` 0.25 s -> 0.025 s at 0.1, ``poll_max_interval``,
the retry waits …) and every rate per second divided by it (``downloads_per_second``), plus
the server's documented limits (write and read rates, queue cap). Nothing else: the task-time
prior stays the library's default, one write window, which scales with the rates by itself.
The scale run relaxes the download pace like the rates (``ClientJob.downloads_per_second``).

``Session`` has no progress hook, so this client does what ``Session.run`` does with the
same private parts the CLI uses: an in-memory ledger (``open_run(None)``), the account
check, and :class:`atlasbatch._engine.pipeline.Pipeline`, whose ``progress().eta_seconds`` it
reads when 25 % and 50 % of the targets are final.
"""

from __future__ import annotations

import dataclasses
import math
import time

import anyio
import httpx

import atlasbatch
from atlasbatch import AtlasClient, Outcome, Rate, Settings, State, read_targets
from atlasbatch._engine.identity import check_account
from atlasbatch._engine.pipeline import Pipeline
from atlasbatch._runs.rundir import open_run, record_targets
from benchmarks.clients._common import ClientJob, ClientResult

__all__ = ["atlas_settings", "run_atlasbatch"]

ETA_MARKS = (25, 50)  # per cent of targets final when the ETA is sampled
_DURATIONS = ("window_margin", "poll_min_interval", "poll_max_interval", "retry_max_wait",
              "retry_total_seconds")  # fmt: skip


def atlas_settings(job: ClientJob) -> Settings:
    """The library defaults, time-scaled to the emulator, with its documented limits.

    Every default that is a duration is multiplied by the time scale and every default that
    is a rate per second divided by it; ``expected_task_seconds`` is left at its default.
    """
    default = Settings()
    scale = job.time_scale
    values: dict[str, object] = {
        name: getattr(default, name) * scale for name in _DURATIONS if hasattr(default, name)
    }
    values.update(
        base_url=job.base_url,
        write_rate=Rate.parse(job.write_rate),
        read_rate=Rate.parse(job.read_rate),
        max_queued=job.max_queued,
        downloads_per_second=job.downloads_per_second or default.downloads_per_second / scale,
        timeout=max(default.timeout * scale, 5.0),
    )
    return dataclasses.replace(default, **values)  # type: ignore[arg-type]


class _Recording(httpx.AsyncBaseTransport):
    """Passes requests through and notes when 429s came (seconds since the run began)."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self._start = time.monotonic()
        self.throttled_at: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if response.status_code == 429:
            self.throttled_at.append(time.monotonic() - self._start)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _EtaProbe:
    """Collects outcomes; samples the pipeline's ETA when 25 % / 50 % of targets are final.

    The pipeline calls ``on_outcome`` just before it books the target as final, so the
    sample is taken by a separate task (``watch``) that runs after the booking; it ends when
    ``marks`` (the sending side) is closed.
    """

    def __init__(self, total: int) -> None:
        self.total = total
        self.outcomes: list[Outcome] = []
        self._due = {mark: max(1, math.ceil(total * mark / 100)) for mark in ETA_MARKS}
        self.marks, self._receive = anyio.create_memory_object_stream[int](math.inf)
        self.samples: dict[int, tuple[float | None, float]] = {}  # mark -> (eta, when)
        self.done_at: float | None = None

    async def on_outcome(self, outcome: Outcome) -> None:
        self.outcomes.append(outcome)
        count = len(self.outcomes)
        for mark, due in self._due.items():
            if count == due:
                self.marks.send_nowait(mark)
        if count == self.total:
            self.done_at = time.monotonic()

    async def watch(self, pipeline: Pipeline) -> None:
        async with self._receive:
            async for mark in self._receive:
                self.samples[mark] = (pipeline.progress().eta_seconds, time.monotonic())

    def errors(self) -> dict[int, float | None]:
        """(ETA − actual remaining) / actual remaining per mark; None: no estimate yet."""
        if self.done_at is None:
            return {}
        errors: dict[int, float | None] = {}
        for mark, (eta, at) in sorted(self.samples.items()):
            actual = self.done_at - at
            errors[mark] = None if eta is None or actual <= 0 else (eta - actual) / actual
        return errors


async def _pipeline_run(client: AtlasClient, job: ClientJob, probe: _EtaProbe) -> None:
    """``Session.run``'s steps for targets without a run directory, with ``probe`` hooked in."""
    targets = read_targets(job.targets, mjd_min=job.mjd_min)
    with open_run(None, base_url=client.settings.base_url) as ledger:
        record_targets(ledger, targets)
        await check_account(client, ledger)
        pipeline = Pipeline(client, ledger, keep_data=False, on_outcome=probe.on_outcome)
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe.watch, pipeline)
            with probe.marks:  # closed when the run ends, however it ends: the watch stops
                await pipeline.run()


async def _run(job: ClientJob) -> ClientResult:
    result = ClientResult()
    settings = atlas_settings(job)
    transport = _Recording()
    probe = _EtaProbe(len(job.targets))
    with anyio.move_on_after(max(0.0, job.deadline - time.monotonic())) as scope:
        async with atlasbatch.Session(
            token=job.token, settings=settings, transport=transport
        ) as session:
            await _pipeline_run(session.client, job, probe)
            throttled = session.client.writes.throttled + session.client.reads.throttled
    result.late_429 = sum(1 for t in transport.throttled_at if t > settings.write_rate.seconds)
    if scope.cancelled_caught:
        result.limit_hit = True
        result.completed = len(probe.outcomes)
        return result
    result.eta_error = probe.errors()
    for outcome in probe.outcomes:
        if outcome.state in (State.DOWNLOADED, State.NO_DATA):
            result.completed += 1
        else:
            result.failed += 1
            result.notes.append(f"{outcome.target.name}: {outcome.state} {outcome.error}")
    if throttled:
        result.notes.append(f"client saw {throttled} throttled requests")
    return result


def run_atlasbatch(job: ClientJob) -> ClientResult:
    """One pipeline run on a fresh event loop in the calling thread."""
    return anyio.run(_run, job)
