"""Field parsers that behave like the DRF fields of the real ``ForcePhotTaskSerializer``.

Each parser turns one submitted value into a Python value or raises :class:`FieldError` with
DRF's exact message. ``get_value`` reproduces DRF's rules for absent and empty values, which
differ between form bodies (HTML input: an absent checkbox is false, ``""`` means null) and
JSON bodies.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TypeAlias
from urllib.parse import urlsplit

__all__ = [
    "MISSING",
    "FieldError",
    "FieldSpec",
    "FieldValue",
    "JsonValue",
    "get_value",
]

JsonValue: TypeAlias = "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None"
FieldValue: TypeAlias = bool | float | str | Decimal | None


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()
"""Sentinel: the field was not submitted (DRF's ``empty``)."""


class FieldError(Exception):
    """One field's validation failure; ``detail`` is what DRF puts under the field name."""

    def __init__(self, detail: JsonValue) -> None:
        super().__init__(detail)
        self.detail = detail


_TRUE = {"t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON", "1"}
_FALSE = {"f", "F", "n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF", "0"}
_URL_RE = re.compile(r"^(?:[a-z0-9.+-]*)://[^\s/?#]+(?:[/?#]\S*)?$", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """One writable field: its kind and DRF flags."""

    kind: str  # float | bool | char | decimal | choice | url
    allow_null: bool = True
    allow_blank: bool = False
    max_length: int | None = None
    choices: tuple[str, ...] = ()

    def parse(self, value: object) -> FieldValue:
        """DRF ``run_validation`` for a value that is present (not ``MISSING``)."""
        if value is None:
            if not self.allow_null:
                raise FieldError(["This field may not be null."])
            return None
        parser = getattr(self, f"_parse_{self.kind}")
        result: FieldValue = parser(value)
        return result

    def _parse_float(self, value: object) -> float:
        if isinstance(value, str) and len(value) > 1000:
            raise FieldError(["String value too large."])
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise FieldError(["A valid number is required."]) from None
        if not math.isfinite(number):
            raise FieldError(["A valid number is required."])
        return number

    def _parse_bool(self, value: object) -> bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value in _TRUE:
                return True
            if value in _FALSE:
                return False
        elif isinstance(value, int | float) and value in (0, 1):
            return value == 1
        raise FieldError(["Must be a valid boolean."])

    def _parse_char(self, value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise FieldError(["Not a valid string."])
        text = str(value).strip()
        if text == "" and not self.allow_blank:
            raise FieldError(["This field may not be blank."])
        if "\x00" in text:
            raise FieldError(["Null characters are not allowed."])
        if self.max_length is not None and len(text) > self.max_length:
            raise FieldError([f"Ensure this field has no more than {self.max_length} characters."])
        return text

    def _parse_url(self, value: object) -> str:
        text = self._parse_char(value)
        if text and not _URL_RE.match(text):
            raise FieldError(["Enter a valid URL."])
        return text

    def _parse_choice(self, value: object) -> str:
        text = str(value)
        if text not in self.choices:
            raise FieldError([f'"{text}" is not a valid choice.'])
        return text

    def _parse_decimal(self, value: object) -> Decimal:
        text = str(value).strip()
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise FieldError(["A valid number is required."]) from None
        if not number.is_finite():
            raise FieldError(["A valid number is required."])
        _check_decimal_precision(number, max_digits=7, max_places=1)
        return number.quantize(Decimal("0.1"))


def _check_decimal_precision(number: Decimal, *, max_digits: int, max_places: int) -> None:
    _, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    if exponent >= 0:
        total, places = len(digits) + exponent, 0
        whole = total
    elif len(digits) > -exponent:
        total, places = len(digits), -exponent
        whole = total - places
    else:
        places = -exponent
        total, whole = places, 0
    if total > max_digits:
        raise FieldError([f"Ensure that there are no more than {max_digits} digits in total."])
    if places > max_places:
        raise FieldError([f"Ensure that there are no more than {max_places} decimal places."])
    whole_max = max_digits - max_places
    if whole > whole_max:
        raise FieldError(
            [f"Ensure that there are no more than {whole_max} digits before the decimal point."]
        )


def get_value(
    data: Mapping[str, object], name: str, spec: FieldSpec, *, is_form: bool, partial: bool
) -> object:
    """DRF ``Field.get_value``: the submitted value, ``None`` for null, or ``MISSING``."""
    if not is_form:
        return data.get(name, MISSING)
    if name not in data:
        if partial:
            return MISSING
        return False if spec.kind == "bool" else MISSING
    value = data[name]
    if value == "" and spec.allow_null:
        return "" if spec.allow_blank else None
    if value == "":
        return "" if spec.allow_blank else MISSING
    return value


def callback_url_problem(url: str) -> str | None:
    """The real server's callback policy, without DNS (the emulator never leaves loopback)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return "callback_url must use https"
    if parts.username is not None or parts.password is not None:
        return "callback_url must not contain credentials"
    host = (parts.hostname or "").lower()
    if not host:
        return "callback_url must have a hostname"
    if host == "localhost" or host.endswith(".localhost"):
        return "callback_url must resolve to a public address"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    return None if address.is_global else "callback_url must resolve to a public address"
