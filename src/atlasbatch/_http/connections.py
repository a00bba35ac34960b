"""The wires of a run (:mod:`.wire`): token, TLS always verified, small connection pools.

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

from importlib.metadata import version

import httpx

from atlasbatch._config import Settings
from atlasbatch._http.wire import Wire

__all__ = ["API_CONNECTIONS", "http_wires"]

#: Connections for the API calls of one client (submissions, polls, deletes, images).
API_CONNECTIONS = 4


def _user_agent() -> str:
    return f"atlasbatch/{version('atlasbatch')} (+httpx)"


def http_wires(
    token: str, settings: Settings, transport: httpx.AsyncBaseTransport | None
) -> tuple[Wire, Wire]:
    """The API's wire and the result files' wire (the same one when ``transport`` is
    given: it is the caller's, a single one). One TLS context, verifying, for both (each
    costs ~30 ms of CPU to build: the CA bundle)."""
    headers = {
        "Accept": "application/json",
        "Accept-Encoding": "gzip, deflate",
        "User-Agent": _user_agent(),
        "Authorization": f"Token {token}",
    }
    seconds = settings.timeout
    timeout = httpx.Timeout(seconds, connect=min(10.0, seconds), pool=None)
    if transport is not None:
        api = Wire(headers, timeout=timeout, connections=API_CONNECTIONS, transport=transport)
        return api, api
    context = httpx.create_ssl_context()  # verify=True: certificates and host names checked
    api = Wire(headers, timeout=timeout, connections=API_CONNECTIONS, verify=context)
    width = settings.download_concurrency
    return api, Wire(headers, timeout=timeout, connections=width, verify=context)
