"""What a run leaves in its directory: outcomes.csv, photometry.parquet, plots.

Everything is rebuilt from the ledger and the per-target files on disk, so the outputs are
the same whether the run went in one go or was resumed ten times.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from atlasbatch._exceptions import ResultFileError
from atlasbatch._ledger import Ledger, OutcomeRow
from atlasbatch._models import Outcome, State
from atlasbatch._outputs import PhotometryTableWriter, write_outcomes_csv
from atlasbatch._photometry import add_derived_columns
from atlasbatch._plots import plot_overview, plot_target
from atlasbatch._results import parse_result, safe_filename

__all__ = ["OutputOptions", "write_outputs"]

log = logging.getLogger(__name__)


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


def _frames(out_dir: Path, rows: list[OutcomeRow], sigma: float) -> dict[str, pd.DataFrame]:
    """Each downloaded light curve (by its file), with derived columns, read from disk."""
    frames: dict[str, pd.DataFrame] = {}
    for row in rows:
        if row.state is not State.DOWNLOADED or row.path is None or row.path in frames:
            continue
        try:
            text = (out_dir / row.path).read_text(encoding="utf-8")
            frame = parse_result(text, source=row.path)
        except (OSError, ResultFileError) as exc:
            log.error("%s: %s", row.path, exc)
            continue
        frames[row.path] = add_derived_columns(frame, sigma_limit=sigma)
    return frames


def write_outputs(ledger: Ledger, out_dir: Path, *, server: str, options: OutputOptions) -> None:
    """Write the run's tables and plots into ``out_dir``."""
    rows = ledger.outcomes()
    extra = sorted({key for row in rows for key in row.target.extra})
    write_outcomes_csv(out_dir / "outcomes.csv", [_outcome(r) for r in rows], extra_columns=extra)
    if not (options.parquet or options.plots):
        return
    frames = _frames(out_dir, rows, options.sigma_limit)
    if options.parquet:
        _write_table(out_dir, rows, frames, extra, server=server, csv=options.csv)
    if options.plots and frames:
        _write_plots(out_dir, rows, frames, options.max_plots)


def _write_table(
    out_dir: Path,
    rows: list[OutcomeRow],
    frames: dict[str, pd.DataFrame],
    extra: list[str],
    *,
    server: str,
    csv: bool,
) -> None:
    """One table for all rows; duplicate rows share their representative's light curve."""
    fetched = datetime.now(UTC)
    csv_path = out_dir / "photometry.csv" if csv else None
    with PhotometryTableWriter(
        out_dir / "photometry.parquet", extra_columns=extra, csv_path=csv_path
    ) as table:
        for row in rows:
            frame = frames.get(row.path) if row.path is not None else None
            if frame is not None and row.state is State.DOWNLOADED:
                table.add(row.target, frame, task_id=row.task_id, server=server, fetched_at=fetched)


def _write_plots(
    out_dir: Path, rows: list[OutcomeRow], frames: dict[str, pd.DataFrame], limit: int
) -> None:
    """One PNG per light curve (up to ``limit``) and an overview grid."""
    folder = out_dir / "plots"
    folder.mkdir(exist_ok=True)
    names: dict[str, str] = {}
    for row in rows:
        if row.path is not None and row.path in frames:
            names.setdefault(row.path, row.target.name)
    for path, frame in list(frames.items())[:limit]:
        plot_target(frame, title=names[path], path=folder / f"{safe_filename(names[path])}.png")
    plot_overview(
        {names[path]: frame for path, frame in frames.items()}, path=out_dir / "overview.png"
    )
