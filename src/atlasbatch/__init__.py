"""atlasbatch: ATLAS forced photometry for thousands of targets, politely and durably.

``import atlasbatch`` stays cheap (httpx and anyio, no pandas): the names that need pandas
(:class:`Session`, :func:`fetch_photometry`, :func:`read_targets`, ...) are imported on first
use (PEP 562), so ``atlasbatch --help`` and ``atlasbatch status`` start at once.
"""

from __future__ import annotations

import importlib
from importlib.metadata import version as _version
from typing import TYPE_CHECKING

from atlasbatch._base_url import obtain_token
from atlasbatch._client import AtlasClient
from atlasbatch._config import PRODUCTION_URL, Rate, Settings
from atlasbatch._exceptions import (
    AccountMismatchError,
    ApiError,
    AtlasBatchError,
    AuthenticationError,
    ConnectionSetupError,
    InputError,
    LedgerDamagedError,
    NotFoundError,
    QueueFullError,
    RequestRejectedError,
    ResultFileError,
    ResultTooLargeError,
    RowProblem,
    RunError,
    RunLockedError,
    RunMismatchError,
    ServerError,
    StorageError,
    SubmissionUncertainError,
    TargetFileError,
    ThrottledError,
    TransportError,
)
from atlasbatch._models import FINAL_STATES, Outcome, State, Target

if TYPE_CHECKING:
    from atlasbatch._session import RunReport, Session, fetch_photometry
    from atlasbatch._targets import TargetList, read_targets

__version__ = _version("atlasbatch")

__all__ = [
    "FINAL_STATES",
    "PRODUCTION_URL",
    "AccountMismatchError",
    "ApiError",
    "AtlasBatchError",
    "AtlasClient",
    "AuthenticationError",
    "ConnectionSetupError",
    "InputError",
    "LedgerDamagedError",
    "NotFoundError",
    "Outcome",
    "QueueFullError",
    "Rate",
    "RequestRejectedError",
    "ResultFileError",
    "ResultTooLargeError",
    "RowProblem",
    "RunError",
    "RunLockedError",
    "RunMismatchError",
    "RunReport",
    "ServerError",
    "Session",
    "Settings",
    "State",
    "StorageError",
    "SubmissionUncertainError",
    "Target",
    "TargetFileError",
    "TargetList",
    "ThrottledError",
    "TransportError",
    "__version__",
    "fetch_photometry",
    "obtain_token",
    "read_targets",
]

#: Public names whose modules import pandas: name -> the module that defines it.
_LAZY = {
    "RunReport": "atlasbatch._session",
    "Session": "atlasbatch._session",
    "fetch_photometry": "atlasbatch._session",
    "TargetList": "atlasbatch._targets",
    "read_targets": "atlasbatch._targets",
}


def __getattr__(name: str) -> object:
    """Import a pandas-dependent public name on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
