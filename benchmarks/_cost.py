"""Client cost: the library, the CLI and the outputs at N targets, each in its own process.

    python benchmarks/run.py --scale-only 10000 100000

Against the scale scenario's emulator (in this process: relaxed rates, an instant runner,
files of a few lines), four children are measured with ``wait4`` (user + system CPU of
every thread, peak RSS): the floor (:mod:`benchmarks._floor`: only the requests any client
must send, on bare httpx; the others' CPU is also given as a multiple of it), the library
(``Session.fetch`` streamed, no data kept, the targets a generator: what a run holds, not
what a caller keeps), the CLI (``atlasbatch fetch`` with its outputs, no plots) and the
outputs alone (the photometry table and outcomes.csv written again from the CLI run's
stored light curves); then the start-up of ``atlasbatch --help`` and ``atlasbatch status
DIR`` against Python importing httpx and anyio (best of 5).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass
from pathlib import Path

from atlasbatch.testing import Emulator
from benchmarks._harness import make_job
from benchmarks._scenarios import make_targets, scale

__all__ = [
    "CostRow",
    "check_cost",
    "cost_table",
    "machine_ms",
    "main",
    "run_cost",
    "startup",
    "startup_lines",
]

#: Issue 12's targets for the client cost.
_RSS_MB = 200
_CPU_PER_1K = 2.0
_RSS_GROWTH_MB = 25  # from the smallest to the largest size measured (10k to 100k)
_OUTPUTS_PER_S = 500

#: The checkout: the floor child imports ``benchmarks._floor`` from it.
_ROOT = Path(__file__).resolve().parents[1]
#: Run the children (the clients) from another checkout's ``src`` (e.g. a worktree of an
#: older commit) against this checkout's emulator: before/after figures on one harness.
CLIENT_SRC_ENV = "ATLASBATCH_BENCH_CLIENT_SRC"
#: More options for the CLI row's ``fetch`` (e.g. ``--no-nightly``), split on spaces.
CLI_ARGS_ENV = "ATLASBATCH_BENCH_CLI_ARGS"

_LIBRARY_CHILD = """
import json, sys, anyio, atlasbatch
job = json.loads(sys.argv[1])
settings = atlasbatch.Settings(
    base_url=job["base_url"], write_rate=atlasbatch.Rate.parse(job["write_rate"]),
    read_rate=atlasbatch.Rate.parse(job["read_rate"]), max_queued=job["max_queued"],
    downloads_per_second=job["downloads_per_second"])
targets = ({"name": f"t{i:06d}", "ra": round((i % 3600) * 0.1, 6),
            "dec": round(10.0 + (i // 3600) * 0.1, 6)} for i in range(job["count"]))
async def main():
    ok = rows = 0
    async with atlasbatch.Session(token=job["token"], settings=settings) as session:
        async for outcome in session.fetch(targets, mjd_min=job["mjd_min"], keep_data=False):
            ok, rows = ok + outcome.ok, rows + 1
    return ok, rows
ok, rows = anyio.run(main)
print(json.dumps({"ok": ok, "rows": rows}))
"""
# The floor (benchmarks/_floor.py): the same requests on bare httpx, nothing else.
_FLOOR_CHILD = """
import sys
from benchmarks._floor import main
main(sys.argv[1:])
"""
# The CLI has no option for the download pace (20/s is right for the real server, whose
# tasks take a minute each): raised here as for the library row, nothing else changed.
_CLI_CHILD = """
import dataclasses, sys
import atlasbatch._cli.fetch as fetch
plain = fetch.settings_from_args
def paced(*args, **kwargs):
    return dataclasses.replace(plain(*args, **kwargs), downloads_per_second=float(sys.argv[1]))
fetch.settings_from_args = paced
from atlasbatch.cli import main
raise SystemExit(main(sys.argv[2:]))
"""
# What the end of a run writes, plots and the nightly table off: the photometry table from
# every stored light curve (none there yet), and outcomes.csv.
_OUTPUTS_CHILD = """
import sys
from pathlib import Path
from atlasbatch._runs.finish import OutputOptions, write_outputs
from atlasbatch._ledger.ledger import Ledger
out = Path(sys.argv[1])
ledger = Ledger(out / "atlasbatch.sqlite3")
try:
    from atlasbatch._outputs.nightly_files import remember_nightly
    remember_nightly(ledger, None)
except ImportError:  # a version without the nightly table
    pass
write_outputs(ledger, out, server=sys.argv[2], options=OutputOptions(plots=False))
"""


@dataclass(frozen=True, slots=True)
class CostRow:
    """One client-cost measurement of a child process (CPU: its user + system time)."""

    name: str
    targets: int
    wall_s: float
    cpu_s: float
    peak_rss_mb: float
    ok: bool

    @property
    def cpu_per_1k(self) -> float:
        """CPU seconds per 1,000 targets."""
        return self.cpu_s * 1000.0 / max(self.targets, 1)

    @property
    def per_second(self) -> float:
        """Targets (light curves) per wall second."""
        return self.targets / self.wall_s if self.wall_s > 0 else float("nan")


# A child's own peak RSS, written at its exit. Not wait4's ru_maxrss: exec keeps the
# high-water RSS of the memory it replaces, and subprocess's vfork child runs in this
# process's memory until then, so ru_maxrss is at least this process's RSS (the emulator's,
# which grows with every task it served: 377 MB for an outputs step peaking at 161 MB).
_PEAK_HOOK = """
import atexit as _atexit, os as _os
def _peak():
    with open("/proc/self/status") as _s, open(_os.environ["ATLASBATCH_BENCH_PEAK"], "w") as _o:
        _o.write(next(_l for _l in _s if _l.startswith("VmHWM:")).split()[1])
_atexit.register(_peak)
"""


def _child_env(extra: dict[str, str]) -> dict[str, str]:
    env = {**os.environ, **extra}
    if src := os.environ.get(CLIENT_SRC_ENV):
        env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    return env


def _measure(name: str, targets: int, argv: list[str], env: dict[str, str]) -> CostRow:
    """Run ``argv`` (``python -c CODE …``) as a child; its wall time, user + system CPU
    (wait4) and peak RSS (its VmHWM, see :data:`_PEAK_HOOK`; wait4's where there is none)."""
    handle, peak_path = tempfile.mkstemp(prefix="peak-")
    os.close(handle)
    peak_file = Path(peak_path)
    argv = [*argv[:2], _PEAK_HOOK + argv[2], *argv[3:]] if argv[1:2] == ["-c"] else argv
    env = {**env, "ATLASBATCH_BENCH_PEAK": str(peak_file)}
    start = time.perf_counter()
    child = subprocess.Popen(argv, env=_child_env(env), stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)  # fmt: skip
    assert child.stderr is not None
    errors = child.stderr.read()  # read while it runs: a full pipe would stall it
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    child.stderr.close()
    wall = time.perf_counter() - start
    if child.returncode != 0:
        print(f"{name}: exit {child.returncode}\n{errors[-2000:]}", file=sys.stderr)
    own = peak_file.read_text().strip()
    peak_file.unlink()
    peak_kib = int(own) if own.isdigit() else usage.ru_maxrss
    return CostRow(name, targets, wall, usage.ru_utime + usage.ru_stime,
                   peak_kib / 1024, child.returncode == 0)  # fmt: skip


def _write_targets(path: Path, count: int) -> None:
    with path.open("w", encoding="utf-8") as handle:
        handle.write("name,ra,dec\n")
        handle.writelines(f"{t['name']},{t['ra']},{t['dec']}\n" for t in make_targets(count))


def _best_of(argv: list[str], env: dict[str, str], times: int = 5) -> float:
    """The shortest wall time of ``times`` runs of ``argv`` (the others carry the noise of
    a shared machine)."""
    walls = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run(argv, env=_child_env(env), stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=False)  # fmt: skip
        walls.append(time.perf_counter() - start)
    return min(walls)


def startup(run_dir: Path, env: dict[str, str]) -> dict[str, float]:
    """Seconds (best of 5) to start: Python importing httpx and anyio (the floor any client
    of this server pays), ``atlasbatch --help`` and ``atlasbatch status DIR``."""
    python, status = sys.executable, str(run_dir)
    return {
        "import httpx, anyio": _best_of([python, "-c", "import httpx, anyio"], env),
        "atlasbatch --help": _best_of([python, "-m", "atlasbatch", "--help"], env),
        "atlasbatch status DIR": _best_of([python, "-m", "atlasbatch", "status", status], env),
    }


def startup_lines(times: dict[str, float]) -> str:
    """The start-up times, each also as a multiple of the first."""
    floor = next(iter(times.values()))
    return "\n".join(f"  {name}: {s:.3f} s ({s / floor:.1f}x)" for name, s in times.items())


def run_cost(count: int, startups: list[dict[str, float]] | None = None) -> list[CostRow]:
    """The library row, the CLI row (``fetch`` with outputs, no plots) and the outputs-only
    row (the CLI run's table written again from its stored light curves) for ``count``;
    appends to ``startups`` the start-up times measured on the CLI's run directory."""
    scenario = scale(count)
    rows: list[CostRow] = []
    with Emulator(scenario.config) as emu, tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        job = make_job(scenario, emu, 0, time.monotonic() + scenario.time_limit)
        settings = {"base_url": emu.base_url, "token": emu.token, "count": count,
                    "write_rate": job.write_rate, "read_rate": job.read_rate,
                    "max_queued": job.max_queued, "mjd_min": job.mjd_min,
                    "downloads_per_second": scenario.downloads_per_second}  # fmt: skip
        env = {"ATLASBATCH_CONFIG_DIR": str(folder / "config"), "ATLAS_TOKEN": emu.token}
        python = [sys.executable, "-c"]
        floor_env = {**env, "PYTHONPATH": str(_ROOT)}  # the child imports benchmarks._floor
        rows.append(_measure("floor", count,
                             [*python, _FLOOR_CHILD, json.dumps(settings)], floor_env))  # fmt: skip
        rows.append(_measure("library", count,
                             [*python, _LIBRARY_CHILD, json.dumps(settings)], env))  # fmt: skip
        targets, out = folder / "targets.csv", folder / "run"
        _write_targets(targets, count)
        fetch = ["fetch", str(targets), "--out", str(out), "--base-url", emu.base_url,
                 "--write-rate", job.write_rate, "--read-rate", job.read_rate,
                 "--max-queued", str(job.max_queued), "--mjd-min", str(job.mjd_min),
                 "--no-plots", "--progress", "plain",
                 *os.environ.get(CLI_ARGS_ENV, "").split()]  # fmt: skip
        pace = str(scenario.downloads_per_second)
        rows.append(_measure("cli", count, [*python, _CLI_CHILD, pace, *fetch], env))
        if startups is not None:
            startups.append(startup(out, env))
        for stale in ("photometry.parquet", "photometry.csv", "outcomes.csv"):
            target = out / stale
            shutil.rmtree(target) if target.is_dir() else target.unlink(missing_ok=True)
        rows.append(_measure("outputs", count,
                             [*python, _OUTPUTS_CHILD, str(out), emu.base_url], env))  # fmt: skip
    return rows


def _floors(rows: list[CostRow]) -> dict[int, float]:
    """The floor's CPU per 1,000 targets, by number of targets."""
    return {row.targets: row.cpu_per_1k for row in rows if row.name == "floor" and row.ok}


def cost_table(rows: list[CostRow]) -> str:
    """The cost rows as a Markdown table (CPU also as a multiple of the floor's)."""
    floors = _floors(rows)
    lines = [
        "| row | targets | wall s | CPU s | CPU s/1k | x floor | peak RSS MB | per s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        flag = "" if row.ok else " (failed)"
        floor = floors.get(row.targets)
        times = f"{row.cpu_per_1k / floor:.2f}" if floor and row.name != "outputs" else ""
        lines.append(
            f"| {row.name}{flag} | {row.targets} | {row.wall_s:.1f} | {row.cpu_s:.1f} "
            f"| {row.cpu_per_1k:.2f} | {times} | {row.peak_rss_mb:.0f} | {row.per_second:.0f} |"
        )
    return "\n".join(lines)


def check_cost(rows: list[CostRow]) -> list[str]:
    """Issue 12's targets, one line per miss (empty: all met). The floor is no client: it
    is checked only for the CPU target itself (above it, no client on httpx meets it)."""
    misses = [f"{r.name} {r.targets}: failed" for r in rows if not r.ok]
    for targets, floor in _floors(rows).items():
        if floor > _CPU_PER_1K:
            misses.append(f"floor {targets}: the bare requests cost {floor:.2f} s per 1k > "
                          f"{_CPU_PER_1K}: the CPU target is out of reach here")  # fmt: skip
    for row in (r for r in rows if r.name != "floor"):
        where = f"{row.name} {row.targets}"
        if row.peak_rss_mb > _RSS_MB:
            misses.append(f"{where}: peak RSS {row.peak_rss_mb:.0f} MB > {_RSS_MB}")
        if row.name != "outputs" and row.cpu_per_1k > _CPU_PER_1K:
            misses.append(f"{where}: CPU {row.cpu_per_1k:.2f} s per 1k > {_CPU_PER_1K}")
        if row.name == "outputs" and row.per_second < _OUTPUTS_PER_S:
            misses.append(f"{where}: {row.per_second:.0f} light curves/s < {_OUTPUTS_PER_S}")
    for name in ("library", "cli"):
        sizes = sorted((r.targets, r.peak_rss_mb) for r in rows if r.name == name)
        if len(sizes) > 1 and sizes[-1][1] - sizes[0][1] > _RSS_GROWTH_MB:
            growth = sizes[-1][1] - sizes[0][1]
            misses.append(f"{name}: RSS grows {growth:.0f} MB from {sizes[0][0]} to "
                          f"{sizes[-1][0]} targets > {_RSS_GROWTH_MB}")  # fmt: skip
    return misses


def machine_ms() -> float:
    """Milliseconds this machine takes for ``sum(range(10**6))`` (best of 5): CPU figures
    from machines that differ here differ as much (benchmarks/README.md, third round)."""
    return 1000.0 * min(timeit.repeat("sum(range(10**6))", number=1, repeat=5))


def main(counts: list[int]) -> int:
    """``run.py --scale-only N [N ...]``: the cost rows for each N, their table and checks."""
    print(f"  machine: sum(range(10**6)) in {machine_ms():.0f} ms", file=sys.stderr)
    rows: list[CostRow] = []
    startups: list[dict[str, float]] = []
    for count in counts:
        print(f"  client cost at {count} targets …", file=sys.stderr, flush=True)
        rows += run_cost(count, startups)
    print(cost_table(rows))
    for count, times in zip(counts, startups, strict=False):
        print(f"\nstart-up, best of 5 (run directory of {count} targets):")
        print(startup_lines(times))
    misses = check_cost(rows)
    print("\nclient-cost targets: " + ("all met" if not misses else "MISSED"))
    for miss in misses:
        print(f"  - {miss}")
    return 0
