"""The ledger keys of control positions: a pure function of (target line, control index).

A control light curve (:mod:`._runs.controls`) is a target in the ledger like any other, keyed
by a ``line``. Input rows use their line in the target file (2, 3, ...); a control gets
``CONTROL_LINE_BASE + parent_line * CONTROL_STRIDE + index``, so control 3 of line 17 is
``1_000_000_017_003``. Deriving the key from the parent and the index, never from a
counter, is what keeps controls exactly-once across resumes: the same command gives every
control the same key, and the ledger refuses to add a key twice. Keys above the base never
meet an input line (a target file of 10⁹ rows is refused by :func:`control_line`), and
:func:`control_link` reads the link back from any stored key, old ledgers included.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "CONTROL_LINE_BASE",
    "CONTROL_STRIDE",
    "MAX_CONTROLS",
    "control_line",
    "control_link",
]

#: Lines from here on are control positions, not rows of the target file.
CONTROL_LINE_BASE: Final = 10**12
#: Room for the indices 1..MAX_CONTROLS of one target.
CONTROL_STRIDE: Final = 1000
MAX_CONTROLS: Final = CONTROL_STRIDE - 1
_MAX_PARENT_LINE: Final = CONTROL_LINE_BASE // CONTROL_STRIDE - 1


def control_line(parent: int, index: int) -> int:
    """The ledger line of control ``index`` (1-based) of the target on line ``parent``."""
    if not 1 <= index <= MAX_CONTROLS:
        raise ValueError(f"control index {index} is outside 1..{MAX_CONTROLS}")
    if not 0 <= parent <= _MAX_PARENT_LINE:
        raise ValueError(f"line {parent} is too large to carry control positions")
    return CONTROL_LINE_BASE + parent * CONTROL_STRIDE + index


def control_link(line: int) -> tuple[int, int] | None:
    """``(parent line, control index)`` of a control's line; None for an input row."""
    if line < CONTROL_LINE_BASE:
        return None
    parent, index = divmod(line - CONTROL_LINE_BASE, CONTROL_STRIDE)
    return parent, index
