"""Target lists in, validated :class:`Target` records out; pure, no network.

Every row is checked before anything is sent and every problem of every row is collected,
so one error lists them all by line and column. One pass down a stack where each module
calls only those below it: ``_targets.rows`` parses the rows (``_targets.sources`` reads the
source into compact text columns with line numbers, ``_targets.coords`` turns columns into
numbers, a chunk of rows at a time), ``_targets.dedupe`` finds the rows asking the same
question, and this module groups them into a :class:`TargetList` whose targets are made
when iterated (``_targets.lazy``): a list of 100,000 rows holds ~50 bytes per row.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd

from atlasbatch._exceptions import InputError, RowProblem, TargetFileError
from atlasbatch._models import Target
from atlasbatch._targets.dedupe import DUPLICATE_RADIUS_ARCSEC, check_names, duplicates
from atlasbatch._targets.lazy import TargetRows
from atlasbatch._targets.rows import MJD_HIGHEST, MJD_LOWEST, ParsedRows, parse_rows

__all__ = ["DUPLICATE_RADIUS_ARCSEC", "MJD_HIGHEST", "MJD_LOWEST", "TargetList", "read_targets"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TargetList:
    """The validated rows of a target list and which of them ask the same question.

    ``invalid`` holds ``(line, name, problems)`` of bad rows (only with ``keep_going``);
    ``duplicate_of`` maps the line of a repeated row to the line of its representative in
    ``unique`` (the first row asking that question); ``columns`` names the pass-through
    columns every target carries in ``Target.extra``; ``images`` holds the lines of the
    valid rows that want image stamps (``_targets.images``).

    ``targets`` and ``unique`` of a list read from a source are :class:`TargetRows`: each
    target is made when iterated, so a run streams them into its ledger one at a time;
    they index, slice and compare as tuples of the same targets. Lists with control
    positions (``_runs.controls``) hold tuples.
    """

    targets: Sequence[Target]
    invalid: tuple[tuple[int, str, tuple[RowProblem, ...]], ...]
    unique: Sequence[Target]
    duplicate_of: Mapping[int, int]
    columns: tuple[str, ...]
    images: frozenset[int] = frozenset()


def read_targets(
    source: str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, object]],
    *,
    mjd_min: float | None = None,
    mjd_max: float | None = None,
    use_reduced: bool = False,
    keep_going: bool = False,
) -> TargetList:
    """Read and validate a target list: a CSV/TSV path, a DataFrame or an iterable of records.

    Headers match case-insensitively with aliases (``_targets.table.ALIASES``); other columns
    pass through as text. RA/Dec are decimal degrees or three-field sexagesimal (RA in
    hours); RA must lie in [0, 360] (360 becomes 0), Dec strictly inside (-90, 90). A row
    has ra+dec or mpc_name. ``mjd_min``/``mjd_max``/``use_reduced`` are the defaults for
    blank cells. Rows within 1" (or with the same mpc_name) and the same window are one
    query; a name may repeat only for the same query. Optional ``pmra``/``pmdec`` (mas/yr)
    and ``epoch`` (decimal year, rounded to a tenth) move the forced position with a star
    (``_targets.motion``); they also pass through to the outputs.

    Bad rows raise :class:`TargetFileError` listing every problem, unless ``keep_going``
    is true: then they are returned in ``invalid``. Structural problems (unreadable file,
    no coordinate columns, no rows) and bad options raise :class:`InputError`.
    """
    _check_options(mjd_min, mjd_max, use_reduced, keep_going)
    rows = parse_rows(source, mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced)
    same_name = check_names(rows)  # the last check: it needs to know which rows are bad
    t = rows.table
    if t.problems and not keep_going:
        problems = [p for i in sorted(t.problems) for p in t.problems[i]]
        raise TargetFileError(problems, source=t.source)
    targets = _target_list(rows, same_name=same_name)
    if rows.motion is not None:  # else no row moves: no need to make every target to see it
        _warn_default_epoch(targets.unique)
    return targets


def _warn_default_epoch(queries: Iterable[Target]) -> None:
    """Proper motion without an epoch is valid, but rarely what is meant (Gaia's is 2016.0)."""
    count = sum(1 for t in queries if (m := t.motion) is not None and m[0] is None)
    if count:
        log.warning(
            "%d target(s) have proper motion but no epoch: the server then moves them from "
            "its own default epoch (J2000.0?); give an epoch column (Gaia DR3: 2016.0)",
            count,
        )


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


def _target_list(rows: ParsedRows, *, same_name: dict[int, int]) -> TargetList:
    """Targets of the rows without problems, grouped by the question they ask."""
    t = rows.table
    ok = np.ones(len(t), dtype=bool)
    ok[list(t.problems)] = False
    valid = np.flatnonzero(ok)
    first = duplicates(valid, rows, same_name=same_name)
    ok[list(first)] = False
    unique = np.flatnonzero(ok) if first else valid  # the same rows: the same array
    bad = np.array(sorted(t.problems), dtype=np.intp)
    names = rows.names.take(bad)
    return TargetList(
        targets=TargetRows(rows, valid),
        invalid=tuple(
            (int(t.lines[i]), name, tuple(t.problems[i]))
            for i, name in zip(bad.tolist(), names, strict=True)
        ),
        unique=TargetRows(rows, unique),
        duplicate_of={int(t.lines[i]): int(t.lines[first[i]]) for i in sorted(first)},
        columns=tuple(t.headers[k] for k in t.extras),
        images=_image_lines(rows, valid),
    )


def _image_lines(rows: ParsedRows, valid: np.ndarray) -> frozenset[int]:
    flags = rows.images
    if flags is None:
        return frozenset()
    return frozenset(rows.table.lines[valid[flags[valid]]].tolist())
