"""Writing the photometry table to one Parquet file (and a CSV twin), a row group at a time.

The rows come from :func:`atlasbatch._outputs.table.photometry_table`; this module only streams
them to disk atomically. Importing it costs no pandas or pyarrow: the writer imports them
when it is made, so modules that only need :func:`pass_through_names` stay light.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from atlasbatch._models import Target
from atlasbatch._outputs.results import SERVER_COLUMNS, AtomicFile
from atlasbatch._outputs.table_files import TableFiles

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

__all__ = [
    "TABLE_RESERVED",
    "PhotometryTableWriter",
    "pass_through_names",
    "write_csv_twin",
]

logger = logging.getLogger(__name__)

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
    Rows are built by :func:`atlasbatch._outputs.table.photometry_table`, as the API's are.
    """

    def __init__(
        self,
        path: Path,
        *,
        extra_columns: Sequence[str] = (),
        csv_path: Path | None = None,
        row_group_rows: int = _DEFAULT_ROW_GROUP_ROWS,
    ) -> None:
        from atlasbatch._outputs.table import table_schema  # noqa: PLC0415

        self.extra = pass_through_names(extra_columns, reserved=TABLE_RESERVED)
        self.schema = table_schema(self.extra.values())
        self._unknown_logged: set[str] = set()
        self.closed = False
        self._files = TableFiles(
            path, self.schema, csv_path=csv_path, row_group_rows=row_group_rows
        )

    @property
    def rows_written(self) -> int:
        """Rows in the files so far (buffered rows not counted)."""
        return self._files.rows_written

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
        call :func:`~atlasbatch._science.photometry.add_derived_columns` first for other limits.
        Server columns the schema does not know are left out (they stay in the per-target
        file). ``fetched_at`` must be timezone-aware; it is stored in UTC.
        """
        import numpy as np  # noqa: PLC0415

        from atlasbatch._outputs.table import Provenance, photometry_table  # noqa: PLC0415

        if self.closed:
            raise ValueError("PhotometryTableWriter is closed")
        if fetched_at.tzinfo is None:
            raise ValueError("fetched_at must be tz-aware, e.g. datetime.now(UTC)")
        self.note_unknown(df.columns)
        owner = Provenance(target, task_id, fetched_at, server)
        curve = np.zeros(len(df), dtype=np.intp)
        self.add_table(photometry_table(df, curve, [[owner]], schema=self.schema, extra=self.extra))

    def add_table(self, table: pa.Table) -> None:
        """Append rows made by :func:`~atlasbatch._outputs.table.photometry_table` with
        :attr:`schema` (buffered up to one row group)."""
        if self.closed:
            raise ValueError("PhotometryTableWriter is closed")
        self._files.add(table)

    def note_unknown(self, columns: Iterable[object]) -> None:
        """Log once each light-curve column the table has no place for."""
        from atlasbatch._outputs.table import unknown_columns  # noqa: PLC0415

        for column in unknown_columns(columns):
            if column not in self._unknown_logged:
                self._unknown_logged.add(column)
                logger.warning("column %r is not in the photometry table schema", column)

    def close(self) -> None:
        """Write what is buffered, finish both files and move them into place."""
        if self.closed:
            return
        self.closed = True
        self._files.commit()

    def abort(self) -> None:
        """Drop everything written so far; ``path`` keeps whatever it held before."""
        if self.closed:
            return
        self.closed = True
        self._files.discard()


def write_csv_twin(parts: Sequence[Path], path: Path) -> None:
    """Write ``path`` (photometry.csv) from the table's parts, one row group in memory at a
    time, atomically; text a spreadsheet would run as a formula gets a leading ``'``."""
    import pyarrow.csv as pa_csv  # noqa: PLC0415 - see the module docstring
    import pyarrow.parquet as pq  # noqa: PLC0415

    from atlasbatch._outputs.csv_cells import neutralise_schema, neutralise_table  # noqa: PLC0415

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
