"""Where nightly light curves come from: a run directory's files, or a report's frames.

:func:`write_nightly_table` (re)writes ``photometry_nightly.parquet`` in a run directory from
its ledger and ``lightcurves/``, and only when something changed since the last time (a
stamp in the ledger: the run, its latest event and the options), so resuming a finished
run costs nothing. :func:`outcomes_nightly` builds the same table from a
:class:`~atlasbatch.RunReport`'s outcomes held in memory.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
from collections.abc import Hashable, Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Outcome
from atlasbatch._science.nightly_options import NightlyOptions

if TYPE_CHECKING:  # pandas and pyarrow only when there is a table to write
    import pandas as pd

    from atlasbatch._outputs.nightly_table import Family

__all__ = [
    "NIGHTLY_NAME",
    "outcomes_nightly",
    "remember_nightly",
    "remembered_nightly",
    "write_nightly_table",
]

log = logging.getLogger(__name__)

NIGHTLY_NAME = "photometry_nightly.parquet"
_STAMP_KEY = "nightly_stamp"
_OPTIONS_KEY = "nightly_options"


def _stamp(ledger: Ledger, options: NightlyOptions, csv: bool) -> str:
    return json.dumps(
        {"run": ledger.run_id, "event": ledger.last_event(), "csv": csv,
         "options": dataclasses.asdict(options)}, sort_keys=True,
    )  # fmt: skip


def remember_nightly(ledger: Ledger, options: NightlyOptions | None) -> None:
    """Keep the run's nightly options (None: no nightly table) for ``cleanup`` and resumes."""
    value = "off" if options is None else json.dumps(dataclasses.asdict(options), sort_keys=True)
    if ledger.meta(_OPTIONS_KEY) != value:
        ledger.set_meta(_OPTIONS_KEY, value)


def remembered_nightly(ledger: Ledger) -> NightlyOptions | None:
    """The run's nightly options: as last fetched, else the defaults; None when it was
    fetched with ``--no-nightly``."""
    value = ledger.meta(_OPTIONS_KEY)
    if value == "off":
        return None
    return NightlyOptions() if value is None else NightlyOptions(**json.loads(value))


def write_nightly_table(
    ledger: Ledger, out_dir: Path, *, options: NightlyOptions | None = None, csv: bool = False
) -> bool:
    """Write ``out_dir/photometry_nightly.parquet`` (and ``.csv`` with ``csv``) unless it is
    up to date with the ledger; True when it was written. ``options`` None: the run's own
    (:func:`remembered_nightly`), and nothing when it was fetched with ``--no-nightly``."""
    options = options or remembered_nightly(ledger)
    if options is None:
        return False
    path = out_dir / NIGHTLY_NAME
    twin = path.with_suffix(".csv") if csv else None
    stamp = _stamp(ledger, options, csv)
    if path.is_file() and ledger.meta(_STAMP_KEY) == stamp and (twin is None or twin.is_file()):
        return False
    from atlasbatch._outputs.nightly_families import ledger_families  # noqa: PLC0415 - pandas, pyarrow

    found = ledger_families(ledger)  # a stream: memory flat in the number of rows
    first = next(found, None)
    if first is None:  # no light curve at all
        return False
    _write(out_dir, itertools.chain([first], found), options=options, path=path, twin=twin)
    ledger.set_meta(_STAMP_KEY, stamp)
    return True


def _write(
    out_dir: Path, found: Iterable[Family], *, options: NightlyOptions, path: Path,
    twin: Path | None,
) -> None:  # fmt: skip
    """Stream every batch of families into the table, from the cache where nothing changed."""
    from atlasbatch._outputs.nightly_batch import batch_rows, batches  # noqa: PLC0415
    from atlasbatch._outputs.nightly_cache import NightlyCache  # noqa: PLC0415
    from atlasbatch._outputs.nightly_table import NightlyTableWriter  # noqa: PLC0415

    with NightlyTableWriter(path, csv_path=twin) as writer:
        cache = NightlyCache(out_dir, options=options, schema=writer.schema)
        compute = partial(batch_rows, out_dir=out_dir, options=options, schema=writer.schema)
        for batch in batches(found, out_dir):
            writer.add_arrow(cache.rows(batch, partial(compute, batch)))
    cache.prune()
    log.info("%s: %d rows (%d families read again)", path.name, writer.rows_written,
             cache.families - cache.hits)  # fmt: skip


def outcomes_nightly(outcomes: Iterable[Outcome], options: NightlyOptions) -> pd.DataFrame:
    """The nightly table of the outcomes whose light curves are held in memory."""
    from atlasbatch._outputs.nightly_table import SourceCurve, nightly_frame  # noqa: PLC0415

    frames: dict[Hashable, pd.DataFrame] = {}
    curves = []
    for outcome in outcomes:
        key: Hashable | None = None
        if outcome.data is not None:
            # Duplicate rows share their representative's task and frame: one key.
            key = ("task", outcome.task_id) if outcome.task_id is not None else id(outcome.data)
            frames[key] = outcome.data
        curves.append(SourceCurve(outcome.target, key, outcome.task_id))
    return nightly_frame(curves, frames.get, options)
