"""The parts of ``photometry.parquet/`` by name: which run, which ledger events, shown or not.

Names alone say what a part holds (see :mod:`._outputs.table_folder`), so finding out whether the
table is behind the ledger costs a directory listing and one query, and imports neither
pandas nor pyarrow: ``cancel`` and ``cleanup`` of a run with nothing new stay light.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from atlasbatch._ledger.ledger import Ledger

__all__ = ["TABLE_NAME", "Part", "behind", "part_name", "scan_parts"]

#: The table's name in a run directory (a folder of parts; a file in older versions).
TABLE_NAME = "photometry.parquet"
_PART = re.compile(r"^(_?)part-([0-9A-Za-z]+)-(\d{12})-(\d{12})\.parquet$")


@dataclass(frozen=True, slots=True, order=True)
class Part:
    """One part file: the light curves run ``run`` recorded in events ``first+1 … last``;
    ``hidden`` (a ``_`` prefix, skipped by readers) while a refresh is not complete."""

    first: int
    last: int
    run: str
    hidden: bool
    path: Path

    def named(self, *, hidden: bool) -> Path:
        """This part's path, shown or hidden."""
        return self.path.with_name(part_name(self.run, self.first, self.last, hidden=hidden))


def part_name(run: str, first: int, last: int, *, hidden: bool) -> str:
    """The file name of a part (fixed-width numbers: names sort in event order)."""
    return f"{'_' if hidden else ''}part-{run}-{first:012d}-{last:012d}.parquet"


def scan_parts(folder: Path) -> list[Part]:
    """Every part in ``folder`` (none when it is not a folder)."""
    if not folder.is_dir():
        return []
    found = []
    for entry in os.scandir(folder):
        match = _PART.match(entry.name)
        if match:
            hidden, run, first, last = match.groups()
            found.append(Part(int(first), int(last), run, bool(hidden), Path(entry.path)))
    return found


def behind(folder: Path, ledger: Ledger) -> bool:
    """Whether the table lacks something the ledger has: a light curve recorded after the
    run's newest part, a finished refresh not yet shown, or the old one-file layout."""
    if folder.is_file():
        return True
    parts = scan_parts(folder)
    run = ledger.run_id
    mark = max((p.last for p in parts if p.run == run), default=0)
    if ledger.downloads_after(mark, upto=ledger.last_event(), limit=1):
        return True
    switch = any(p.run != run and not p.hidden for p in parts)
    return switch and ledger.unfinished_queries() == 0
