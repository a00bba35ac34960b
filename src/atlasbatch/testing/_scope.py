"""Which endpoint a path is, and whether a fault may hit a request (see :class:`Faults`)."""

from __future__ import annotations

import re
from typing import Final

from ._fault_settings import Endpoint, FaultName, Faults

__all__ = ["classify", "fault_applies"]

_PATTERNS: Final[tuple[tuple[re.Pattern[str], Endpoint], ...]] = (
    (re.compile(r"^/forcedphot/queue(?:/|\.json)$"), "queue"),
    (re.compile(r"^/forcedphot/queue/\d+(?:/|\.json)$"), "task"),
    (re.compile(r"^/forcedphot/queue/\d+/(?:data\.txt|images\.zip|preview\.jpg)$"), "results"),
    (re.compile(r"^/forcedphot/queue/\d+/requestimages/$"), "requestimages"),
    (re.compile(r"^/forcedphot/static/results/[^/]+$"), "results"),
    (re.compile(r"^/forcedphot/api-token-auth/$"), "token"),
)

_API: Final = frozenset({"queue", "task", "requestimages"})
_COMMITS: Final = frozenset({"POST", "DELETE"})
_GET: Final = frozenset({"GET"})

_NATURAL: Final[dict[FaultName, tuple[frozenset[str] | None, frozenset[str] | None]]] = {
    "server_error": (None, _API),
    "html_error": (None, _API),
    "drop_before_commit": (_COMMITS, _API),
    "drop_after_commit": (_COMMITS, _API),
    "garbage_json": (_GET, _API),
    "slow": (None, None),
    "truncate": (_GET, frozenset({"results"})),
}
"""Each fault's scope when ``Faults.methods`` and ``Faults.endpoints`` are both None."""


def classify(path: str) -> Endpoint:
    """The endpoint a request path belongs to."""
    for pattern, endpoint in _PATTERNS:
        if pattern.match(path):
            return endpoint
    return "other"


def fault_applies(faults: Faults, name: FaultName, method: str, endpoint: Endpoint) -> bool:
    """Whether fault ``name`` may hit a ``method`` request to ``endpoint``."""
    if faults.methods is None and faults.endpoints is None:
        methods, endpoints = _NATURAL[name]
    else:
        methods, endpoints = faults.methods, faults.endpoints
    return (methods is None or method in methods) and (endpoints is None or endpoint in endpoints)
