"""Users and tasks as the emulator stores them, and the task JSON the real serializer emits."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from .._serializer.fields import FieldValue, JsonValue
from .._sky.lightcurve import Job
from .._state.clock import format_timestamp
from .._state.images import image_fields

__all__ = [
    "DEFAULT_FIELDS",
    "Task",
    "TaskState",
    "TaskTiming",
    "User",
    "serialize_task",
    "task_timing",
]

TaskState = Literal["queued", "running", "finished"]

DEFAULT_FIELDS: dict[str, FieldValue] = {
    "mpc_name": None,
    "ra": None,
    "dec": None,
    "mjd_min": None,  # replaced by "now - 30 days" when the field was not submitted
    "mjd_max": None,
    "radec_epoch_year": None,
    "propermotion_ra": None,
    "propermotion_dec": None,
    "use_reduced": False,
    "comment": None,
    "send_email": True,
    "callback_url": None,
    "request_type": "FP",
}


@dataclass(slots=True, eq=False)
class User:
    """An account: its token is its only credential on the API (Basic auth also works)."""

    id: int
    username: str
    password: str
    token: str
    is_staff: bool = False
    background: bool = False
    """One of the ``background_users``: its tasks are load, listed nowhere and never counted."""
    version: int = 0
    """Bumped whenever any of this user's tasks changes; part of the list ETag."""


@dataclass(slots=True, eq=False)
class Task:
    """One task row. ``fields`` holds the writable fields with defaults applied."""

    id: int
    user: User
    fields: dict[str, FieldValue]
    timestamp: int
    userqueuedtasks_on_submit: int
    state: TaskState = "queued"
    submitted_at: float = 0.0
    """Monotonic seconds of the POST (``timestamp`` is the same instant, truncated, in UTC)."""
    started_at: float | None = None
    starttimestamp: int | None = None
    run_until: float | None = None
    lose_attempt: bool = False
    finished_at: float | None = None
    finishtimestamp: int | None = None
    attempt_count: int = 0
    error_msg: str | None = None
    job: Job | None = None
    file_present: bool = False
    archived: bool = False
    parent: Task | None = None
    """An image request's FP task (``parent_task_id``)."""
    image_child: Task | None = None
    """An FP task's live image request (``imagerequest_task_id``), until it is deleted."""

    @property
    def has_result_url(self) -> bool:
        """``result_url`` is set only for a finished, error-free task whose file still exists."""
        return self.state == "finished" and self.file_present and self.error_msg is None

    def touch(self) -> None:
        """Record a change visible in the owner's task list (invalidates their ETags)."""
        self.user.version += 1


@dataclass(frozen=True, slots=True)
class TaskTiming:
    """When a task was submitted, started and finished, on the emulator's clock (seconds).

    The API's timestamps are truncated to whole seconds; these are exact, on the same clock
    as :meth:`Emulator.requests` and :meth:`Emulator.now`. ``started_at`` is the start of
    the latest attempt (``None``: never started); ``finished_at`` is ``None`` until it ends.
    """

    id: int
    username: str
    submitted_at: float
    started_at: float | None
    finished_at: float | None
    attempt_count: int
    state: TaskState
    archived: bool


def task_timing(task: Task, zero: float) -> TaskTiming:
    """The timing record of ``task``, with monotonic instants shifted so ``zero`` reads 0."""
    started = None if task.started_at is None else task.started_at - zero
    finished = None if task.finished_at is None else task.finished_at - zero
    return TaskTiming(
        id=task.id,
        username=task.user.username,
        submitted_at=task.submitted_at - zero,
        started_at=started,
        finished_at=finished,
        attempt_count=task.attempt_count,
        state=task.state,
        archived=task.archived,
    )


def _seconds_between(start: float | None, end: float | None) -> float | None:
    """Seconds rounded to 0.1, as the server renders ``waittime`` and ``runtime``.

    From the exact instants, not the whole-second timestamps: the server computes them
    from its stored times, and a scaled emulator (tasks of 0.6 s standing for a minute)
    must not report 0 or 1 s for every task.
    """
    if start is None or end is None:
        return None
    return round(max(0.0, end - start), 1)


def _json_field(value: FieldValue) -> JsonValue:
    if isinstance(value, Decimal):
        return str(value)
    return value


def serialize_task(
    task: Task, *, base_url: str, queuepos: int | None, viewer: User | None
) -> dict[str, JsonValue]:
    """The task object in exactly the real serializer's field order (``Meta.fields``).

    Like the real serializer, ``callback_url`` is shown only to the owner and to staff.
    """
    url = f"{base_url}/queue/{task.id}/"
    f = task.fields
    result_url = pdfplot_url = None
    if task.has_result_url:
        result_url = f"{base_url}/static/results/job{task.id:05d}.txt"
        pdfplot_url = f"{url}plot.pdf"
    finished = task.state == "finished"
    owner_view = viewer is not None and (viewer is task.user or viewer.is_staff)
    body: dict[str, JsonValue] = {
        "url": url,
        "id": task.id,
        "user_id": task.user.id,
        "username": task.user.username,
        "timestamp": format_timestamp(task.timestamp),
        "mpc_name": _json_field(f["mpc_name"]),
        "ra": _json_field(f["ra"]),
        "dec": _json_field(f["dec"]),
        "mjd_min": _json_field(f["mjd_min"]),
        "mjd_max": _json_field(f["mjd_max"]),
        "radec_epoch_year": _json_field(f["radec_epoch_year"]),
        "propermotion_ra": _json_field(f["propermotion_ra"]),
        "propermotion_dec": _json_field(f["propermotion_dec"]),
        "use_reduced": _json_field(f["use_reduced"]),
        "finished": finished,
        "result_url": result_url,
        "comment": _json_field(f["comment"]),
        "send_email": _json_field(f["send_email"]),
        "callback_url": _json_field(f["callback_url"]) if owner_view else None,
        "starttimestamp": (
            None if task.starttimestamp is None else format_timestamp(task.starttimestamp)
        ),
        "finishtimestamp": (
            None if task.finishtimestamp is None else format_timestamp(task.finishtimestamp)
        ),
        "error_msg": task.error_msg,
        "previewimage_url": None,
        "parent_task_id": None,
        "parent_task_url": None,
        "request_type": _json_field(f["request_type"]),
        "pdfplot_url": pdfplot_url,
        "queuepos": None if finished else queuepos,
        "imagerequest_task_id": None,
        "imagerequest_url": None,
        "imagerequest_finished": None,
        "result_imagestack_url": None,
        "result_imagezip_url": None,
        "userqueuedtasks_on_submit": task.userqueuedtasks_on_submit,
        "waittime": _seconds_between(task.submitted_at, task.started_at),
        "runtime": _seconds_between(task.started_at, task.finished_at) if finished else None,
        "attempt_count": task.attempt_count,
    }
    body.update(image_fields(task, base_url))  # the keys exist: their order stays
    return body
