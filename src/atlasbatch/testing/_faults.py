"""The outermost ASGI layer: request/status counting and the transport-level faults.

Fault decisions are drawn (under the store lock, from the seeded RNG) when a request arrives:

* ``server_error_rate``: a throttled-API request is answered 500/502/503 at once;
* ``drop_before_commit_rate``: an API POST/DELETE loses its connection before the app runs;
* ``drop_after_commit_rate``: an API POST/DELETE runs, and when its 2xx response is about to
  leave, the connection is aborted instead (the change is committed, the client never hears);
* ``slow_rate``: the response is held back ``slow_seconds`` after the app produced it.

Result truncation, file expiry and lost tasks live where they happen (views and runner).
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._store import Store

__all__ = ["STATS_PATH", "FaultMiddleware"]

STATS_PATH = "/forcedphot/_emulator/stats.json"
_API_PATH = re.compile(r"^/forcedphot/queue(?:\.json|/|/\d+/|/\d+\.json)$")
_ERROR_PAGES = {
    500: "<h1>Server Error (500)</h1>",
    502: (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>502 Proxy '
        "Error</title>\n</head><body>\n<h1>Proxy Error</h1>\n</body></html>\n"
    ),
    503: (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n<title>503 Service '
        "Unavailable</title>\n</head><body>\n<h1>Service Unavailable</h1>\n</body></html>\n"
    ),
}


@dataclass(frozen=True, slots=True)
class _Plan:
    error_status: int | None = None
    drop_before: bool = False
    drop_after: bool = False
    slow_seconds: float = 0.0


async def abort_connection(send: Send, receive: Receive) -> None:
    """Drop the client's TCP connection without sending any response.

    uvicorn's HTTP protocols hand the application ``send`` as a bound method of their
    per-request ``RequestResponseCycle``, which holds the connection's asyncio transport.
    Aborting that transport resets the connection: the client sees a "server disconnected"
    error, exactly what a lost response looks like. A few loop turns let uvicorn's
    ``connection_lost`` run, so it does not complain that the app returned without a response.
    Under a server without that attribute, hang until the client gives up instead.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
        for _ in range(3):
            await asyncio.sleep(0)
        return
    while (await receive())["type"] != "http.disconnect":
        pass


class FaultMiddleware:
    """Counts every request (except the stats endpoint) and injects transport faults."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    def _plan(self, method: str, path: str) -> _Plan:
        store = self.store
        is_api = _API_PATH.match(path) is not None
        commits = is_api and method in ("POST", "DELETE")
        with store.lock:
            faults = store.faults
            if is_api and store.draw(faults.server_error_rate):
                store.stats.faults["server_error"] += 1
                return _Plan(error_status=store.choice((500, 502, 503)))
            if commits and store.draw(faults.drop_before_commit_rate):
                store.stats.faults["drop_before_commit"] += 1
                return _Plan(drop_before=True)
            drop_after = commits and store.draw(faults.drop_after_commit_rate)
            slow = store.draw(faults.slow_rate)
        return _Plan(drop_after=drop_after, slow_seconds=faults.slow_seconds if slow else 0.0)

    def _record(self, method: str, status: int | None) -> None:
        with self.store.lock:
            self.store.stats.record_response(method, status)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == STATS_PATH:
            await self.app(scope, receive, send)
            return
        method = str(scope["method"]).upper()
        plan = self._plan(method, str(scope["path"]))
        if plan.drop_before:
            self._record(method, None)
            await abort_connection(send, receive)
            return
        dropped = False

        async def guarded_send(message: Message) -> None:
            nonlocal dropped
            if dropped:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
                if plan.slow_seconds:
                    await asyncio.sleep(plan.slow_seconds)
                if plan.drop_after and 200 <= status < 300:
                    dropped = True
                    with self.store.lock:
                        self.store.stats.faults["drop_after_commit"] += 1
                    self._record(method, None)
                    await abort_connection(send, receive)
                    return
                self._record(method, status)
            await send(message)

        if plan.error_status is not None:
            page = Response(
                _ERROR_PAGES[plan.error_status], plan.error_status, media_type="text/html"
            )
            await page(scope, receive, guarded_send)
            return
        await self.app(scope, receive, guarded_send)
