"""atlasbatch: ATLAS forced photometry for thousands of targets, politely and durably."""

from importlib.metadata import version as _version

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
