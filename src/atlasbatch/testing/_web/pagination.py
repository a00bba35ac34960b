"""DRF's ``CursorPagination`` as the server's ``TaskPagination`` subclass uses it, over a list.

Cursors are DRF's own encoding (base64 of ``o=<offset>&r=1&p=<position>``), positions are the
string value of the first ordering field (``id`` or ``timestamp``), links keep the other query
parameters sorted as DRF's ``replace_query_param`` does, and ``pagefirsttaskposition`` counts
the rows before the page the way ``TaskPagination`` does.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

__all__ = ["InvalidCursorError", "Page", "page_size", "paginate"]

T = TypeVar("T")
DEFAULT_PAGE_SIZE = 6
MAX_PAGE_SIZE = 100
OFFSET_CUTOFF = 1000


class InvalidCursorError(Exception):
    """DRF answers 404 ``{"detail": "Invalid cursor"}``."""


@dataclass(frozen=True, slots=True)
class _Cursor:
    offset: int
    reverse: bool
    position: str | None


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of results and the body fields around it."""

    items: list[T]
    next: str | None
    previous: str | None
    first_position: int
    count: int


def page_size(query: Mapping[str, str]) -> int:
    """``?pagesize=N``: positive integers, clamped to 100; anything else gives the default 6."""
    try:
        value = int(query["pagesize"])
    except (KeyError, ValueError):
        return DEFAULT_PAGE_SIZE
    return min(value, MAX_PAGE_SIZE) if value > 0 else DEFAULT_PAGE_SIZE


def _replace_query(url: str, key: str, value: str | None) -> str:
    scheme, netloc, path, query, fragment = urlsplit(url)
    params = parse_qs(query, keep_blank_values=True)
    if value is None:
        params.pop(key, None)
    else:
        params[key] = [value]
    return urlunsplit(
        (scheme, netloc, path, urlencode(sorted(params.items()), doseq=True), fragment)
    )


def _decode(encoded: str | None) -> _Cursor | None:
    if encoded is None:
        return None
    try:
        text = base64.b64decode(encoded.encode("ascii"), validate=False).decode("ascii")
        tokens = parse_qs(text, keep_blank_values=True)
        offset = int(tokens.get("o", ["0"])[0])
        reverse = bool(int(tokens.get("r", ["0"])[0]))
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidCursorError from None
    if offset < 0:
        raise InvalidCursorError
    position = tokens.get("p", [None])[0]
    return _Cursor(min(offset, OFFSET_CUTOFF), reverse, position)


def _encode(base_url: str, cursor: _Cursor) -> str:
    tokens: dict[str, str] = {}
    if cursor.offset != 0:
        tokens["o"] = str(cursor.offset)
    if cursor.reverse:
        tokens["r"] = "1"
    if cursor.position is not None:
        tokens["p"] = cursor.position
    encoded = base64.b64encode(urlencode(tokens).encode("ascii")).decode("ascii")
    return _replace_query(base_url, "cursor", encoded)


@dataclass(slots=True)
class _Paginator(Generic[T]):
    rows: Sequence[T]  # already sorted in the requested order
    key: Callable[[T], str]  # DRF's str() of the first ordering field
    compare: Callable[[str], float]  # the position as a comparable number (ValueError if bad)
    descending: bool
    size: int
    base_url: str

    def before(self, row: T, position: float, *, inclusive: bool) -> bool:
        """Whether ``row`` sorts before (or at) ``position`` in the requested order."""
        mine = self.compare(self.key(row))
        if mine == position:
            return inclusive
        return mine > position if self.descending else mine < position

    def _count_before(self, position: float, *, inclusive: bool) -> int:
        return sum(1 for row in self.rows if self.before(row, position, inclusive=inclusive))

    def _beyond(self, rows: list[T], position: float, *, reverse: bool) -> list[T]:
        """DRF's ``__lt``/``__gt`` filter: a reverse cursor reads the rows strictly before the
        position, a forward one the rows strictly after it."""
        return [row for row in rows if self.before(row, position, inclusive=not reverse) is reverse]

    def _first_position(
        self, position: float | None, offset: int, *, reverse: bool, page_length: int
    ) -> int:
        """``pagefirsttaskposition``: how many rows come before the page."""
        if reverse:
            # the page ends `offset` rows before the position (or before the end)
            if position is None:
                before = len(self.rows)
            else:
                before = self._count_before(position, inclusive=False)
            return max(0, before - offset - page_length)
        if position is None:
            return offset
        return offset + self._count_before(position, inclusive=True)

    def run(self, cursor: _Cursor | None) -> Page[T]:
        offset, reverse, raw_position = (
            (0, False, None) if cursor is None else (cursor.offset, cursor.reverse, cursor.position)
        )
        position: float | None = None
        if raw_position is not None:
            try:
                position = self.compare(raw_position)
            except ValueError:
                raise InvalidCursorError from None
        ordered = list(reversed(self.rows)) if reverse else list(self.rows)
        if position is not None:
            ordered = self._beyond(ordered, position, reverse=reverse)
        results = ordered[offset : offset + self.size + 1]
        page = results[: self.size]
        first = self._first_position(position, offset, reverse=reverse, page_length=len(page))
        # TaskPagination: a previous page that would start near the top is the top page itself
        previous_is_top = (position is not None or offset > 0) and first <= self.size
        following = self.key(results[-1]) if len(results) > len(page) else None
        if reverse:
            page.reverse()
            has_next, has_previous = position is not None or offset > 0, following is not None
            next_pos, prev_pos = raw_position, following
        else:
            has_next, has_previous = following is not None, position is not None or offset > 0
            next_pos, prev_pos = following, raw_position
        state = _LinkState(cursor, page, has_next, has_previous, next_pos, prev_pos)
        nxt = self._next_link(state) if has_next else None
        prev: str | None
        if has_previous and previous_is_top:
            prev = _replace_query(self.base_url, "cursor", None)
        else:
            prev = self._previous_link(state) if has_previous else None
        return Page(page, nxt, prev, first, len(self.rows))

    def _next_link(self, s: _LinkState[T]) -> str:
        if s.page and s.cursor and s.cursor.reverse and s.cursor.offset is not None:
            compare: str | None = self.key(s.page[-1])
        else:
            compare = s.next_position
        offset, unique = 0, False
        position: str | None = None
        for row in reversed(s.page):
            position = self.key(row)
            if position != compare:
                unique = True
                break
            compare, offset = position, offset + 1
        if s.page and not unique:
            if not s.has_previous:
                offset, position = self.size, None
            elif s.cursor is not None and s.cursor.reverse:
                offset, position = 0, s.previous_position
            else:
                offset = (s.cursor.offset if s.cursor else 0) + self.size
                position = s.previous_position
        if not s.page:
            position = s.next_position
        return _encode(self.base_url, _Cursor(offset, False, position))

    def _previous_link(self, s: _LinkState[T]) -> str:
        if s.page and s.cursor and not s.cursor.reverse and s.cursor.offset is not None:
            compare: str | None = self.key(s.page[0])
        else:
            compare = s.previous_position
        offset, unique = 0, False
        position: str | None = None
        for row in s.page:
            position = self.key(row)
            if position != compare:
                unique = True
                break
            compare, offset = position, offset + 1
        if s.page and not unique:
            if not s.has_next:
                offset, position = self.size, None
            elif s.cursor is not None and s.cursor.reverse:
                offset = s.cursor.offset + self.size
                position = s.next_position
            else:
                offset, position = 0, s.next_position
        if not s.page:
            position = s.previous_position
        return _encode(self.base_url, _Cursor(offset, True, position))


@dataclass(frozen=True, slots=True)
class _LinkState(Generic[T]):
    cursor: _Cursor | None
    page: list[T]
    has_next: bool
    has_previous: bool
    next_position: str | None
    previous_position: str | None


def paginate(
    rows: Sequence[T],
    *,
    key: Callable[[T], str],
    compare: Callable[[str], float],
    descending: bool,
    size: int,
    base_url: str,
    cursor: str | None,
) -> Page[T]:
    """One page of ``rows`` (sorted in the requested order) for the request at ``base_url``."""
    paginator = _Paginator(rows, key, compare, descending, size, base_url)
    return paginator.run(_decode(cursor))
