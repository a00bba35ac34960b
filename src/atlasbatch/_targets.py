"""Target lists in, validated :class:`Target` records out; pure, no network.

Every row is checked before anything is sent and every problem of every row is collected,
so one error lists them all by line and column. Lines are physical lines of the file
(header = line 1; blank lines count and are skipped); a DataFrame or records count their
rows as lines 2, 3, … as if a header were line 1. A quoted field spanning several lines is
a row problem: target lists never need one, and an unbalanced quote would otherwise
swallow the rest of the file silently.
"""

from __future__ import annotations

import codecs
import csv
import io
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from numbers import Integral, Real
from pathlib import Path
from typing import Final

import astropy.units as u
import numpy as np
import numpy.typing as npt
import pandas as pd
from astropy.coordinates import Angle

from atlasbatch._exceptions import InputError, RowProblem, TargetFileError
from atlasbatch._models import Target

__all__ = ["DUPLICATE_RADIUS_ARCSEC", "MJD_HIGHEST", "MJD_LOWEST", "TargetList", "read_targets"]

Floats = npt.NDArray[np.float64]
Window = tuple[float | None, float | None, bool]

# Header spellings after strip, lower case and spaces/hyphens -> "_". The first alias is
# canonical: when it is present, the other aliases of that field pass through untouched.
_ALIASES: Final = {
    "name": ("name", "target", "object", "id", "objname"),
    "ra": ("ra", "ra_deg", "raj2000", "alpha"),
    "dec": ("dec", "dec_deg", "decj2000", "dej2000", "decl", "delta"),
    "mpc_name": ("mpc_name", "mpc"),
    "mjd_min": ("mjd_min", "mjdmin"),
    "mjd_max": ("mjd_max", "mjdmax"),
    "use_reduced": ("use_reduced", "reduced"),
}
# MJD 40000 is 1968 and 100000 is 2132. ATLAS data begin in 2015 (MJD ~57000), so a value
# outside is a unit slip (a JD, a year, seconds), never a real window; the server itself
# only insists on mjd_max > 0.
MJD_LOWEST: Final = 40000.0
MJD_HIGHEST: Final = 100000.0
DUPLICATE_RADIUS_ARCSEC: Final = 1.0
# "1.0"/"0.0": what a DataFrame column of 1/0 with a gap (so float) turns into.
_BOOLS: Final = {"true": 1, "yes": 1, "1": 1, "1.0": 1, "false": 0, "no": 0, "0": 0, "0.0": 0}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")  # a line break would split a radeclist line
_BINARY: Final = {
    b"PK\x03\x04": "a ZIP archive (an .xlsx workbook?)",
    b"\x1f\x8b": "gzip-compressed",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook",
    b"PAR1": "a Parquet file",
    b"%PDF": "a PDF document",
}
# Three-field sexagesimal only, as the server's radeclist reads it. These patterns decide
# what counts as sexagesimal and give precise messages; astropy does the conversion.
_FIELDS = r"([+-]?)(\d{{1,3}}){}(\d{{1,2}}){}(\d{{1,2}}(?:\.\d+)?){}"
_SEXA: Final = {
    is_ra: [re.compile(_FIELDS.format(*seps), re.I | re.A) for seps in forms]
    for is_ra, forms in (
        (True, [(":", ":", ""), (r"\s+", r"\s+", ""), (r"h\s*", r"m\s*", "s?")]),
        (False, [(":", ":", ""), (r"\s+", r"\s+", ""), (r"[d°]\s*", r"[m′']\s*", '[s″"]?')]),
    )
}
_EXAMPLE: Final = {True: "12:34:56.7, 12 34 56.7 or 12h34m56.7s", False: "-05:02:03 or -05d02m03s"}
# Unit vectors of points 1" apart are _CHORD apart; grid cells are a hair larger so float
# rounding can never put a close pair two cells apart.
_CHORD: Final = 2 * math.sin(math.radians(DUPLICATE_RADIUS_ARCSEC / 3600) / 2)
_CELL: Final = _CHORD * 1.001
_OFFSETS: Final = [
    (dx << 42) + (dy << 21) + dz for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
]


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


@dataclass(slots=True)
class _Table:
    """Raw cells (column-major) and the problems found so far, keyed by row index."""

    source: str
    headers: list[str]
    lines: list[int]
    columns: list[list[str]]
    problems: dict[int, list[RowProblem]] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)  # canonical field -> column

    def problem(self, row: int, name: str, message: str) -> None:
        column = self.headers[self.index[name]] if name in self.index else name
        self.problems.setdefault(row, []).append(RowProblem(self.lines[row], column, message))

    def cells(self, name: str) -> list[str]:
        k = self.index.get(name)
        return [s.strip() for s in self.columns[k]] if k is not None else [""] * len(self.lines)


@dataclass(frozen=True, slots=True)
class _Rows:
    """Parsed values per row; meaningful only for rows without problems."""

    names: list[str]
    ra: Floats
    dec: Floats
    mpc: list[str | None]
    windows: list[Window]


def read_targets(
    source: str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, object]],
    *,
    mjd_min: float | None = None,
    mjd_max: float | None = None,
    use_reduced: bool = False,
    keep_going: bool = False,
) -> TargetList:
    """Read and validate a target list: a CSV/TSV path, a DataFrame or an iterable of records.

    Headers match case-insensitively with aliases (``_ALIASES``); other columns pass
    through as text. RA/Dec are decimal degrees or three-field sexagesimal (RA in hours);
    RA must lie in [0, 360] (360 becomes 0), Dec strictly inside (-90, 90). A row has
    ra+dec or mpc_name. ``mjd_min``/``mjd_max``/``use_reduced`` are the defaults for
    blank cells. Rows within 1" (or with the same mpc_name) and the same window are one
    query; a name may repeat only for the same query.

    Bad rows raise :class:`TargetFileError` listing every problem, unless ``keep_going``
    is true: then they are returned in ``invalid``. Structural problems (unreadable file,
    no coordinate columns, no rows) and bad options raise :class:`InputError`.
    """
    _check_options(mjd_min, mjd_max, use_reduced, keep_going)
    t = _load(source)
    extras = _resolve_columns(t)
    rows = _Rows(_names(t), *_positions(t), _windows(t, mjd_min, mjd_max, use_reduced))
    same_name = _check_names(t, rows)
    if t.problems and not keep_going:
        problems = [p for i in sorted(t.problems) for p in t.problems[i]]
        raise TargetFileError(problems, source=t.source)
    valid = [i for i in range(len(t.lines)) if i not in t.problems]
    rep = _representatives(valid, rows, same_name)
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


# --- reading ------------------------------------------------------------------------------


def _load(source: object) -> _Table:
    if isinstance(source, str | os.PathLike):
        return _read_file(Path(source))
    if isinstance(source, pd.DataFrame):
        headers = [str(c) for c in source.columns]
        cells = [[_text(v) for v in source.iloc[:, k].tolist()] for k in range(len(headers))]
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


def _read_file(path: Path) -> _Table:
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


def _split(text: str, delimiter: str, source: str) -> _Table:
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
    table = _table(source, header, [list(c) for c in zip(*rows, strict=True)], lines)
    for row, message in odd:
        table.problem(row, "(row)", message)
    return table


def _table(source: str, headers: list[str], cells: list[list[str]], lines: list[int]) -> _Table:
    if not lines:
        raise InputError(f"{source}: no target rows (only a header, or nothing at all)")
    names = [h.strip() or f"column{k}" for k, h in enumerate(headers, start=1)]
    if twice := sorted({h for h in names if names.count(h) > 1}):
        raise InputError(f"{source}: column name(s) {twice} appear more than once")
    return _Table(source, names, lines, cells)


def _resolve_columns(t: _Table) -> list[int]:
    """Find the known columns (structural problems raise); returns the pass-through ones."""
    normal = [re.sub(r"[\s\-]+", "_", h.lower()) for h in t.headers]
    for name, aliases in _ALIASES.items():
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
            f"column (named one of {', '.join(_ALIASES[lack])})"
        )
    if "ra" not in t.index and "mpc_name" not in t.index:
        seps = [d for d in ";\t|," if len(t.headers) == 1 and d in t.headers[0]]
        hint = f"; separated by {seps[0]!r}? Only ',' (.csv) and tab (.tsv) work" if seps else ""
        raise InputError(
            f"{t.source}: no coordinate columns: need ra and dec (or mpc_name); "
            f"the columns are {t.headers}{hint}"
        )
    return [k for k in range(len(t.headers)) if k not in t.index.values()]


# --- values -------------------------------------------------------------------------------


def _show(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _numbers(texts: Sequence[str]) -> Floats:
    """Vectorized decimal parsing: NaN where a cell is blank or not a plain number."""
    series = pd.to_numeric(pd.Series(texts, dtype=object), errors="coerce")
    return series.to_numpy(dtype=np.float64, copy=True)


def _is_nan_text(text: str) -> bool:
    return text.lower().lstrip("+-") == "nan"


def _names(t: _Table) -> list[str]:
    names = t.cells("name")
    for i, name in enumerate(names):
        if not name:
            names[i] = f"line{t.lines[i]}"
        elif _CONTROL.search(name):
            t.problem(i, "name", f"name {_show(name)} contains a control character")
    return names


def _sexagesimal(text: str, is_ra: bool) -> tuple[str, str]:
    """The text as 'd:m:s' for astropy, or '' and why it is not acceptable."""
    what = "RA" if is_ra else "Dec"
    match = next((m for p in _SEXA[is_ra] if (m := p.fullmatch(text))), None)
    if match is None:
        unit = "sexagesimal hours" if is_ra else "sexagesimal"
        return "", f"{what} {_show(text)} is neither decimal degrees nor {unit} ({_EXAMPLE[is_ra]})"
    sign, whole, minutes, seconds = match.groups()
    if int(minutes) >= 60 or float(seconds) >= 60:
        return "", f"{what} {_show(text)}: minutes and seconds must be below 60"
    if is_ra and (sign == "-" or int(whole) >= 24):
        return "", f"RA {_show(text)}: hours must be in [0, 24) (sexagesimal RA is in hours)"
    return f"{sign}{whole}:{minutes}:{seconds}", ""


def _angles(texts: list[str], is_ra: bool) -> tuple[Floats, dict[int, str]]:
    """Degrees per cell (NaN where blank or bad) and the message for each bad cell."""
    texts = [s.replace("\u2212", "-") for s in texts]  # the minus sign of pasted web pages
    values, errors = _numbers(texts), {}
    what = "RA" if is_ra else "Dec"
    rows, sexa = [], []
    for i in np.flatnonzero(np.isnan(values)).tolist():
        if _is_nan_text(texts[i]):
            errors[i] = f"{what} is NaN"
        elif texts[i]:
            normal, message = _sexagesimal(texts[i], is_ra)
            if normal:
                rows.append(i)
                sexa.append(normal)
            else:
                errors[i] = message
    if sexa:
        values[rows] = Angle(sexa, unit=u.hourangle if is_ra else u.deg).degree
    with np.errstate(invalid="ignore"):
        out = (values < 0) | (values > 360) if is_ra else np.abs(values) >= 90
    for i in np.flatnonzero(out).tolist():
        if np.isinf(values[i]):
            errors[i] = f"{what} {_show(texts[i])} is not a finite number"
        elif is_ra:
            errors[i] = f"RA {_show(texts[i])} is outside 0–360 degrees"
        else:  # the server's radeclist rejects the poles themselves
            errors[i] = f"Dec {_show(texts[i])} must be strictly between -90 and +90 degrees"
    values[list(errors)] = np.nan
    if is_ra:
        values[values == 360] = 0.0  # the same meridian; the server's range is [0, 360)
    return values + 0.0, errors  # + 0.0 turns -0.0 into 0.0


def _mpc_problem(name: str) -> str:
    if len(name) > 300:  # the server's field length
        return "mpc_name is longer than 300 characters"
    if any(c in name for c in "'\";"):
        return f"mpc_name {_show(name)} contains a quote or semicolon (the server refuses them)"
    if _CONTROL.search(name):
        return f"mpc_name {_show(name)} contains a control character"
    return ""


def _positions(t: _Table) -> tuple[Floats, Floats, list[str | None]]:
    ra_text, dec_text, mpc_text = t.cells("ra"), t.cells("dec"), t.cells("mpc_name")
    ra, ra_errors = _angles(ra_text, is_ra=True)
    dec, dec_errors = _angles(dec_text, is_ra=False)
    mpc: list[str | None] = [None] * len(t.lines)
    for i, name in enumerate(mpc_text):
        has_ra, has_dec = bool(ra_text[i]), bool(dec_text[i])
        if name and (has_ra or has_dec):
            t.problem(i, "mpc_name", "give either mpc_name or ra/dec, not both")
        elif name and (problem := _mpc_problem(name)):
            t.problem(i, "mpc_name", problem)
        elif name:
            mpc[i] = name
        elif has_ra != has_dec:
            t.problem(i, "dec" if has_ra else "ra", f"{'Dec' if has_ra else 'RA'} is missing")
        elif not has_ra:
            t.problem(i, "ra" if "ra" in t.index else "mpc_name", "no ra/dec and no mpc_name")
        if i in ra_errors:
            t.problem(i, "ra", ra_errors[i])
        if i in dec_errors:
            t.problem(i, "dec", dec_errors[i])
    return ra, dec, mpc


def _mjds(t: _Table, name: str) -> tuple[Floats, set[int]]:
    """Per-row MJDs (NaN where blank or bad) and the rows whose value is bad."""
    texts, bad = t.cells(name), set[int]()
    values = _numbers(texts)
    for i in np.flatnonzero(~np.isfinite(values)).tolist():
        if not texts[i]:
            continue
        text = _show(texts[i])
        bad.add(i)
        message = f"{name} {text} is not a number (an MJD such as 60000.5)"
        if np.isinf(values[i]) or _is_nan_text(texts[i]):
            message = f"{name} {text} is not a finite number"
        elif m := re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)", texts[i]):
            try:
                mjd = (date(*map(int, m.groups())) - date(1858, 11, 17)).days
                message = f"{name} {text} is a date, not an MJD: write {mjd} for its 0h UT"
            except ValueError:  # not a real date: the plain message is right
                pass
        t.problem(i, name, message)
    with np.errstate(invalid="ignore"):
        out = np.isfinite(values) & ((values < MJD_LOWEST) | (values > MJD_HIGHEST))
    for i in np.flatnonzero(out).tolist():
        value = float(values[i])
        bad.add(i)
        hint = f"; if a JD, the MJD is {value - 2400000.5:.5f}" if 2.44e6 < value < 2.5e6 else ""
        t.problem(
            i, name, f"{name} {value:.10g} is outside [{MJD_LOWEST:g}, {MJD_HIGHEST:g}]{hint}"
        )
    values[list(bad)] = np.nan
    return values, bad


def _windows(t: _Table, lo: float | None, hi: float | None, reduced: bool) -> list[Window]:
    (row_lo, bad_lo), (row_hi, bad_hi) = _mjds(t, "mjd_min"), _mjds(t, "mjd_max")
    eff_lo = np.where(np.isnan(row_lo), np.nan if lo is None else lo, row_lo)
    eff_hi = np.where(np.isnan(row_hi), np.nan if hi is None else hi, row_hi)
    for i in np.flatnonzero(eff_hi <= eff_lo).tolist():
        a, b = float(eff_lo[i]), float(eff_hi[i])
        if i in bad_lo | bad_hi:
            continue  # already reported: one of the two values is unusable
        if np.isnan(row_hi[i]):  # the row's mjd_min against the mjd_max option
            t.problem(i, "mjd_min", f"mjd_min {a:.10g} is not before the mjd_max option {b:.10g}")
        else:
            origin = " (the mjd_min option)" if np.isnan(row_lo[i]) else ""
            t.problem(i, "mjd_max", f"mjd_max {b:.10g} is not after mjd_min {a:.10g}{origin}")
    flags = [reduced] * len(t.lines)
    for i, text in enumerate(t.cells("use_reduced")):
        if text and (flag := _BOOLS.get(text.lower())) is None:
            t.problem(i, "use_reduced", f"use_reduced {_show(text)} is not true/false/yes/no/1/0")
        elif text:
            flags[i] = bool(flag)
    mins = [None if math.isnan(v) else v for v in eff_lo.tolist()]
    maxs = [None if math.isnan(v) else v for v in eff_hi.tolist()]
    return list(zip(mins, maxs, flags, strict=True))


# --- names and duplicates -----------------------------------------------------------------


def _unit_vectors(ra: Floats, dec: Floats) -> Floats:
    a, d = np.radians(ra), np.radians(dec)
    return np.column_stack((np.cos(d) * np.cos(a), np.cos(d) * np.sin(a), np.sin(d)))


def _close(a: Sequence[float], b: Sequence[float]) -> bool:
    return sum((x - y) ** 2 for x, y in zip(a, b, strict=True)) <= _CHORD**2


def _same_query(rows: _Rows, i: int, j: int) -> bool:
    if rows.windows[i] != rows.windows[j]:
        return False
    if rows.mpc[i] is not None or rows.mpc[j] is not None:
        return rows.mpc[i] == rows.mpc[j]
    return _close(*_unit_vectors(rows.ra[[i, j]], rows.dec[[i, j]]).tolist())


def _check_names(t: _Table, rows: _Rows) -> dict[int, int]:
    """Flag a name reused for a different query: outputs are keyed by name.

    Returns row -> the earlier row of the same name asking the same question.
    """
    owner: dict[str, int] = {}
    same: dict[int, int] = {}
    for i, name in enumerate(rows.names):
        j = owner.setdefault(name, i)
        if j == i or i in t.problems:
            continue  # a first use, or a row that is already bad: nothing to compare
        used = f"name {_show(name)} is already used by line {t.lines[j]}"
        if j in t.problems:
            t.problem(i, "name", f"{used}, which has problems")
        elif _same_query(rows, i, j):
            same[i] = j
        else:
            t.problem(i, "name", f"{used} for another position or window; names must differ")
    return same


def _crowded(codes: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """True where another point lies in the same or a neighbouring cell (vectorized)."""
    order = np.argsort(codes)
    cells, counts = np.unique(codes, return_counts=True)
    total = np.zeros(len(codes), dtype=np.int64)
    for offset in _OFFSETS:
        wanted = codes[order] + offset  # sorted needles: searchsorted walks memory in order
        at = np.minimum(np.searchsorted(cells, wanted), len(cells) - 1)
        total[order] += np.where(cells[at] == wanted, counts[at], 0)
    return total > 1  # each point counts itself once


def _representatives(valid: list[int], rows: _Rows, same_name: dict[int, int]) -> dict[int, int]:
    """Map each valid row to the first row asking the same question (itself if none).

    Rows are compared with representatives only, so a chain of near neighbours never merges
    points more than 1" apart; a row repeating an earlier name follows that row.
    """
    mpc, windows = rows.mpc, rows.windows
    pos = [i for i in valid if mpc[i] is None]
    xyz = _unit_vectors(rows.ra[pos], rows.dec[pos])
    # Cubes of side _CELL in 3-D (so RA wrap-around needs no care): points within 1" fall
    # in the same or adjacent cubes. Three 21-bit cube indices pack into one int64.
    keys = np.floor(xyz / _CELL).astype(np.int64) + (1 << 20)
    codes = (keys[:, 0] << 42) | (keys[:, 1] << 21) | keys[:, 2]
    where = {pos[k]: k for k in np.flatnonzero(_crowded(codes)).tolist()} if pos else {}
    rep: dict[int, int] = {}
    grid: dict[tuple[Window, int], list[int]] = {}
    by_mpc: dict[tuple[str, Window], int] = {}
    for i in valid:
        name, k = mpc[i], where.get(i)
        if i in same_name:
            rep[i] = rep[same_name[i]]
        elif name is not None:
            rep[i] = by_mpc.setdefault((name, windows[i]), i)
        elif k is None:
            rep[i] = i  # nothing within reach: the common case needs no grid
        else:
            code, here = int(codes[k]), xyz[k].tolist()
            near = [
                r
                for off in _OFFSETS
                for r in grid.get((windows[i], code + off), ())
                if _close(xyz[r].tolist(), here)
            ]
            rep[i] = pos[min(near)] if near else i
            if not near:
                grid.setdefault((windows[i], code), []).append(k)
    return rep
