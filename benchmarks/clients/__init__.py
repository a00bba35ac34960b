"""The clients the benchmark compares, each a plain function over one emulator.

* :mod:`.atlas` — atlasbatch (its pipeline, as ``Session.run`` drives it), ETA sampled;
* :mod:`.seed` — the API guide's sequential loop, ported faithfully to httpx;
* :mod:`.naive` — ``asyncio.gather`` over all targets, one task and one poll loop each;
* :mod:`.cli` — ``atlasbatch fetch`` in a child process, not told (``cli``) and told
  (``cli-told``) the task time.

Each runs in a thread of its own (the harness measures that thread's CPU time, or the
child's for the CLI).
"""

from benchmarks.clients._common import ClientJob, ClientResult, ClientRunner, guide_wait
from benchmarks.clients.atlas import run_atlasbatch
from benchmarks.clients.cli import run_cli, run_cli_told
from benchmarks.clients.naive import run_naive
from benchmarks.clients.seed import run_seed

CLIENTS: dict[str, ClientRunner] = {
    "atlasbatch": run_atlasbatch,
    "seed": run_seed,
    "naive": run_naive,
    "cli": run_cli,
    "cli-told": run_cli_told,
}

__all__ = ["CLIENTS", "ClientJob", "ClientResult", "ClientRunner", "guide_wait"]
