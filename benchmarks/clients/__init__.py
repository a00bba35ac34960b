"""The three clients the benchmark compares, each a plain function over one emulator.

* :mod:`.atlas` — atlasbatch's :class:`~atlasbatch.Session`;
* :mod:`.seed` — the API guide's sequential loop, ported faithfully to httpx;
* :mod:`.naive` — ``asyncio.gather`` over all targets, one task and one poll loop each.

Each runs in a thread of its own (the harness measures that thread's CPU time).
"""

from benchmarks.clients._common import ClientJob, ClientResult, ClientRunner, guide_wait
from benchmarks.clients.atlas import run_atlasbatch
from benchmarks.clients.naive import run_naive
from benchmarks.clients.seed import run_seed

CLIENTS: dict[str, ClientRunner] = {
    "atlasbatch": run_atlasbatch,
    "seed": run_seed,
    "naive": run_naive,
}

__all__ = ["CLIENTS", "ClientJob", "ClientResult", "ClientRunner", "guide_wait"]
