"""The targets of a parsed list as a sequence that makes each :class:`Target` when asked.

:attr:`TargetList.targets <atlasbatch.TargetList>` and ``.unique`` are :class:`TargetRows`:
iterating one makes its targets a block at a time from the column-wise rows
(``_targets.parsed``), so a run that streams them into its ledger never holds 100,000
records at once. Indexing and slicing work as on a tuple; a TargetRows equals the tuple of
the same targets (and another TargetRows of them).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import overload

import numpy as np
import numpy.typing as npt

from atlasbatch._models import Target
from atlasbatch._targets.parsed import ParsedRows

__all__ = ["TargetRows"]


class TargetRows(Sequence[Target]):
    """The targets of some ``rows`` (ascending row numbers) of a parsed list, made on
    demand. Immutable, like the tuple it stands for; it holds no control positions."""

    __slots__ = ("_parsed", "_rows")

    def __init__(self, parsed: ParsedRows, rows: npt.NDArray[np.intp]) -> None:
        self._parsed = parsed
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[Target]:
        return self._parsed.targets(self._rows)

    @overload
    def __getitem__(self, index: int) -> Target: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[Target, ...]: ...
    def __getitem__(self, index: int | slice) -> Target | tuple[Target, ...]:
        if isinstance(index, slice):
            rows = self._rows[index]
            if index.step is not None and index.step < 0:  # made in order, then turned
                return tuple(self._parsed.targets(rows[::-1]))[::-1]
            return tuple(self._parsed.targets(rows))
        row = self._rows[index]  # IndexError as a tuple's, negative indices too
        return next(self._parsed.targets(np.array([row], dtype=np.intp)))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TargetRows | tuple):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # equal to tuples, which hash otherwise

    def __repr__(self) -> str:
        return f"<TargetRows: {len(self)} targets>"

    def lines(self) -> list[int]:
        """The line of each target, without making the targets."""
        lines: list[int] = self._parsed.table.lines[self._rows].tolist()
        return lines
