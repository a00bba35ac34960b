"""The nightly rows of many families at once, straight from their files into Arrow.

Computed one family at a time, the nightly table of a run costs ~9 ms per target, nearly
all of it pandas' fixed cost per call (a parse, a groupby, a concat per light curve), and
thousands of tiny Arrow tables held until a row group fills. Here a batch of families (a
few MB of files) is parsed as one stack per header (:mod:`._outputs.curves`), averaged in one pass
(:func:`~._science.nightly.nightly_stack`; only the control cut stays per family, since it matches
exposures across one family's files), and given its provenance with Arrow ``take``: one
table per batch, each row exactly what :func:`~._outputs.nightly_table.family_tables` gives.

Batches end at families whose first input line hashes to a multiple of
:data:`FAMILIES_PER_BATCH` (or once they hold :data:`BYTES_PER_BATCH` of files), so a changed
family moves no boundary: the cache (:mod:`._outputs.nightly_cache`), which keeps one entry per
batch, redoes only the batches holding a changed family.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from atlasbatch._outputs.curves import read_stacks
from atlasbatch._outputs.nightly_table import Family, SourceCurve
from atlasbatch._science.control_cut import controls_bad
from atlasbatch._science.nightly import nightly_stack
from atlasbatch._science.nightly_options import NightlyOptions

__all__ = ["BYTES_PER_BATCH", "FAMILIES_PER_BATCH", "batch_rows", "batches"]

#: Mean families per batch: boundaries come from the families themselves (see above).
FAMILIES_PER_BATCH = 64
#: A batch also ends once its files hold this much text (memory, not speed, is the bound: a
#: batch holds ~10x its text at its peak, ~40 MB at 4 MB, and 100-row light curves took
#: the same CPU in batches of 1.4 MB as of 11 MB).
BYTES_PER_BATCH = 1 << 20
_GOLDEN = 0x9E3779B97F4A7C15  # Fibonacci hashing: consecutive lines spread evenly
_MASK = (1 << 64) - 1


def _boundary(family: Family) -> bool:
    mixed = ((family.members[0].target.line * _GOLDEN) & _MASK) >> 32
    return mixed % FAMILIES_PER_BATCH == 0


def batches(families: Iterable[Family], out_dir: Path) -> Iterator[list[Family]]:
    """``families`` in batches, in order (see the module docstring for where they end)."""
    batch: list[Family] = []
    size = 0
    for family in families:
        batch.append(family)
        size += sum(_size(out_dir / str(c.key)) for c in family.curves())
        if _boundary(family) or size >= BYTES_PER_BATCH:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _size(path: Path) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


@dataclass(slots=True)
class _Loaded:
    """A batch's light curves, parsed: each stack's rows, where each key's rows are, the
    rows the control cut rejects and each key's number of controls."""

    stacks: list[tuple[pd.DataFrame, npt.NDArray[np.intp]]]
    where: dict[int, tuple[int, int, int]]  # key index -> (stack, start, stop)
    unreadable: set[int]
    flags: list[npt.NDArray[np.bool_]]
    controls: npt.NDArray[np.int64]

    def frame(self, index: int) -> pd.DataFrame | None:
        """Key ``index``'s light curve (None when it cannot be read; empty without rows)."""
        if index in self.unreadable:
            return None
        if index not in self.where:
            return self.stacks[0][0].iloc[0:0] if self.stacks else pd.DataFrame()
        stack, start, stop = self.where[index]
        return self.stacks[stack][0].iloc[start:stop].reset_index(drop=True)


def _load(keys: Sequence[Hashable], out_dir: Path) -> _Loaded:
    paths = [out_dir / str(key) for key in keys]
    unreadable: set[int] = set()
    stacks = [
        (stack.rows, stack.curve)
        for stack in read_stacks(paths, names=[p.name for p in paths], unreadable=unreadable,
                                 purpose="the nightly table")
    ]  # fmt: skip
    where: dict[int, tuple[int, int, int]] = {}
    for number, (_, curve) in enumerate(stacks):
        present = np.unique(curve)
        starts = np.searchsorted(curve, present, side="left")
        stops = np.searchsorted(curve, present, side="right")
        for index, start, stop in zip(present, starts, stops, strict=True):
            where[int(index)] = (number, int(start), int(stop))
    flags = [np.zeros(len(curve), dtype=bool) for _, curve in stacks]
    return _Loaded(stacks, where, unreadable, flags, np.zeros(len(keys), dtype=np.int64))


def batch_rows(batch: Sequence[Family], out_dir: Path, *, options: NightlyOptions,
               schema: pa.Schema) -> pa.Table:  # fmt: skip
    """The nightly rows of ``batch`` with their provenance, in ``schema``, in family order
    (each family's members, then its shown controls)."""
    index: dict[Hashable, int] = {}
    for family in batch:
        for curve in family.curves():
            index.setdefault(curve.key, len(index))
    loaded = _load(list(index), out_dir)
    for family in batch:
        _control_cut(family, index, loaded, options)
    nights = _nights(loaded, options)
    return _with_provenance(nights, _output(batch, index, loaded), schema)


def _control_cut(
    family: Family, index: dict[Hashable, int], loaded: _Loaded, options: NightlyOptions
) -> None:
    """Mark the target's exposures its controls reject, and count its controls."""
    target = index[family.members[0].key]
    around = [f for c in family.controls if (f := loaded.frame(index[c.key])) is not None]
    loaded.controls[target] = len(around)
    if not around or target not in loaded.where:
        return
    stack, start, stop = loaded.where[target]
    frame = loaded.frame(target)
    assert frame is not None  # it has rows
    mjd = pd.to_numeric(frame["MJD"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(mjd)
    bad = controls_bad(frame.loc[finite], around, requested=family.requested, options=options)
    loaded.flags[stack][start:stop][finite] = bad


def _nights(loaded: _Loaded, options: NightlyOptions) -> pd.DataFrame:
    """Every light curve's nightly rows, grouped by key index (``curve``), in key order."""
    controls = loaded.controls
    parts = [
        nightly_stack(rows, curve.astype(np.int64), flags=flag, controls=controls,
                      options=options)
        for (rows, curve), flag in zip(loaded.stacks, loaded.flags, strict=True)
    ]  # fmt: skip
    if len(parts) == 1:
        return parts[0]
    if not parts:
        empty = pd.DataFrame({"MJD": pd.Series([], dtype="float64")})
        return nightly_stack(empty, np.zeros(0, dtype=np.int64), flags=None,
                             controls=controls, options=options)  # fmt: skip
    joined = pd.concat(parts, ignore_index=True)
    order = np.argsort(joined["curve"].to_numpy(), kind="stable")
    return joined.iloc[order].reset_index(drop=True)


def _output(
    batch: Sequence[Family], index: dict[Hashable, int], loaded: _Loaded
) -> list[tuple[SourceCurve, int]]:
    """Each output curve and the key index of its rows, in the order of the table."""
    found: list[tuple[SourceCurve, int]] = []
    for family in batch:
        target = index[family.members[0].key]
        if target not in loaded.unreadable:
            found += [(member, target) for member in family.members]
        found += [
            (control, index[control.key])
            for control in family.shown
            if index[control.key] not in loaded.unreadable
        ]
    return found


def _with_provenance(
    nights: pd.DataFrame, output: list[tuple[SourceCurve, int]], schema: pa.Schema
) -> pa.Table:
    """The rows of each output curve, in order, with its provenance columns first."""
    curve = nights["curve"].to_numpy()
    wanted = np.array([k for _, k in output], dtype=np.int64)
    starts = np.searchsorted(curve, wanted, side="left")
    stops = np.searchsorted(curve, wanted, side="right")
    lengths = stops - starts
    take = np.concatenate([np.zeros(0, np.int64), *map(np.arange, starts, stops)])
    owner = np.repeat(np.arange(len(output)), lengths)
    own = pa.schema([f for f in schema if f.name in nights.columns])
    rows = pa.Table.from_pandas(nights[own.names], schema=own, preserve_index=False)
    rows = rows.take(pa.array(take, type=pa.int64()))
    provenance = {
        "target": [c.target.name for c, _ in output],
        "target_line": [c.target.line for c, _ in output],
        "control_of": [c.target.control_of for c, _ in output],
        "control_index": [c.target.control_index for c, _ in output],
        "task_id": [c.task_id for c, _ in output],
    }
    owners = pa.array(owner, type=pa.int64())
    columns = [
        pa.array(provenance[f.name], type=f.type).take(owners)
        if f.name in provenance
        else rows.column(f.name)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)
