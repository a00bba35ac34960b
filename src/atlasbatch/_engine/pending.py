"""The queries waiting to be sent, in send order: lines and window codes, not Targets.

A run of 100,000 targets used to hold every pending :class:`Target` in a dict (about 500
bytes each, read back from the ledger at the start: 50 MB at 100k, issue 12). The ledger
already holds them; what the submitter needs in memory is only which lines wait, in which
order, and which of them share a window (a POST carries one window). So this queue keeps two
numpy arrays, 12 bytes a query, and reads a batch's Targets from the ledger when it is sent.

Requeued queries (a lost task, a refused batch) go to the end, after those already waiting.
"""

from __future__ import annotations

from array import array
from collections.abc import Hashable, Iterable, Iterator

import numpy as np
import numpy.typing as npt

from atlasbatch._models import Target

__all__ = ["Pending"]

_SEARCH = 4096  # queries looked at per step when gathering a batch of one window


class Pending:
    """Lines waiting to be sent and the window each asks for, in send order.

    :meth:`load` takes the ledger's pending queries once, in ascending line order (found
    by binary search); :meth:`extend` puts requeued ones at the end (found by a dict).
    """

    def __init__(self) -> None:
        self._lines: npt.NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._codes: npt.NDArray[np.int32] = np.empty(0, dtype=np.int32)
        self._alive: npt.NDArray[np.bool_] = np.empty(0, dtype=bool)
        self._sorted = 0  # the loaded prefix, in ascending line order
        self._where: dict[int, int] = {}  # requeued line -> index (past the prefix)
        self._windows: dict[Hashable, int] = {}  # window -> code
        self._head = 0  # every index before it is gone
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __bool__(self) -> bool:
        return self._count > 0

    def __contains__(self, line: int) -> bool:
        index = self._index(line)
        return index is not None and bool(self._alive[index])

    def __iter__(self) -> Iterator[int]:
        """The waiting lines, in send order."""
        start = self._head
        return iter(self._lines[start:][self._alive[start:]].tolist())

    def load(self, targets: Iterable[Target]) -> None:
        """The first queries, streamed in ascending line order (the ledger's)."""
        if len(self._lines):
            raise RuntimeError("Pending.load is for an empty queue: use extend")
        lines, codes = array("q"), array("i")  # machine integers: no object per query
        for target in targets:
            if lines and target.line <= lines[-1]:
                raise ValueError(f"line {target.line} is not after line {lines[-1]}")
            lines.append(target.line)
            codes.append(self._code(target))
        self._append(np.frombuffer(lines, dtype=np.int64), np.frombuffer(codes, dtype=np.int32))
        self._sorted = len(lines)

    def extend(self, targets: Iterable[Target]) -> None:
        """Put ``targets`` at the end, after those already waiting (requeued queries)."""
        fresh = [target for target in targets if target.line not in self]
        first = len(self._lines)
        self._where.update((target.line, first + k) for k, target in enumerate(fresh))
        lines = np.asarray([target.line for target in fresh], dtype=np.int64)
        self._append(lines, np.asarray([self._code(t) for t in fresh], dtype=np.int32))

    def batch(self, size: int) -> list[int]:
        """Up to ``size`` waiting lines sharing the first one's window, in send order."""
        if not self._count:
            return []
        self._advance()
        code = self._codes[self._head]
        found: list[int] = []
        start = self._head
        while start < len(self._lines) and len(found) < size:
            stop = start + _SEARCH
            hits = np.flatnonzero(self._alive[start:stop] & (self._codes[start:stop] == code))
            found.extend(self._lines[start + hits[: size - len(found)]].tolist())
            start = stop
        return found

    def remove(self, line: int) -> None:
        """Take ``line`` out (sent, or cancelled); nothing if it is not waiting."""
        index = self._index(line)
        if index is None or not self._alive[index]:
            return
        self._alive[index] = False
        self._count -= 1
        self._where.pop(line, None)

    def _code(self, target: Target) -> int:
        return self._windows.setdefault(target.window, len(self._windows))

    def _append(self, lines: npt.NDArray[np.int64], codes: npt.NDArray[np.int32]) -> None:
        if not len(lines):
            return
        self._lines = np.concatenate([self._lines, lines])
        self._codes = np.concatenate([self._codes, codes])
        self._alive = np.concatenate([self._alive, np.ones(len(lines), dtype=bool)])
        self._count += len(lines)

    def _advance(self) -> None:
        """Move the head past the lines already gone."""
        while self._head < len(self._alive) and not self._alive[self._head]:
            alive = np.flatnonzero(self._alive[self._head : self._head + _SEARCH])
            self._head += int(alive[0]) if len(alive) else _SEARCH
        self._head = min(self._head, len(self._alive))

    def _index(self, line: int) -> int | None:
        if (index := self._where.get(line)) is not None:
            return index
        index = int(np.searchsorted(self._lines[: self._sorted], line))
        if index < self._sorted and self._lines[index] == line:
            return index
        return None
