"""An emulator of the ATLAS forced-photometry server, for tests, benchmarks and demos.

It serves the real server's REST API under ``/forcedphot`` on a loopback port, from a real HTTP
server (Starlette on uvicorn, in a background thread): token auth, task submission (single and
``radeclist``), the paginated task list with ``ETag``/304, task detail, deletion, DRF-exact
throttling, the 500-task queue cap, a round-robin task runner, deterministic synthetic result
files, and injectable faults. ``/forcedphot/_emulator/stats.json`` (and :meth:`Emulator.stats`)
report what it saw.

Its defaults are the real server's (60/min writes, a minute per task, the runner's 5 s idle
poll …); ``EmulatorConfig().scaled(0.1)`` runs all of it ten times as fast, and
:data:`TEST_TIMING` makes the runner react at once. Light curves follow ATLAS's cadence (four
units, visits of four exposures, bad points at the FAQ's kinds) at a density of
``observations_per_day`` (0.5, small files; ATLAS's own is :data:`ATLAS_OBSERVATIONS_PER_DAY`).
Outages (:meth:`Emulator.outage`), faults scoped to methods and endpoints, background load
from other users, and a request log on the emulator's clock (:meth:`Emulator.requests`,
:meth:`Emulator.task_timings`) serve tests of pacing and resilience.

Example::

    from atlasbatch.testing import TEST_TIMING, Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(task_seconds=0.1, **TEST_TIMING)) as emu:
        headers = {"Authorization": f"Token {emu.token}"}
        httpx.post(f"{emu.base_url}/queue/", json={"ra": 10, "dec": 20}, headers=headers)
        print(emu.requests()[-1])  # RequestRecord(time=0.01, method='POST', ... status=201)

The pytest fixtures ``atlas_emulator`` and ``atlas_emulator_factory`` live in
:mod:`atlasbatch.testing.pytest_plugin`; ``atlasbatch emulator`` runs it from the shell.
"""

from __future__ import annotations

from ._config import TEST_TIMING, EmulatorConfig, OutageMode, OutageWindow
from ._fault_settings import Endpoint, Faults
from ._rates import Rate, parse_rate
from ._server import Emulator
from ._sky.cadence import ATLAS_OBSERVATIONS_PER_DAY
from ._sky.lightcurve import HEADER as RESULT_FILE_HEADER
from ._state.outage import OutageHandle
from ._state.requestlog import RequestRecord
from ._state.stats import EmulatorStats
from ._state.tasks import TaskTiming

__all__ = [
    "ATLAS_OBSERVATIONS_PER_DAY",
    "RESULT_FILE_HEADER",
    "TEST_TIMING",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "Endpoint",
    "Faults",
    "OutageHandle",
    "OutageMode",
    "OutageWindow",
    "Rate",
    "RequestRecord",
    "TaskTiming",
    "parse_rate",
]
