"""A target list as a table of text cells with line numbers, before any value is parsed.

Lines are physical lines of the file (header = line 1; blank lines count and are skipped);
a DataFrame or records count their rows as lines 2, 3, … as if a header were line 1. A
quoted field spanning several lines is a row problem: target lists never need one, and an
unbalanced quote would otherwise swallow the rest of the file silently. Whatever makes the
whole file unusable (encoding, binary formats, missing columns, no rows) raises
:class:`InputError` here.

The bottom of the target-parsing stack with ``_targets.coords``: it knows nothing of what cells mean
beyond which column is which. A file without quotes whose rows are all as wide as its header
is split by Arrow in one call; any other goes through :mod:`csv` row by row.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from atlasbatch._exceptions import InputError, RowProblem

__all__ = ["ALIASES", "PASSED_THROUGH", "TargetTable", "load_table"]

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
_BINARY: Final = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
    b"\x1f\x8b": "gzip-compressed",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
}


@dataclass(slots=True)
class TargetTable:
    """Raw cells (column-major) and the problems found so far, keyed by row index.

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


# --- reading ------------------------------------------------------------------------------


def load_table(source: object) -> TargetTable:
    """The cells of a CSV/TSV path, a DataFrame or an iterable of records, columns resolved."""
    table = _load(source)
    _resolve_columns(table)
    return table


def _load(source: object) -> TargetTable:
    if isinstance(source, str | os.PathLike):
        return _read_file(Path(source))
    if isinstance(source, pd.DataFrame):
        headers = [str(c) for c in source.columns]
        cells = [_texts(source.iloc[:, k]) for k in range(len(headers))]
        return _table("DataFrame", headers, cells, list(range(2, len(source) + 2)))
    if isinstance(source, bytes | bytearray | Mapping) or not isinstance(source, Iterable):
        raise InputError(
            "targets must be a path to a CSV/TSV file, a pandas DataFrame or an iterable of "
            f"mappings (one per row), not {type(source).__name__}"
        )
    records: list[dict[str, object]] = []
    for k, item in enumerate(source, start=1):
        if not isinstance(item, Mapping):
            raise InputError(f"records: item {k} is a {type(item).__name__}, not a mapping")
        records.append({str(key): value for key, value in item.items()})
    headers = list(dict.fromkeys(key for r in records for key in r))
    cells = [[_text(r.get(h)) for r in records] for h in headers]
    return _table("records", headers, cells, list(range(2, len(records) + 2)))


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


def _read_file(path: Path) -> TargetTable:
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
    return _split(_decode(data, source), delimiter, source)


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


def _split(text: str, delimiter: str, source: str) -> TargetTable:
    if (plain := _split_plain(text, delimiter)) is None:
        return _split_csv(text, delimiter, source)
    return _table(source, *plain)


def _split_plain(text: str, delimiter: str) -> tuple[list[str], list[list[str]], list[int]] | None:
    """Header, columns and line numbers of a file csv would just split at every delimiter.

    That is a file with a header, no quotes, rows all as wide as the header and no field
    over csv's size limit; for any other, None: csv splits it and words the problems.
    """
    if '"' in text:
        return None
    # csv (via io.StringIO(newline="")) ends a line at "\r\n", "\r" or "\n"; str.splitlines
    # would also split at "\v", "\f", "\x1c"…, which csv keeps inside a field.
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if max(map(len, lines)) > csv.field_size_limit():
        return None
    # blank lines and the all-empty rows spreadsheets append
    used = [n for n, line in enumerate(lines, start=1) if line.replace(delimiter, "").strip()]
    if not used:
        return None
    header = lines[used[0] - 1].split(delimiter)
    rows = pa.array([lines[n - 1] for n in used[1:]], type=pa.large_string())
    fields = pc.split_pattern(rows, pattern=delimiter)
    if pc.any(pc.not_equal(pc.list_value_length(fields), len(header))).as_py():
        return None
    columns = [pc.list_element(fields, k).to_pylist() for k in range(len(header))]
    return header, columns, used[1:]


def _split_csv(text: str, delimiter: str, source: str) -> TargetTable:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    header: list[str] = []
    rows: list[list[str]] = []
    lines: list[int] = []
    odd: list[tuple[int, str]] = []  # (row, message) found while splitting
    last = 0
    try:
        for record in reader:
            start, last, width = last + 1, reader.line_num, len(header)
            if not "".join(record).strip():
                continue  # blank lines and the all-empty rows spreadsheets append
            if not header:
                header = record
                continue
            if last > start:
                odd.append(
                    (len(rows), f"a quoted field spans lines {start}–{last}: a missing '\"'?")
                )
            if len(record) > width and "".join(record[width:]).strip():
                message = (
                    f"{len(record)} fields but {width} columns: quote values with {delimiter!r}"
                )
                odd.append((len(rows), message))
            rows.append(record if len(record) == width else (record + [""] * width)[:width])
            lines.append(start)
    except csv.Error as exc:  # e.g. a field beyond csv's size limit
        raise InputError(f"{source}: line {reader.line_num}: {exc}") from None
    if not header:
        raise InputError(f"{source}: the file is empty; it needs a header such as 'name,ra,dec'")
    table = _table(source, header, [[r[k] for r in rows] for k in range(len(header))], lines)
    for row, message in odd:
        table.problem(row, "(row)", message)
    return table


def _table(
    source: str, headers: list[str], cells: list[list[str]], lines: list[int]
) -> TargetTable:
    if not lines:
        raise InputError(f"{source}: no target rows (only a header, or nothing at all)")
    names = [h.strip() or f"column{k}" for k, h in enumerate(headers, start=1)]
    if twice := sorted({h for h in names if names.count(h) > 1}):
        raise InputError(f"{source}: column name(s) {twice} appear more than once")
    return TargetTable(source, names, lines, cells)


# --- columns ------------------------------------------------------------------------------


def _resolve_columns(t: TargetTable) -> None:
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
