"""A target list as a table of text cells with line numbers, before any value is parsed.

Lines are physical lines of the file (header = line 1; blank lines count and are skipped);
a DataFrame or records count their rows as lines 2, 3, … as if a header were line 1.
:class:`TextTable` holds the whole list, its cells in compact columns (``_targets.text``);
its :meth:`~TextTable.chunks` hand the parser a :class:`TargetTable` of Python strings for
a few thousand rows at a time, so a list of 100,000 rows never exists as Python strings
all at once. ``_targets.sources`` reads files, DataFrames and records into a TextTable.

The bottom of the target-parsing stack with ``_targets.coords``: it knows nothing of what cells
mean beyond which column is which.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from atlasbatch._exceptions import InputError, RowProblem
from atlasbatch._targets.text import CHUNK_ROWS, TextColumn

__all__ = ["ALIASES", "PASSED_THROUGH", "TargetTable", "TextTable", "make_table"]

# Header spellings after strip, lower case and spaces/hyphens -> "_". The first alias is
# canonical: when it is present, the other aliases of that field pass through untouched.
ALIASES: Final = {
    "name": ("name", "target", "object", "id", "objname"),
    "ra": ("ra", "ra_deg", "raj2000", "alpha"),
    "dec": ("dec", "dec_deg", "decj2000", "dej2000", "decl", "delta"),
    "mpc_name": ("mpc_name", "mpc"),
    "mjd_min": ("mjd_min", "mjdmin"),
    "mjd_max": ("mjd_max", "mjdmax"),
    "use_reduced": ("use_reduced", "reduced"),
    # Gaia: pmra, pmdec, ref_epoch; VizieR/SIMBAD: pmRA, pmDE; astropy: pm_ra_cosdec, pm_dec
    "pmra": ("pmra", "pm_ra", "pmra_masyr", "pmra_mas_yr", "pm_ra_cosdec", "pmra_cosdec",
             "pm_ra_cos_dec", "pmracosdec", "propermotion_ra", "mu_ra"),
    "pmdec": ("pmdec", "pm_dec", "pmdec_masyr", "pmdec_mas_yr", "pmde", "pm_de",
              "propermotion_dec", "mu_dec"),
    "epoch": ("epoch", "ref_epoch", "radec_epoch", "radec_epoch_year", "epoch_year"),
    "images": ("images", "image", "stamps", "want_images"),  # 1: image stamps for this row
}  # fmt: skip
#: Known columns that also pass through to the outputs as the user spelled them (the
#: outputs have no column of their own for them).
PASSED_THROUGH: Final = frozenset({"pmra", "pmdec", "epoch"})


@dataclass(slots=True)
class TargetTable:
    """Raw cells of a chunk of rows (column-major, Python strings) and the problems found
    so far, keyed by row index within the chunk.

    ``index`` maps each canonical field present (``ALIASES``) to its column, ``extras``
    lists the other (pass-through) columns.
    """

    source: str
    headers: list[str]
    lines: list[int]
    columns: list[list[str]]
    problems: dict[int, list[RowProblem]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    extras: list[int] = field(default_factory=list)

    def problem(self, row: int, name: str, message: str) -> None:
        """Record a problem of ``row`` under the file's own spelling of column ``name``."""
        column = self.headers[self.index[name]] if name in self.index else name
        self.problems.setdefault(row, []).append(RowProblem(self.lines[row], column, message))

    def cells(self, name: str) -> list[str]:
        """The stripped cells of canonical field ``name`` (all blank if it has no column)."""
        k = self.index.get(name)
        return list(map(str.strip, self.columns[k])) if k is not None else [""] * len(self.lines)


@dataclass(slots=True)
class TextTable:
    """The whole list: headers, line numbers, compact text columns and the problems found
    while splitting it (keyed by row). ``index``/``extras`` as on :class:`TargetTable`."""

    source: str
    headers: list[str]
    lines: npt.NDArray[np.int64]
    columns: list[TextColumn]
    problems: dict[int, list[RowProblem]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    extras: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def problem(self, row: int, name: str, message: str) -> None:
        """Record a problem of ``row`` under the file's own spelling of column ``name``."""
        column = self.headers[self.index[name]] if name in self.index else name
        line = int(self.lines[row])
        self.problems.setdefault(row, []).append(RowProblem(line, column, message))

    def chunks(self) -> Iterator[tuple[int, TargetTable]]:
        """(first row, table of Python strings) for each run of :data:`CHUNK_ROWS` rows;
        problems recorded on a chunk are keyed by the chunk's own row numbers."""
        for start in range(0, len(self.lines), CHUNK_ROWS):
            stop = min(start + CHUNK_ROWS, len(self.lines))
            cells = [column.slice(start, stop) for column in self.columns]
            lines = self.lines[start:stop].tolist()
            yield start, TargetTable(self.source, self.headers, lines, cells, index=self.index,
                                     extras=self.extras)  # fmt: skip


def make_table(
    source: str, headers: list[str], columns: list[TextColumn], lines: npt.NDArray[np.int64]
) -> TextTable:
    """The table of these cells, its known columns found; structural problems raise."""
    if not len(lines):
        raise InputError(f"{source}: no target rows (only a header, or nothing at all)")
    names = [h.strip() or f"column{k}" for k, h in enumerate(headers, start=1)]
    if twice := sorted({h for h in names if names.count(h) > 1}):
        raise InputError(f"{source}: column name(s) {twice} appear more than once")
    table = TextTable(source, names, lines, columns)
    _resolve_columns(table)
    return table


# --- columns ------------------------------------------------------------------------------


def _resolve_columns(t: TextTable) -> None:
    """Find the known columns and the pass-through ones; structural problems raise."""
    normal = [re.sub(r"[\s\-]+", "_", h.lower()) for h in t.headers]
    for name, aliases in ALIASES.items():
        present = [k for k, h in enumerate(normal) if h in aliases]
        chosen = [k for k in present if normal[k] == name] or present
        if len(chosen) > 1:
            listed = ", ".join(repr(t.headers[k]) for k in chosen)
            raise InputError(f"{t.source}: columns {listed} all mean {name!r}; keep only one")
        if chosen:
            t.index[name] = chosen[0]
    if ("ra" in t.index) != ("dec" in t.index):
        have, lack, what = ("dec", "ra", "an RA") if "dec" in t.index else ("ra", "dec", "a Dec")
        raise InputError(
            f"{t.source}: column {t.headers[t.index[have]]!r} has no partner: add {what} "
            f"column (named one of {', '.join(ALIASES[lack])})"
        )
    if "ra" not in t.index and "mpc_name" not in t.index:
        seps = [d for d in ";\t|," if len(t.headers) == 1 and d in t.headers[0]]
        hint = f"; separated by {seps[0]!r}? Only ',' (.csv) and tab (.tsv) work" if seps else ""
        raise InputError(
            f"{t.source}: no coordinate columns: need ra and dec (or mpc_name); "
            f"the columns are {t.headers}{hint}"
        )
    parsed_only = {k for name, k in t.index.items() if name not in PASSED_THROUGH}
    t.extras = [k for k in range(len(t.headers)) if k not in parsed_only]
