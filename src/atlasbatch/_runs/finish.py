"""What a run leaves in its directory: outcomes.csv, photometry.parquet/, plots.

The photometry table follows the ledger (:mod:`._outputs.table_folder`): :func:`keep_table_current`
adds what was stored every few minutes while a run goes on, and :func:`write_outputs` what
is left at its end, so the end of a run or a resume only adds what is new. outcomes.csv is
rewritten from the ledger one row at a time; plots are drawn only for light curves without
an up-to-date one. Nothing here imports pandas, pyarrow or matplotlib unless there is a
table to add to or a plot to draw (``cancel`` and ``cleanup`` often have neither).
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from atlasbatch._ledger.ledger import Ledger, OutcomeRow
from atlasbatch._models import Outcome, State
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.outcomes import write_outcomes_csv
from atlasbatch._outputs.table_parts import TABLE_NAME, behind
from atlasbatch._science.nightly_options import NightlyOptions

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TABLE_EVERY",
    "TABLE_EVERY_ENV",
    "OutputOptions",
    "keep_table_current",
    "table_every",
    "write_outputs",
]

log = logging.getLogger(__name__)
_OVERVIEW_PANELS = 36
#: Seconds between two additions to the table while a run goes on: fresh enough to look
#: at a week-long run, few enough parts (they are merged when many) to read fast.
TABLE_EVERY = 300.0
#: Overrides :data:`TABLE_EVERY` (seconds), e.g. to watch a short run's table grow.
TABLE_EVERY_ENV = "ATLASBATCH_TABLE_EVERY"


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputOptions:
    """Which outputs to write besides outcomes.csv and the per-target files."""

    parquet: bool = True
    csv: bool = False
    plots: bool = True
    max_plots: int = 500
    sigma_limit: float = 3.0
    #: The options of photometry_nightly.parquet (written with ``parquet``); None: those the
    #: run was fetched with (kept in its ledger; none after ``fetch --no-nightly``).
    nightly: NightlyOptions | None = None


def write_outputs(ledger: Ledger, out_dir: Path, *, server: str, options: OutputOptions) -> None:
    """Bring ``out_dir``'s outputs up to date with ``ledger``; memory flat in its size."""
    extra = ledger.pass_through_columns()
    outcomes = (_outcome(row) for row in ledger.iter_outcomes())
    images = ledger.image_column() if ledger.has_image_wants() else None
    write_outcomes_csv(out_dir / "outcomes.csv", outcomes, extra_columns=extra, ordered=True,
                       control_columns=ledger.has_controls(), images=images)  # fmt: skip
    if options.parquet:
        _sync_table(ledger, out_dir, server=server, options=options)
        _give_back_memory()  # Arrow's freed pages: the nightly table's pandas cannot use them
    # No light curve, no nightly table: and no pandas to import (cancel, cleanup).
    if options.parquet and ledger.counts()[State.DOWNLOADED]:
        from atlasbatch._outputs.nightly_files import write_nightly_table  # noqa: PLC0415

        write_nightly_table(ledger, out_dir, options=options.nightly, csv=options.csv)
    if options.plots:
        _plot_new(ledger, out_dir, options=options)


def _outcome(row: OutcomeRow) -> Outcome:
    return Outcome(target=row.target, state=row.state, task_id=row.task_id, error=row.error,
                   path=row.path)  # fmt: skip


def _sync_table(ledger: Ledger, out_dir: Path, *, server: str, options: OutputOptions) -> None:
    table = out_dir / TABLE_NAME
    twin = out_dir / "photometry.csv"
    stale_twin = options.csv and table.is_dir() and not twin.exists()
    if not behind(table, ledger) and not stale_twin:
        return
    from atlasbatch._outputs.table_folder import PhotometryFolder  # noqa: PLC0415
    from atlasbatch._outputs.table_writer import write_csv_twin  # noqa: PLC0415 - pyarrow

    folder = PhotometryFolder(table, server=server, sigma_limit=options.sigma_limit)
    folder.sync(ledger)
    if options.csv and folder.parts():
        write_csv_twin(folder.parts(), twin)


def table_every() -> float:
    """Seconds between additions to the table during a run: ``$ATLASBATCH_TABLE_EVERY`` or
    :data:`TABLE_EVERY`."""
    text = os.environ.get(TABLE_EVERY_ENV, "")
    try:
        every = float(text) if text else TABLE_EVERY
    except ValueError:
        every = math.nan
    if not (math.isfinite(every) and every > 0):
        log.warning("$%s=%r is not a positive number of seconds; using %g",
                    TABLE_EVERY_ENV, text, TABLE_EVERY)  # fmt: skip
        return TABLE_EVERY
    return every


async def keep_table_current(
    ledger_path: Path, *, server: str, every: float | None = None, sigma_limit: float = 3.0
) -> None:
    """While a run goes on: every ``every`` seconds (:func:`table_every`), add what it
    stored to the table.

    Runs until cancelled, in a worker thread with its own connection to the ledger (the
    pipeline keeps its own), so a week-long run has a readable table at any moment. A table
    that cannot be written now (a full disk) is logged and tried again: it must not stop
    the run, whose end writes the outputs again and says what stops them.
    """
    every = table_every() if every is None else every
    while True:
        await anyio.sleep(every)
        try:
            await anyio.to_thread.run_sync(_sync_from_file, ledger_path, server, sigma_limit)
        except Exception as exc:  # see the docstring; a bug is logged too, not hidden
            log.warning("photometry table not brought up to date (will try again): %s", exc)


def _sync_from_file(ledger_path: Path, server: str, sigma_limit: float) -> None:
    ledger = Ledger(ledger_path)
    try:
        table = ledger_path.parent / TABLE_NAME
        if behind(table, ledger):
            from atlasbatch._outputs.table_folder import PhotometryFolder  # noqa: PLC0415 - pyarrow

            PhotometryFolder(table, server=server, sigma_limit=sigma_limit).sync(ledger)
            _give_back_memory()
    finally:
        ledger.close()


def _give_back_memory() -> None:
    """Return the memory a sync of the table freed to the system.

    Arrow's allocator (mimalloc) keeps what it freed mapped, per thread, and glibc keeps
    what a thread's arena freed: a sync runs in a fresh worker thread each time (idle ones
    expire long before the next), which cannot reuse either, and pandas (glibc) cannot reuse
    Arrow's. Measured on a 30,000-target CLI run syncing every 20 s: RSS crept from 176 to
    198 MB between the syncs without this, and stayed at 165-171 MB with it.
    """
    import sys  # noqa: PLC0415

    if (pyarrow := sys.modules.get("pyarrow")) is not None:
        pyarrow.default_memory_pool().release_unused()
    if sys.platform.startswith("linux"):
        import ctypes  # noqa: PLC0415

        trim = getattr(ctypes.CDLL(None), "malloc_trim", None)  # glibc only (not musl)
        if trim is not None:
            trim(0)


# --- plots -----------------------------------------------------------------------------


def _plot_new(ledger: Ledger, out_dir: Path, *, options: OutputOptions) -> None:
    """Plot the first ``max_plots`` light curves that lack an up-to-date plot; redraw the
    overview when any of its panels changed."""
    names = None
    changed_overview = False
    shown: list[tuple[str, Path]] = []
    seen: set[str] = set()
    for row in ledger.iter_outcomes():
        if row.state is not State.DOWNLOADED or row.path is None or row.path in seen:
            continue
        if row.target.control_of is not None:  # control positions: in the tables, not plotted
            continue
        seen.add(row.path)  # duplicate rows share their representative's file and plot
        if len(seen) > options.max_plots:
            break
        if names is None:  # plots are named as the light curves are
            names = FileNames.of_ledger(ledger)
        curve, plot = out_dir / row.path, out_dir / names.plot(row.target.name)
        in_overview = len(shown) < _OVERVIEW_PANELS
        if in_overview:
            shown.append((row.target.name, curve))
        if not _up_to_date(plot, curve):
            changed_overview |= in_overview
            _plot_one(curve, title=row.target.name, plot=plot, sigma=options.sigma_limit)
    overview = out_dir / "overview.png"
    if shown and (changed_overview or not overview.exists()):
        _plot_overview(shown, overview, sigma=options.sigma_limit)


def _up_to_date(plot: Path, curve: Path) -> bool:
    try:
        return plot.stat().st_mtime_ns >= curve.stat().st_mtime_ns
    except OSError:
        return False


def _load(curve: Path, sigma: float) -> pd.DataFrame | None:
    """A stored light curve with derived columns, or None (logged) if it cannot be read."""
    from atlasbatch._exceptions import ResultFileError  # noqa: PLC0415
    from atlasbatch._outputs.results import parse_result  # noqa: PLC0415
    from atlasbatch._science.photometry import add_derived_columns  # noqa: PLC0415 - pandas

    try:
        frame = parse_result(curve.read_text(encoding="utf-8"), source=curve.name)
    except (OSError, ResultFileError) as exc:
        log.error("%s: %s", curve.name, exc)
        return None
    return add_derived_columns(frame, sigma_limit=sigma)


def _plot_one(curve: Path, *, title: str, plot: Path, sigma: float) -> None:
    from atlasbatch._outputs.plots import plot_target  # noqa: PLC0415 - matplotlib

    frame = _load(curve, sigma)
    if frame is not None:
        plot.parent.mkdir(exist_ok=True)
        plot_target(frame, title=title, path=plot, sigma_limit=sigma)


def _plot_overview(shown: list[tuple[str, Path]], path: Path, *, sigma: float) -> None:
    from atlasbatch._outputs.plots import plot_overview  # noqa: PLC0415 - matplotlib

    frames = {name: frame for name, curve in shown if (frame := _load(curve, sigma)) is not None}
    if frames:
        plot_overview(frames, path=path, sigma_limit=sigma)
