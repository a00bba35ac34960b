"""Run outputs besides the photometry table: outcomes.csv, one row per input row.

Importing this module costs no pandas or pyarrow (``cancel`` and ``cleanup`` rewrite
outcomes.csv and often nothing else). The table's file writer lives in
:mod:`._outputs.table_writer` and is re-exported here, where callers have always found it.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from atlasbatch._models import Outcome
from atlasbatch._outputs.csv_cells import csv_cell
from atlasbatch._outputs.results import AtomicFile
from atlasbatch._outputs.table_writer import (
    TABLE_RESERVED,
    PhotometryTableWriter,
    pass_through_names,
    write_csv_twin,
)

if TYPE_CHECKING:
    from _csv import Writer as CsvWriter

__all__ = [
    "OUTCOME_COLUMNS",
    "TABLE_RESERVED",
    "PhotometryTableWriter",
    "pass_through_names",
    "write_csv_twin",
    "write_outcomes_csv",
]

logger = logging.getLogger(__name__)

OUTCOME_COLUMNS: tuple[str, ...] = (
    "line", "name", "state", "task_id", "error", "path", "ra", "dec", "mpc_name",
    "mjd_min", "mjd_max",
)  # fmt: skip
#: outcomes.csv's link from a control position's row to its target's (runs with controls).
CONTROL_COLUMNS: tuple[str, ...] = ("control_of", "control_index")
#: outcomes.csv's column of image stamps (runs where rows asked for them, _targets/images.py).
IMAGE_COLUMN: tuple[str, ...] = ("images",)


def write_outcomes_csv(
    path: Path,
    outcomes: Iterable[Outcome],
    *,
    extra_columns: Sequence[str] = (),
    ordered: bool = False,
    control_columns: bool = False,
    images: Mapping[int, str] | None = None,
) -> None:
    """Write ``outcomes.csv`` atomically: one row per input row, sorted by input line.

    ``ordered``: the outcomes come in input order already (as the ledger gives them), and
    are written as they come, in memory flat in their number.

    Columns: ``line,name,state,task_id,error,path,ra,dec,mpc_name,mjd_min,mjd_max`` then the
    pass-through columns; missing values are empty. RA, Dec and MJDs are rounded to 1e-9
    (:func:`_number`); text a spreadsheet would run as a formula gets a leading ``'``
    (:mod:`._outputs.csv_cells`). ``control_columns`` (a run with control positions,
    :mod:`._runs.controls`, which have rows too) adds ``control_of,control_index`` before the
    pass-through columns; ``images`` (a run where rows asked for images) adds ``images``,
    each row's zip path or why it has none (empty: the row did not ask).
    """
    controls = (*(CONTROL_COLUMNS if control_columns else ()), *(IMAGE_COLUMN if images else ()))
    extra = pass_through_names(extra_columns, reserved=(*OUTCOME_COLUMNS, *controls))
    pending = AtomicFile(path)
    try:
        with pending.temp.open("w", encoding="utf-8", newline="") as handle:
            _write_outcome_rows(
                csv.writer(handle, lineterminator="\n"),
                outcomes if ordered else sorted(outcomes, key=lambda o: o.target.line),
                extra,
                controls=control_columns,
                images=images,
            )
        pending.commit()
    except BaseException:
        pending.discard()
        raise


def _write_outcome_rows(
    writer: CsvWriter,
    outcomes: Iterable[Outcome],
    extra: dict[str, str],
    *,
    controls: bool,
    images: Mapping[int, str] | None = None,
) -> None:
    writer.writerow(
        [*OUTCOME_COLUMNS, *(CONTROL_COLUMNS if controls else ()),
         *(IMAGE_COLUMN if images else ()), *map(csv_cell, extra.values())]
    )  # fmt: skip
    for outcome in outcomes:
        target = outcome.target
        writer.writerow(
            [
                target.line, csv_cell(target.name), outcome.state.value,
                csv_cell(outcome.task_id), csv_cell(outcome.error), csv_cell(outcome.path),
                _number(target.ra), _number(target.dec), csv_cell(target.mpc_name),
                _number(target.mjd_min), _number(target.mjd_max),
                *((csv_cell(target.control_of), csv_cell(target.control_index))
                  if controls else ()),
                *((csv_cell(images.get(target.line)),) if images else ()),
                *(csv_cell(target.extra.get(column)) for column in extra),
            ]
        )  # fmt: skip


def _number(value: float | None) -> str:
    """RA, Dec or MJD rounded to 1e-9 (3.6 µas, 86 µs), far below any precision that matters:
    the float noise of sexagesimal input (``44.99999999999999``) reads ``45.0`` again."""
    return "" if value is None else csv_cell(round(value, 9) + 0.0)  # + 0.0: no "-0.0"
