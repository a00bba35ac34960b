"""Image requests (IMGZIP tasks, API §14): which files exist, and what the task JSON shows.

An image request is a child task of a finished, error-free FP task (its parent): same
target, window and mode, ``request_type`` IMGZIP, run by the runner like any task of its
user (only longer: ``image_task_seconds``). When it finishes it leaves a zip of image
stamps, served under the *parent's* name (``job{parent:05d}.zip``, §12). It fails with the
runner's own text when the parent's data file is gone by then.

A finished FP task with data has a preview JPEG (``job{id:05d}.jpg``), made by the runner
right after the photometry (§11). Deleting a finished parent archives it, but keeps its
``.txt`` and ``.jpg`` while a live image request still needs them (§8); deleting that
request (the last one to need them) removes them.

These functions read :class:`~._state.tasks.Task` records only; the store makes the changes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from .._serializer.fields import FieldValue, JsonValue

if TYPE_CHECKING:
    from .._state.tasks import Task

__all__ = [
    "IMGZIP",
    "MAX_USER_IMGZIP_TASKS",
    "PARENT_FILE_GONE",
    "child_fields",
    "detach",
    "has_preview",
    "has_zip",
    "image_fields",
    "image_outcome",
    "is_image",
    "too_many_text",
    "zip_owner",
]

IMGZIP: Final = "IMGZIP"
MAX_USER_IMGZIP_TASKS: Final = 5
PARENT_FILE_GONE: Final = (
    "The forced photometry data file for the parent task is no longer available."
)


def too_many_text(live: int) -> str:
    """The 429 text of ``requestimages`` with ``live`` IMGZIP tasks (§10)."""
    return (
        f"You have too many IMGZIP tasks ({live} >= {MAX_USER_IMGZIP_TASKS}). "
        "Delete some before making new requests."
    )


def is_image(task: Task) -> bool:
    """An IMGZIP task (a child of an FP task)."""
    return task.fields["request_type"] == IMGZIP


def child_fields(parent: Task) -> dict[str, FieldValue]:
    """The writable fields of a new image request: the parent's target, window and mode."""
    copied = ("mpc_name", "ra", "dec", "mjd_min", "mjd_max", "use_reduced")
    return {**{name: parent.fields[name] for name in copied}, "request_type": IMGZIP,
            "send_email": False}  # fmt: skip


def detach(child: Task) -> None:
    """An image request is deleted: its parent has no live request, and an archived parent
    needs its files no longer."""
    parent = child.parent
    if parent is None or parent.image_child is not child:
        return
    parent.image_child = None
    if parent.archived:
        parent.file_present = False
    parent.touch()


def image_outcome(task: Task) -> tuple[str | None, bool]:
    """``(error_msg, file_present)`` of an image request finishing now."""
    parent = task.parent
    if parent is None or not parent.file_present or parent.error_msg is not None:
        return PARENT_FILE_GONE, False
    return None, True


def has_zip(child: Task | None) -> bool:
    """The zip of this image request exists: it finished without error and is not deleted."""
    return (
        child is not None
        and child.state == "finished"
        and child.error_msg is None
        and child.file_present
        and not child.archived
    )


def zip_owner(task: Task) -> Task | None:
    """The image request whose zip ``/queue/<id>/images.zip`` serves for ``task`` (itself, or
    the parent's live request)."""
    return task if is_image(task) else task.image_child


def has_preview(task: Task) -> bool:
    """An FP task's preview JPEG exists (kept for a live image request after a delete)."""
    return (
        not is_image(task)
        and task.state == "finished"
        and task.error_msg is None
        and task.file_present
    )


def image_fields(task: Task, base_url: str) -> dict[str, JsonValue]:
    """The task JSON's image fields (§6): the preview, the parent link, the live request."""
    results = f"{base_url}/static/results"
    parent, child = task.parent, task.image_child
    owner = zip_owner(task)
    zip_of = owner.parent if owner is not None else None
    return {
        "previewimage_url": (
            f"{results}/job{task.id:05d}.jpg" if has_preview(task) and not task.archived else None
        ),
        "parent_task_id": None if parent is None else parent.id,
        "parent_task_url": None if parent is None else f"{base_url}/queue/{parent.id}/",
        "imagerequest_task_id": None if child is None else child.id,
        "imagerequest_url": None if child is None else f"{base_url}/queue/{child.id}/",
        "imagerequest_finished": None if child is None else child.state == "finished",
        "result_imagezip_url": (
            f"{results}/job{zip_of.id:05d}.zip" if zip_of is not None and has_zip(owner) else None
        ),
    }
