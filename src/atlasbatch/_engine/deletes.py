"""The delete workers: DELETE each settled task, with the write slots submissions leave.

Deletes free no queue slot (the cap counts unstarted tasks), so they go at the lowest
priority of the write budget. A DELETE waits out outages like any request; one the server
refuses for good (not the owner, say) is counted and left for ``atlasbatch cleanup``, and
the run's summary names it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from anyio.streams.memory import MemoryObjectReceiveStream

from atlasbatch._engine.book import Book
from atlasbatch._exceptions import STOPS_RUN, AtlasBatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger

__all__ = ["Deletes"]

log = logging.getLogger(__name__)


class Deletes:
    """Deletes tasks; ``refused`` counts those the server would not delete."""

    def __init__(
        self, client: AtlasClient, ledger: Ledger, book: Book, *, forget: Callable[[int], None]
    ) -> None:
        self._client = client
        self._ledger = ledger
        self._book = book
        self._forget = forget
        self.refused = 0

    async def work(self, rx: MemoryObjectReceiveStream[int]) -> None:
        """Delete every task id that comes through ``rx``."""
        async with rx:
            async for task_id in rx:
                await self._delete(task_id)

    async def _delete(self, task_id: int) -> None:
        try:
            await self._client.delete(task_id)
        except STOPS_RUN:
            raise
        except AtlasBatchError as exc:
            self.refused += 1
            log.error("task %d could not be deleted (%s); `atlasbatch cleanup` will retry",
                      task_id, exc)  # fmt: skip
        else:
            self._ledger.task_deleted(task_id)
            self._book.deleted += 1
        self._forget(task_id)
