"""Target-list parsing speed: ``read_targets`` on large sexagesimal and decimal files.

    python benchmarks/_parse.py [N]          # or: python benchmarks/run.py --parse-only N

Each file of N rows is written once and read three times; the best time counts (the others
carry the noise of a shared machine). The CPU column is the reading thread's CPU time, less
sensitive to a busy machine than the wall clock. A fresh child process then reads a small file and
reports whether astropy was imported and how long the first read took, imports included:
what a command line pays before it sends anything.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

__all__ = ["ParseRow", "cold_start", "main", "markdown_table", "run_parse"]

REPEATS = 3


@dataclass(frozen=True, slots=True)
class ParseRow:
    """One file format: rows, the best of :data:`REPEATS` reads (wall and CPU seconds)."""

    kind: str
    rows: int
    best_s: float
    best_cpu_s: float

    @property
    def rows_per_s(self) -> float:
        """Rows parsed per second in the best read."""
        return self.rows / self.best_s


def _sexagesimal(i: int, ra: float, dec: float) -> str:
    """``hh:mm:ss.ss ±dd:mm:ss.s``: the form survey tables and TNS export."""
    h, m, s = _split(ra / 15.0)
    d, dm, ds = _split(abs(dec))
    return f"t{i},{h:02d}:{m:02d}:{s:05.2f},{'-' if dec < 0 else '+'}{d:02d}:{dm:02d}:{ds:04.1f}"


def _mixed(i: int, ra: float, dec: float) -> str:
    """The three sexagesimal spellings the server reads, in turn (colons, spaces, letters)."""
    line = _sexagesimal(i, ra, dec)
    if i % 3 == 1:
        return line.replace(":", " ")
    if i % 3 == 2:
        name, ra_text, dec_text = line.split(",")
        h, m, s = ra_text.split(":")
        d, dm, ds = dec_text.split(":")
        return f"{name},{h}h{m}m{s}s,{d}d{dm}m{ds}s"
    return line


def _decimal(i: int, ra: float, dec: float) -> str:
    return f"t{i},{ra:.6f},{dec:.6f}"


def _split(value: float) -> tuple[int, int, float]:
    """Whole, minutes, seconds of a non-negative value, seconds rounded to 0.01."""
    hundredths = round(value * 360_000)
    whole, rest = divmod(hundredths, 360_000)
    minutes, seconds = divmod(rest, 6000)
    return whole, minutes, seconds / 100


FORMATS: dict[str, Callable[[int, float, float], str]] = {
    "sexagesimal": _sexagesimal,
    "sexagesimal (3 spellings)": _mixed,
    "decimal": _decimal,
}


def _write(path: Path, count: int, line: Callable[[int, float, float], str]) -> None:
    # Distinct positions 0.1 deg apart (no duplicates to merge), away from RA 24h.
    rows = (line(i, (i % 3500) * 0.1, -80.0 + (i // 3500) * 0.1) for i in range(count))
    path.write_text("name,ra,dec\n" + "\n".join(rows) + "\n", encoding="utf-8")


def run_parse(count: int) -> list[ParseRow]:
    """Best-of-three ``read_targets`` time for each format in :data:`FORMATS`."""
    from atlasbatch import read_targets  # noqa: PLC0415 (after sys.path is set)

    rows: list[ParseRow] = []
    with tempfile.TemporaryDirectory(prefix="atlasbatch-parse-") as tmp:
        for kind, line in FORMATS.items():
            path = Path(tmp) / "targets.csv"
            _write(path, count, line)
            walls, cpus = [], []
            for _ in range(REPEATS):
                wall, cpu = time.perf_counter(), time.thread_time()
                result = read_targets(path)
                walls.append(time.perf_counter() - wall)
                cpus.append(time.thread_time() - cpu)
                assert len(result.unique) == count, (kind, len(result.unique))
            rows.append(ParseRow(kind, count, min(walls), min(cpus)))
    return rows


_COLD = """
import sys, time
start = time.perf_counter()
from atlasbatch import read_targets
read_targets([{"ra": "12:34:56.7", "dec": "+54:18:42"}, {"ra": 1.5, "dec": 2.5}])
print(time.perf_counter() - start, "astropy" in sys.modules)
"""


def cold_start() -> tuple[float, bool]:
    """Seconds to import atlasbatch and read two rows in a fresh process; astropy loaded?"""
    out = subprocess.run(
        [sys.executable, "-c", _COLD], check=True, capture_output=True, text=True, timeout=120
    ).stdout.split()
    return float(out[0]), out[1] == "True"


def markdown_table(rows: list[ParseRow]) -> str:
    """The rows as a Markdown table."""
    lines = ["| format | rows | best of 3 s | rows/s | CPU s |", "|---|---|---|---|---|"]
    lines += [
        f"| {r.kind} | {r.rows} | {r.best_s:.3f} | {r.rows_per_s:,.0f} | {r.best_cpu_s:.3f} |"
        for r in rows
    ]
    return "\n".join(lines)


def main(count: int = 100_000) -> int:
    """Print the table and the cold-start line."""
    print(markdown_table(run_parse(count)))
    seconds, astropy = cold_start()
    print(f"\ncold start (import + read 2 rows): {seconds:.2f} s; astropy imported: {astropy}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000))
