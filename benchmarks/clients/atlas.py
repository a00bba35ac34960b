"""atlasbatch itself, through the public :class:`atlasbatch.Session` API.

The settings are the library's defaults for the real server with every time scaled by the
emulator's factor (``window_margin`` 0.25 s -> 0.025 s, ``poll_min_interval`` 1 s -> 0.1 s,
``downloads_per_second`` 20 -> 200, …), the emulator's limits, and the task time the
emulator is configured with as ``expected_task_seconds`` (what a user who knows the
server's typical runtime would pass). The scale run relaxes the download pace like the
rates (``ClientJob.downloads_per_second``).
"""

from __future__ import annotations

import dataclasses
import time

import anyio
import httpx

import atlasbatch
from atlasbatch import Rate, Settings, State
from benchmarks.clients._common import ClientJob, ClientResult

__all__ = ["atlas_settings", "run_atlasbatch"]


def atlas_settings(job: ClientJob) -> Settings:
    """The library defaults, time-scaled to the emulator, with its limits.

    Every default that is a duration is multiplied by the time scale and every default that
    is a rate per second divided by it; knobs this version of the library lacks are skipped.
    """
    default = Settings()
    scale = job.time_scale
    durations = (
        "window_margin",
        "poll_min_interval",
        "poll_max_interval",
        "retry_max_wait",
        "retry_total_seconds",
        "stall_audit_seconds",
    )
    values: dict[str, object] = {
        name: getattr(default, name) * scale for name in durations if hasattr(default, name)
    }
    if hasattr(default, "downloads_per_second"):
        values["downloads_per_second"] = job.downloads_per_second or (
            default.downloads_per_second / scale
        )
    values.update(
        base_url=job.base_url,
        write_rate=Rate.parse(job.write_rate),
        read_rate=Rate.parse(job.read_rate),
        max_queued=job.max_queued,
        expected_task_seconds=max(job.task_seconds, 1e-3),
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


async def _run(job: ClientJob) -> ClientResult:
    result = ClientResult()
    settings = atlas_settings(job)
    transport = _Recording()
    window = settings.write_rate.seconds
    with anyio.move_on_after(max(0.0, job.deadline - time.monotonic())) as scope:
        async with atlasbatch.Session(
            token=job.token, settings=settings, transport=transport
        ) as session:
            report = await session.run(job.targets, mjd_min=job.mjd_min, keep_data=False)
    result.late_429 = sum(1 for t in transport.throttled_at if t > window)
    if scope.cancelled_caught:
        result.limit_hit = True
        return result
    for outcome in report.outcomes:
        if outcome.state in (State.DOWNLOADED, State.NO_DATA):
            result.completed += 1
        else:
            result.failed += 1
            result.notes.append(f"{outcome.target.name}: {outcome.state} {outcome.error}")
    if report.requests.get("throttled"):
        result.notes.append(f"client saw {report.requests['throttled']} throttled requests")
    return result


def run_atlasbatch(job: ClientJob) -> ClientResult:
    """One ``Session.run`` on a fresh event loop in the calling thread."""
    return anyio.run(_run, job)
