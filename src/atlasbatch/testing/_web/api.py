"""What Django REST Framework does around every API view: negotiation, auth, throttle, parsing.

The order is DRF's ``APIView.initial``: format negotiation (404 for an unknown format),
authentication (401 for a bad token, even on public URLs), permission (401 for an anonymous
write), throttle (429, write or read scope). Requests refused before the throttle are not
counted by it; everything after it (400, 403 on an object, 404) is.
"""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import json
from collections.abc import Mapping
from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from .._serializer.fields import JsonValue
from .._state.store import Store
from .._state.tasks import User
from .._state.throttle import throttled_detail

__all__ = [
    "APACHE_404_HTML",
    "DJANGO_404_HTML",
    "WRITE_METHODS",
    "ApiError",
    "authenticate",
    "check_format",
    "detail_response",
    "html_response",
    "json_response",
    "parse_body",
    "prelude",
]

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
WWW_AUTHENTICATE = 'Basic realm="api"'
DJANGO_404_HTML = (
    '<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n</head>\n<body>\n'
    "  <h1>Not Found</h1><p>The requested resource was not found on this server.</p>\n"
    "</body>\n</html>\n"
)
APACHE_404_HTML = (
    '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>404 Not Found'
    "</title>\n</head><body>\n<h1>Not Found</h1>\n<p>The requested URL was not found on this "
    "server.</p>\n</body></html>\n"
)


def json_response(
    body: JsonValue, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    """DRF's compact JSON rendering (``application/json``, no charset, UTF-8 kept as is)."""
    content = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    merged = {"Vary": "Accept", **(headers or {})}
    return Response(content, status, headers=merged, media_type="application/json")


def detail_response(status: int, text: str, headers: Mapping[str, str] | None = None) -> Response:
    """``{"detail": text}`` with a status."""
    return json_response({"detail": text}, status, headers)


def html_response(body: str, status: int) -> Response:
    """A plain HTML page (404s outside DRF)."""
    return Response(body, status, media_type="text/html")


class ApiError(Exception):
    """Stop processing and answer with ``response``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status_code)
        self.response = response


def _unauthorized(text: str) -> ApiError:
    return ApiError(detail_response(401, text, {"WWW-Authenticate": WWW_AUTHENTICATE}))


def check_format(request: Request, suffix: str | None) -> None:
    """Format negotiation: only JSON is rendered; any other requested format is a 404."""
    wanted = suffix or request.query_params.get("format")
    if wanted is not None and wanted != "json":
        raise ApiError(detail_response(404, "Not found."))


def _basic_user(parts: list[str], store: Store) -> User:
    if len(parts) == 1:
        raise _unauthorized("Invalid basic header. No credentials provided.")
    if len(parts) > 2:
        raise _unauthorized("Invalid basic header. Credentials string should not contain spaces.")
    try:
        decoded = base64.b64decode(parts[1], validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise _unauthorized(
            "Invalid basic header. Credentials not correctly base64 encoded."
        ) from None
    username, _, password = decoded.partition(":")
    user = store.user_for_password(username, password)
    if user is None:
        raise _unauthorized("Invalid username/password.")
    return user


def _token_user(parts: list[str], store: Store) -> User:
    if len(parts) == 1:
        raise _unauthorized("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise _unauthorized("Invalid token header. Token string should not contain spaces.")
    user = store.user_for_token(parts[1])
    if user is None:
        raise _unauthorized("Invalid token.")
    return user


def authenticate(request: Request, store: Store) -> User | None:
    """Basic, then Token (keyword case-insensitive); None for anonymous."""
    parts = request.headers.get("authorization", "").split()
    if not parts:
        return None
    keyword = parts[0].lower()
    if keyword == "basic":
        return _basic_user(parts, store)
    if keyword == "token":
        return _token_user(parts, store)
    return None


def _client_ident(request: Request, user: User | None) -> object:
    if user is not None:
        return user.id
    return ("ip", request.client.host if request.client else "unknown")


def prelude(request: Request, store: Store, *, suffix: str | None) -> tuple[User | None, float]:
    """Negotiate, authenticate, check the view permission and throttle; call with the lock held."""
    check_format(request, suffix)
    now = store.advance()
    user = authenticate(request, store)
    method = request.method.upper()
    if method in WRITE_METHODS and user is None:
        raise _unauthorized("Authentication credentials were not provided.")
    scope = "write" if method in WRITE_METHODS else "read" if method in READ_METHODS else None
    if scope is not None:
        decision = store.throttle(scope, _client_ident(request, user), now)
        if not decision.accepted:
            retry_after = decision.retry_after
            headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
            raise ApiError(detail_response(429, throttled_detail(retry_after), headers))
    return user, now


def _multipart(content_type: str, body: bytes) -> dict[str, object]:
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: dict[str, object] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            payload = part.get_payload(decode=True)
            fields[name] = payload.decode("utf-8") if isinstance(payload, bytes) else ""
    return fields


def parse_body(request: Request, body: bytes) -> tuple[object, bool]:
    """``request.data`` and whether it came from a form (HTML input rules apply)."""
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if not body or not media_type:
        return ({}, media_type in ("application/x-www-form-urlencoded", "multipart/form-data"))
    if media_type == "application/json" or media_type.endswith("+json"):
        try:
            return json.loads(body.decode("utf-8"), parse_constant=_reject_constant), False
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(detail_response(400, f"JSON parse error - {exc}")) from None
    if media_type == "application/x-www-form-urlencoded":
        pairs = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        return {key: values[-1] for key, values in pairs.items()}, True
    if media_type == "multipart/form-data":
        return _multipart(content_type, body), True
    raise ApiError(detail_response(415, f'Unsupported media type "{content_type}" in request.'))


def _reject_constant(name: str) -> object:
    msg = "Out of range float values are not permitted."
    raise ValueError(msg)
