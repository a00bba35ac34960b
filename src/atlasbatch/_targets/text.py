"""Columns of text cells held compactly: Arrow string arrays, a chunk at a time.

A Python list of 100,000 short strings costs ~7 MB (a 56-byte object and a pointer per
cell); the same cells in an Arrow array cost their bytes and a 4-byte offset each. The
target parser keeps every column it has not parsed yet, and every name and pass-through
cell it hands on, in a :class:`TextColumn`, and turns a slice into Python strings only
while it works on that slice. A chunk UTF-8 cannot hold (a lone surrogate, which only a
DataFrame or records can carry) stays a Python list: rare, and its cells stay as given.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from typing import Final, TypeAlias

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["CHUNK_ROWS", "POOL", "TextColumn", "TextColumns"]

#: The memory pool of the parser's Arrow buffers: the C library's, which gives large freed
#: blocks back to the system. Arrow's default (mimalloc) keeps what it freed for reuse, so
#: the file-sized buffers of one read would stay in the footprint of a run of days.
POOL: Final = pa.system_memory_pool()
#: Rows gathered (and later parsed) at a time: small enough that their Python strings are
#: a few MB, large enough that the per-call cost of each vectorised step is spread thin.
CHUNK_ROWS: Final = 8_192

Chunk: TypeAlias = pa.Array | list[str]


class TextColumn:
    """One column of text cells, appended chunk by chunk, read back by range or by rows."""

    __slots__ = ("_chunks", "_size", "_starts")

    def __init__(self) -> None:
        self._chunks: list[Chunk] = []
        self._starts: list[int] = []  # the row of each chunk's first cell
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def extend(self, cells: Sequence[str] | pa.Array) -> None:
        """Append ``cells`` (Python strings are stored as Arrow when UTF-8 can hold them)."""
        if not len(cells):
            return
        chunk: Chunk
        if isinstance(cells, pa.Array):
            chunk = cells
        else:
            try:
                chunk = pa.array(cells, type=pa.string(), memory_pool=POOL)
            except UnicodeEncodeError:  # a lone surrogate: keep the strings as they are
                chunk = list(cells)
        self._chunks.append(chunk)
        self._starts.append(self._size)
        self._size += len(chunk)

    def extend_blank(self, count: int) -> None:
        """Append ``count`` empty cells (a column first seen after ``count`` rows)."""
        if count:
            self.extend(pa.array([""] * count, type=pa.string(), memory_pool=POOL))

    def slice(self, start: int, stop: int) -> list[str]:
        """The cells of rows ``start`` to ``stop`` (excluded)."""
        out: list[str] = []
        k = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while k < len(self._chunks) and self._starts[k] < stop:
            chunk, first = self._chunks[k], self._starts[k]
            lo, hi = max(start - first, 0), min(stop - first, len(chunk))
            if isinstance(chunk, list):
                out += chunk[lo:hi]
            else:
                out += chunk.slice(lo, hi - lo).to_pylist()
            k += 1
        return out

    def take(self, rows: npt.NDArray[np.intp]) -> list[str]:
        """The cells of ``rows`` (ascending row numbers), in that order."""
        if len(rows) and rows[-1] - rows[0] + 1 == len(rows):  # a run of rows: a slice
            return self.slice(int(rows[0]), int(rows[-1]) + 1)
        out: list[str] = []
        bounds = np.searchsorted(rows, [*self._starts, self._size])
        for k, chunk in enumerate(self._chunks):
            local = rows[bounds[k] : bounds[k + 1]] - self._starts[k]
            if not local.size:
                continue
            if isinstance(chunk, list):
                out += [chunk[i] for i in local.tolist()]
            else:
                indices = pa.array(local, memory_pool=POOL)
                out += pc.take(chunk, indices, memory_pool=POOL).to_pylist()
        return out


class TextColumns:
    """Columns filled row by row, each :data:`CHUNK_ROWS` rows moved into its TextColumn.

    A column first seen at a later row (a key only some records have) starts blank above.
    """

    def __init__(self, headers: Sequence[str] = ()) -> None:
        self.headers: list[str] = []
        self.columns: list[TextColumn] = []
        self._pending: list[list[str]] = []
        self.rows = 0
        for header in headers:
            self.add_column(header)

    def add_column(self, header: str) -> None:
        """A new column, blank in every row so far."""
        column = TextColumn()
        column.extend_blank(self.rows - len(self._pending[0]) if self._pending else self.rows)
        self.headers.append(header)
        self.columns.append(column)
        self._pending.append([""] * (len(self._pending[0]) if self._pending else 0))

    def add(self, cells: Sequence[str]) -> None:
        """One row: a cell per column, in the order of :attr:`headers`."""
        for pending, cell in zip(self._pending, cells, strict=True):
            pending.append(cell)
        self.rows += 1
        if self.rows % CHUNK_ROWS == 0:
            self._flush()

    def finish(self) -> list[TextColumn]:
        """The columns, every row in."""
        self._flush()
        return self.columns

    def _flush(self) -> None:
        for column, pending in zip(self.columns, self._pending, strict=True):
            column.extend(pending)
            pending.clear()
