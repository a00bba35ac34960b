"""Run outputs: one Parquet table (and optional CSV twin) for all targets, and outcomes.csv.

The table is streamed: per-target frames are buffered only up to one row group, so memory
stays bounded however many targets a run has. Its schema is fixed up front (a Parquet file
has one schema), carries pandas metadata so that ``pd.read_parquet`` restores nullable
``Int64``, ``string`` and ``bool`` dtypes, and is:

    server columns (§12, PA_DEG null when the file lacked it) + derived columns
    + provenance (target, target_line, input_ra, input_dec, mpc_name, task_id,
      mjd_min, mjd_max, use_reduced, fetched_at, server) + pass-through columns (strings)
"""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Self

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from atlasbatch._csv_cells import csv_cell, neutralise_schema, neutralise_table
from atlasbatch._models import Outcome, Target
from atlasbatch._photometry import DERIVED_COLUMNS, add_derived_columns
from atlasbatch._results import (
    INT_COLUMNS,
    SERVER_COLUMNS,
    STRING_COLUMNS,
    AtomicFile,
    write_atomic,
)

__all__ = [
    "OUTCOME_COLUMNS",
    "PROVENANCE_COLUMNS",
    "PhotometryTableWriter",
    "pass_through_names",
    "write_outcomes_csv",
]

logger = logging.getLogger(__name__)

_DERIVED_DTYPES: Mapping[str, str] = {
    "snr": "float64", "detected": "bool", "mag_ab": "float64", "mag_ab_err": "float64",
    "mag_limit": "float64", "quality_ok": "bool", "quality_flags": "string",
}  # fmt: skip
_PROVENANCE_DTYPES: Mapping[str, str] = {
    "target": "string", "target_line": "int64", "input_ra": "float64",
    "input_dec": "float64", "mpc_name": "string", "task_id": "Int64", "mjd_min": "float64",
    "mjd_max": "float64", "use_reduced": "bool", "fetched_at": "datetime64[us, UTC]",
    "server": "string",
}  # fmt: skip
PROVENANCE_COLUMNS: tuple[str, ...] = tuple(_PROVENANCE_DTYPES)
OUTCOME_COLUMNS: tuple[str, ...] = (
    "line", "name", "state", "task_id", "error", "path", "ra", "dec", "mpc_name",
    "mjd_min", "mjd_max",
)  # fmt: skip
_DEFAULT_ROW_GROUP_ROWS = 65_536


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
        if output != column:
            logger.warning("pass-through column %r is written as %r", column, output)
        taken.add(output)
        names[column] = output
    return names


def _schema(extra_names: Iterable[str]) -> pa.Schema:
    """The fixed table schema, with pandas metadata so dtypes survive a round trip."""
    dtypes = {
        **{name: _server_dtype(name) for name in SERVER_COLUMNS},
        **_DERIVED_DTYPES,
        **_PROVENANCE_DTYPES,
        **dict.fromkeys(extra_names, "string"),
    }
    template = pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in dtypes.items()})
    schema = pa.Schema.from_pandas(template, preserve_index=False)
    # pandas asks for large_string; plain string is read by more tools and is big enough.
    fields = [
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def _server_dtype(name: str) -> str:
    if name in INT_COLUMNS:
        return "Int64"
    return "string" if name in STRING_COLUMNS else "float64"


class PhotometryTableWriter:
    """Stream per-target light curves into one Parquet file (and optionally a CSV twin).

    Use as a context manager; the files appear at ``path``/``csv_path`` only when it exits
    without an exception (written to temporary names, then renamed), so a crashed run never
    leaves a half-written table behind. ``extra_columns`` are pass-through columns of the
    target file, read from ``Target.extra`` (see :func:`pass_through_names` for clashes).
    """

    def __init__(
        self,
        path: Path,
        *,
        extra_columns: Sequence[str] = (),
        csv_path: Path | None = None,
        row_group_rows: int = _DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        reserved = (*SERVER_COLUMNS, *DERIVED_COLUMNS, *PROVENANCE_COLUMNS)
        self._extra = pass_through_names(extra_columns, reserved=reserved)
        self.schema = _schema(self._extra.values())
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
        if self.closed:
            raise ValueError("PhotometryTableWriter is closed")
        if fetched_at.tzinfo is None:
            raise ValueError("fetched_at must be tz-aware, e.g. datetime.now(UTC)")
        if not set(DERIVED_COLUMNS) <= set(df.columns):
            df = add_derived_columns(df)
        self._note_unknown_columns(df)
        provenance = _provenance(target, task_id=task_id, server=server, fetched_at=fetched_at)
        provenance.update({out: target.extra.get(src) for src, out in self._extra.items()})
        table = pa.Table.from_arrays(
            [_column(df, field, provenance) for field in self.schema], schema=self.schema
        )
        self._buffer.append(table)
        self._buffered_rows += table.num_rows
        if self._buffered_rows >= self._row_group_rows:
            self._flush()

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

    def _note_unknown_columns(self, df: pd.DataFrame) -> None:
        known = {*SERVER_COLUMNS, *DERIVED_COLUMNS}
        for column in map(str, df.columns):
            if column not in known and column not in self._unknown_logged:
                self._unknown_logged.add(column)
                logger.warning("column %r is not in the photometry table schema", column)


def _provenance(
    target: Target, *, task_id: int | None, server: str, fetched_at: datetime
) -> dict[str, object]:
    return {
        "target": target.name,
        "target_line": target.line,
        "input_ra": target.ra,
        "input_dec": target.dec,
        "mpc_name": target.mpc_name,
        "task_id": task_id,
        "mjd_min": target.mjd_min,
        "mjd_max": target.mjd_max,
        "use_reduced": target.use_reduced,
        "fetched_at": fetched_at.astimezone(UTC),
        "server": server,
    }


def _column(df: pd.DataFrame, field: pa.Field, provenance: Mapping[str, object]) -> pa.Array:
    """One column of the table: from the frame, a repeated provenance value, or nulls."""
    if field.name in provenance:
        return pa.array([provenance[field.name]] * len(df), type=field.type)
    if field.name not in df.columns:
        return pa.nulls(len(df), type=field.type)
    # A safe cast: 1228.0 may become int64 1228, but 12.5 raises instead of truncating.
    return pa.array(df[field.name], from_pandas=True).cast(field.type)


def write_outcomes_csv(
    path: Path, outcomes: Iterable[Outcome], *, extra_columns: Sequence[str] = ()
) -> None:
    """Write ``outcomes.csv`` atomically: one row per input row, sorted by input line.

    Columns: ``line,name,state,task_id,error,path,ra,dec,mpc_name,mjd_min,mjd_max`` then the
    pass-through columns; missing values are empty. RA, Dec and MJDs are rounded to 1e-9
    (:func:`_number`); text a spreadsheet would run as a formula gets a leading ``'``
    (:mod:`._csv_cells`).
    """
    extra = pass_through_names(extra_columns, reserved=OUTCOME_COLUMNS)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*OUTCOME_COLUMNS, *map(csv_cell, extra.values())])
    for outcome in sorted(outcomes, key=lambda o: o.target.line):
        target = outcome.target
        writer.writerow(
            [
                target.line, csv_cell(target.name), outcome.state.value,
                csv_cell(outcome.task_id), csv_cell(outcome.error), csv_cell(outcome.path),
                _number(target.ra), _number(target.dec), csv_cell(target.mpc_name),
                _number(target.mjd_min), _number(target.mjd_max),
                *(csv_cell(target.extra.get(column)) for column in extra),
            ]
        )  # fmt: skip
    write_atomic(path, buffer.getvalue().encode("utf-8"))


def _number(value: float | None) -> str:
    """RA, Dec or MJD rounded to 1e-9 (3.6 µas, 86 µs), far below any precision that matters:
    the float noise of sexagesimal input (``44.99999999999999``) reads ``45.0`` again."""
    return "" if value is None else csv_cell(round(value, 9) + 0.0)  # + 0.0: no "-0.0"
