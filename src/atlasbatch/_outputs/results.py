"""ATLAS result files: parse them by header name (and, from :mod:`.atomic`, write them).

The format is described in ``atlas_api.md`` §12: one header line starting with ``###``,
then whitespace-separated rows. Columns are located by *name*, because real files have
been seen with 19 columns and with 20 (``PA_DEG`` between ``mag5sig`` and ``Sky``).
``write_atomic`` and ``AtomicFile`` are re-exported here, where the outputs import them.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from atlasbatch._exceptions import ResultFileError
from atlasbatch._outputs.atomic import AtomicFile, write_atomic

if TYPE_CHECKING:  # imported where a frame is built: writing files needs no pandas
    import pandas as pd

__all__ = [
    "FLOAT_COLUMNS",
    "INT_COLUMNS",
    "SERVER_COLUMNS",
    "STRING_COLUMNS",
    "AtomicFile",
    "parse_result",
    "write_atomic",
]

#: Every column the server is known to write, in its order (``PA_DEG`` is optional).
SERVER_COLUMNS: tuple[str, ...] = (
    "MJD", "m", "dm", "uJy", "duJy", "F", "err", "chi/N", "RA", "Dec", "x", "y",
    "maj", "min", "phi", "apfit", "mag5sig", "PA_DEG", "Sky", "Obs",
)  # fmt: skip
INT_COLUMNS = frozenset({"uJy", "duJy", "err"})
STRING_COLUMNS = frozenset({"F", "Obs"})
FLOAT_COLUMNS = frozenset(SERVER_COLUMNS) - INT_COLUMNS - STRING_COLUMNS

# Without these the file is useless to every later stage (magnitudes, plots, merging).
_REQUIRED = ("MJD", "uJy", "duJy", "F")
# The header of §12 without PA_DEG: what an empty file stands for.
_DEFAULT_HEADER = tuple(c for c in SERVER_COLUMNS if c != "PA_DEG")


def parse_result(text: str, *, source: str = "result") -> pd.DataFrame:
    """Parse an ATLAS forced-photometry result file into a DataFrame, by header names.

    Rows keep file order (MJD is not unique). Floats are ``float64``, ``uJy``/``duJy``/``err``
    nullable ``Int64``, ``F``/``Obs`` ``string``; unknown extra columns are kept (``float64``
    when every value is numeric, else ``string``). Empty text or a header alone gives an
    empty frame with typed columns: the caller treats it as "no data".

    A short row in the middle of the file is kept with missing values, as the server's own
    parser does. A short *last* row is treated as a download cut mid-line and rejected.

    Raises:
        ResultFileError: not an ATLAS file (HTML, JSON, ...), a row with more fields than
            the header, a truncated last row, or a value that does not fit its column.
            The message names ``source`` and the line number.
    """
    import pandas as pd  # noqa: PLC0415 - see the import block

    text = text.removeprefix("\ufeff")
    if not text.strip():
        return _empty_frame(_DEFAULT_HEADER)
    lines = text.splitlines()
    names = header_names(lines[0], source=source)
    row_lines = _check_rows(lines, len(names), source=source)
    if not row_lines:
        return _empty_frame(names)
    body = "\n".join([" ".join(names), *lines[1:]])
    try:
        return _read_typed(body, names)
    except (ValueError, TypeError):
        pass  # a value that does not fit its column: find it below, to name its line
    raw = _read(body, dtype=str)
    return pd.DataFrame(
        {name: _convert(raw[name], name, row_lines, source=source) for name in names}
    )


def _read(body: str, *, dtype: type[str] | Mapping[str, str]) -> pd.DataFrame:
    import pandas as pd  # noqa: PLC0415

    # QUOTE_NONE: a stray '"' must stay a character, not swallow the following lines.
    return pd.read_csv(io.StringIO(body), sep=r"\s+", dtype=dtype, quoting=csv.QUOTE_NONE)


def _read_typed(body: str, names: Sequence[str]) -> pd.DataFrame:
    """The fast path: let the C parser convert the known columns directly (3x faster)."""
    frame = _read(body, dtype={name: _dtype_of(name) for name in names if name in SERVER_COLUMNS})
    for name in names:
        if name not in SERVER_COLUMNS:  # unknown column: float if the parser saw numbers
            numeric = frame[name].dtype.kind in "iuf"
            frame[name] = frame[name].astype("float64" if numeric else "string")
    return frame


def header_names(first: str, *, source: str) -> list[str]:
    """The column names of the ``###`` header line, or a clear error."""
    if not first.startswith("###"):
        raise not_atlas(first, source)
    names = first[3:].split()
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ResultFileError(f"{source}: line 1: repeated header columns {duplicated}")
    missing = [n for n in _REQUIRED if n not in names]
    if missing:
        raise ResultFileError(f"{source}: line 1: header lacks required columns {missing}")
    return names


def not_atlas(first: str, source: str) -> ResultFileError:
    """The error for a first line that is no ATLAS header (an HTML page, other text)."""
    kind = "HTML" if first.lstrip().startswith("<") else "text"
    return ResultFileError(
        f"{source}: line 1: not an ATLAS forced-photometry file ({kind} without a '###' "
        f"header): {first[:80]!r}"
    )


def _check_rows(lines: Sequence[str], width: int, *, source: str) -> list[int]:
    """Check field counts; return the 1-based line number of every data row, in order.

    pandas would silently pad a short last row, so truncation must be caught here.
    """
    row_lines: list[int] = []
    last_count = width
    for number, line in enumerate(lines[1:], start=2):
        count = len(line.split())
        if count == 0:
            continue  # read_csv skips blank lines too, so numbering stays aligned
        if count > width:
            raise ResultFileError(
                f"{source}: line {number}: {count} fields but the header has {width}"
            )
        row_lines.append(number)
        last_count = count
    if last_count < width:
        raise ResultFileError(
            f"{source}: line {row_lines[-1]}: truncated file, last row has {last_count} "
            f"of {width} fields"
        )
    return row_lines


def _convert(raw: pd.Series, name: str, row_lines: Sequence[int], *, source: str) -> pd.Series:
    """Convert one column of strings to its dtype, naming the first bad value's line."""
    import pandas as pd  # noqa: PLC0415

    if name in STRING_COLUMNS:
        return raw.astype("string")
    numbers = pd.to_numeric(raw, errors="coerce")
    bad = numbers.isna() & raw.notna()
    if name not in FLOAT_COLUMNS | INT_COLUMNS:  # an unknown column: numeric if it can be
        return raw.astype("string") if bad.any() else numbers.astype("float64")
    if bad.any():
        _raise_bad_value(raw, bad, name, row_lines, source=source)
    if name in INT_COLUMNS:
        fractional = numbers.notna() & (numbers % 1 != 0)
        if fractional.any():
            _raise_bad_value(raw, fractional, name, row_lines, source=source)
        return numbers.astype("Int64")
    return numbers.astype("float64")


def _raise_bad_value(
    raw: pd.Series, bad: pd.Series, name: str, row_lines: Sequence[int], *, source: str
) -> None:
    position = int(bad.to_numpy().argmax())
    raise ResultFileError(
        f"{source}: line {row_lines[position]}: column {name!r} has the invalid value "
        f"{raw.iloc[position]!r}"
    )


def _empty_frame(names: Sequence[str]) -> pd.DataFrame:
    """A frame with no rows but the columns and dtypes a full file would have."""
    import pandas as pd  # noqa: PLC0415

    return pd.DataFrame({name: pd.Series([], dtype=_dtype_of(name)) for name in names})


def _dtype_of(name: str) -> str:
    if name in INT_COLUMNS:
        return "Int64"
    if name in STRING_COLUMNS:
        return "string"
    return "float64"
