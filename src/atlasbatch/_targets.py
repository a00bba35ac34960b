"""Target lists in, validated :class:`Target` records out; pure, no network.

Every row is checked before anything is sent and every problem of every row is collected,
so one error lists them all by line and column. The steps live in their own modules:
``_target_file`` (the source as text cells with line numbers, structural checks),
``_target_rows`` with ``_coords`` (cells to names, positions and MJD windows) and
``_dedupe`` (rows asking the same question); this module ties them together.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from numbers import Real

import pandas as pd

from atlasbatch._dedupe import DUPLICATE_RADIUS_ARCSEC, check_names, representatives
from atlasbatch._exceptions import InputError, RowProblem, TargetFileError
from atlasbatch._models import Target
from atlasbatch._target_file import TargetTable, load_table, resolve_columns
from atlasbatch._target_rows import (
    MJD_HIGHEST,
    MJD_LOWEST,
    ParsedRows,
    parse_names,
    parse_positions,
    parse_windows,
)

__all__ = ["DUPLICATE_RADIUS_ARCSEC", "MJD_HIGHEST", "MJD_LOWEST", "TargetList", "read_targets"]


@dataclass(frozen=True, slots=True)
class TargetList:
    """The validated rows of a target list and which of them ask the same question.

    ``invalid`` holds ``(line, name, problems)`` of bad rows (only with ``keep_going``);
    ``duplicate_of`` maps the line of a repeated row to the line of its representative in
    ``unique`` (the first row asking that question); ``columns`` names the pass-through
    columns every target carries in ``Target.extra``.
    """

    targets: tuple[Target, ...]
    invalid: tuple[tuple[int, str, tuple[RowProblem, ...]], ...]
    unique: tuple[Target, ...]
    duplicate_of: Mapping[int, int]
    columns: tuple[str, ...]


def read_targets(
    source: str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, object]],
    *,
    mjd_min: float | None = None,
    mjd_max: float | None = None,
    use_reduced: bool = False,
    keep_going: bool = False,
) -> TargetList:
    """Read and validate a target list: a CSV/TSV path, a DataFrame or an iterable of records.

    Headers match case-insensitively with aliases (``_target_file.ALIASES``); other columns
    pass through as text. RA/Dec are decimal degrees or three-field sexagesimal (RA in
    hours); RA must lie in [0, 360] (360 becomes 0), Dec strictly inside (-90, 90). A row
    has ra+dec or mpc_name. ``mjd_min``/``mjd_max``/``use_reduced`` are the defaults for
    blank cells. Rows within 1" (or with the same mpc_name) and the same window are one
    query; a name may repeat only for the same query.

    Bad rows raise :class:`TargetFileError` listing every problem, unless ``keep_going``
    is true: then they are returned in ``invalid``. Structural problems (unreadable file,
    no coordinate columns, no rows) and bad options raise :class:`InputError`.
    """
    _check_options(mjd_min, mjd_max, use_reduced, keep_going)
    t = load_table(source)
    extras = resolve_columns(t)
    # Each step records its problems on the table; a row's problems are listed in this order.
    names, positions = parse_names(t), parse_positions(t)
    windows = parse_windows(t, mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced)
    rows = ParsedRows(names, *positions, windows)
    same_name = check_names(t, rows)
    if t.problems and not keep_going:
        problems = [p for i in sorted(t.problems) for p in t.problems[i]]
        raise TargetFileError(problems, source=t.source)
    return _target_list(t, rows, extras=extras, same_name=same_name)


def _check_options(lo: object, hi: object, reduced: object, keep_going: object) -> None:
    for label, value in (("mjd_min", lo), ("mjd_max", hi)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
            raise InputError(f"{label} must be a finite number (an MJD) or None, not {value!r}")
        if not MJD_LOWEST <= float(value) <= MJD_HIGHEST:
            raise InputError(f"{label}={value!r} is outside [{MJD_LOWEST:g}, {MJD_HIGHEST:g}]")
    if isinstance(lo, Real) and isinstance(hi, Real) and float(hi) <= float(lo):
        raise InputError(f"mjd_max ({hi!r}) must be greater than mjd_min ({lo!r})")
    for label, flag in (("use_reduced", reduced), ("keep_going", keep_going)):
        if not isinstance(flag, bool):
            raise InputError(f"{label} must be True or False, not {flag!r}")


def _target_list(
    t: TargetTable, rows: ParsedRows, *, extras: list[int], same_name: dict[int, int]
) -> TargetList:
    """Targets of the rows without problems, grouped by the question they ask."""
    valid = [i for i in range(len(t.lines)) if i not in t.problems]
    rep = representatives(valid, rows, same_name=same_name)
    ras, decs, w = rows.ra.tolist(), rows.dec.tolist(), rows.windows
    made = {
        i: Target(
            line=t.lines[i],
            name=rows.names[i],
            ra=None if rows.mpc[i] else ras[i],
            dec=None if rows.mpc[i] else decs[i],
            mpc_name=rows.mpc[i],
            mjd_min=w[i][0],
            mjd_max=w[i][1],
            use_reduced=w[i][2],
            extra={t.headers[k]: t.columns[k][i].strip() for k in extras},
        )
        for i in valid
    }
    return TargetList(
        targets=tuple(made.values()),
        invalid=tuple(
            (t.lines[i], rows.names[i], tuple(ps)) for i, ps in sorted(t.problems.items())
        ),
        unique=tuple(made[i] for i in valid if rep[i] == i),
        duplicate_of={t.lines[i]: t.lines[rep[i]] for i in valid if rep[i] != i},
        columns=tuple(t.headers[k] for k in extras),
    )
