"""The photometry table: one schema, and the one function that builds its rows.

The CLI's ``photometry.parquet`` and the API's ``RunReport.photometry`` are both built by
:func:`photometry_table`, so they have the same columns with the same types:

    server columns (§12, PA_DEG null when the file lacked it) + derived columns
    + provenance (target, target_line, input_ra, input_dec, mpc_name, task_id,
      mjd_min, mjd_max, use_reduced, fetched_at, server) + pass-through columns (strings)

The schema carries pandas metadata, so ``pd.read_parquet`` and ``Table.to_pandas`` restore
nullable ``Int64``, ``string`` and ``bool`` dtypes. Light curves come stacked (one frame,
a light-curve number per row): one vectorised pass for a thousand small files, instead of a
thousand passes of pandas' per-call overhead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from atlasbatch._models import Outcome, Target
from atlasbatch._outputs.results import INT_COLUMNS, SERVER_COLUMNS, STRING_COLUMNS
from atlasbatch._outputs.table_writer import TABLE_RESERVED, pass_through_names
from atlasbatch._science.photometry import DERIVED_COLUMNS, add_derived_columns

if TYPE_CHECKING:
    from atlasbatch._outputs.epoch_origins import Origin

__all__ = [
    "PROVENANCE_COLUMNS",
    "Provenance",
    "as_frame",
    "outcomes_table",
    "photometry_table",
    "table_schema",
    "unknown_columns",
]

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
Lines = npt.NDArray[np.intp]


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one input row's light curve came from: the row, its task, when and from where.

    ``fetched_at`` is the time the ledger recorded the download (timezone-aware).
    ``origins``: a refreshed light curve's earlier epochs came from earlier tasks (oldest
    first, see :mod:`._outputs.epoch_origins`); its rows keep their own task and time.
    """

    target: Target
    task_id: int | None
    fetched_at: datetime
    server: str
    origins: tuple[Origin, ...] = ()

    def values(self) -> dict[str, object]:
        """The provenance columns of this light curve's rows."""
        target = self.target
        return {
            "target": target.name, "target_line": target.line, "input_ra": target.ra,
            "input_dec": target.dec, "mpc_name": target.mpc_name, "task_id": self.task_id,
            "mjd_min": target.mjd_min, "mjd_max": target.mjd_max,
            "use_reduced": target.use_reduced, "fetched_at": self.fetched_at.astimezone(UTC),
            "server": self.server,
        }  # fmt: skip


def table_schema(extra_names: Iterable[str] = ()) -> pa.Schema:
    """The table's schema; ``extra_names`` are the pass-through columns' output names."""
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


def photometry_table(
    rows: pd.DataFrame,
    curve: npt.ArrayLike,
    owners: Sequence[Sequence[Provenance]],
    *,
    schema: pa.Schema,
    extra: Mapping[str, str] | None = None,
    sigma_limit: float = 3.0,
) -> pa.Table:
    """The table rows of stacked light curves, with derived columns and provenance.

    ``rows`` holds the server's columns of light curves 0, 1, … one after another, and
    ``curve`` each row's light-curve number (non-decreasing). ``owners[k]`` are the input
    rows that asked for light curve ``k`` (duplicate rows share one file): each gets its own
    copy of the rows, in that order. ``extra`` maps pass-through columns of ``Target.extra``
    to their names in ``schema`` (:func:`table_schema`). Derived columns are computed with
    ``sigma_limit`` unless ``rows`` already has them. Server columns the schema lacks are
    left out (see :func:`unknown_columns`).
    """
    curve = np.asarray(curve, dtype=np.intp)
    if not set(DERIVED_COLUMNS) <= set(rows.columns):
        rows = add_derived_columns(rows, sigma_limit=sigma_limit, curve=curve)
    take, owner, flat = _copies(curve, owners)
    values = [p.values() for p in flat]
    for src, out in (extra or {}).items():
        for row, p in zip(values, flat, strict=True):
            row[out] = p.target.extra.get(src)
    columns: dict[str, pa.Array] = {}
    for field in schema:
        if flat and field.name in values[0]:  # one value per light curve, repeated per row
            per_curve = pa.array([row[field.name] for row in values], type=field.type)
            columns[field.name] = per_curve.take(pa.array(owner))
        elif field.name in rows.columns:
            # A safe cast: 1228.0 may become int64 1228, but 12.5 raises instead of truncating.
            column = pa.array(rows[field.name], from_pandas=True).cast(field.type)
            columns[field.name] = column if take is None else column.take(pa.array(take))
        else:
            columns[field.name] = pa.nulls(len(owner), type=field.type)
    if any(p.origins for p in flat):
        mjd = columns["MJD"].to_numpy(zero_copy_only=False)
        columns["task_id"], columns["fetched_at"] = _by_origin(flat, owner, mjd)
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _by_origin(
    flat: Sequence[Provenance], owner: Lines, mjd: npt.NDArray[np.float64]
) -> tuple[pa.Array, pa.Array]:
    """Each row's task id and fetch time, from the origin of its epoch: the earlier task
    up to each origin's MJD, the light curve's own after the last (and for a missing MJD)."""
    tasks = np.array([-1 if p.task_id is None else p.task_id for p in flat], dtype=np.int64)
    times = np.array([_micros(p.fetched_at) for p in flat], dtype=np.int64)
    row_task, row_time = tasks[owner], times[owner]
    bounds = np.searchsorted(owner, np.arange(len(flat) + 1))  # owner is non-decreasing
    for k, p in enumerate(flat):
        lower = -np.inf
        span = slice(bounds[k], bounds[k + 1])
        for origin in p.origins:
            hit = (mjd[span] > lower) & (mjd[span] <= origin.upto)
            lower = origin.upto
            row_task[span][hit] = -1 if origin.task_id is None else origin.task_id
            if origin.stored_at is not None:
                row_time[span][hit] = round(origin.stored_at * 1_000_000)
    task_ids = pa.array(row_task, mask=row_task < 0, type=pa.int64())
    return task_ids, pa.array(row_time, type=pa.timestamp("us", tz="UTC"))


def _micros(when: datetime) -> int:
    return round(when.timestamp() * 1_000_000)


def _copies(
    curve: Lines, owners: Sequence[Sequence[Provenance]]
) -> tuple[Lines | None, Lines, list[Provenance]]:
    """Row indices to take (None: every row once, in order), each output row's owner
    (an index into the flat list of owners), and that flat list."""
    flat = [p for group in owners for p in group]
    if all(len(group) == 1 for group in owners):  # no duplicate rows: nothing to copy
        return None, curve, flat
    counts = np.bincount(curve, minlength=len(owners))
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.intp)
    takes: list[Lines] = []
    owned: list[Lines] = []
    number = 0
    for k, group in enumerate(owners):
        span = np.arange(starts[k], starts[k] + counts[k], dtype=np.intp)
        for _ in group:
            takes.append(span)
            owned.append(np.full(counts[k], number, dtype=np.intp))
            number += 1
    empty = np.zeros(0, dtype=np.intp)
    return (
        np.concatenate(takes) if takes else empty,
        np.concatenate(owned) if owned else empty,
        flat,
    )


def unknown_columns(columns: Iterable[object]) -> list[str]:
    """Columns of a parsed light curve that the table has no place for (they stay in the
    per-target file)."""
    known = {*SERVER_COLUMNS, *DERIVED_COLUMNS}
    return [str(c) for c in columns if str(c) not in known]


def as_frame(table: pa.Table) -> pd.DataFrame:
    """The table as pandas reads it from Parquet (nullable ``Int64``, ``string``, ``bool``)."""
    frame: pd.DataFrame = table.to_pandas()
    return frame


def outcomes_table(
    outcomes: Iterable[Outcome],
    *,
    server: str,
    fetched_at: Mapping[int, float],
    sigma_limit: float = 3.0,
) -> pd.DataFrame:
    """The photometry table of outcomes that hold their light curve (``keep_data``): the
    columns of ``photometry.parquet``, built by the same :func:`photometry_table`.

    ``fetched_at`` maps a task id to the time (unix seconds) the ledger recorded its
    download. Duplicate rows share their representative's frame and task: one light curve,
    a copy of its rows per input row, as in the CLI's table. No outcome with data: an empty
    table that still has every column.
    """
    every = list(outcomes)
    extra = pass_through_names(
        sorted({key for o in every for key in o.target.extra}), reserved=TABLE_RESERVED
    )
    schema = table_schema(extra.values())
    curves: dict[tuple[str, int], list[Outcome]] = {}
    for outcome in every:
        if outcome.data is not None:
            curves.setdefault(_curve_key(outcome), []).append(outcome)
    if not curves:
        return as_frame(schema.empty_table())
    owners = [
        [Provenance(o.target, o.task_id, _when(fetched_at, o.task_id), server) for o in members]
        for members in curves.values()
    ]
    frames = [members[0].data for members in curves.values()]
    lengths = [len(frame) for frame in frames if frame is not None]
    rows = pd.concat(frames, ignore_index=True)
    curve = np.repeat(np.arange(len(frames), dtype=np.intp), lengths)
    table = photometry_table(
        rows, curve, owners, schema=schema, extra=extra, sigma_limit=sigma_limit
    )
    return as_frame(table)


def _curve_key(outcome: Outcome) -> tuple[str, int]:
    """Duplicate rows share their representative's task (and frame): one light curve."""
    if outcome.task_id is not None:
        return ("task", outcome.task_id)
    return ("frame", id(outcome.data))


def _when(fetched_at: Mapping[int, float], task_id: int | None) -> datetime:
    stamp = None if task_id is None else fetched_at.get(task_id)
    return datetime.now(UTC) if stamp is None else datetime.fromtimestamp(stamp, UTC)
