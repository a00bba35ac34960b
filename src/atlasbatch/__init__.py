"""atlasbatch: ATLAS forced photometry for thousands of targets, politely and durably.

``import atlasbatch`` stays cheap: the exceptions, settings and records are imported with
it, every other public name (:class:`Session` and :func:`read_targets` need pandas,
:class:`AtlasClient` httpx) on first use (PEP 562), and so is ``__version__``
(importlib.metadata is slow to import). ``atlasbatch --help`` starts at once.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

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
from atlasbatch._science.nightly_options import NightlyOptions

if TYPE_CHECKING:
    from atlasbatch._api.report import RunReport
    from atlasbatch._api.session import Session
    from atlasbatch._api.sync import fetch_photometry
    from atlasbatch._http.base_url import obtain_token
    from atlasbatch._http.client import AtlasClient
    from atlasbatch._targets.read import TargetList, read_targets

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
    "NightlyOptions",
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

#: Public names imported on first use: name -> the module that defines it.
_LAZY = {
    "AtlasClient": "atlasbatch._http.client",
    "obtain_token": "atlasbatch._http.base_url",
    "RunReport": "atlasbatch._api.report",
    "Session": "atlasbatch._api.session",
    "fetch_photometry": "atlasbatch._api.sync",
    "TargetList": "atlasbatch._targets.read",
    "read_targets": "atlasbatch._targets.read",
}


def __getattr__(name: str) -> object:
    """Import a public name on first use (PEP 562)."""
    if name == "__version__":
        value: object = importlib.import_module("importlib.metadata").version("atlasbatch")
        globals()[name] = value
        return value
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
