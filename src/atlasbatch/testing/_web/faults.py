"""The outermost ASGI layer: the request log, outages and the transport-level faults.

Every request but the stats endpoint is counted and logged (arrival time on the emulator's
clock, method, path, status, fault). During an outage (configured windows or
:meth:`Emulator.outage`) every request gets Apache's HTML 503 page or a dropped connection
and nothing behind it runs. Otherwise fault decisions are drawn (under the store lock, from
the seeded RNG) when a request arrives, for the faults whose scope covers it (see
:class:`~atlasbatch.testing.Faults`):

* ``server_error_rate``: answered 500/502/503 at once;
* ``drop_before_commit_rate``: the connection is lost before the app runs;
* ``drop_after_commit_rate``: the app runs, and when its 2xx response (or the 302 of an image
  request) is about to leave, the connection is aborted instead (the change is committed,
  the client never hears);
* ``html_error_rate``: the app runs (a write commits), then the proxy replaces its answer
  with Apache's HTML page for a 502/503/504;
* ``garbage_json_rate``: a 200 answer leaves with its body cut in half;
* ``slow_rate``: the response is held back ``slow_seconds`` after the app produced it.

Result truncation, file expiry and lost tasks live where they happen (views and runner).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .._fault_settings import Endpoint, FaultName
from .._scope import classify, fault_applies
from .._state.outage import OUTAGE_PAGE
from .._state.requestlog import RequestRecord
from .._state.store import Store

__all__ = ["STATS_PATH", "FaultMiddleware", "garble_json"]

STATS_PATH = "/forcedphot/_emulator/stats.json"


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
class _Arrival:
    """A request as it came in: where on the emulator clock, what, and any outage then."""

    time: float
    method: str
    path: str
    query: str
    endpoint: Endpoint
    outage: str | None


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
        self,
        owner: FaultMiddleware,
        plan: _Plan,
        arrival: _Arrival,
        connection: tuple[Scope, Receive, Send],
    ) -> None:
        self.owner, self.plan, self.arrival = owner, plan, arrival
        self.scope, self.receive, self.send = connection
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
        slow = "slow" if plan.slow_seconds else None
        if plan.slow_seconds:
            await asyncio.sleep(plan.slow_seconds)
        if plan.html_status is not None:
            self.done = True
            self.owner.finish(self.arrival, plan.html_status, "html_error", count=True)
            await _error_page(plan.html_status)(self.scope, self.receive, self.send)
        elif plan.drop_after and (200 <= status < 300 or status == 302):  # 302: requestimages
            self.done = True
            self.owner.finish(self.arrival, None, "drop_after_commit", count=True)
            await abort_connection(self.send, self.receive)
        elif plan.garble and status == 200:
            self.held = message
        else:
            fault = "server_error" if plan.error_status is not None else slow
            self.owner.finish(self.arrival, status, fault)
            await self.send(message)

    async def _hold_body(self, message: Message) -> None:
        self.body += bytes(message.get("body", b""))
        if message.get("more_body", False):
            return
        start, self.held = self.held, None
        assert start is not None
        body = garble_json(self.body)
        fault = "garbage_json" if body != self.body else None
        self.owner.finish(self.arrival, 200, fault, count=fault is not None)
        headers = [(k, v) for k, v in start["headers"] if bytes(k).lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await self.send({**start, "headers": headers})
        await self.send({"type": "http.response.body", "body": body, "more_body": False})


def _error_page(status: int) -> Response:
    return Response(_ERROR_PAGES[status], status, media_type="text/html")


class FaultMiddleware:
    """Counts and logs every request (except the stats endpoint); outages; transport faults."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    def _arrive(self, scope: Scope) -> _Arrival:
        path = str(scope["path"])
        query = bytes(scope.get("query_string", b"")).decode("latin-1")
        with self.store.lock:
            clock = self.store.clock
            elapsed = clock.elapsed(clock.now())
            outage = self.store.outage.mode(elapsed)
        method = str(scope["method"]).upper()
        return _Arrival(elapsed, method, path, query, classify(path), outage)

    def _plan(self, arrival: _Arrival) -> _Plan:
        store, method, endpoint = self.store, arrival.method, arrival.endpoint
        with store.lock:
            faults = store.faults

            def drawn(name: FaultName, rate: float) -> bool:
                return fault_applies(faults, name, method, endpoint) and store.draw(rate)

            if drawn("server_error", faults.server_error_rate):
                store.stats.faults["server_error"] += 1
                return _Plan(error_status=store.choice((500, 502, 503)))
            if drawn("drop_before_commit", faults.drop_before_commit_rate):
                store.stats.faults["drop_before_commit"] += 1
                return _Plan(drop_before=True)
            html = drawn("html_error", faults.html_error_rate)
            html_status = store.choice((502, 503, 504)) if html else None
            drop_after = not html and drawn("drop_after_commit", faults.drop_after_commit_rate)
            garble = drawn("garbage_json", faults.garbage_json_rate)
            slow = drawn("slow", faults.slow_rate)
        return _Plan(
            drop_after=drop_after,
            html_status=html_status,
            garble=garble,
            slow_seconds=faults.slow_seconds if slow else 0.0,
        )

    def finish(
        self, arrival: _Arrival, status: int | None, fault: str | None, *, count: bool = False
    ) -> None:
        """Count and log one answered (or dropped: ``status`` None) request."""
        record = RequestRecord(
            arrival.time, arrival.method, arrival.path, arrival.query, status, fault
        )
        with self.store.lock:
            self.store.stats.record_response(arrival.method, status)
            self.store.requests.add(record)
            if count and fault is not None:
                self.store.stats.faults[fault] += 1

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] == STATS_PATH:
            await self.app(scope, receive, send)
            return
        arrival = self._arrive(scope)
        if arrival.outage is not None:
            await self._outage(arrival, scope, receive, send)
            return
        plan = self._plan(arrival)
        if plan.drop_before:
            self.finish(arrival, None, "drop_before_commit")
            await abort_connection(send, receive)
            return
        guarded = _GuardedSend(self, plan, arrival, (scope, receive, send))
        if plan.error_status is not None:
            await _error_page(plan.error_status)(scope, receive, guarded)
            return
        await self.app(scope, receive, guarded)

    async def _outage(self, arrival: _Arrival, scope: Scope, receive: Receive, send: Send) -> None:
        """Nothing behind the front end runs: a 503 page or a dropped connection."""
        if arrival.outage == "drop":
            self.finish(arrival, None, "outage_drop", count=True)
            await abort_connection(send, receive)
            return
        self.finish(arrival, 503, "outage_503", count=True)
        page = Response(OUTAGE_PAGE, 503, media_type="text/html")
        await page(scope, receive, send)
