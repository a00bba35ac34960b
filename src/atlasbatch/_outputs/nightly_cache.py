"""The nightly rows of each batch of families, kept between runs so only changed ones are redone.

Rebuilding ``photometry_nightly.parquet`` would otherwise read every light curve of a run
again each time anything changed (a resume that stored one more result, a ``cleanup``): for
10,000 targets with 8 controls each, hours of parsing. A family's rows depend only on its
light-curve files, its rows' identities and the options, so a batch of families
(:mod:`._outputs.nightly_batch`, whose boundaries a changed family does not move) is kept in
``DIR/.nightly-cache/<digest>.parquet`` under a digest of exactly those (file size and
modification time standing for the content, as ``make`` does); a batch whose digest is
known is read back in milliseconds. One entry per batch, not per family: a file per target
cost more to write than its rows cost to compute. The cache is a convenience, not a record: a file
that cannot be read is computed again, writes are not fsynced, and entries no family used
in the last rebuild are removed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from atlasbatch._outputs.nightly_table import Family
from atlasbatch._science.nightly_options import NightlyOptions

__all__ = ["CACHE_DIR", "NightlyCache"]

CACHE_DIR = ".nightly-cache"
#: Part of every digest: change it when the nightly columns or their meaning change.
_FORMAT = "nightly-2"


class NightlyCache:
    """The cached rows of ``out_dir``'s families for ``options`` and ``schema``."""

    def __init__(self, out_dir: Path, *, options: NightlyOptions, schema: pa.Schema) -> None:
        self._out_dir = out_dir
        self._folder = out_dir / CACHE_DIR
        self._schema = schema
        self._options = json.dumps(dataclasses.asdict(options), sort_keys=True)
        self._used: set[str] = set()
        #: Families asked for, and how many of them came from the cache.
        self.families = 0
        self.hits = 0

    def rows(self, batch: Sequence[Family], compute: Callable[[], pa.Table]) -> pa.Table:
        """The batch's rows: from the cache when its files are unchanged, else computed
        (and kept)."""
        self.families += len(batch)
        name = f"{self._digest(batch)}.parquet"
        self._used.add(name)
        path = self._folder / name
        with contextlib.suppress(OSError, pa.ArrowException):
            table = pq.read_table(path)
            if table.schema.equals(self._schema):
                self.hits += len(batch)
                return table
        table = compute()
        self._keep(path, table)
        return table

    def prune(self) -> None:
        """Remove the entries no family used since this cache was made."""
        if not self._folder.is_dir():
            return
        for entry in os.scandir(self._folder):
            if entry.name not in self._used:
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)

    def _digest(self, batch: Sequence[Family]) -> str:
        parts: list[object] = [_FORMAT, self._options]
        for family in batch:
            # the family's shape too: the same curves grouped otherwise give other rows
            parts.append([len(family.members), len(family.controls), family.requested])
            for curve in family.curves():
                target = curve.target
                parts.append([target.line, target.name, target.control_of,
                              target.control_index, curve.task_id, str(curve.key),
                              *self._file_state(curve.key)])  # fmt: skip
        text = json.dumps(parts, sort_keys=True, default=str)
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]

    def _file_state(self, key: object) -> tuple[int, int]:
        try:
            stat = (self._out_dir / str(key)).stat()
        except OSError:
            return (-1, -1)
        return (stat.st_size, stat.st_mtime_ns)

    def _keep(self, path: Path, table: pa.Table) -> None:
        """Write an entry (to a temporary name first: a reader never sees half of one)."""
        with contextlib.suppress(OSError, pa.ArrowException):
            self._folder.mkdir(exist_ok=True)
            temp = path.with_name(f".{path.stem}.{secrets.token_hex(4)}.tmp")
            try:
                pq.write_table(table, temp)
                os.replace(temp, path)
            finally:
                temp.unlink(missing_ok=True)
