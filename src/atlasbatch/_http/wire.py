"""Requests handed straight to an httpx transport: the API's calls at two thirds of the CPU.

``httpx.AsyncClient.send`` wraps every request in machinery this client never uses: an
auth generator, a redirect loop (ours are off), cookie extraction (the API sets none),
event hooks and a byte-stream wrapper. On a loopback server that was a third of the CPU
of a request (0.79 → 0.54 ms measured, issue 12), and a run makes two to three requests
per target. :class:`Wire` builds the :class:`httpx.Request` itself (headers, token,
timeouts) and gives it to the transport (``handle_async_request``, the documented
transport API), so connection pooling, TLS, HTTP/1.1 and the error types stay httpx's.

A proxy from the environment (``HTTPS_PROXY``, ``ALL_PROXY`` …, with ``NO_PROXY``) is
httpx's to route: when one is set, requests go through an ``AsyncClient`` that owns the
routing, as before; CPU hardly matters behind a proxy.
"""

from __future__ import annotations

import ssl
import urllib.request
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx

__all__ = ["Wire", "proxy_configured"]


def proxy_configured() -> bool:
    """True when the environment names an HTTP(S) proxy (httpx would route through it)."""
    proxies = urllib.request.getproxies()
    return any(proxies.get(scheme) for scheme in ("http", "https", "all"))


class Wire:
    """One pool of connections to the server: requests in, :class:`httpx.Response` out.

    ``headers`` go with every request (the token among them: httpx's ``Headers`` repr
    hides ``Authorization``). A given ``transport`` (tests, notebooks) is used as it is;
    else one is made with ``connections`` connections at most, verifying TLS with
    ``verify``.
    """

    def __init__(
        self,
        headers: Mapping[str, str],
        *,
        timeout: httpx.Timeout,
        connections: int,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.headers = httpx.Headers(headers)
        self._extensions = {"timeout": timeout.as_dict()}
        limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
        self._router: httpx.AsyncClient | None = None
        if transport is None and proxy_configured():
            self._router = httpx.AsyncClient(
                timeout=timeout, limits=limits, verify=verify, follow_redirects=False
            )
        self._transport = transport or httpx.AsyncHTTPTransport(verify=verify, limits=limits)

    def __repr__(self) -> str:
        return f"Wire(headers={self.headers!r})"

    def build(
        self, method: str, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Request:
        """The request, with the wire's headers (``headers`` added or overriding)."""
        merged = self.headers.copy()
        if headers:
            merged.update(headers)
        content = {} if json is None else {"json": json}
        return httpx.Request(method, url, headers=merged, extensions=self._extensions, **content)

    async def request(
        self, method: str, url: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        """Send and read the whole answer (httpx errors as httpx raises them)."""
        response = await self._send(self.build(method, url, json=json, headers=headers))
        try:
            await response.aread()  # closes the stream once read: the connection goes back
        except BaseException:
            await response.aclose()
            raise
        return response

    @asynccontextmanager
    async def stream(self, method: str, url: str) -> AsyncIterator[httpx.Response]:
        """Send; the answer's body is read by the caller, and closed on the way out."""
        response = await self._send(self.build(method, url))
        try:
            yield response
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the connections."""
        try:
            await self._transport.aclose()
        finally:
            if self._router is not None:
                await self._router.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        if self._router is not None:
            return await self._router.send(request, stream=True)
        response = await self._transport.handle_async_request(request)
        response.request = request  # as AsyncClient does: the answer knows its URL
        return response
