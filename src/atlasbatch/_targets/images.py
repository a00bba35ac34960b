"""Which rows want image stamps: an ``images`` column (1 for the chosen rows) or ``--images``.

An image request (``POST /queue/<id>/requestimages/``, API §14) makes the server cut the
target out of every image of its photometry and zip the stamps: about 15 minutes of the
server's time each (§11), spent on the same one-task-at-a-time lane as the user's light
curves, and at most five may be live per user (§10). So images are asked only for the rows
that ask for them, and a request for more than :data:`WARN_ABOVE` targets is warned about.
A query wants images when any of its rows (duplicates included) does; control positions
never do.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import TYPE_CHECKING, Final

from atlasbatch._durations import format_duration

if TYPE_CHECKING:
    from atlasbatch._targets.read import TargetList
    from atlasbatch._targets.table import TargetTable

__all__ = [
    "IMAGE_TASK_FACTOR",
    "MAX_IMAGE_REQUESTS",
    "WARN_ABOVE",
    "describe_image_cost",
    "image_queries",
    "parse_images",
    "with_images",
]

log = logging.getLogger(__name__)

WARN_ABOVE: Final = 20
#: The server's ``MAX_USER_IMGZIP_TASKS``: live (not deleted) image requests per user.
MAX_IMAGE_REQUESTS: Final = 5
#: An image request takes about 15 minutes, a light curve about one (§11): the dry run's
#: estimate scales the light curves' assumed time by this.
IMAGE_TASK_FACTOR: Final = 15.0
_YES: Final = frozenset({"true", "yes", "1", "1.0", "y"})
_NO: Final = frozenset({"false", "no", "0", "0.0", "n", ""})


def parse_images(t: TargetTable) -> list[bool] | None:
    """Each row's ``images`` flag; None when the table has no such column. A cell that is
    no yes/no is recorded as a problem of its row."""
    if "images" not in t.index:
        return None
    from atlasbatch._targets.coords import show  # noqa: PLC0415 - numpy and pandas: parsing only

    flags: list[bool] = []
    for i, text in enumerate(t.cells("images")):
        word = text.lower()
        if word not in _YES and word not in _NO:
            t.problem(i, "images", f"images {show(text)} is not true/false/yes/no/1/0")
        flags.append(word in _YES)
    return flags


def with_images(targets: TargetList, *, every: bool) -> TargetList:
    """``targets`` with every input row wanting images when ``every`` (``--images``); warns
    when more than :data:`WARN_ABOVE` queries want them."""
    if every:
        from atlasbatch._targets.lazy import TargetRows  # noqa: PLC0415 - as TargetList

        listed = targets.targets
        if isinstance(listed, TargetRows):  # as read: no controls, and no target to make
            rows = frozenset(listed.lines())
        else:
            rows = frozenset(t.line for t in listed if t.control_of is None)
        targets = dataclasses.replace(targets, images=rows)
    count = len(image_queries(targets))
    if count > WARN_ABOVE:
        log.warning(
            "images asked for %d targets: each image request takes about 15 minutes of the "
            "server's time on your one-at-a-time lane (about %.1f h in all), and at most %d "
            "run at once; see --dry-run",
            count, count / 4, MAX_IMAGE_REQUESTS,
        )  # fmt: skip
    return targets


def image_queries(targets: TargetList) -> frozenset[int]:
    """The representative lines of the queries that want images."""
    wanted = targets.images
    if not wanted:
        return frozenset()
    return frozenset(targets.duplicate_of.get(line, line) for line in wanted)


def describe_image_cost(targets: TargetList, *, task_seconds: float) -> list[str]:
    """The dry run's lines on image requests (none when no row wants images)."""
    count = len(image_queries(targets))
    if not count:
        return []
    each = task_seconds * IMAGE_TASK_FACTOR
    batches = math.ceil(count / MAX_IMAGE_REQUESTS)
    return [
        f"Images for {count} target(s) (images column or --images), after their light curves:",
        f"  POST   /queue/<id>/requestimages/ {count:>7}  not throttled; at most "
        f"{MAX_IMAGE_REQUESTS} live at once ({batches} round(s))",
        f"  GET    /queue/<id>/ (image tasks) {count:>7}  at least; polls of the image tasks",
        f"  images.zip + preview downloads    {2 * count:>7}  at most; static files",
        f"  DELETE /queue/<id>/ (image tasks) {count:>7}  more writes",
        f"  server time: {format_duration(count * each)} more ({count} x ~{each:g} s, an image "
        "request takes ~15x a light curve, one task at a time per user)",
    ]
