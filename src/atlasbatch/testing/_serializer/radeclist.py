"""The ``radeclist`` multi-target parser (``splitradeclist``) and its coordinate conversions.

The real server converts with ``astrocalc``'s ``unit_conversion``; this module reproduces its
rules exactly rather than using a general sexagesimal parser (such as astropy's ``Angle``), so
that the same inputs are accepted and rejected: a decimal RA in [0, 360] or Dec strictly inside
(-90, 90) is taken as is; anything else must match astrocalc's regular expressions (RA in
*hours*, at most 23), and the result is rounded to the input's precision the way astrocalc does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from .._serializer.fields import FieldError, FieldValue
from .._serializer.validation import BadRequestError, validate_mpc_name

__all__ = ["MAX_LINES", "dec_to_degrees", "ra_to_degrees", "split_radeclist"]

MAX_LINES = 100

_RA_RE = re.compile(r"^(\+?(\d|[0-1]\d|2[0-3]))\D+([0-5]\d)\D+([0-6]?\d(\.\d*?)?)(s)?\s*?$")
_DEC_RE = re.compile(r"^([\+\-]?(\d|[0-8]\d))\D+([0-5]\d)\D+([0-6]?\d(\.\d+)?)$")

Row = dict[str, object]


class CoordinateError(ValueError):
    """astrocalc's IOError: the value is neither decimal degrees nor parsable sexagesimal."""


def _as_float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _decimal_places(number: float) -> int:
    return len(repr(number).split(".")[-1])


def ra_to_degrees(value: object) -> float:
    """astrocalc ``ra_sexegesimal_to_decimal``: ``12:34:56.7`` (hours) -> ``188.73625``."""
    number = _as_float(value)
    if number is not None and 0.0 <= number <= 360.0:
        return number
    text = str(value).strip()
    match = _RA_RE.match(text)
    if match is None:
        msg = (
            "could not convert ra to decimal degrees, could not parse sexegesimal input. "
            f"Original value was `{text}`"
        )
        raise CoordinateError(msg)
    hours, minutes, seconds = (float(match.group(i)) for i in (1, 3, 4))
    seconds15 = seconds * 15.0
    degrees = abs(hours) * 15.0 + minutes * 15.0 / 60.0 + seconds15 / 3600.0
    precision = _decimal_places(seconds15) + 5
    return float(f"{degrees:0.{precision}f}")


def dec_to_degrees(value: object) -> float:
    """astrocalc ``dec_sexegesimal_to_decimal``: ``-12:30:00`` -> ``-12.5``."""
    number = _as_float(value)
    if number is not None and -90.0 < number < 90.0:
        return number
    text = str(value).strip()
    match = _DEC_RE.match(text)
    if match is None:
        msg = (
            "could not convert dec to decimal degrees, could not parse sexegesimal input. "
            f"Original value was `{text}`"
        )
        raise CoordinateError(msg)
    sign = -1.0 if match.group(1).startswith("-") else 1.0
    degrees, minutes, seconds = (float(match.group(i)) for i in (1, 3, 4))
    value_deg = (abs(degrees) + minutes / 60.0 + seconds / 3600.0) * sign
    precision = _decimal_places(seconds) + 4
    return float(f"{value_deg:0.{precision}f}")


def _radeclist_error(message: str) -> BadRequestError:
    return BadRequestError({"radeclist": message})


def _split_columns(line: str) -> list[str]:
    if "," in line:
        return line.split(",")
    tokens = line.split()
    if len(tokens) == 6:  # '00 52 20.21 +56 34 03.9'
        return [" ".join(tokens[:3]), " ".join(tokens[3:6])]
    return tokens


def _explicit_target(data: Mapping[str, object]) -> Row | None:
    if data.get("ra") in (None, "") or data.get("dec") in (None, ""):
        return None
    row = dict(data)
    try:
        row["ra"] = ra_to_degrees(row["ra"])
        row["dec"] = dec_to_degrees(row["dec"])
    except CoordinateError as err:
        raise BadRequestError({"ra": f"Could not parse RA/Dec: {err}"}) from err
    del row["radeclist"]
    return row


def _mpc_row(data: Mapping[str, object], line: str, index: int) -> Row:
    name = line[4:].strip()
    if not name:
        raise _radeclist_error(f"Error on line {index}: MPC name is blank")
    try:
        validate_mpc_name(name, prefix=f"Error on line {index}: ", field="radeclist")
    except FieldError as exc:
        raise BadRequestError(exc.detail) from exc
    row = dict(data)
    row.update(mpc_name=name, ra=None, dec=None)
    return row


def _coordinate_row(data: Mapping[str, object], line: str, index: int) -> Row | None:
    columns = _split_columns(line)
    if not columns:
        return None
    if len(columns) < 2:
        raise _radeclist_error(
            f"Error on line {index}: Could not find two columns. Separate RA and Dec by a comma "
            "or a space. For MPC object names, start the line with 'mpc ', e.g., 'mpc Makemake'"
        )
    row = dict(data)
    try:
        row["ra"] = ra_to_degrees(columns[0])
        row["dec"] = dec_to_degrees(columns[1])
    except CoordinateError as err:
        raise _radeclist_error(f"Error on line {index}: {err}") from err
    return row


def split_radeclist(
    data: Mapping[str, object], validate_row: Callable[[Row], dict[str, FieldValue]]
) -> list[dict[str, FieldValue]]:
    """Split a body with ``radeclist`` into validated single-target rows (``splitradeclist``).

    ``validate_row`` is the single-target serializer; each row is validated as soon as it is
    read, so the first bad row answers with its own 400 in the normal field shape.
    """
    text = data["radeclist"]
    if not isinstance(text, str):
        raise _radeclist_error(
            "radeclist must be a string of newline-separated coordinates or MPC names"
        )
    rows: list[dict[str, FieldValue]] = []
    explicit = _explicit_target(data)
    if explicit is not None:
        rows.append(validate_row(explicit))
    lines = [line.strip() for line in text.splitlines()]
    count = sum(1 for line in lines if line)
    if count > MAX_LINES:
        raise _radeclist_error(f"Number of lines ({count}) is above the limit of {MAX_LINES}")
    for index, line in enumerate(lines, 1):
        if line[:4] in ("mpc_", "MPC_", "mpc ", "MPC "):
            rows.append(validate_row(_mpc_row(data, line, index)))
            continue
        row = _coordinate_row(data, line, index)
        if row is not None:
            row.pop("radeclist", None)
            rows.append(validate_row(row))
    if not rows:
        raise _radeclist_error("No coordinates or MPC object names were given.")
    return rows
