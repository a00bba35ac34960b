"""A table's files: one Parquet file and an optional CSV twin, written as one.

Both are written to temporary files a row group at a time and appear together at
:meth:`TableFiles.commit`; :meth:`TableFiles.discard` leaves whatever the paths held before.
The CSV twin is for spreadsheets, so its text cells are neutralised (no formulas). Shared by
the photometry table and the nightly table. pyarrow is imported when the files are made.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._outputs.results import AtomicFile

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = ["TableFiles"]


class TableFiles:
    """``path`` (Parquet) and ``csv_path`` (CSV, optional) with ``schema``; rows buffered up
    to ``row_group_rows`` (few, large row groups read fastest)."""

    def __init__(
        self, path: Path, schema: pa.Schema, *, csv_path: Path | None, row_group_rows: int
    ) -> None:
        import pyarrow.csv as pa_csv  # noqa: PLC0415 - see the module docstring
        import pyarrow.parquet as pq  # noqa: PLC0415

        from atlasbatch._outputs.csv_cells import neutralise_schema  # noqa: PLC0415

        self.rows_written = 0
        self._row_group_rows = max(1, row_group_rows)
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._files = [AtomicFile(path)] + ([AtomicFile(csv_path)] if csv_path else [])
        try:
            self._parquet = pq.ParquetWriter(str(self._files[0].temp), schema)
            self._csv = (
                pa_csv.CSVWriter(str(self._files[1].temp), neutralise_schema(schema))
                if csv_path
                else None
            )
        except BaseException:
            self._remove()
            raise

    def add(self, table: pa.Table) -> None:
        """Append rows in the files' schema; written once a row group's worth is buffered."""
        self._buffer.append(table)
        self._buffered += table.num_rows
        if self._buffered >= self._row_group_rows:
            self._flush()

    def commit(self) -> None:
        """Write what is buffered, close both files and move them into place (on failure,
        nothing is moved)."""
        try:
            try:
                self._flush()
            finally:
                self._close()
            for pending in self._files:
                pending.commit()
        except BaseException:
            self._remove()
            raise

    def discard(self) -> None:
        """Drop everything written; the paths keep what they held."""
        try:
            with contextlib.suppress(Exception):  # already failing, or closed: keep going
                self._close()
        finally:
            self._remove()

    def _flush(self) -> None:
        import pyarrow as pa  # noqa: PLC0415

        from atlasbatch._outputs.csv_cells import neutralise_table  # noqa: PLC0415

        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        if table.num_rows == 0:
            return
        self._parquet.write_table(table, row_group_size=table.num_rows)
        if self._csv is not None:
            self._csv.write_table(neutralise_table(table))
        self.rows_written += table.num_rows

    def _close(self) -> None:
        self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def _remove(self) -> None:
        for pending in self._files:
            pending.discard()
