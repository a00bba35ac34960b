"""The outermost ASGI layer: request/status counting and the transport-level faults.

Fault decisions are drawn (under the store lock, from the seeded RNG) when a request arrives:

* ``server_error_rate``: a throttled-API request is answered 500/502/503 at once;
* ``drop_before_commit_rate``: an API POST/DELETE loses its connection before the app runs;
* ``drop_after_commit_rate``: an API POST/DELETE runs, and when its 2xx response is about to
  leave, the connection is aborted instead (the change is committed, the client never hears);
* ``html_error_rate``: an API request runs (a write commits), then the proxy replaces its
  answer with Apache's HTML page for a 502/503/504;
* ``garbage_json_rate``: an API GET's 200 answer leaves with its JSON body cut in half;
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

__all__ = ["STATS_PATH", "FaultMiddleware", "garble_json"]

STATS_PATH = "/forcedphot/_emulator/stats.json"
_API_PATH = re.compile(r"^/forcedphot/queue(?:\.json|/|/\d+/|/\d+\.json)$")


def _apache_page(status: int, title: str, text: str) -> str:
    return (
        '<!DOCTYPE HTML PUBLIC "-//IETF//DTD HTML 2.0//EN">\n<html><head>\n'
        f"<title>{status} {title}</title>\n</head><body>\n<h1>{text}</h1>\n</body></html>\n"
    )


_ERROR_PAGES = {
    500: "<h1>Server Error (500)</h1>",
    502: _apache_page(502, "Proxy Error", "Proxy Error"),
    503: _apache_page(503, "Service Unavailable", "Service Unavailable"),
    504: _apache_page(504, "Gateway Timeout", "Gateway Timeout"),
}


@dataclass(frozen=True, slots=True)
class _Plan:
    error_status: int | None = None
    drop_before: bool = False
    drop_after: bool = False
    html_status: int | None = None
    garble: bool = False
    slow_seconds: float = 0.0


def garble_json(body: bytes) -> bytes:
    """The first half of a JSON body: never valid JSON again (an empty body stays empty)."""
    return body[: len(body) // 2] if len(body) > 1 else body


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


class _GuardedSend:
    """The app's ``send``, passed through the plan: slowed, dropped, replaced or garbled."""

    def __init__(
        self, owner: FaultMiddleware, plan: _Plan, scope: Scope, receive: Receive, send: Send
    ) -> None:
        self.owner, self.plan, self.scope = owner, plan, scope
        self.method = str(scope["method"]).upper()
        self.receive, self.send = receive, send
        self.done = False
        self.held: Message | None = None
        self.body = b""

    async def __call__(self, message: Message) -> None:
        if self.done:
            return
        if message["type"] == "http.response.start":
            await self._start(message)
        elif self.held is not None and message["type"] == "http.response.body":
            await self._hold_body(message)
        else:
            await self.send(message)

    async def _start(self, message: Message) -> None:
        plan, status = self.plan, int(message["status"])
        if plan.slow_seconds:
            await asyncio.sleep(plan.slow_seconds)
        if plan.html_status is not None:
            self.done = True
            self.owner.count_fault("html_error")
            self.owner.record(self.method, plan.html_status)
            await _error_page(plan.html_status)(self.scope, self.receive, self.send)
        elif plan.drop_after and 200 <= status < 300:
            self.done = True
            self.owner.count_fault("drop_after_commit")
            self.owner.record(self.method, None)
            await abort_connection(self.send, self.receive)
        elif plan.garble and status == 200:
            self.held = message
        else:
            self.owner.record(self.method, status)
            await self.send(message)

    async def _hold_body(self, message: Message) -> None:
        self.body += bytes(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, self.held = self.held, None
        assert start is not None
        body = garble_json(self.body)
        if body != self.body:
            self.owner.count_fault("garbage_json")
        headers = [(k, v) for k, v in start["headers"] if bytes(k).lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        self.owner.record(self.method, 200)
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


def _error_page(status: int) -> Response:
    return Response(_ERROR_PAGES[status], status, media_type="text/html")


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
            html = is_api and store.draw(faults.html_error_rate)
            html_status = store.choice((502, 503, 504)) if html else None
            drop_after = not html and commits and store.draw(faults.drop_after_commit_rate)
            garble = is_api and method == "GET" and store.draw(faults.garbage_json_rate)
            slow = store.draw(faults.slow_rate)
        return _Plan(
            drop_after=drop_after,
            html_status=html_status,
            garble=garble,
            slow_seconds=faults.slow_seconds if slow else 0.0,
        )

    def record(self, method: str, status: int | None) -> None:
        """Count one request and its status (None: dropped without a response)."""
        with self.store.lock:
            self.store.stats.record_response(method, status)

    def count_fault(self, name: str) -> None:
        """Count one fault that fired."""
        with self.store.lock:
            self.store.stats.faults[name] += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == STATS_PATH:
            await self.app(scope, receive, send)
            return
        method = str(scope["method"]).upper()
        plan = self._plan(method, str(scope["path"]))
        if plan.drop_before:
            self.record(method, None)
            await abort_connection(send, receive)
            return
        guarded = _GuardedSend(self, plan, scope, receive, send)
        if plan.error_status is not None:
            await _error_page(plan.error_status)(scope, receive, guarded)
            return
        await self.app(scope, receive, guarded)
