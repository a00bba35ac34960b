"""Each query's state by its line: one byte per input line, not a dict entry.

The book's mirror of the ledger held a ``dict[int, State]`` of every query: ~80 bytes a
line, 8 MB at 100,000 targets, for a run whose memory should not grow with its size (issue
12). Input lines are dense (2, 3, … in the target file), so a byte array indexed by line
holds a state code each; control positions, whose keys are sparse (``_ledger.control_lines``),
keep a dict.
"""

from __future__ import annotations

from collections.abc import Iterator

from atlasbatch._ledger.control_lines import CONTROL_LINE_BASE
from atlasbatch._models import State

__all__ = ["LineStates"]

_STATES: tuple[State | None, ...] = (None, *State)  # code 0: no state
_CODE = {state: code for code, state in enumerate(_STATES) if state is not None}


class LineStates:
    """A mapping of line to :class:`State` for the lines given one."""

    def __init__(self) -> None:
        self._codes = bytearray()  # input lines
        self._sparse: dict[int, State] = {}  # control positions

    def get(self, line: int) -> State | None:
        """The state of ``line``, None when it has none."""
        if line >= CONTROL_LINE_BASE:
            return self._sparse.get(line)
        return _STATES[self._codes[line]] if line < len(self._codes) else None

    def __setitem__(self, line: int, state: State) -> None:
        if line >= CONTROL_LINE_BASE:
            self._sparse[line] = state
            return
        if line >= len(self._codes):
            self._codes.extend(bytes(line + 1 - len(self._codes)))
        self._codes[line] = _CODE[state]

    def items(self) -> Iterator[tuple[int, State]]:
        """Every (line, state), input lines in order, then the control positions."""
        for line, code in enumerate(self._codes):
            if (state := _STATES[code]) is not None:
                yield line, state
        yield from self._sparse.items()
