"""One request through the throttle mirror, with outages waited out: the client's machinery.

:class:`Sender` takes a slot of the right budget (reads or writes; none for static files),
sends, and settles the slot at the answer (the latest the server can have counted it). A
429 closes the budget and tries again without using an attempt; 5xx and transport errors
go to the :class:`~atlasbatch._http.outage.Outage`, which waits them out; any other answer
outside ``ok`` becomes our exception (:func:`~atlasbatch._http.wire_faults.raise_for`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import httpx

from atlasbatch._config import Settings
from atlasbatch._exceptions import ServerError
from atlasbatch._http.limiter import Priority, SlidingWindow
from atlasbatch._http.outage import Outage
from atlasbatch._http.responses import retry_after_seconds
from atlasbatch._http.wire import Wire
from atlasbatch._http.wire_faults import raise_for, transient_or_uncertain, transport_error

__all__ = ["Sender", "Sleep"]

log = logging.getLogger(__name__)

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]


class Sender:
    """Sends the API's requests within their budgets; owned by one ``AtlasClient``."""

    def __init__(
        self,
        http: Wire,
        *,
        reads: SlidingWindow,
        writes: SlidingWindow,
        outage: Outage,
        settings: Settings,
        sleep: Sleep,
    ) -> None:
        self._http = http
        self._reads = reads
        self._writes = writes
        self._outage = outage
        self._settings = settings
        self._sleep = sleep

    async def call_json(
        self,
        method: str,
        url: str,
        priority: Priority | None,
        *,
        ok: tuple[int, ...] = (200, 201),
        parse: bool = True,
        **kwargs: Any,
    ) -> tuple[httpx.Response, Any]:
        """Send, waiting out outages; the response and, when ``parse``, its JSON body."""

        async def once() -> tuple[httpx.Response, Any]:
            response = await self._send_within_budget(method, url, priority, ok, kwargs)
            return response, self._body_of(method, url, response) if parse else None

        return await self.retrying(once)

    async def call(
        self, method: str, url: str, priority: Priority | None, **kwargs: Any
    ) -> httpx.Response:
        response, _ = await self.call_json(method, url, priority, parse=False, **kwargs)
        return response

    async def retrying(self, once: Callable[[], Awaitable[T]]) -> T:
        settings = self._settings
        return await self._outage.call(
            once,
            attempts=settings.retry_attempts,
            seconds=settings.retry_total_seconds,
            sleep=self._sleep,
        )

    def _body_of(self, method: str, url: str, response: httpx.Response) -> Any:
        """The JSON of a 200/201; a garbled body is a server fault, worth another attempt."""
        if response.status_code not in (200, 201):
            return None
        try:
            return response.json()
        except ValueError:  # cut or not JSON at all (an HTML page from a proxy)
            error = ServerError(
                f"{method} {url}: the answer is not valid JSON",
                status=response.status_code, url=url,
            )  # fmt: skip
            raise transient_or_uncertain(method, error, url) from None

    async def _send_within_budget(
        self,
        method: str,
        url: str,
        priority: Priority | None,
        ok: tuple[int, ...],
        kwargs: dict[str, Any],
    ) -> httpx.Response:
        """Send once per granted slot; a 429 closes the scope and tries again (no attempt used)."""
        window = self._window_for(priority)
        while True:
            permit = await window.acquire(priority) if window and priority is not None else None
            try:
                response = await self._send(method, url, kwargs)
            finally:
                if window is not None and permit is not None:
                    window.settle(permit)  # answered (or failed) by now: arrival was earlier
            if response.status_code == 429 and window is not None and permit is not None:
                wait = window.refused(permit, retry_after=retry_after_seconds(response))
                log.info("%s %s throttled; %s budget closed %.1f s", method, url, window.name, wait)
                continue
            if response.status_code in ok:
                return response
            raise_for(response, method, url)

    def _window_for(self, priority: Priority | None) -> SlidingWindow | None:
        """Reads and writes have separate budgets; static downloads have none."""
        if priority is None:
            return None
        return self._reads if priority is Priority.READ else self._writes

    async def _send(self, method: str, url: str, kwargs: dict[str, Any]) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            raise transport_error(method, url, exc) from None
