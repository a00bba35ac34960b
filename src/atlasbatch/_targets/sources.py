"""Target lists read into a :class:`~atlasbatch._targets.table.TextTable`: a CSV/TSV file,
a DataFrame or an iterable of records, their cells gathered as compact text columns.

A quoted field spanning several lines is a row problem: target lists never need one, and
an unbalanced quote would otherwise swallow the rest of the file silently. Whatever makes
the whole file unusable (encoding, binary formats, missing columns, no rows) raises
:class:`InputError` here. A file without quotes whose rows are all as wide as its header
is split by Arrow without a Python string per cell; any other goes through :mod:`csv` row
by row. Records are consumed one at a time: no list of them is kept.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from atlasbatch._exceptions import InputError
from atlasbatch._targets.table import TextTable, make_table
from atlasbatch._targets.text import TextColumn, TextColumns

__all__ = ["load_table"]

_BINARY: Final = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
    b"\x1f\x8b": "gzip-compressed",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
}


def load_table(source: object) -> TextTable:
    """The cells of a CSV/TSV path, a DataFrame or an iterable of records, columns resolved."""
    if isinstance(source, str | os.PathLike):
        return _read_file(Path(source))
    if isinstance(source, pd.DataFrame):
        headers = [str(c) for c in source.columns]
        columns = [_column(_texts(source.iloc[:, k])) for k in range(len(headers))]
        return make_table("DataFrame", headers, columns, _numbered(len(source)))
    if isinstance(source, bytes | bytearray | Mapping) or not isinstance(source, Iterable):
        raise InputError(
            "targets must be a path to a CSV/TSV file, a pandas DataFrame or an iterable of "
            f"mappings (one per row), not {type(source).__name__}"
        )
    return _read_records(source)


def _numbered(count: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    return np.arange(2, count + 2, dtype=np.int64)  # as if a header were line 1


def _column(cells: list[str]) -> TextColumn:
    column = TextColumn()
    column.extend(cells)
    return column


def _read_records(source: Iterable[object]) -> TextTable:
    table = TextColumns()
    where: dict[str, int] = {}  # header -> its column
    for k, item in enumerate(source, start=1):
        if not isinstance(item, Mapping):
            raise InputError(f"records: item {k} is a {type(item).__name__}, not a mapping")
        record = {str(key): value for key, value in item.items()}
        for key in record:
            if key not in where:
                where[key] = len(table.headers)
                table.add_column(key)
        table.add([_text(record.get(h)) for h in table.headers])
    columns = table.finish()
    return make_table("records", table.headers, columns, _numbered(table.rows))


def _texts(column: pd.Series[Any]) -> list[str]:
    """A DataFrame column as text, cell by cell as :func:`_text` would, floats in one go."""
    values = column.tolist()
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "f":  # not nullable Float64
        return ["" if math.isnan(v) else repr(v) for v in values]
    return [_text(v) for v in values]


def _text(value: object) -> str:
    """One cell as text; None, NaN and NA are blank (pandas' way of saying missing)."""
    if isinstance(value, str):
        return value
    if value is None or value is pd.NA or value is pd.NaT:
        return ""
    if isinstance(value, bool | np.bool_):
        return "true" if value else "false"
    if isinstance(value, Integral):
        return str(int(value))
    if isinstance(value, Real):
        return "" if math.isnan(number := float(value)) else repr(number)
    return str(value)


def _read_file(path: Path) -> TextTable:
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{source}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, not a target file") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read the file ({exc.strerror})") from None
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    text = _decode(data, source)
    del data
    if (plain := _split_plain(text, delimiter)) is not None:
        return make_table(source, *plain)
    return _split_csv(text, delimiter, source)


def _decode(data: bytes, source: str) -> str:
    for magic, what in _BINARY.items():
        if data.startswith(magic):
            raise InputError(f"{source}: this is {what}, not CSV text; export it as CSV (UTF-8)")
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise InputError(f"{source}: the file is UTF-16 (or UTF-32) text; save it as UTF-8")
    if (nul := data.find(b"\x00")) >= 0:
        line = data.count(b"\n", 0, nul) + 1
        raise InputError(f"{source}: line {line} has a NUL byte: binary (or UTF-16), not CSV")
    try:
        return data.decode("utf-8-sig")  # drops the BOM of Excel's "CSV UTF-8"
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(
            f"{source}: line {line}: byte 0x{data[exc.start]:02X} is not UTF-8; the file is in "
            "another encoding (Latin-1 or Windows-1252?): save it as UTF-8"
        ) from None


Plain = tuple[list[str], list[TextColumn], np.ndarray[Any, np.dtype[np.int64]]]
_BLOCK_CHARS: Final = 1 << 18  # text split at a time: its Python strings stay few


def _split_plain(text: str, delimiter: str) -> Plain | None:
    """Header, columns and line numbers of a file csv would just split at every delimiter.

    That is a file with a header, no quotes, rows all as wide as the header and no field
    over csv's size limit; for any other, None: csv splits it and words the problems.
    A block of lines at a time, each block's cells moved into the columns before the next.
    """
    if '"' in text:
        return None
    header: list[str] = []
    columns: list[TextColumn] = []
    numbers: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    before = 0  # lines before the block
    for block in _blocks(text):
        lines = _lines(block)
        if lines and max(map(len, lines)) > csv.field_size_limit():
            return None
        # blank lines and the all-empty rows spreadsheets append
        used = [k for k, line in enumerate(lines) if line.replace(delimiter, "").strip()]
        if not header and used:
            header = lines[used.pop(0)].split(delimiter)
            columns = [TextColumn() for _ in header]
        rows = [lines[k].split(delimiter) for k in used]
        if rows and set(map(len, rows)) != {len(header)}:
            return None
        for column, cells in zip(columns, zip(*rows, strict=True), strict=bool(rows)):
            column.extend(cells)
        numbers.append(np.array(used, dtype=np.int64) + (before + 1))
        before += len(lines)
    if not header:
        return None
    return header, columns, np.concatenate(numbers)


def _blocks(text: str) -> Iterator[str]:
    """``text`` in pieces of about :data:`_BLOCK_CHARS`, each cut just after a "\\n" (so no
    "\\r\\n" is cut in two)."""
    start = 0
    while start < len(text):
        cut = text.find("\n", start + _BLOCK_CHARS)
        stop = len(text) if cut < 0 else cut + 1
        yield text[start:stop]
        start = stop


def _lines(block: str) -> list[str]:
    """The lines of a block as csv ends them: at "\\r\\n", "\\r" or "\\n" (str.splitlines
    would also split at "\\v", "\\f", "\\x1c"…, which csv keeps inside a field). The empty
    piece after a block's last line break is the next block's first line, not one here."""
    lines = block.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "" and len(lines) > 1:
        lines.pop()
    return lines


def _split_csv(text: str, delimiter: str, source: str) -> TextTable:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: TextColumns | None = None
    lines: list[int] = []
    odd: list[tuple[int, str]] = []  # (row, message) found while splitting
    last = 0
    try:
        for record in reader:
            start, last, width = last + 1, reader.line_num, len(header)
            if not "".join(record).strip():
                continue  # blank lines and the all-empty rows spreadsheets append
            if rows is None:
                header, rows = record, TextColumns([f"column{k}" for k in range(len(record))])
                continue
            if last > start:
                odd.append(
                    (len(lines), f"a quoted field spans lines {start}–{last}: a missing '\"'?")
                )
            if len(record) > width and "".join(record[width:]).strip():
                message = (
                    f"{len(record)} fields but {width} columns: quote values with {delimiter!r}"
                )
                odd.append((len(lines), message))
            rows.add(record if len(record) == width else (record + [""] * width)[:width])
            lines.append(start)
    except csv.Error as exc:  # e.g. a field beyond csv's size limit
        raise InputError(f"{source}: line {reader.line_num}: {exc}") from None
    if rows is None:
        raise InputError(f"{source}: the file is empty; it needs a header such as 'name,ra,dec'")
    table = make_table(source, header, rows.finish(), np.array(lines, dtype=np.int64))
    for row, message in odd:
        table.problem(row, "(row)", message)
    return table
