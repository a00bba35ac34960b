"""A parsed target list held column-wise: what each row asks, in flat arrays.

100,000 :class:`Target` records cost ~35 MB of Python objects (a record, its ``extra``
dict, boxed floats, a name string); the same rows here cost ~50 bytes each: line numbers,
RA, Dec and window codes in numpy arrays, names and pass-through cells in Arrow
(``_targets.text``), MPC names only for the rows that have one, each distinct window once.
:meth:`ParsedRows.targets` makes the records of some rows, a block at a time, for whoever
iterates them (``_targets.lazy``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from atlasbatch._models import Motion, Target
from atlasbatch._targets.motion import RowMotion
from atlasbatch._targets.table import TargetTable, TextTable
from atlasbatch._targets.text import TextColumn

__all__ = ["ParsedRows", "RowsBuilder", "Window"]

Floats = npt.NDArray[np.float64]
Rows = npt.NDArray[np.intp]
# What one POST shares, as Target.window: a moving star's motion joins the MJD window and mode
Window = tuple[float | None, float | None, bool] | tuple[float | None, float | None, bool, Motion]

_BLOCK: Final = 1024  # targets made at a time: their columns as Python values, briefly


@dataclass(slots=True)
class ParsedRows:
    """Parsed values per row of ``table``; meaningful only for rows without problems.

    ``window_of`` holds each row's index into ``windows`` (each distinct window once);
    ``motion`` each row's (pmra, pmdec, epoch), NaN where blank (None: no such columns);
    ``extras`` the stripped pass-through cells by header; ``name_hashes`` the hash of each
    name (to find repeated names without a string per row). The table's own text columns
    are gone: they were dropped once parsed.
    """

    table: TextTable
    names: TextColumn
    name_hashes: npt.NDArray[np.int64]
    ra: Floats
    dec: Floats
    mpc: dict[int, str]
    window_of: npt.NDArray[np.int32]
    windows: list[Window]
    motion: Floats | None
    images: npt.NDArray[np.bool_] | None
    extras: list[tuple[str, TextColumn]]

    def window(self, row: int) -> Window:
        """The window (with motion) of ``row``."""
        return self.windows[int(self.window_of[row])]

    def targets(self, rows: Rows) -> Iterator[Target]:
        """The :class:`Target` of each of ``rows`` (ascending), made a block at a time."""
        for start in range(0, len(rows), _BLOCK):
            yield from self._block(rows[start : start + _BLOCK])

    def _block(self, rows: Rows) -> list[Target]:
        count, mpc = len(rows), self.mpc
        windows = [self.windows[k] for k in self.window_of[rows].tolist()]
        still: RowMotion = (None, None, None)
        motion = _motion(self.motion[rows]) if self.motion is not None else [still] * count
        mpcs = [mpc.get(i) for i in rows.tolist()] if mpc else [None] * count
        if self.extras:
            headers = [header for header, _ in self.extras]
            cells = zip(*(column.take(rows) for _, column in self.extras), strict=True)
            extras = [dict(zip(headers, row, strict=True)) for row in cells]
        else:
            extras = [{} for _ in range(count)]
        columns = (self.table.lines[rows].tolist(), self.names.take(rows), self.ra[rows].tolist(),
                   self.dec[rows].tolist(), mpcs, windows, motion, extras)  # fmt: skip
        return [
            Target(
                line=line,
                name=name,
                ra=None if at else ra,
                dec=None if at else dec,
                mpc_name=at,
                mjd_min=window[0],
                mjd_max=window[1],
                use_reduced=window[2],
                pmra=moving[0],
                pmdec=moving[1],
                epoch=moving[2],
                extra=extra,
            )
            for line, name, ra, dec, at, window, moving, extra in zip(*columns, strict=True)
        ]


def _motion(values: Floats) -> list[RowMotion]:
    return [
        (None if math.isnan(a) else a, None if math.isnan(b) else b, None if math.isnan(c) else c)
        for a, b, c in values.tolist()
    ]


class RowsBuilder:
    """Gathers the parsed values of one chunk of rows after another into a ParsedRows,
    each column an array made once for every row (no copies joined at the end)."""

    def __init__(self, table: TextTable) -> None:
        count = len(table)
        self.table = table
        self.names = TextColumn()
        self.hashes = np.empty(count, dtype=np.int64)
        self.ra, self.dec = np.empty(count), np.empty(count)
        self.mpc: dict[int, str] = {}
        self.window_of = np.empty(count, dtype=np.int32)
        self.codes: dict[Window, int] = {}
        self.motion: Floats | None = None
        self.images: npt.NDArray[np.bool_] | None = None
        self.extras = [TextColumn() for _ in table.extras]

    def add(
        self,
        start: int,
        chunk: TargetTable,
        *,
        names: list[str],
        position: tuple[Floats, Floats, list[str | None]],
        windows: list[Window],
        motion: list[RowMotion] | None,
        images: list[bool] | None,
    ) -> None:
        """The parsed values of the chunk of rows from ``start``, and its problems."""
        for i, problems in chunk.problems.items():
            self.table.problems.setdefault(start + i, []).extend(problems)
        here = slice(start, start + len(names))
        self.names.extend(names)
        self.hashes[here] = np.fromiter(map(hash, names), np.int64, len(names))
        ra, dec, mpc = position
        self.ra[here], self.dec[here] = ra, dec
        self.mpc.update((start + i, name) for i, name in enumerate(mpc) if name is not None)
        codes = self.codes
        self.window_of[here] = [codes.setdefault(w, len(codes)) for w in windows]
        if motion is not None:
            if self.motion is None:
                self.motion = np.empty((len(self.ra), 3))
            self.motion[here] = np.array(motion, dtype=np.float64).reshape(-1, 3)
        if images is not None:
            if self.images is None:
                self.images = np.empty(len(self.ra), dtype=bool)
            self.images[here] = images
        for column, k in zip(self.extras, self.table.extras, strict=True):
            column.extend([cell.strip() for cell in chunk.columns[k]])

    def rows(self) -> ParsedRows:
        """Every chunk's values; the table's text columns are dropped."""
        self.table.columns = []
        return ParsedRows(
            table=self.table,
            names=self.names,
            name_hashes=self.hashes,
            ra=self.ra,
            dec=self.dec,
            mpc=self.mpc,
            window_of=self.window_of,
            windows=list(self.codes),
            motion=self.motion,
            images=self.images,
            extras=[
                (self.table.headers[k], column)
                for k, column in zip(self.table.extras, self.extras, strict=True)
            ],
        )
