"""``photometry_nightly.parquet``: every target's nightly light curve in one table.

Each row is one target, filter and night (:mod:`._nightly`), with the target's provenance
first: ``target``, ``target_line``, ``control_of`` and ``control_index`` (set on the rows of
control positions, :mod:`._controls`), ``task_id``. A target is averaged together with its
control light curves, which are loaded alongside it, so at most one target and its controls
are in memory at a time; the table is streamed in row groups and appears only whole
(written to a temporary name, then renamed), like ``photometry.parquet``. Each light curve
is read once per family, also when duplicate rows share it.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from atlasbatch._csv_cells import neutralise_schema, neutralise_table
from atlasbatch._models import Target
from atlasbatch._nightly import nightly_light_curve
from atlasbatch._nightly_options import NightlyOptions
from atlasbatch._results import AtomicFile

__all__ = ["NightlyTableWriter", "SourceCurve", "nightly_frame", "nightly_tables"]


_PROVENANCE = {
    "target": "string", "target_line": "int64", "control_of": "Int64",
    "control_index": "Int64", "task_id": "Int64",
}  # fmt: skip
_ROW_GROUP_ROWS = 65_536
Loader = Callable[[Hashable], pd.DataFrame | None]


@dataclass(frozen=True, slots=True)
class SourceCurve:
    """One target (or control) and where its light curve is: ``key`` for the loader, None
    when it has none (failed, no data, not downloaded)."""

    target: Target
    key: Hashable | None
    task_id: int | None = None


def with_provenance(curve: SourceCurve, table: pd.DataFrame) -> pd.DataFrame:
    """``table`` with the target's provenance columns first."""
    target = curve.target
    values = {
        "target": target.name, "target_line": target.line, "control_of": target.control_of,
        "control_index": target.control_index, "task_id": curve.task_id,
    }  # fmt: skip
    columns = {
        name: pd.Series([values[name]] * len(table), dtype=dtype, index=table.index)
        for name, dtype in _PROVENANCE.items()
    }
    return pd.concat([pd.DataFrame(columns), table], axis=1)


def nightly_tables(
    curves: Sequence[SourceCurve], load: Loader, options: NightlyOptions
) -> Iterator[tuple[SourceCurve, pd.DataFrame]]:
    """The nightly table of every curve that has a light curve, targets with their controls.

    A target's controls are the curves whose ``control_of`` is its line; how many it has
    (downloaded or not) sets the control cut's minimum of good controls.
    """
    controls: defaultdict[int, list[SourceCurve]] = defaultdict(list)
    families: defaultdict[Hashable, list[SourceCurve]] = defaultdict(list)
    for curve in curves:
        if curve.target.control_of is not None:
            controls[curve.target.control_of].append(curve)
        elif curve.key is not None:
            families[curve.key].append(curve)
    done: set[int] = set()
    for key, members in families.items():
        frame = load(key)
        if frame is None:
            continue
        own = controls.get(members[0].target.line, [])
        loaded = {c.key: load(c.key) for c in own if c.key is not None}
        frames = {k: f for k, f in loaded.items() if f is not None}
        table = nightly_light_curve(
            frame, controls=list(frames.values()), requested_controls=len(own), options=options
        )
        for member in members:
            yield member, table
        plain = {k: nightly_light_curve(f, options=options) for k, f in frames.items()}
        for member in members:
            for control in controls.get(member.target.line, []):
                if control.key in plain:
                    done.add(control.target.line)
                    yield control, plain[control.key]
    yield from _orphan_controls(controls, done, load, options)


def _orphan_controls(
    controls: dict[int, list[SourceCurve]], done: set[int], load: Loader, options: NightlyOptions
) -> Iterator[tuple[SourceCurve, pd.DataFrame]]:
    """Controls whose target has no light curve (it failed, or has no data) still get theirs."""
    for curve in (c for group in controls.values() for c in group):
        if curve.key is None or curve.target.line in done:
            continue
        frame = load(curve.key)
        if frame is not None:
            yield curve, nightly_light_curve(frame, options=options)


def nightly_frame(
    curves: Sequence[SourceCurve], load: Loader, options: NightlyOptions
) -> pd.DataFrame:
    """Every nightly table in one DataFrame (for a run held in memory)."""
    frames = [with_provenance(c, t) for c, t in nightly_tables(curves, load, options)]
    frames = [frame for frame in frames if len(frame)]
    if not frames:
        return pd.DataFrame(columns=[*_PROVENANCE, *_template().columns])
    return pd.concat(frames, ignore_index=True)


def _template() -> pd.DataFrame:
    """The nightly columns with their dtypes (the table of an empty light curve)."""
    empty = pd.DataFrame({"MJD": pd.Series([], dtype="float64")})
    return nightly_light_curve(empty)


def _schema() -> pa.Schema:
    template = with_provenance(SourceCurve(Target(line=0, name=""), None), _template())
    schema = pa.Schema.from_pandas(template, preserve_index=False)
    fields = [
        field.with_type(pa.string()) if pa.types.is_large_string(field.type) else field
        for field in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


class NightlyTableWriter:
    """Stream nightly tables into ``path`` (and a CSV twin at ``csv_path``); a context
    manager whose files appear only when it exits without an exception."""

    def __init__(self, path: Path, *, csv_path: Path | None = None) -> None:
        self.schema = _schema()
        self.rows_written = 0
        self._buffer: list[pa.Table] = []
        self._buffered = 0
        self._files = [AtomicFile(path)] + ([AtomicFile(csv_path)] if csv_path else [])
        try:
            self._parquet = pq.ParquetWriter(str(self._files[0].temp), self.schema)
            self._csv = (
                pa_csv.CSVWriter(str(self._files[1].temp), neutralise_schema(self.schema))
                if csv_path
                else None
            )
        except BaseException:
            self._discard()
            raise

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        committed = False
        try:
            if kind is None:
                self._flush()
                self._close()
                for pending in self._files:
                    pending.commit()
                committed = True
        finally:
            if not committed:
                with contextlib.suppress(Exception):  # already failing: keep that error
                    self._close()
                self._discard()

    def add(self, curve: SourceCurve, table: pd.DataFrame) -> None:
        """Append one target's nightly table."""
        frame = with_provenance(curve, table)
        self._buffer.append(pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False))
        self._buffered += len(frame)
        if self._buffered >= _ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.concat_tables(self._buffer)
        self._buffer, self._buffered = [], 0
        if table.num_rows == 0:
            return
        self._parquet.write_table(table, row_group_size=table.num_rows)
        if self._csv is not None:  # opened in spreadsheets: no formulas
            self._csv.write_table(neutralise_table(table))
        self.rows_written += table.num_rows

    def _close(self) -> None:
        self._parquet.close()
        if self._csv is not None:
            self._csv.close()

    def _discard(self) -> None:
        for pending in self._files:
            pending.discard()
