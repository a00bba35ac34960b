"""Which faults to inject, how often, and on which requests (frozen, keyword-only)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, get_args

from ._rates import check_fraction, check_optional_seconds

__all__ = ["ENDPOINTS", "METHODS", "Endpoint", "FaultName", "Faults"]

Endpoint = Literal["queue", "task", "requestimages", "results", "token", "other"]
"""``queue``: ``/queue/`` (list, create); ``task``: ``/queue/<id>/``; ``requestimages``:
``/queue/<id>/requestimages/``; ``results``: static result files (zips and previews too) and
``/queue/<id>/data.txt``, ``images.zip``, ``preview.jpg``; ``token``: ``/api-token-auth/``;
``other``: anything else."""

FaultName = Literal[
    "server_error",
    "drop_before_commit",
    "drop_after_commit",
    "html_error",
    "garbage_json",
    "slow",
    "truncate",
]

ENDPOINTS: frozenset[str] = frozenset(get_args(Endpoint))
METHODS = frozenset({"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True, kw_only=True, slots=True)
class Faults:
    """Faults to inject; every one is off by default and drawn from the emulator's seeded RNG.

    * ``server_error_rate``: fraction of requests answered 500/502/503 before anything else
      happens (not counted by the throttle, nothing changes).
    * ``drop_before_commit_rate`` / ``drop_after_commit_rate``: fraction of requests whose TCP
      connection is aborted without any response, before the change was made resp. after it
      was committed (the "lost response"; "after" fires only on a 2xx answer).
    * ``html_error_rate``: fraction of requests that reach the app (a write commits, a refusal
      is counted) but whose answer the proxy replaces with Apache's HTML 502/503/504 page, as
      when mod_wsgi gives up on a slow backend.
    * ``garbage_json_rate``: fraction of 200 answers whose body is cut in half
      (``Content-Length`` matches the cut: a well-formed HTTP response, unparseable JSON).
    * ``slow_rate`` / ``slow_seconds``: fraction of requests whose response is held back.
    * ``truncate_rate``: fraction of result downloads that stop in the middle of a line.
    * ``expire_after``: seconds after a task finishes when its result file disappears while the
      task stays (``result_url`` then 404s and turns null in the task JSON).
    * ``lose_rate``: fraction of task attempts the runner loses: the task stays unfinished, is
      queued again and re-run, and its ``attempt_count`` grows.

    Which requests the request-level faults (all but ``expire_after`` and ``lose_rate``) may
    hit: with ``methods`` and ``endpoints`` both ``None``, each keeps its natural scope:

    ==================================  ============  =====================
    fault                               methods       endpoints
    ==================================  ============  =====================
    server_error, html_error            any           queue, task, requestimages
    drop_before/after_commit            POST, DELETE  queue, task, requestimages
    garbage_json                        GET           queue, task, requestimages
    slow                                any           any
    truncate                            GET           results
    ==================================  ============  =====================

    Setting either one *replaces* every natural scope: the faults then hit exactly the
    requests whose method is in ``methods`` (``None``: any) and whose endpoint (see
    :data:`Endpoint`) is in ``endpoints`` (``None``: any). So
    ``Faults(server_error_rate=1.0, methods=frozenset({"DELETE"}))`` fails every DELETE and
    nothing else, and ``Faults(server_error_rate=0.5, endpoints=frozenset({"results"}))``
    fails half the result downloads and no API call.
    """

    server_error_rate: float = 0.0
    drop_before_commit_rate: float = 0.0
    drop_after_commit_rate: float = 0.0
    slow_rate: float = 0.0
    slow_seconds: float = 1.0
    truncate_rate: float = 0.0
    expire_after: float | None = None
    lose_rate: float = 0.0
    html_error_rate: float = 0.0
    garbage_json_rate: float = 0.0
    methods: frozenset[str] | None = None
    endpoints: frozenset[str] | None = None

    def __post_init__(self) -> None:
        for name in (
            "server_error_rate",
            "drop_before_commit_rate",
            "drop_after_commit_rate",
            "slow_rate",
            "truncate_rate",
            "lose_rate",
            "html_error_rate",
            "garbage_json_rate",
        ):
            check_fraction(name, getattr(self, name))
        if self.lose_rate >= 1.0:
            msg = "lose_rate must be below 1, or no task would ever finish"
            raise ValueError(msg)
        check_optional_seconds("slow_seconds", self.slow_seconds)
        check_optional_seconds("expire_after", self.expire_after)
        if self.methods is not None:
            methods = frozenset(str(method).upper() for method in self.methods)
            _check_names("methods", methods, METHODS)
            object.__setattr__(self, "methods", methods)  # normalised: "delete" -> "DELETE"
        if self.endpoints is not None:
            _check_names("endpoints", frozenset(self.endpoints), ENDPOINTS)
            object.__setattr__(self, "endpoints", frozenset(self.endpoints))

    def scaled(self, factor: float) -> Faults:
        """A copy with ``slow_seconds`` and ``expire_after`` multiplied by ``factor``."""
        expire = None if self.expire_after is None else self.expire_after * factor
        return replace(self, slow_seconds=self.slow_seconds * factor, expire_after=expire)


def _check_names(what: str, given: frozenset[str], known: frozenset[str]) -> None:
    unknown = sorted(given - known)
    if unknown:
        msg = f"unknown {what} {unknown}: expected some of {sorted(known)}"
        raise ValueError(msg)
