"""What a failed request means: permanent (our side), uncertain (a POST) or transient.

httpx raises one family of errors for very different situations. A certificate the system
rejects or a header value h11 refuses to send will fail the same way forever: that is a
:class:`ConnectionSetupError`, and its message never quotes the request (h11 quotes the
offending header, which may hold the token). A POST whose answer was lost may have created
its tasks, so it is never retried blindly: :class:`SubmissionUncertainError`. Everything else
(refused connections, timeouts, 5xx pages) is weather: a :class:`TransientError`, which the
client's :class:`~atlasbatch._http.outage.Outage` waits out.
"""

from __future__ import annotations

import ssl
from typing import NoReturn

import httpx

from atlasbatch._exceptions import (
    AtlasBatchError,
    ConnectionSetupError,
    ServerError,
    SubmissionUncertainError,
    TransportError,
)
from atlasbatch._http.responses import api_error

__all__ = ["TransientError", "raise_for", "transient_or_uncertain", "transport_error"]


class TransientError(AtlasBatchError):
    """Internal marker: worth another attempt (5xx, transport); ``cause`` is the real error."""

    def __init__(self, cause: AtlasBatchError) -> None:
        super().__init__(str(cause))
        self.cause = cause


def raise_for(response: httpx.Response, method: str, url: str) -> NoReturn:
    """Raise the exception for an unwanted answer: 5xx transient, the rest as it is."""
    error = api_error(response, action=f"{method} {url}")
    if isinstance(error, ServerError):
        raise transient_or_uncertain(method, error, url)
    raise error


def transport_error(method: str, url: str, exc: httpx.HTTPError) -> AtlasBatchError:
    """Our exception for an httpx failure: permanent when the fault is on our side."""
    local = _local_fault(exc)
    if local is not None:
        return ConnectionSetupError(f"{method} {url}: {local}", url=url)
    error = TransportError(f"{method} {url}: {type(exc).__name__}: {exc}", url=url)
    return transient_or_uncertain(method, error, url)


def transient_or_uncertain(method: str, error: AtlasBatchError, url: str) -> AtlasBatchError:
    """A failed POST may have been committed: never retry it, let the caller look."""
    if method == "POST":
        return SubmissionUncertainError(f"submission outcome unknown: {error}", url=url)
    return TransientError(error)


def _local_fault(exc: BaseException) -> str | None:
    """What is wrong on our side, if that is why httpx failed; never quotes a header value."""
    if isinstance(exc, httpx.LocalProtocolError | httpx.UnsupportedProtocol | httpx.InvalidURL):
        return "the request could not be built (a header or URL httpx refuses to send)"
    cause: BaseException | None = exc
    for _ in range(10):  # the chain is short; bounded all the same
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return f"the server's TLS certificate was rejected: {cause.verify_message}"
        if isinstance(cause, ssl.SSLError):
            return f"TLS failed: {cause.reason or cause}"
        cause = cause.__cause__ or cause.__context__
    return None
