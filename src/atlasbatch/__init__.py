"""atlasbatch: ATLAS forced photometry for thousands of targets, politely and durably."""

from importlib.metadata import version as _version

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

__version__ = _version("atlasbatch")

__all__ = [
    "FINAL_STATES",
    "ApiError",
    "AtlasBatchError",
    "AuthenticationError",
    "InputError",
    "NotFoundError",
    "Outcome",
    "QueueFullError",
    "RequestRejectedError",
    "ResultFileError",
    "RowProblem",
    "RunError",
    "RunLockedError",
    "RunMismatchError",
    "ServerError",
    "State",
    "SubmissionUncertainError",
    "Target",
    "TargetFileError",
    "ThrottledError",
    "TransportError",
    "__version__",
]
