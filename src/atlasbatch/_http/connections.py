"""The httpx clients of a run: token auth, TLS always verified, small connection pools.

httpcore looks at every pooled connection (a getpeername and a poll each, when idle)
whenever a request starts or ends, so an idle connection costs CPU on every request: with
a pool as wide as every worker (about 14 at 20,000 requests a minute), that was a fifth of
the client's CPU (issue 12). Hence two small pools, each as wide as the work that uses
it: the static result files, as many as the download workers; the API, a few (a run
makes about one write a second and a few reads: four connections carry that many times
over). A request that finds its pool busy waits for a connection (no pool timeout: that
wait is our own queue, not a fault of the server); a long download never holds up a poll
or a submission.
"""

from __future__ import annotations

import ssl
from collections.abc import Generator
from importlib.metadata import version

import httpx

from atlasbatch._config import Settings

__all__ = ["API_CONNECTIONS", "http_clients"]

#: Connections for the API calls of one client (submissions, polls, deletes, images).
API_CONNECTIONS = 4


class _TokenAuth(httpx.Auth):
    """``Authorization: Token …``; its repr never shows the token."""

    def __init__(self, token: str) -> None:
        self._header = f"Token {token}"

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header
        yield request

    def __repr__(self) -> str:
        return "_TokenAuth(<hidden>)"


def _user_agent() -> str:
    return f"atlasbatch/{version('atlasbatch')} (+httpx)"


def http_clients(
    token: str, settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> tuple[httpx.AsyncClient, httpx.AsyncClient]:
    """The API's client and the result files' client (the same one when ``transport`` is
    given: it is the caller's, a single one). One TLS context, verifying, for both (each
    costs ~30 ms of CPU to build: the CA bundle)."""
    if transport is not None:
        api = _client(token, settings, transport, connections=API_CONNECTIONS, verify=True)
        return api, api
    context = httpx.create_ssl_context()  # verify=True: certificates and host names checked
    api = _client(token, settings, None, connections=API_CONNECTIONS, verify=context)
    width = settings.download_concurrency
    return api, _client(token, settings, None, connections=width, verify=context)


def _client(
    token: str,
    settings: Settings,
    transport: httpx.AsyncBaseTransport | None,
    *,
    connections: int,
    verify: ssl.SSLContext | bool,
) -> httpx.AsyncClient:
    """An httpx client of ``connections`` pooled connections at most."""
    seconds = settings.timeout
    return httpx.AsyncClient(
        auth=_TokenAuth(token),
        headers={"Accept": "application/json", "User-Agent": _user_agent()},
        timeout=httpx.Timeout(seconds, connect=min(10.0, seconds), pool=None),
        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        verify=verify,
        transport=transport,
        follow_redirects=False,
    )
