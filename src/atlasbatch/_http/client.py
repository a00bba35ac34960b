"""The HTTP boundary: typed calls to the API, each within the server's limits.

Every request of a run goes through :class:`AtlasClient`; its :class:`~.sending.Sender`
takes the budget slot, waits out 429s and outages, and turns answers into records or
:mod:`atlasbatch._exceptions`, so httpx errors never leave ``_http/``. 429s are not retry
attempts (the mirror waits them out); 5xx and transport errors are waited out through the
shared :class:`~atlasbatch._http.outage.Outage` (one probe at a time, full-jitter backoff),
by default for as long as it takes. A POST is never retried blindly, because a POST whose
answer was lost may have queued its tasks: it raises :class:`SubmissionUncertainError` and
the caller reconciles. Faults on our side of the wire (a rejected TLS certificate, a header
httpx refuses to send) are permanent: :class:`ConnectionSetupError`, never retried.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import anyio
import httpx
from aiolimiter import AsyncLimiter

from atlasbatch._config import Settings
from atlasbatch._exceptions import (
    SubmissionUncertainError,
)
from atlasbatch._http.base_url import check_base_url
from atlasbatch._http.budget_store import shared_budget
from atlasbatch._http.connections import http_wires
from atlasbatch._http.credentials import check_token
from atlasbatch._http.limiter import Priority, SlidingWindow
from atlasbatch._http.outage import Outage
from atlasbatch._http.sending import Sender, Sleep
from atlasbatch._http.streaming import INLINE_BYTES, Body, stream_body
from atlasbatch._models import Target

__all__ = ["AtlasClient", "ListPage"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
# A relative path made of plain segments ("queue/123/"): joined to the base by appending.
_PLAIN_PATH = re.compile(r"[\w-]+(?:/[\w-]+)*/?")


@dataclass(frozen=True, slots=True)
class ListPage:
    """One page of ``GET /queue/``; ``etag`` is what to send as If-None-Match next time."""

    tasks: list[Json]
    next_url: str | None
    etag: str | None
    count: int


class AtlasClient:
    """Typed calls to the forced-photometry API, within the server's limits.

    Use as an async context manager. ``transport`` lets tests or notebooks inject an httpx
    transport; TLS verification is always on and cannot be turned off from here.
    """

    def __init__(
        self,
        *,
        token: str,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        token = check_token(token)  # before anything: a bad token is a local, permanent fault
        self.settings = settings or Settings()
        self.base = check_base_url(self.settings.base_url)
        text = str(self.base)  # "scheme://host[:port]/path/": its origin, and the prefix of
        self._origin = text[: text.index("/", len(self.base.scheme) + 3) + 1]  # every API URL
        self._prefix = None if self.base.query or self.base.fragment else text
        margin = self.settings.window_margin
        # one budget with every atlasbatch process of this account: the server counts per user
        budget = shared_budget(str(self.base), token=token)
        self.writes = SlidingWindow(
            self.settings.write_rate, name="write", margin=margin, store=budget
        )
        self.reads = SlidingWindow(
            self.settings.read_rate, name="read", margin=margin, store=budget
        )
        self._sleep = sleep
        self.outage = Outage(max_wait=self.settings.retry_max_wait, sleep=sleep)
        # the API's calls and the result files, each with a pool as wide as its work
        self._http, self._files = http_wires(token, self.settings, transport)
        self._sender = Sender(
            self._http, reads=self.reads, writes=self.writes, outage=self.outage,
            settings=self.settings, sleep=sleep,
        )  # fmt: skip
        # Result files are static and unthrottled; a leaky bucket keeps us gentle anyway.
        self._download_pace = AsyncLimiter(self.settings.downloads_per_second, 1.0)
        self.downloads = 0

    def __repr__(self) -> str:
        return f"AtlasClient(base={str(self.base)!r})"

    async def __aenter__(self) -> AtlasClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._http.aclose()
        finally:
            if self._files is not self._http:
                await self._files.aclose()

    def url(self, path: str) -> str:
        """An API URL below the base, always with the trailing slash the server wants."""
        if self._prefix is not None and _PLAIN_PATH.fullmatch(path):
            return self._prefix + path  # what join gives for such a path, at 1/1000 the cost
        return str(self.base.join(path))

    # --- the calls -------------------------------------------------------------------

    async def submit(self, targets: Sequence[Target], *, comment: str) -> list[Json]:
        """POST one radeclist batch (≤100 targets sharing one window); the tasks, in order."""
        first = targets[0]
        body: Json = {
            "radeclist": "\n".join(t.radec_line() for t in targets),
            "mjd_min": first.mjd_min,  # explicit null: the whole history, not the last 30 days
            "mjd_max": first.mjd_max,
            "use_reduced": first.use_reduced,
            "send_email": False,
            "comment": comment,
            **first.motion_fields(),  # a batch shares its motion too (Target.window)
        }
        _, created = await self._sender.call_json(
            "POST", self.url("queue/"), Priority.SUBMIT, json=body
        )
        tasks = created if isinstance(created, list) else [created]
        if len(tasks) != len(targets):
            raise SubmissionUncertainError(
                f"server created {len(tasks)} tasks for {len(targets)} targets",
                url=self.url("queue/"),
            )
        return [cast(Json, task) for task in tasks]

    async def list_page(
        self,
        *,
        started: bool | None = None,
        url: str | None = None,
        etag: str | None = None,
        pagesize: int = 100,
    ) -> ListPage | None:
        """One page of the caller's tasks, newest first; None when unchanged (304)."""
        if url is None:
            params = {"pagesize": str(pagesize)}
            if started is not None:
                params["started"] = "true" if started else "false"
            url = str(httpx.URL(self.url("queue/"), params=params))
        else:
            url = self._rebase(url)
        headers = {"If-None-Match": etag} if etag else {}
        response, body = await self._sender.call_json(
            "GET", url, Priority.READ, headers=headers, ok=(200, 304)
        )
        if response.status_code == 304:
            return None
        return ListPage(
            tasks=list(body.get("results", [])),
            next_url=body.get("next"),
            etag=response.headers.get("etag") or etag,
            count=int(body.get("taskcount", 0)),
        )

    async def iter_tasks(self, *, started: bool | None = None) -> AsyncIterator[Json]:
        """Every task of the caller, walking all pages (bounded by the server's count)."""
        url: str | None = None
        pages = 0
        while True:
            page = await self.list_page(started=started, url=url)
            if page is None:  # cannot happen without If-None-Match; be safe
                return
            for task in page.tasks:
                yield task
            pages += 1
            url = page.next_url
            if url is None or pages > page.count // 100 + 2:
                return

    async def task(self, task_id: int) -> Json | None:
        """One task's JSON, or None when the server no longer has it (404)."""
        url = self.url(f"queue/{task_id}/")
        response, body = await self._sender.call_json("GET", url, Priority.READ, ok=(200, 404))
        return None if response.status_code == 404 else cast(Json, body)

    async def download(self, result_url: str, dest: Path) -> int:
        """Stream a file (static, not throttled) into ``dest``; its size in bytes.

        Never holds the file in memory; refuses one above ``Settings.max_result_bytes``
        (:class:`ResultTooLargeError`, ``dest`` removed). NotFoundError when it is gone.
        """
        body = await self.download_body(result_url, dest, inline=0)  # every byte on disk
        if body.path is None:  # an empty body: nothing was written, yet the file is expected
            await anyio.Path(dest).write_bytes(b"")
        return body.size

    async def download_body(
        self, result_url: str, spill: Path, *, inline: int = INLINE_BYTES
    ) -> Body:
        """A file (static, not throttled): in memory up to ``inline`` bytes, else in ``spill``.

        Never holds more than ``inline`` bytes; refuses a file above
        ``Settings.max_result_bytes`` (:class:`ResultTooLargeError`, nothing kept).
        NotFoundError when it is gone.
        """
        url = self._rebase(result_url)
        limit = self.settings.max_result_bytes
        async with self._download_pace:
            body = await self._sender.retrying(
                lambda: stream_body(self._files, url, spill, limit=limit, inline=inline)
            )
        self.downloads += 1
        return body

    async def request_images(self, task_id: int) -> tuple[int, str]:
        """``POST /queue/<id>/requestimages/`` (not throttled): the status and, for the 302
        that means success, its Location (``/queue/?newids=<child id>``), else the body.

        403, 404 and 429 (five image requests live) are answers for the caller to read; a
        lost answer raises :class:`SubmissionUncertainError`, as any POST.
        """
        url = self.url(f"queue/{task_id}/requestimages/")
        response = await self._sender.call("POST", url, None, ok=(302, 403, 404, 429))
        if response.status_code == 302:
            return 302, response.headers.get("location", "")
        return response.status_code, response.text

    async def delete(self, task_id: int) -> bool:
        """DELETE a task; False when it was already gone (404), which is just as good."""
        url = self.url(f"queue/{task_id}/")
        response = await self._sender.call("DELETE", url, Priority.DELETE, ok=(204, 200, 404))
        return response.status_code != 404

    # --- machinery -------------------------------------------------------------------

    def _rebase(self, url: str) -> str:
        """Keep every request on our base's origin.

        Production answers absolute URLs on its public host whatever host was asked; a
        server reached another way (a tunnel, the emulator) is asked for the same path.
        """
        if url.startswith(self._origin):  # the usual case, seen without parsing the URL
            return url
        parsed = httpx.URL(url)
        base = self.base
        if (parsed.scheme, parsed.host, parsed.port) == (base.scheme, base.host, base.port):
            return url
        return str(self.base.copy_with(path=parsed.path, query=parsed.query or None))
