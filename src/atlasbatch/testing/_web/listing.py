"""``GET /queue/``: the ``started`` filter, ``ordering``, and the paginated body."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from starlette.requests import Request

from .._serializer.fields import JsonValue
from .._state.store import Store
from .._state.tasks import Task, User
from .._web.api import ApiError, detail_response
from .._web.pagination import InvalidCursorError, page_size, paginate

__all__ = ["list_tasks", "ordering", "started_filter"]

_TRUE = {"true", "True", "1"}
_FALSE = {"false", "False", "0"}
_ORDERINGS = {"id", "-id", "timestamp", "-timestamp"}


def started_filter(value: str | None) -> bool | None:
    """``?started=``: true/True/1, false/False/0; anything else is ignored (all tasks)."""
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    return None


def ordering(value: str | None) -> str:
    """``?ordering=``: the first valid term of id/-id/timestamp/-timestamp, else ``-id``."""
    for term in (value or "").split(","):
        if term.strip() in _ORDERINGS:
            return term.strip()
    return "-id"


def _timestamp_key(task: Task) -> str:
    # DRF's position is str() of the model value: "2026-11-24 06:17:16+00:00"
    return str(dt.datetime.fromtimestamp(task.timestamp, tz=dt.UTC))


def _id_key(task: Task) -> str:
    return str(task.id)


def _parse_timestamp(position: str) -> float:
    return dt.datetime.fromisoformat(position).timestamp()


def list_tasks(store: Store, user: User, request: Request) -> JsonValue:
    """The list body: ``next``, ``previous``, ``pagefirsttaskposition``, ``taskcount``, results.

    Raises :class:`ApiError` (404 ``Invalid cursor``) for a cursor that does not decode.
    """
    query = request.query_params
    tasks = store.user_tasks(user, started=started_filter(query.get("started")))
    order = ordering(query.get("ordering"))
    descending = order.startswith("-")
    key: Callable[[Task], str]
    compare: Callable[[str], float]
    if order.lstrip("-") == "timestamp":
        tasks.sort(key=lambda t: (t.timestamp, t.id), reverse=descending)
        key, compare = _timestamp_key, _parse_timestamp
    else:
        tasks.sort(key=lambda t: t.id, reverse=descending)
        key, compare = _id_key, float
    base_url = store.base_url.rsplit("/forcedphot", 1)[0] + str(request.url.path)
    if request.url.query:
        base_url += f"?{request.url.query}"
    try:
        page = paginate(
            tasks,
            key=key,
            compare=compare,
            descending=descending,
            size=page_size(query),
            base_url=base_url,
            cursor=query.get("cursor"),
        )
    except InvalidCursorError:
        raise ApiError(detail_response(404, "Invalid cursor")) from None
    return {
        "next": page.next,
        "previous": page.previous,
        "pagefirsttaskposition": page.first_position,
        "taskcount": page.count,
        "results": [store.serialize(task, user) for task in page.items],
    }
