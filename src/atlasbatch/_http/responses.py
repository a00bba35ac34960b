"""Server replies to records or exceptions: error bodies, Retry-After, the queue-cap text.

The server's 400 bodies are JSON objects whose values are a string, a list of strings or a
nested object (atlas_api.md §5.3); 404s of archived tasks are HTML. All of it is flattened
into one readable sentence and the right exception class.
"""

from __future__ import annotations

import email.utils
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

import httpx

from atlasbatch._exceptions import (
    ApiError,
    AuthenticationError,
    NotFoundError,
    QueueFullError,
    RequestRejectedError,
    ServerError,
    ThrottledError,
)

__all__ = [
    "api_error",
    "flatten_errors",
    "image_child_id",
    "image_refusal",
    "retry_after_seconds",
]

_AVAILABLE_IN = re.compile(r"available in (\d+) (second|minute)", re.IGNORECASE)
_QUEUE_NUMBERS = re.compile(r"\((\d+) queued \+ (\d+) requested > (\d+)\)")
_QUEUE_OLD = re.compile(r"\((\d+) >= (\d+)\)")


def flatten_errors(body: Any) -> dict[str, list[str]]:
    """``{"field": "text" | [texts] | {nested}}`` → ``{"field": [texts]}``."""
    if not isinstance(body, dict):
        return {"detail": [str(body)]} if body not in (None, "") else {}
    flat: dict[str, list[str]] = {}
    for key, value in body.items():
        if isinstance(value, dict):
            for texts in flatten_errors(value).values():
                flat.setdefault(str(key), []).extend(texts)
        elif isinstance(value, list):
            flat[str(key)] = [str(item) for item in value]
        else:
            flat[str(key)] = [str(value)]
    return flat


def retry_after_seconds(response: httpx.Response) -> float | None:
    """The wait a 429 asks for, or None when it says nothing usable.

    The header as seconds or as an HTTP date; an odd header (negative, nan, empty, garbled)
    falls back to the number in the detail text. Not bounded here: the throttle mirror
    knows the window and caps the wait by it.
    """
    header = response.headers.get("retry-after", "").strip()
    seconds = _header_seconds(header)
    if seconds is None:
        seconds = _header_date_seconds(header, response.headers.get("date"))
    if seconds is not None:
        return seconds
    match = _AVAILABLE_IN.search(response.text)
    if match is None:
        return None
    scale = 60.0 if match.group(2).lower() == "minute" else 1.0
    return float(match.group(1)) * scale


def _header_seconds(header: str) -> float | None:
    """``Retry-After: N`` (delay-seconds); None unless a finite number >= 0."""
    try:
        seconds = float(header)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def _header_date_seconds(header: str, date: str | None) -> float | None:
    """``Retry-After: <HTTP-date>`` as seconds from the response's own ``Date``.

    Measured against the server's ``Date`` when it sent one, so a skewed local clock does
    not matter; else against ours. A date in the past is as odd as a negative number.
    """
    until = _http_date(header)
    if until is None:
        return None
    sent = _http_date(date or "") or datetime.now(UTC)
    seconds = (until - sent).total_seconds()
    return seconds if seconds >= 0 else None


def _http_date(text: str) -> datetime | None:
    """An RFC 9110 date, timezone-aware (a date without one is taken as UTC)."""
    if not text:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text.strip()
        return text[:300] if text else response.reason_phrase


def _sentence(fields: dict[str, list[str]]) -> str:
    parts = []
    for key, texts in fields.items():
        joined = " ".join(texts)
        parts.append(joined if key in ("detail", "non_field_errors") else f"{key}: {joined}")
    return "; ".join(parts)


def _scrub(text: str, authorization: str | None) -> str:
    """Never carry our own credentials on: a page may echo the request's headers."""
    if not authorization:
        return text
    secret = authorization.split(None, 1)[-1]
    return text.replace(authorization, "<hidden>").replace(secret, "<hidden>")


def _queue_full(message: str, detail: str, *, url: str, status: int) -> QueueFullError:
    match = _QUEUE_NUMBERS.search(detail)
    if match is not None:
        queued, requested, cap = (int(g) for g in match.groups())
        return QueueFullError(
            message, status=status, url=url, detail=detail,
            queued=queued, requested=requested, cap=cap,
        )  # fmt: skip
    old = _QUEUE_OLD.search(detail)
    queued_old, cap_old = (int(old.group(1)), int(old.group(2))) if old else (None, None)
    return QueueFullError(
        message, status=status, url=url, detail=detail,
        queued=queued_old, requested=None, cap=cap_old,
    )  # fmt: skip


def api_error(response: httpx.Response, *, action: str) -> ApiError:
    """The exception for an error ``response``; ``action`` says what we were doing."""
    status = response.status_code
    url = str(response.request.url)
    fields = flatten_errors(_body(response))
    detail = _scrub(_sentence(fields), response.request.headers.get("authorization"))
    message = f"{action} failed: HTTP {status} from {url}: {detail}"
    if status == 429:
        return ThrottledError(
            message, status=status, url=url, detail=detail,
            retry_after=retry_after_seconds(response),
        )  # fmt: skip
    if status in (401, 403):
        return AuthenticationError(message, status=status, url=url, detail=detail)
    if status == 404:
        return NotFoundError(message, status=status, url=url, detail=detail)
    if status >= 500:
        return ServerError(message, status=status, url=url, detail=detail)
    if "too many queued tasks" in detail:
        return _queue_full(message, detail, url=url, status=status)
    if status == 400:
        return RequestRejectedError(message, status=status, url=url, detail=detail, fields=fields)
    return ApiError(message, status=status, url=url, detail=detail)


def image_child_id(location: str) -> int | None:
    """The image request's id in a requestimages redirect (``/queue/?newids=<id>``); None
    when the server made nothing."""
    value = httpx.URL(location).params.get("newids", "")
    return int(value) if value.isdigit() else None


def image_refusal(answer: str) -> str:
    """The server's words for a refused image request, as one line."""
    try:
        texts = [t for ts in flatten_errors(json.loads(answer)).values() for t in ts]
    except ValueError:
        texts = [answer.strip()[:200]] if answer.strip() else []
    return "; ".join(texts) or "the server made no image request"
