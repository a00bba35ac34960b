"""``cancel`` and ``cleanup`` of a run with image requests: delete the children it left.

An image request (IMGZIP task) carries no atlasbatch tag (the server makes it, with no
comment), so the walk of tagged tasks that finds a run's photometry tasks never finds it;
the ledger's ``image_requests`` table does (:mod:`._ledger.images`). A request the process
was making when it stopped ("requesting") is looked up on its parent first: a lost answer
may have made one. What was not stored by then is recorded as ended, with ``reason``.
"""

from __future__ import annotations

import logging

from atlasbatch._exceptions import AtlasBatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.images import ImageRow, ImageState
from atlasbatch._ledger.ledger import Ledger

__all__ = ["delete_image_children"]

log = logging.getLogger(__name__)


async def delete_image_children(
    client: AtlasClient, ledger: Ledger, *, reason: str
) -> tuple[int, int]:
    """Delete every image request of the run still on the server: (deleted, refused)."""
    deleted = refused = 0
    for row in ledger.open_image_children():
        child = row.child if row.child is not None else await _made_by(client, row)
        if child is not None:
            try:
                await client.delete(child)
            except AtlasBatchError as exc:
                log.error("image request %d: delete failed: %s", child, exc)
                refused += 1
                continue
            deleted += 1
        if row.state is not ImageState.STORED:
            ledger.image_failed(row.parent, row.line, reason)
        ledger.image_child_deleted(row.parent)
    return deleted, refused


async def _made_by(client: AtlasClient, row: ImageRow) -> int | None:
    """The image request a "requesting" row's parent shows (a lost answer made it)."""
    task = await client.task(row.parent)
    child = None if task is None else task.get("imagerequest_task_id")
    return child if isinstance(child, int) and not isinstance(child, bool) else None
