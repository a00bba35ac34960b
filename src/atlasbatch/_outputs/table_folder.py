"""``photometry.parquet/``: the run's photometry table, kept up to date as results are stored.

A Parquet dataset: a folder of parts that pandas reads as one table
(``pd.read_parquet("run/photometry.parquet")``; pyarrow skips names starting with ``.`` or
``_``). ``part-<run>-<first>-<last>.parquet`` holds the light curves the ledger of run
``<run>`` recorded as downloaded in events ``first+1 … last``. :meth:`PhotometryFolder.sync`
adds one part with what was recorded since the newest part, so the end of a run, or a
resume, only adds what is new, and a crash loses nothing: a part appears whole (written
under a hidden name, then renamed) or not at all, and its name is the only bookmark.

Keeping the folder tidy:

- many small parts (a week-long run syncs every few minutes) are merged into one, whose
  event range covers theirs; a part whose range another part covers is deleted, also when
  a crash came between writing the merged part and deleting its sources;
- a refresh (``--since-last``: a new run in the same folder) writes hidden parts
  (``_part-…``) until it is complete, then shows them and deletes the previous run's: the
  table stays whole while a refresh runs;
- a resume that brings new pass-through columns rebuilds the run's parts (one schema);
- the older layout, one ``photometry.parquet`` file, is replaced by the folder.

A reader that lists the folder at the instant of a merge or of a refresh's switch may see a
light curve twice or a part vanish: reading again gives the table.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow.parquet as pq

from atlasbatch._ledger.schema import OutcomeRow
from atlasbatch._outputs.curves import read_stacks
from atlasbatch._outputs.epoch_origins import EpochOrigins, Origin
from atlasbatch._outputs.table import Provenance, photometry_table, table_schema
from atlasbatch._outputs.table_parts import Part, part_name, scan_parts
from atlasbatch._outputs.table_writer import (
    TABLE_RESERVED,
    PhotometryTableWriter,
    pass_through_names,
)

if TYPE_CHECKING:
    from atlasbatch._ledger.ledger import Ledger

__all__ = ["PhotometryFolder"]

log = logging.getLogger(__name__)

_EVENTS_PER_QUERY = 2_000
# Memory is the bound here, not speed: a batch of files is parsed at once (512 KB of text,
# about 4,000 rows: fewer, larger batches are no faster), and a row group is buffered
# before it is written (8,192 rows, ~3 MB as Arrow columns). Halved from 1 MB and 16,384
# rows: the end of a 10,000-target CLI run peaked 13 MB lower, at the same CPU.
_BYTES_PER_BATCH = 1 << 19
_GROUP_ROWS = 8_192
_MERGE_AT = 16  # small parts at the end of a run's range before they become one
_SMALL_ROWS = 262_144


class PhotometryFolder:
    """The photometry table of one run directory; ``path`` is ``DIR/photometry.parquet``."""

    def __init__(self, path: Path, *, server: str, sigma_limit: float = 3.0) -> None:
        self.path = path
        self.server = server
        self.sigma_limit = sigma_limit
        self._unknown_logged: set[str] = set()

    def sync(self, ledger: Ledger) -> int:
        """Add what ``ledger`` recorded since the newest part; the light curves added."""
        run = ledger.run_id
        self._replace_old_layout()
        parts = self._tidy(run)
        others_shown = any(p.run != run and not p.hidden for p in parts)
        extra = ledger.pass_through_columns()
        mine = [p for p in parts if p.run == run]
        if mine and pq.read_schema(mine[0].path).names != self._names(extra):
            log.info("%s: the pass-through columns changed; rebuilding the table", self.path)
            for part in mine:
                part.path.unlink(missing_ok=True)
            mine = []
        mark = max((p.last for p in mine), default=0)
        upto = ledger.last_event()
        added = self._append(ledger, extra, mark, upto, hidden=others_shown)
        if added:
            mine.append(
                Part(mark, upto, run, others_shown, self._path_of(run, mark, upto, others_shown))
            )
        self._merge_small(sorted(mine), extra)
        if others_shown and ledger.unfinished_queries() == 0:
            self._switch(run)
        return added

    def parts(self) -> list[Path]:
        """The visible parts, in event order (what a reader of the folder sees)."""
        return [p.path for p in sorted(scan_parts(self.path)) if not p.hidden]

    # --- the folder ------------------------------------------------------------------

    def _replace_old_layout(self) -> None:
        if self.path.is_file():  # one file, as written before the folder: rebuilt below
            self.path.unlink()

    def _tidy(self, run: str) -> list[Part]:
        """Drop covered parts, another run's hidden parts and temporary files of a crash."""
        if self.path.is_dir():
            for stale in self.path.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        kept = []
        parts = scan_parts(self.path)
        for part in parts:
            covered = any(
                other is not part and other.run == part.run and other.hidden == part.hidden
                and other.first <= part.first and part.last <= other.last
                and (other.first, other.last) != (part.first, part.last)
                for other in parts
            )  # fmt: skip
            if covered or (part.hidden and part.run != run):
                part.path.unlink(missing_ok=True)
            else:
                kept.append(part)
        return kept

    def _switch(self, run: str) -> None:
        """A refresh is complete: show its parts, then drop the previous run's."""
        parts = scan_parts(self.path)
        for part in parts:
            if part.run == run and part.hidden:
                os.replace(part.path, part.named(hidden=False))
        for part in parts:
            if part.run != run:
                part.path.unlink(missing_ok=True)

    # --- adding ----------------------------------------------------------------------

    def _append(
        self, ledger: Ledger, extra: list[str], mark: int, upto: int, *, hidden: bool
    ) -> int:
        """One new part with every light curve recorded in events ``mark+1 … upto``."""
        batches = self._batches(ledger, mark, upto)
        first = next(batches, None)
        if first is None:
            return 0
        self.path.mkdir(parents=True, exist_ok=True)
        added = 0
        path = self._path_of(ledger.run_id, mark, upto, hidden)
        with PhotometryTableWriter(path, extra_columns=extra, row_group_rows=_GROUP_ROWS) as writer:
            for batch in itertools.chain([first], batches):
                for stack in read_stacks([path for path, _ in batch]):
                    writer.note_unknown(stack.rows.columns)
                    table = photometry_table(
                        stack.rows, stack.curve, [owners for _, owners in batch],
                        schema=writer.schema, extra=writer.extra, sigma_limit=self.sigma_limit,
                    )  # fmt: skip
                    writer.add_table(table)
                added += len(batch)
        return added

    def _batches(
        self, ledger: Ledger, mark: int, upto: int
    ) -> Iterator[list[tuple[Path, list[Provenance]]]]:
        """Light curves recorded in events ``mark+1 … upto``, a few MB of files at a time."""
        members = ledger.duplicates()
        origins = EpochOrigins.of_ledger(ledger)  # a refresh's earlier epochs keep their task
        out_dir = self.path.parent
        batch: list[tuple[Path, list[Provenance]]] = []
        size = 0
        while found := ledger.downloads_after(mark, upto=upto, limit=_EVENTS_PER_QUERY):
            for event, at, row in found:
                mark = event
                if row.path is None:
                    continue
                path = out_dir / row.path
                duplicates = members.get(row.target.line)
                owners = self._owners(ledger, row, duplicates, at, origins.get(row.path))
                batch.append((path, owners))
                size += _size(path)
                if size >= _BYTES_PER_BATCH:
                    yield batch
                    batch, size = [], 0
        if batch:
            yield batch

    def _owners(
        self,
        ledger: Ledger,
        row: OutcomeRow,
        members: list[int] | None,
        at: float,
        origins: tuple[Origin, ...],
    ) -> list[Provenance]:
        """The input rows sharing this light curve: the query's own, then its duplicates'."""
        fetched = datetime.fromtimestamp(at, UTC)
        rows = [row, *ledger.iter_outcomes(members)] if members else [row]
        return [Provenance(r.target, row.task_id, fetched, self.server, origins) for r in rows]

    # --- merging ---------------------------------------------------------------------

    def _merge_small(self, mine: list[Part], extra: list[str]) -> None:
        """Merge the small parts at the end of the run's range once there are many."""
        tail: list[Part] = []
        for part in reversed(mine):
            if pq.ParquetFile(part.path).metadata.num_rows >= _SMALL_ROWS:
                break
            if tail and part.hidden != tail[-1].hidden:
                break
            tail.append(part)
        if len(tail) < _MERGE_AT:
            return
        tail.reverse()
        first, last = tail[0], tail[-1]
        merged = self._path_of(first.run, first.first, last.last, first.hidden)
        with PhotometryTableWriter(
            merged, extra_columns=extra, row_group_rows=_GROUP_ROWS
        ) as writer:
            for part in tail:
                source = pq.ParquetFile(part.path)
                # One row group in memory at a time, decoded in this thread: decoded by
                # Arrow's pool of threads, each keeping what it freed, a merge of 16 parts
                # (24,000 light curves) raised RSS by 38-49 MB instead of 11.
                for group in range(source.num_row_groups):
                    writer.add_table(source.read_row_group(group, use_threads=False))
        for part in tail:
            part.path.unlink(missing_ok=True)

    def _path_of(self, run: str, first: int, last: int, hidden: bool) -> Path:
        return self.path / part_name(run, first, last, hidden=hidden)

    @staticmethod
    def _names(extra: list[str]) -> list[str]:
        renamed = pass_through_names(extra, reserved=TABLE_RESERVED)
        return list(table_schema(renamed.values()).names)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
