"""Idempotent submission: find a batch's tasks on the server by the tag in their comment.

Every POST carries ``atlasbatch:<run>:<batch>`` in ``comment``, and the ledger says
"submitting batch k" before the POST goes out. When the answer is lost (timeout, reset,
5xx, a crash), the user's task list tells whether the server made the tasks; if it did,
they are adopted instead of being submitted a second time.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target

__all__ = ["adopt_batch", "match_tasks", "settle_batch"]

log = logging.getLogger(__name__)

# radeclist coordinates come back as floats of what we sent with 7 decimals.
_TOLERANCE_DEG = 1e-5


def _same_target(target: Target, task: dict[str, Any]) -> bool:
    if target.mpc_name is not None:
        return str(task.get("mpc_name") or "").strip() == target.mpc_name
    try:
        ra, dec = float(task["ra"]), float(task["dec"])
    except (KeyError, TypeError, ValueError):
        return False
    want_ra, want_dec = target.ra or 0.0, target.dec or 0.0
    close_ra = math.isclose(ra, want_ra, abs_tol=_TOLERANCE_DEG)
    return close_ra and math.isclose(dec, want_dec, abs_tol=_TOLERANCE_DEG)


def match_tasks(batch: Sequence[Target], tasks: Sequence[dict[str, Any]]) -> dict[int, int]:
    """Pair targets (by line) with tasks (by id): the server keeps line order; check it."""
    ordered = sorted(tasks, key=lambda task: int(task["id"]))
    pairs: dict[int, int] = {}
    unused = list(ordered)
    for target in batch:
        for task in unused:
            if _same_target(target, task):
                pairs[target.line] = int(task["id"])
                unused.remove(task)
                break
    return pairs


async def adopt_batch(client: AtlasClient, tag: str, batch: Sequence[Target]) -> dict[int, int]:
    """The tasks the server holds for the batch ``tag``: line -> task id (empty if none)."""
    tagged = [task async for task in client.iter_tasks() if task.get("comment") == tag]
    pairs = match_tasks(batch, tagged)
    if tagged:
        log.info("%s: adopted %d of %d tasks found on the server", tag, len(pairs), len(tagged))
    return pairs


async def settle_batch(
    client: AtlasClient, ledger: Ledger, batch: int, tag: str, targets: Sequence[Target]
) -> dict[int, int]:
    """Settle a batch whose POST answer is unknown; the ledger says what the server holds.

    Tasks found by tag are adopted (queued); targets without a task are pending again, so
    they are sent once more — never twice, since the server made none for them.
    """
    pairs = await adopt_batch(client, tag, targets)
    if not pairs:
        ledger.batch_abandoned(batch)
        return pairs
    ledger.batch_submitted(batch, [(t.line, pairs[t.line]) for t in targets if t.line in pairs])
    for target in targets:  # radeclist is all-or-nothing: only a safeguard
        if target.line not in pairs:
            ledger.set_state(target.line, State.PENDING)
    return pairs
