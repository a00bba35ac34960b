"""The one exception tree of atlasbatch.

Everything atlasbatch raises on purpose derives from :class:`AtlasBatchError`; httpx errors
never escape the client module, they are translated at the boundary::

    AtlasBatchError
    ├── InputError                  bad options or arguments; nothing was sent
    │   └── TargetFileError         bad target rows, every one listed with line and column
    ├── ApiError                    the server answered with an error status
    │   ├── AuthenticationError     401/403: token missing, invalid or not the owner
    │   ├── ThrottledError          429: the write or read budget is spent (retry_after)
    │   ├── QueueFullError          400 "too many queued tasks" (queued, requested, cap)
    │   ├── RequestRejectedError    any other 400: the server's field errors
    │   ├── NotFoundError           404: the task or result file is gone
    │   └── ServerError             5xx
    ├── TransportError              connection, timeout or protocol failure
    │   ├── SubmissionUncertainError  a POST whose fate is unknown; reconcile by tag
    │   └── ConnectionSetupError    a fault on our side of the wire (TLS, bad header): permanent
    ├── ResultFileError             a result file that cannot be parsed (truncated, HTML, …)
    │   └── ResultTooLargeError     a result file above the configured size limit
    ├── StorageError                the local disk refused a write (full, read-only)
    └── RunError                    problems with a run directory
        ├── RunLockedError          another process works on the same directory
        ├── RunMismatchError        the targets or options differ from the stored run
        ├── LedgerDamagedError      the ledger file cannot be read as a ledger
        └── AccountMismatchError    the token belongs to another account than the run's
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "STOPS_RUN",
    "AccountMismatchError",
    "ApiError",
    "AtlasBatchError",
    "AuthenticationError",
    "ConnectionSetupError",
    "InputError",
    "LedgerDamagedError",
    "NotFoundError",
    "QueueFullError",
    "RequestRejectedError",
    "ResultFileError",
    "ResultTooLargeError",
    "RowProblem",
    "RunError",
    "RunLockedError",
    "RunMismatchError",
    "ServerError",
    "StorageError",
    "SubmissionUncertainError",
    "TargetFileError",
    "ThrottledError",
    "TransportError",
]


class AtlasBatchError(Exception):
    """Root of every error atlasbatch raises on purpose."""


class InputError(AtlasBatchError):
    """Bad arguments or options; raised before anything is sent."""


@dataclass(frozen=True, slots=True)
class RowProblem:
    """One problem in one row of a target list (``line`` counts the header as line 1)."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column!r}: {self.message}"


class TargetFileError(InputError):
    """A target list with bad rows; ``problems`` lists every one of them."""

    def __init__(self, problems: Sequence[RowProblem], *, source: str = "targets") -> None:
        self.problems = tuple(problems)
        self.source = source
        shown = "\n".join(f"  {p}" for p in self.problems[:50])
        more = len(self.problems) - 50
        tail = f"\n  … and {more} more" if more > 0 else ""
        count = len(self.problems)
        super().__init__(f"{source}: {count} problem(s), nothing was sent:\n{shown}{tail}")


class ApiError(AtlasBatchError):
    """The server answered with an error status; ``detail`` is its own text, flattened."""

    def __init__(self, message: str, *, status: int, url: str, detail: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.url = url
        self.detail = detail


class AuthenticationError(ApiError):
    """401 or 403: the token is missing, invalid, or the task is not the caller's."""


class ThrottledError(ApiError):
    """429: the scope's budget is spent; ``retry_after`` seconds until the server accepts again."""

    def __init__(
        self, message: str, *, status: int, url: str, detail: str = "", retry_after: float | None
    ) -> None:
        super().__init__(message, status=status, url=url, detail=detail)
        self.retry_after = retry_after


class QueueFullError(ApiError):
    """400 "too many queued tasks": the per-user cap on unstarted tasks is reached."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str,
        detail: str = "",
        queued: int | None,
        requested: int | None,
        cap: int | None,
    ) -> None:
        super().__init__(message, status=status, url=url, detail=detail)
        self.queued = queued
        self.requested = requested
        self.cap = cap


class RequestRejectedError(ApiError):
    """Any other 400; ``fields`` maps the server's field names to its messages."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        url: str,
        detail: str = "",
        fields: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message, status=status, url=url, detail=detail)
        self.fields = fields or {}


class NotFoundError(ApiError):
    """404: the task (or its result file) no longer exists on the server."""


class ServerError(ApiError):
    """5xx from the server (or its proxy)."""


class TransportError(AtlasBatchError):
    """The request did not get an HTTP answer: connection refused or reset, timeout, bad TLS."""

    def __init__(self, message: str, *, url: str) -> None:
        super().__init__(message)
        self.url = url


class SubmissionUncertainError(TransportError):
    """A POST whose response was lost: the tasks may or may not exist. Reconcile by run tag."""


class ConnectionSetupError(TransportError):
    """Our side cannot make the request at all (certificate rejected, illegal header value).

    Waiting does not help: the run stops with one line saying what to fix.
    """


class ResultFileError(AtlasBatchError):
    """A downloaded result file that does not parse as ATLAS forced photometry."""


class ResultTooLargeError(ResultFileError):
    """A result file larger than ``Settings.max_result_bytes``; nothing of it is kept."""


class StorageError(AtlasBatchError):
    """The local disk refused a write (full, read-only, gone): the run stops cleanly.

    Nothing remote is deleted whose result is not stored; the same command resumes.
    """


class RunError(AtlasBatchError):
    """A problem with a run directory or its ledger."""


class RunLockedError(RunError):
    """Another atlasbatch process is working on the same run directory."""


class RunMismatchError(RunError):
    """The targets or options given differ from those the run directory was started with."""


class LedgerDamagedError(RunError):
    """The run directory's ledger is not a readable atlasbatch ledger."""


class AccountMismatchError(RunError):
    """The token belongs to another account than the one the run's tasks were made with."""


#: What no waiting can mend: these stop a run (cleanly) instead of failing one target.
STOPS_RUN: tuple[type[AtlasBatchError], ...] = (
    AuthenticationError,
    ConnectionSetupError,
    StorageError,
    RunError,
)
