"""An emulator of the ATLAS forced-photometry server, for tests, benchmarks and demos.

It serves the real server's REST API under ``/forcedphot`` on a loopback port, from a real HTTP
server (Starlette on uvicorn, in a background thread): token auth, task submission (single and
``radeclist``), the paginated task list with ``ETag``/304, task detail, deletion, DRF-exact
throttling, the 500-task queue cap, a round-robin task runner, deterministic synthetic result
files, and injectable faults. ``/forcedphot/_emulator/stats.json`` (and :meth:`Emulator.stats`)
report what it saw.

Example::

    from atlasbatch.testing import Emulator, EmulatorConfig

    with Emulator(EmulatorConfig(task_seconds=0.1)) as emu:
        headers = {"Authorization": f"Token {emu.token}"}
        httpx.post(f"{emu.base_url}/queue/", json={"ra": 10, "dec": 20}, headers=headers)

The pytest fixtures ``atlas_emulator`` and ``atlas_emulator_factory`` live in
:mod:`atlasbatch.testing.pytest_plugin`; ``atlasbatch emulator`` runs it from the shell.
"""

from __future__ import annotations

from ._config import EmulatorConfig, Faults, Rate, parse_rate
from ._lightcurve import HEADER as RESULT_FILE_HEADER
from ._server import Emulator
from ._stats import EmulatorStats

__all__ = [
    "RESULT_FILE_HEADER",
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "Faults",
    "Rate",
    "parse_rate",
]
