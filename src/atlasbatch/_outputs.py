"""Run outputs besides the table's parts: outcomes.csv, the CSV twin, single-file tables.

Importing this module costs no pandas or pyarrow (``cancel`` and ``cleanup`` rewrite
outcomes.csv and often nothing else); the functions that build tables import them.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from atlasbatch._csv_cells import csv_cell
from atlasbatch._models import Outcome, Target
from atlasbatch._results import SERVER_COLUMNS, AtomicFile

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter

    import pandas as pd
    import pyarrow as pa

__all__ = [
    "OUTCOME_COLUMNS",
    "PhotometryTableWriter",
    "pass_through_names",
    "write_csv_twin",
    "write_outcomes_csv",
]

logger = logging.getLogger(__name__)

OUTCOME_COLUMNS: tuple[str, ...] = (
    "line", "name", "state", "task_id", "error", "path", "ra", "dec", "mpc_name",
    "mjd_min", "mjd_max",
)  # fmt: skip
#: outcomes.csv's link from a control position's row to its target's (runs with controls).
CONTROL_COLUMNS: tuple[str, ...] = ("control_of", "control_index")
#: outcomes.csv's column of image stamps (runs where rows asked for them, _target_images).
IMAGE_COLUMN: tuple[str, ...] = ("images",)
_DERIVED_AND_PROVENANCE: tuple[str, ...] = (
    "snr", "detected", "mag_ab", "mag_ab_err", "mag_limit", "quality_ok", "quality_flags",
    "target", "target_line", "input_ra", "input_dec", "mpc_name", "task_id", "mjd_min",
    "mjd_max", "use_reduced", "fetched_at", "server",
)  # fmt: skip
#: Column names of the photometry table that pass-through columns must not take.
TABLE_RESERVED: tuple[str, ...] = (*SERVER_COLUMNS, *_DERIVED_AND_PROVENANCE)
_DEFAULT_ROW_GROUP_ROWS = 65_536
_RENAMES_SAID: set[tuple[str, str]] = set()


def pass_through_names(extra_columns: Sequence[str], *, reserved: Iterable[str]) -> dict[str, str]:
    """Map each pass-through column to its output name, renaming clashes to ``input_<name>``.

    A target file may well have a column called ``m`` or ``err``; failing a long run over
    it at the end would be worse than a predictable rename (which is logged).
    """
    taken = set(reserved)
    names: dict[str, str] = {}
    for column in dict.fromkeys(extra_columns):  # de-duplicated, order kept
        output = column
        while output in taken:
            output = f"input_{output}"
        if output != column and (column, output) not in _RENAMES_SAID:
            _RENAMES_SAID.add((column, output))  # once per process, not once per table part
            logger.warning("pass-through column %r is written as %r", column, output)
        taken.add(output)
        names[column] = output
    return names


class PhotometryTableWriter:
    """Stream light curves into one Parquet file (and optionally a CSV twin), in row groups.

    Use as a context manager; the files appear at ``path``/``csv_path`` only when it exits
    without an exception (written to temporary names, then renamed), so a crash never
    leaves a half-written table behind. ``extra_columns`` are pass-through columns of the
    target file, read from ``Target.extra`` (see :func:`pass_through_names` for clashes).
    Rows are built by :func:`atlasbatch._table.photometry_table`, as the API's are.
    """

    def __init__(
        self,
        path: Path,
        *,
        extra_columns: Sequence[str] = (),
        csv_path: Path | None = None,
        row_group_rows: int = _DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        import pyarrow.csv as pa_csv  # noqa: PLC0415 - see the module docstring
        import pyarrow.parquet as pq  # noqa: PLC0415

        from atlasbatch._csv_cells import neutralise_schema  # noqa: PLC0415
        from atlasbatch._table import table_schema  # noqa: PLC0415

        self.extra = pass_through_names(extra_columns, reserved=TABLE_RESERVED)
        self.schema = table_schema(self.extra.values())
        self._row_group_rows = max(1, row_group_rows)
        self._buffer: list[pa.Table] = []
        self._buffered_rows = 0
        self._unknown_logged: set[str] = set()
        self.rows_written = 0
        self.closed = False
        self._files = [AtomicFile(path)] + ([AtomicFile(csv_path)] if csv_path else [])
        try:
            self._parquet = pq.ParquetWriter(str(self._files[0].temp), self.schema)
            self._csv = (
                pa_csv.CSVWriter(str(self._files[1].temp), neutralise_schema(self.schema))
                if csv_path
                else None
            )
        except BaseException:
            self._discard_files()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def add(
        self,
        target: Target,
        df: pd.DataFrame,
        *,
        task_id: int | None,
        server: str,
        fetched_at: datetime,
    ) -> None:
        """Append one target's light curve with its provenance.

        Derived columns are computed with the default settings when ``df`` lacks them;
        call :func:`~atlasbatch._photometry.add_derived_columns` first for other limits.
        Server columns the schema does not know are left out (they stay in the per-target
        file). ``fetched_at`` must be timezone-aware; it is stored in UTC.
        """
        import numpy as np  # noqa: PLC0415

        from atlasbatch._table import Provenance, photometry_table  # noqa: PLC0415

        if self.closed:
            raise ValueError("PhotometryTableWriter is closed")
        if fetched_at.tzinfo is None:
            raise ValueError("fetched_at must be tz-aware, e.g. datetime.now(UTC)")
        self.note_unknown(df.columns)
        owner = Provenance(target, task_id, fetched_at, server)
        curve = np.zeros(len(df), dtype=np.intp)
        self.add_table(photometry_table(df, curve, [[owner]], schema=self.schema, extra=self.extra))

    def add_table(self, table: pa.Table) -> None:
        """Append rows made by :func:`~atlasbatch._table.photometry_table` with
        :attr:`schema` (buffered up to one row group)."""
        if self.closed:
            raise ValueError("PhotometryTableWriter is closed")
        self._buffer.append(table)
        self._buffered_rows += table.num_rows
        if self._buffered_rows >= self._row_group_rows:
            self._flush()

    def note_unknown(self, columns: Iterable[object]) -> None:
        """Log once each light-curve column the table has no place for."""
        from atlasbatch._table import unknown_columns  # noqa: PLC0415

        for column in unknown_columns(columns):
            if column not in self._unknown_logged:
                self._unknown_logged.add(column)
                logger.warning("column %r is not in the photometry table schema", column)

    def close(self) -> None:
        """Write what is buffered, finish both files and move them into place."""
        if self.closed:
            return
        self.closed = True
        try:
            try:
                self._flush()
            finally:
                self._close_writers()
            for pending in self._files:
                pending.commit()
        except BaseException:
            self._discard_files()
            raise

    def abort(self) -> None:
        """Drop everything written so far; ``path`` keeps whatever it held before."""
        if self.closed:
            return
        self.closed = True
        try:
            self._close_writers()
        finally:
            self._discard_files()

    def _flush(self) -> None:
        """Write the buffered targets as one row group (few, large groups read fastest)."""
        import pyarrow as pa  # noqa: PLC0415

        from atlasbatch._csv_cells import neutralise_table  # noqa: PLC0415

        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered_rows = [], 0
        if table.num_rows == 0:
            return
        self._parquet.write_table(table, row_group_size=table.num_rows)
        if self._csv is not None:  # the CSV may be opened in a spreadsheet: no formulas
            self._csv.write_table(neutralise_table(table))
        self.rows_written += table.num_rows

    def _close_writers(self) -> None:
        self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def _discard_files(self) -> None:
        for pending in self._files:
            pending.discard()


def write_csv_twin(parts: Sequence[Path], path: Path) -> None:
    """Write ``path`` (photometry.csv) from the table's parts, one row group in memory at a
    time, atomically; text a spreadsheet would run as a formula gets a leading ``'``."""
    import pyarrow.csv as pa_csv  # noqa: PLC0415 - see the module docstring
    import pyarrow.parquet as pq  # noqa: PLC0415

    from atlasbatch._csv_cells import neutralise_schema, neutralise_table  # noqa: PLC0415

    pending = AtomicFile(path)
    try:
        writer: pa_csv.CSVWriter | None = None
        for part in parts:
            source = pq.ParquetFile(part)
            if writer is None:
                writer = pa_csv.CSVWriter(str(pending.temp), neutralise_schema(source.schema_arrow))
            for group in range(source.num_row_groups):
                writer.write_table(neutralise_table(source.read_row_group(group)))
        if writer is not None:
            writer.close()
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def write_outcomes_csv(
    path: Path,
    outcomes: Iterable[Outcome],
    *,
    extra_columns: Sequence[str] = (),
    ordered: bool = False,
    control_columns: bool = False,
    images: Mapping[int, str] | None = None,
) -> None:
    """Write ``outcomes.csv`` atomically: one row per input row, sorted by input line.

    ``ordered``: the outcomes come in input order already (as the ledger gives them), and
    are written as they come, in memory flat in their number.

    Columns: ``line,name,state,task_id,error,path,ra,dec,mpc_name,mjd_min,mjd_max`` then the
    pass-through columns; missing values are empty. RA, Dec and MJDs are rounded to 1e-9
    (:func:`_number`); text a spreadsheet would run as a formula gets a leading ``'``
    (:mod:`._csv_cells`). ``control_columns`` (a run with control positions,
    :mod:`._controls`, which have rows too) adds ``control_of,control_index`` before the
    pass-through columns; ``images`` (a run where rows asked for images) adds ``images``,
    each row's zip path or why it has none (empty: the row did not ask).
    """
    controls = (*(CONTROL_COLUMNS if control_columns else ()), *(IMAGE_COLUMN if images else ()))
    extra = pass_through_names(extra_columns, reserved=(*OUTCOME_COLUMNS, *controls))
    pending = AtomicFile(path)
    try:
        with pending.temp.open("w", encoding="utf-8", newline="") as handle:
            _write_outcome_rows(
                csv.writer(handle, lineterminator="\n"),
                outcomes if ordered else sorted(outcomes, key=lambda o: o.target.line),
                extra,
                controls=control_columns,
                images=images,
            )
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def _write_outcome_rows(
    writer: CsvWriter,
    outcomes: Iterable[Outcome],
    extra: dict[str, str],
    *,
    controls: bool,
    images: Mapping[int, str] | None = None,
) -> None:
    writer.writerow(
        [*OUTCOME_COLUMNS, *(CONTROL_COLUMNS if controls else ()),
         *(IMAGE_COLUMN if images else ()), *map(csv_cell, extra.values())]
    )  # fmt: skip
    for outcome in outcomes:
        target = outcome.target
        writer.writerow(
            [
                target.line, csv_cell(target.name), outcome.state.value,
                csv_cell(outcome.task_id), csv_cell(outcome.error), csv_cell(outcome.path),
                _number(target.ra), _number(target.dec), csv_cell(target.mpc_name),
                _number(target.mjd_min), _number(target.mjd_max),
                *((csv_cell(target.control_of), csv_cell(target.control_index))
                  if controls else ()),
                *((csv_cell(images.get(target.line)),) if images else ()),
                *(csv_cell(target.extra.get(column)) for column in extra),
            ]
        )  # fmt: skip


def _number(value: float | None) -> str:
    """RA, Dec or MJD rounded to 1e-9 (3.6 µas, 86 µs), far below any precision that matters:
    the float noise of sexagesimal input (``44.99999999999999``) reads ``45.0`` again."""
    return "" if value is None else csv_cell(round(value, 9) + 0.0)  # + 0.0: no "-0.0"
