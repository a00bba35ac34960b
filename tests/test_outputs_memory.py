"""A run's outputs in memory flat in its size (issue 12): what writing them holds at its peak
does not grow with the number of stored light curves.

The end of a run writes outcomes.csv, the photometry table and the nightly table from the
ledger and ``lightcurves/``; each goes a bounded batch at a time (files parsed together,
rows buffered up to a row group), so four times the light curves must not raise the peak.
The batches and row groups are made small here, so that both sizes fill them: what is left
to grow is whatever holds something per light curve. Python memory is measured with
tracemalloc (numpy's buffers included), Arrow's with a proxy of its memory pool (tables and
their conversions: a writer that kept every table it was given shows there). Each light
curve has 40 rows, so holding each one's rows costs ~7 kB per light curve: a writer that
kept every table, or a reader every parsed batch, raised the Python peak by 3.1 MB between
the two sizes (and Arrow's by 2.9 MB), where the outputs as written raise them by ~0.3 MB.
"""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from atlasbatch import State, Target
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs import nightly_batch, nightly_table, table_folder
from atlasbatch._outputs.nightly_files import NIGHTLY_NAME
from atlasbatch._runs.finish import OutputOptions, write_outputs

SERVER = "http://127.0.0.1:8123/forcedphot"
HEADER = (
    "###MJD          m      dm   uJy   duJy F err chi/N     RA       Dec        x        y"
    "     maj  min   phi  apfit mag5sig Sky   Obs"
)
ROWS = 40  # per light curve: four nights of ten exposures
SMALL, LARGE = 150, 600
#: Arrow pools made for a measurement stay referenced: a buffer that outlives its pool
#: would free through a dangling pointer.
_POOLS: list[pa.MemoryPool] = []


def curve_text(line: int) -> str:
    """A light curve of :data:`ROWS` exposures, its fluxes varying with ``line``."""
    rows = [
        f"{60000.1 + night + exposure * 0.01:.6f}  19.500  0.050"
        f"  {50 + (line * 7 + exposure) % 90:4d}"
        f"   12 {'co'[night % 2]}  0   1.10  10.00000  20.00000  5000.00  5000.00 2.50 2.40"
        f" -60.0 -0.380 19.50 21.50 01a{60000 + night}o{exposure:04d}{'co'[night % 2]}"
        for night in range(ROWS // 10)
        for exposure in range(10)
    ]
    return "\n".join([HEADER, *rows]) + "\n"


def stored_run(out: Path, count: int) -> Ledger:
    """A run directory whose ``count`` rows are all downloaded, as a run records them: each
    file stored, then its task recorded as done (in batches of 100, as POSTed)."""
    (out / "lightcurves").mkdir(parents=True)
    ledger = Ledger(out / "atlasbatch.sqlite3")
    targets = [
        Target(line=i + 2, name=f"t{i:05d}", ra=(i % 3600) * 0.1, dec=10.0 + (i // 3600) * 0.1)
        for i in range(count)
    ]
    ledger.add_targets(targets, {})
    for start in range(0, count, 100):
        chunk = targets[start : start + 100]
        batch, _ = ledger.start_batch([t.line for t in chunk])
        ledger.batch_submitted(batch, [(t.line, 10_000 + t.line) for t in chunk])
        for target in chunk:
            path = f"lightcurves/{target.name}.txt"
            (out / path).write_text(curve_text(target.line), encoding="utf-8")
            ledger.task_done(10_000 + target.line, target.line, State.DOWNLOADED, path=path)
    return ledger


@contextmanager
def arrow_pool() -> Iterator[pa.MemoryPool]:
    """A proxy of pyarrow's default pool, made the default while the block runs."""
    previous = pa.default_memory_pool()
    proxy = pa.proxy_memory_pool(previous)
    _POOLS.append(proxy)
    pa.set_memory_pool(proxy)
    try:
        yield proxy
    finally:
        pa.set_memory_pool(previous)


def peaks(out: Path, ledger: Ledger) -> tuple[int, int]:
    """Write ``out``'s outputs; the Python and the Arrow memory at their peaks, in bytes."""
    with arrow_pool() as pool:
        tracemalloc.start()
        try:
            before, _ = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            write_outputs(ledger, out, server=SERVER, options=OutputOptions(plots=False))
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        return peak - before, pool.max_memory()


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches of ~30 files (~60 for the nightly table) and row groups of 2,048 rows (see
    the module docstring)."""
    monkeypatch.setattr(table_folder, "_BYTES_PER_BATCH", 128 << 10)
    monkeypatch.setattr(table_folder, "_GROUP_ROWS", 2_048)
    monkeypatch.setattr(nightly_batch, "BYTES_PER_BATCH", 256 << 10)
    monkeypatch.setattr(nightly_batch, "FAMILIES_PER_BATCH", 16)
    monkeypatch.setattr(nightly_table, "_ROW_GROUP_ROWS", 2_048)


@pytest.mark.usefixtures("small_batches")
def test_writing_four_times_the_light_curves_holds_no_more_at_its_peak(tmp_path: Path) -> None:
    runs = {count: stored_run(tmp_path / f"run{count}", count) for count in (100, SMALL, LARGE)}
    peaks(tmp_path / "run100", runs[100])  # imports, first uses and their caches, once
    small_python, small_arrow = peaks(tmp_path / f"run{SMALL}", runs[SMALL])
    large_python, large_arrow = peaks(tmp_path / f"run{LARGE}", runs[LARGE])

    # What was written is every light curve, whole: the peak is not low for doing less.
    out = tmp_path / f"run{LARGE}"
    table = pd.read_parquet(out / "photometry.parquet", columns=["target", "MJD"])
    assert len(table) == LARGE * ROWS and table["target"].nunique() == LARGE
    assert len(pd.read_csv(out / "outcomes.csv")) == LARGE
    assert pq.read_metadata(out / NIGHTLY_NAME).num_rows == LARGE * (ROWS // 10)

    extra = LARGE - SMALL
    mb = 1 << 20
    python_growth = large_python - small_python
    arrow_growth = large_arrow - small_arrow
    assert python_growth < 2 * mb, (
        f"Python peak {small_python / mb:.1f} -> {large_python / mb:.1f} MB "
        f"({python_growth / extra:.0f} bytes per added light curve)"
    )
    assert arrow_growth < mb, (
        f"Arrow peak {small_arrow / mb:.1f} -> {large_arrow / mb:.1f} MB "
        f"({arrow_growth / extra:.0f} bytes per added light curve)"
    )
