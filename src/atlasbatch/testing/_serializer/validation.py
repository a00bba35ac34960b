"""Validation of one submitted task, as the real ``ForcePhotTaskSerializer`` does it.

Field errors come first (all of them, in the serializer's field order); only a body without
field errors reaches the object-level rules (target given, ``mjd_max`` sane). Message texts and
error shapes are the server's own: lists for DRF field errors, nested dicts for the errors that
the serializer's ``validate_<field>`` methods raise as dicts (``mpc_name``, ``callback_url``).
"""

from __future__ import annotations

from collections.abc import Mapping

from .._serializer.fields import (
    MISSING,
    FieldError,
    FieldSpec,
    FieldValue,
    JsonValue,
    callback_url_problem,
    get_value,
)

__all__ = ["FIELDS", "MPC_NAME_WHITESPACE", "BadRequestError", "validate_mpc_name", "validate_task"]

MPC_NAME_WHITESPACE = " \t\n\r\v\f\u00a0"

FIELDS: dict[str, FieldSpec] = {
    "mpc_name": FieldSpec("char", allow_blank=True, max_length=300),
    "ra": FieldSpec("float"),
    "dec": FieldSpec("float"),
    "mjd_min": FieldSpec("float"),
    "mjd_max": FieldSpec("float"),
    "radec_epoch_year": FieldSpec("decimal"),
    "propermotion_ra": FieldSpec("float"),
    "propermotion_dec": FieldSpec("float"),
    "use_reduced": FieldSpec("bool", allow_null=False),
    "comment": FieldSpec("char", allow_blank=True, max_length=300),
    "send_email": FieldSpec("bool", allow_null=False),
    "callback_url": FieldSpec("url", allow_blank=True, max_length=500),
    "request_type": FieldSpec("choice", allow_null=False, choices=("FP", "IMGZIP", "SSOSTACK")),
}
"""The writable fields, in the serializer's order (which is the order of error keys)."""


class BadRequestError(Exception):
    """A 400 answer; ``body`` is the JSON the server sends."""

    def __init__(self, body: JsonValue) -> None:
        super().__init__(body)
        self.body = body


def validate_mpc_name(value: str, *, prefix: str = "", field: str = "mpc_name") -> str:
    """The serializer's ``validate_mpc_name``: strip, then refuse quotes and semicolons."""
    value = value.strip(MPC_NAME_WHITESPACE)
    if any(char in "'\";" for char in value):
        raise FieldError({field: f"{prefix}Invalid mpc_name. May not contain quotes or semicolons"})
    return value


def _field_hook(name: str, value: FieldValue) -> FieldValue:
    if name == "mpc_name" and isinstance(value, str):
        return validate_mpc_name(value)
    if name == "callback_url" and isinstance(value, str):
        if value == "":
            return None
        problem = callback_url_problem(value)
        if problem is not None:
            raise FieldError({"callback_url": problem})
    return value


def _parse_fields(
    data: Mapping[str, object], *, is_form: bool, partial: bool
) -> dict[str, FieldValue]:
    attrs: dict[str, FieldValue] = {}
    errors: dict[str, JsonValue] = {}
    for name, spec in FIELDS.items():
        raw = get_value(data, name, spec, is_form=is_form, partial=partial)
        if raw is MISSING:
            continue
        try:
            attrs[name] = _field_hook(name, spec.parse(raw))
        except FieldError as exc:
            errors[name] = exc.detail
    if errors:
        raise BadRequestError(errors)
    return attrs


def _non_field(message: str) -> BadRequestError:
    return BadRequestError({"non_field_errors": [message]})


def validate_task(
    data: Mapping[str, object],
    *,
    is_form: bool,
    mjd_min_default: float,
    partial: bool = False,
    instance: Mapping[str, FieldValue] | None = None,
) -> dict[str, FieldValue]:
    """Validate one task body; return the submitted fields (defaults are the caller's job).

    Raises :class:`BadRequestError` with the server's exact 400 body.
    """
    attrs = _parse_fields(data, is_form=is_form, partial=partial)

    def submitted(name: str, default: FieldValue = None) -> FieldValue:
        if name in attrs:
            return attrs[name]
        if partial and instance is not None:
            return instance.get(name, default)
        return default

    request_type = submitted("request_type")
    if request_type == "IMGZIP" and instance is None:
        raise _non_field("IMGZIP requests must have a parent_task_id set to an FP task.")
    ra_missing = submitted("ra") in (None, "")
    dec_missing = submitted("dec") in (None, "")
    if submitted("mpc_name"):
        if not ra_missing or not dec_missing:
            raise BadRequestError(
                {"mpc_name": ["mpc_name was given but RA and Dec were not empty."]}
            )
        if request_type == "SSOSTACK" and (
            "propermotion_ra" in attrs or "propermotion_dec" in attrs
        ):
            raise _non_field("Proper motion cannot be used for SSO image stack requests.")
    elif request_type == "SSOSTACK":
        raise _non_field("Image stacking only works on MPC objects.")
    elif ra_missing and dec_missing:
        raise _non_field("Either an mpc_name or (ra, dec) must be specified.")
    elif dec_missing:
        raise BadRequestError({"dec": ["ra was set but dec is missing."]})
    elif ra_missing:
        raise BadRequestError({"ra": ["dec was set but ra is missing."]})

    mjd_max = submitted("mjd_max")
    if isinstance(mjd_max, float):
        if mjd_max <= 0:
            raise BadRequestError({"mjd_max": ["mjd_max must be a positive MJD."]})
        mjd_min = submitted("mjd_min", default=mjd_min_default)
        if isinstance(mjd_min, float) and not mjd_max > mjd_min:
            message = f"mjd_max must be greater than mjd_min ({mjd_min} was applied)."
            raise BadRequestError({"mjd_max": [message]})
    return attrs
