"""Which rows of a target list ask the same question: within 1" (or the same mpc_name) and
the same window. Names key the outputs, so a name may repeat only for the same question.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

from atlasbatch._targets.coords import Floats, show
from atlasbatch._targets.parsed import ParsedRows

__all__ = ["DUPLICATE_RADIUS_ARCSEC", "check_names", "duplicates"]

DUPLICATE_RADIUS_ARCSEC: Final = 1.0
# Unit vectors of points 1" apart are _CHORD apart; grid cells are a hair larger so float
# rounding can never put a close pair two cells apart.
_CHORD: Final = 2 * math.sin(math.radians(DUPLICATE_RADIUS_ARCSEC / 3600) / 2)
_CELL: Final = _CHORD * 1.001
_PLANES: Final = [(dx << 42) + (dy << 21) for dx in (-1, 0, 1) for dy in (-1, 0, 1)]
_OFFSETS: Final = [plane + dz for plane in _PLANES for dz in (-1, 0, 1)]
_BLOCK: Final = 16_384  # rows at a time in the vectorised steps: small temporaries
Rows = npt.NDArray[np.intp]


def _unit_vectors(ra: Floats, dec: Floats) -> Floats:
    a, d = np.radians(ra), np.radians(dec)
    return np.column_stack((np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)))


def _codes(xyz: Floats) -> npt.NDArray[np.int64]:
    """The cube of each unit vector: cubes of side _CELL in 3-D (so RA wrap-around needs no
    care), points within 1" fall in the same or adjacent cubes. Three 21-bit cube indices
    pack into one int64."""
    keys = np.floor(xyz / _CELL).astype(np.int64) + (1 << 20)
    codes: npt.NDArray[np.int64] = (keys[:, 0] << 42) | (keys[:, 1] << 21) | keys[:, 2]
    return codes


def _cell_codes(rows: ParsedRows, pos: Rows) -> npt.NDArray[np.int64]:
    """The cube of each of the ``pos`` rows, a block at a time (few temporaries at once)."""
    codes = np.empty(len(pos), dtype=np.int64)
    for start in range(0, len(pos), _BLOCK):
        part = pos[start : start + _BLOCK]
        codes[start : start + len(part)] = _codes(_unit_vectors(rows.ra[part], rows.dec[part]))
    return codes


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) <= _CHORD**2


def _same_query(rows: ParsedRows, i: int, j: int) -> bool:
    if rows.window_of[i] != rows.window_of[j]:
        return False
    if i in rows.mpc or j in rows.mpc:
        return rows.mpc.get(i) == rows.mpc.get(j)
    return _close(*_unit_vectors(rows.ra[[i, j]], rows.dec[[i, j]]).tolist())


def check_names(rows: ParsedRows) -> dict[int, int]:
    """Flag a name reused for a different query: outputs are keyed by name.

    Returns row -> the earlier row of the same name asking the same question.
    """
    t = rows.table
    repeated = _repeated_names(rows)
    if not repeated.size:
        return {}  # the common case: every name is new, nothing to compare
    owner: dict[str, int] = {}
    same: dict[int, int] = {}
    for i, name in zip(repeated.tolist(), rows.names.take(repeated), strict=True):
        j = owner.setdefault(name, i)
        if j == i or i in t.problems:
            continue  # a first use, or a row that is already bad: nothing to compare
        used = f"name {show(name)} is already used by line {t.lines[j]}"
        if j in t.problems:
            t.problem(i, "name", f"{used}, which has problems")
        elif _same_query(rows, i, j):
            same[i] = j
        else:
            t.problem(i, "name", f"{used} for another position or window; names must differ")
    return same


def _repeated_names(rows: ParsedRows) -> npt.NDArray[np.intp]:
    """The rows (ascending) whose name's hash another row's name shares: every row whose
    name repeats, and now and then one that only collides."""
    hashes = rows.name_hashes
    ordered = np.sort(hashes)
    twice = ordered[1:][ordered[1:] == ordered[:-1]]
    if not twice.size:
        return np.zeros(0, dtype=np.intp)  # the common case: one sort, no more
    return np.flatnonzero(np.isin(hashes, twice))


def _crowded(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True where another point lies in the same or a neighbouring cell (vectorized)."""
    order = np.argsort(codes)
    ordered = codes[order]  # sorted needles: searchsorted walks memory in order
    crowded = np.empty(len(codes), dtype=bool)
    for start in range(0, len(codes), _BLOCK):  # a block of needles: small temporaries
        needles = ordered[start : start + _BLOCK]
        total = np.zeros(len(needles), dtype=np.int64)
        for offset in _PLANES:
            # the cubes at dz = -1, 0, +1 have consecutive codes (a z index never nears its
            # field's ends: |z| <= 1 is under 2**18 cells), so one range covers all three
            low = np.searchsorted(ordered, needles + (offset - 1), side="left")
            total += np.searchsorted(ordered, needles + (offset + 1), side="right") - low
        crowded[order[start : start + len(needles)]] = total > 1  # each counts itself once
    return crowded


def duplicates(valid: Rows, rows: ParsedRows, *, same_name: dict[int, int]) -> dict[int, int]:
    """Map each valid row that asks an earlier row's question to the first row asking it.

    Rows are compared with representatives only, so a chain of near neighbours never merges
    points more than 1" apart; a row repeating an earlier name follows that row. Only rows
    that may have a twin are visited: those with a name used before, an mpc_name, or another
    point in reach.
    """
    mpc, windows = rows.mpc, rows.window_of
    named = np.zeros(len(rows.ra), dtype=bool)
    named[list(mpc)] = True
    pos = valid[~named[valid]] if mpc else valid
    codes = _cell_codes(rows, pos)
    crowded = np.flatnonzero(_crowded(codes)) if pos.size else np.zeros(0, dtype=np.intp)
    del codes  # only the crowded points' are used from here on
    near_pos = pos[crowded]  # the points that may have a twin, and their unit vectors
    xyz = _unit_vectors(rows.ra[near_pos], rows.dec[near_pos])
    codes = _codes(xyz)
    where = {i: k for k, i in enumerate(near_pos.tolist())}
    first: dict[int, int] = {}
    grid: dict[tuple[int, int], list[int]] = {}
    by_mpc: dict[tuple[str, int], int] = {}
    for i in sorted(same_name.keys() | where.keys() | set(valid[named[valid]].tolist())):
        name = mpc.get(i)
        if i in same_name:
            j = same_name[i]
            first[i] = first.get(j, j)
        elif name is not None:
            if (j := by_mpc.setdefault((name, int(windows[i])), i)) != i:
                first[i] = j
        else:
            k = where[i]
            code, here, window = int(codes[k]), xyz[k].tolist(), int(windows[i])
            near = [
                r
                for off in _OFFSETS
                for r in grid.get((window, code + off), ())
                if _close(xyz[r].tolist(), here)
            ]
            if near:
                first[i] = int(near_pos[min(near)])
            else:
                grid.setdefault((window, code), []).append(k)
    return first
