"""Checking a result file on disk in bounded memory: the rules of ``parse_result``, line by line.

A result file can be large (a full history of a busy field) or hostile (an endless body
from a broken proxy), and most runs keep no DataFrame at all: they store the file and move
on. So the check reads one line at a time and holds nothing but the header: field counts
(more fields than the header: garbage; a short *last* row: a cut download), and values that
must be numbers. It accepts exactly what :func:`atlasbatch._outputs.results.parse_result` accepts
and names the line at fault the same way.
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TextIO

from atlasbatch._exceptions import ResultFileError
from atlasbatch._outputs.results import (
    INT_COLUMNS,
    SERVER_COLUMNS,
    STRING_COLUMNS,
    header_names,
    not_atlas,
)

__all__ = ["check_result_bytes", "check_result_file"]

# pandas reads these as missing values, so parse_result accepts them in numeric columns.
_MISSING = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND",
     "1.#QNAN", "<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)  # fmt: skip


def check_result_file(path: Path, *, source: str) -> int:
    """The number of data rows in ``path``; ResultFileError if it is not a good result file."""
    with path.open("r", encoding="utf-8", errors="replace", newline=None) as handle:
        return _check_text(handle, source=source)


def check_result_bytes(data: bytes, *, source: str) -> int:
    """:func:`check_result_file` for a body held in memory (decoded exactly as the file is)."""
    with io.TextIOWrapper(
        io.BytesIO(data), encoding="utf-8", errors="replace", newline=None
    ) as text:
        return _check_text(text, source=source)


def _check_text(handle: TextIO, *, source: str) -> int:
    """The rows of a result file read line by line from ``handle``."""
    first = handle.readline().removeprefix("\ufeff")
    if not first.strip():
        if any(line.strip() for line in handle):
            raise not_atlas(first, source)
        return 0  # empty, or blank lines only: "no data"
    names = header_names(first.rstrip("\n"), source=source)
    checks = [_kind(name) for name in names]
    rows, last_count, last_number = 0, len(names), 1
    for number, line in enumerate(handle, start=2):
        fields = line.split()
        if not fields:
            continue
        if len(fields) > len(names):
            raise ResultFileError(
                f"{source}: line {number}: {len(fields)} fields but the header has {len(names)}"
            )
        _check_values(fields, names, checks, number, source=source)
        rows, last_count, last_number = rows + 1, len(fields), number
    if last_count < len(names):
        raise ResultFileError(
            f"{source}: line {last_number}: truncated file, last row has {last_count} of "
            f"{len(names)} fields"
        )
    return rows


def _kind(name: str) -> str:
    """ "int", "float" or "" (not checked: strings and columns the server may add)."""
    if name in STRING_COLUMNS or name not in SERVER_COLUMNS:
        return ""
    return "int" if name in INT_COLUMNS else "float"


def _check_values(
    fields: list[str], names: list[str], checks: list[str], number: int, *, source: str
) -> None:
    for value, name, kind in zip(fields, names, checks, strict=False):
        if kind and value not in _MISSING and not _fits(value, kind):
            raise ResultFileError(
                f"{source}: line {number}: column {name!r} has the invalid value {value!r}"
            )


def _fits(value: str, kind: str) -> bool:
    try:
        number = float(value)
    except ValueError:
        return False
    if not math.isfinite(number):  # pandas reads infinities as floats; "NAN" it refuses
        return kind == "float" and value.lower().lstrip("+-") in ("inf", "infinity")
    return kind == "float" or number % 1 == 0
