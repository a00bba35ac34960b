"""``photometry_nightly.parquet``: every target's nightly light curve in one table.

Each row is one target, filter and night (:mod:`._science.nightly`), with the target's provenance
first: ``target``, ``target_line``, ``control_of`` and ``control_index`` (set on the rows of
control positions, :mod:`._runs.controls`), ``task_id``. A target is averaged together with its
control light curves (:func:`family_tables`: one family at a time, for light curves held in
memory; a run directory's files go a batch of families at a time, :mod:`._outputs.nightly_batch`);
the table is streamed in row groups and appears only whole (written to a temporary name,
then renamed), like ``photometry.parquet``. Each light curve is read once per family, also
when duplicate rows share it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

import pandas as pd
import pyarrow as pa

from atlasbatch._models import Target
from atlasbatch._outputs.table_files import TableFiles
from atlasbatch._science.nightly import nightly_light_curve
from atlasbatch._science.nightly_options import NightlyOptions

__all__ = [
    "Family",
    "NightlyTableWriter",
    "SourceCurve",
    "families",
    "family_tables",
    "nightly_frame",
    "nightly_tables",
    "with_provenance",
]


_PROVENANCE = {
    "target": "string", "target_line": "int64", "control_of": "Int64",
    "control_index": "Int64", "task_id": "Int64",
}  # fmt: skip
# Rows buffered before they are written (~35 columns: ~5 MB), as for photometry.parquet.
_ROW_GROUP_ROWS = 16_384
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


@dataclass(frozen=True, slots=True)
class Family:
    """Light curves averaged together: ``members`` share one light curve (a row and its
    duplicates), ``controls`` are the first member's (the cut uses them; ``requested`` is how
    many it was given, downloaded or not) and ``shown`` every member's controls, which get
    their own plain nightly rows. A control whose target has no light curve is a family of
    its own (one member, no controls)."""

    members: tuple[SourceCurve, ...]
    controls: tuple[SourceCurve, ...] = ()
    requested: int = 0
    shown: tuple[SourceCurve, ...] = ()

    def curves(self) -> tuple[SourceCurve, ...]:
        """Every curve whose light curve the family reads."""
        return (*self.members, *self.controls, *self.shown)


def families(curves: Sequence[SourceCurve]) -> list[Family]:
    """Group ``curves`` into families: each light curve is in exactly one."""
    controls: defaultdict[int, list[SourceCurve]] = defaultdict(list)
    groups: defaultdict[Hashable, list[SourceCurve]] = defaultdict(list)
    for curve in curves:
        if curve.target.control_of is not None:
            controls[curve.target.control_of].append(curve)
        elif curve.key is not None:
            groups[curve.key].append(curve)
    found: list[Family] = []
    covered: set[int] = set()
    for members in groups.values():
        own = controls.get(members[0].target.line, [])
        shown = [c for m in members for c in controls.get(m.target.line, []) if c.key is not None]
        covered.update(m.target.line for m in members)
        found.append(
            Family(
                tuple(members), tuple(c for c in own if c.key is not None), len(own), tuple(shown)
            )
        )
    orphans = (c for line, group in controls.items() if line not in covered for c in group)
    return found + [Family((c,)) for c in orphans if c.key is not None]


def family_tables(
    family: Family, load: Loader, options: NightlyOptions
) -> list[tuple[SourceCurve, pd.DataFrame]]:
    """The nightly table of each curve of ``family`` (none for light curves that cannot be
    read), the members' judged by their controls."""
    frames: dict[Hashable, pd.DataFrame | None] = {}

    def frame(key: Hashable) -> pd.DataFrame | None:
        if key not in frames:
            frames[key] = load(key)
        return frames[key]

    found: list[tuple[SourceCurve, pd.DataFrame]] = []
    target = frame(family.members[0].key)
    if target is not None:
        around = [f for c in family.controls if (f := frame(c.key)) is not None]
        table = nightly_light_curve(
            target, controls=around, requested_controls=family.requested, options=options
        )
        found += [(member, table) for member in family.members]
    plain: dict[Hashable, pd.DataFrame] = {}
    for control in family.shown:
        if control.key not in plain and (light := frame(control.key)) is not None:
            plain[control.key] = nightly_light_curve(light, options=options)
        if control.key in plain:
            found.append((control, plain[control.key]))
    return found


def nightly_tables(
    curves: Sequence[SourceCurve], load: Loader, options: NightlyOptions
) -> Iterator[tuple[SourceCurve, pd.DataFrame]]:
    """The nightly table of every curve that has a light curve, family by family."""
    for family in families(curves):
        yield from family_tables(family, load, options)


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
        self._files = TableFiles(
            path, self.schema, csv_path=csv_path, row_group_rows=_ROW_GROUP_ROWS
        )

    @property
    def rows_written(self) -> int:
        """Rows in the files so far (buffered rows not counted)."""
        return self._files.rows_written

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self._files.commit()
        else:
            self._files.discard()

    def add(self, curve: SourceCurve, table: pd.DataFrame) -> None:
        """Append one target's nightly table."""
        self.add_arrow(self.to_arrow(with_provenance(curve, table)))

    def to_arrow(self, frame: pd.DataFrame) -> pa.Table:
        """Nightly rows with their provenance (:func:`with_provenance`) in this schema."""
        return pa.Table.from_pandas(frame, schema=self.schema, preserve_index=False)

    def add_arrow(self, table: pa.Table) -> None:
        """Append rows already in this schema (:meth:`to_arrow`)."""
        self._files.add(table)
