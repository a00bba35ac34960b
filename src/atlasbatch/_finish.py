"""What a run leaves in its directory: outcomes.csv, photometry.parquet, plots.

Everything is rebuilt from the ledger and the per-target files on disk, so the outputs are
the same whether the run went in one go or was resumed ten times.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from atlasbatch._exceptions import ResultFileError
from atlasbatch._filenames import FileNames
from atlasbatch._ledger import Ledger, OutcomeRow
from atlasbatch._models import Outcome, State
from atlasbatch._outputs import PhotometryTableWriter, write_outcomes_csv
from atlasbatch._photometry import add_derived_columns
from atlasbatch._plots import plot_overview, plot_target
from atlasbatch._results import parse_result

__all__ = ["OutputOptions", "write_outputs"]

log = logging.getLogger(__name__)
_OVERVIEW_PANELS = 36


@dataclass(frozen=True, slots=True, kw_only=True)
class OutputOptions:
    """Which outputs to write besides outcomes.csv and the per-target files."""

    parquet: bool = True
    csv: bool = False
    plots: bool = True
    max_plots: int = 500
    sigma_limit: float = 3.0


def _outcome(row: OutcomeRow) -> Outcome:
    return Outcome(target=row.target, state=row.state, task_id=row.task_id, error=row.error,
                   path=row.path)  # fmt: skip


def _load(out_dir: Path, path: str, sigma: float) -> pd.DataFrame | None:
    """A stored light curve with derived columns, or None (logged) if it cannot be read."""
    try:
        frame = parse_result((out_dir / path).read_text(encoding="utf-8"), source=path)
    except (OSError, ResultFileError) as exc:
        log.error("%s: %s", path, exc)
        return None
    return add_derived_columns(frame, sigma_limit=sigma)


def write_outputs(ledger: Ledger, out_dir: Path, *, server: str, options: OutputOptions) -> None:
    """Write the run's tables and plots into ``out_dir``, one light curve in memory at a time."""
    rows = ledger.outcomes()
    extra = sorted({key for row in rows for key in row.target.extra})
    write_outcomes_csv(out_dir / "outcomes.csv", [_outcome(r) for r in rows], extra_columns=extra)
    by_path: dict[str, list[OutcomeRow]] = defaultdict(list)
    for row in rows:  # duplicate rows share their representative's file
        if row.state is State.DOWNLOADED and row.path is not None:
            by_path[row.path].append(row)
    if not by_path or not (options.parquet or options.plots):
        return
    names = FileNames.of_ledger(ledger)  # plots are named as the light curves are
    if options.parquet:
        csv_path = out_dir / "photometry.csv" if options.csv else None
        parquet = out_dir / "photometry.parquet"
        with PhotometryTableWriter(parquet, extra_columns=extra, csv_path=csv_path) as table:
            _each_light_curve(out_dir, by_path, table, names, server=server, options=options)
    else:
        _each_light_curve(out_dir, by_path, None, names, server=server, options=options)


def _each_light_curve(
    out_dir: Path,
    by_path: dict[str, list[OutcomeRow]],
    table: PhotometryTableWriter | None,
    names: FileNames,
    *,
    server: str,
    options: OutputOptions,
) -> None:
    """Add every light curve to the table and plot it; one in memory at a time."""
    fetched = datetime.now(UTC)
    overview: dict[str, pd.DataFrame] = {}
    for index, (path, members) in enumerate(by_path.items()):
        frame = _load(out_dir, path, options.sigma_limit)
        if frame is None:
            continue
        if table is not None:
            for row in members:
                table.add(row.target, frame, task_id=row.task_id, server=server, fetched_at=fetched)
        if options.plots and index < options.max_plots:
            name = members[0].target.name
            _plot(frame, title=name, path=out_dir / names.plot(name), sigma=options.sigma_limit)
        if options.plots and len(overview) < _OVERVIEW_PANELS:
            overview[members[0].target.name] = frame
    if overview:
        plot_overview(overview, path=out_dir / "overview.png", sigma_limit=options.sigma_limit)


def _plot(frame: pd.DataFrame, *, title: str, path: Path, sigma: float) -> None:
    path.parent.mkdir(exist_ok=True)
    plot_target(frame, title=title, path=path, sigma_limit=sigma)
