"""atlasbatch: ATLAS forced photometry for thousands of targets, politely and durably."""

from importlib.metadata import version as _version

from atlasbatch._base_url import obtain_token
from atlasbatch._client import AtlasClient
from atlasbatch._config import PRODUCTION_URL, Rate, Settings
from atlasbatch._exceptions import (
    ApiError,
    AtlasBatchError,
    AuthenticationError,
    InputError,
    NotFoundError,
    QueueFullError,
    RequestRejectedError,
    ResultFileError,
    RowProblem,
    RunError,
    RunLockedError,
    RunMismatchError,
    ServerError,
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
    "ApiError",
    "AtlasBatchError",
    "AtlasClient",
    "AuthenticationError",
    "InputError",
    "NotFoundError",
    "Outcome",
    "QueueFullError",
    "Rate",
    "RequestRejectedError",
    "ResultFileError",
    "RowProblem",
    "RunError",
    "RunLockedError",
    "RunMismatchError",
    "RunReport",
    "ServerError",
    "Session",
    "Settings",
    "State",
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
