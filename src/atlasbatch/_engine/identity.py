"""The run knows its account: a resume with another account's token is refused.

The server lists only the caller's own tasks. A run resumed with a token of another account
would see none of its tasks, call them "disappeared", submit every target again and leave
the first account's tasks behind. So the ledger records the account that made the run's
tasks (every task JSON carries ``username``), and before a resume submits or deletes
anything, :func:`check_account` compares it with the token's account:

* the newest task of ``GET /queue/?pagesize=1`` names the token's account (one read);
* an empty listing means the token's account has no tasks at all: if one of the run's open
  tasks still exists on the server (``GET /queue/<id>/`` answers for anyone's task), it
  belongs to someone else.

Messages name accounts, never tokens.
"""

from __future__ import annotations

import logging

from atlasbatch._exceptions import AccountMismatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger

__all__ = ["check_account", "token_account"]

log = logging.getLogger(__name__)

# Open tasks read one by one when the token's account has no task to name it by: the newest
# few are enough (a purged run loses its tasks oldest first), and each costs one read.
_SAMPLE = 3
_FIX = (
    "use the token of that account (--token-file FILE or $ATLAS_TOKEN), or start a new run "
    "with another --out"
)


async def token_account(client: AtlasClient) -> str | None:
    """The account of the client's token, from its newest task; None when it has none."""
    page = await client.list_page(url=client.url("queue/") + "?pagesize=1")
    if page is None or not page.tasks:
        return None
    username = page.tasks[0].get("username")
    return str(username) if username else None


async def _owner_of_open_tasks(client: AtlasClient, ledger: Ledger) -> str | None:
    """The account owning the newest of the run's open tasks still on the server, if any."""
    newest = sorted((t.task_id for t in ledger.open_tasks()), reverse=True)[:_SAMPLE]
    for task_id in newest:
        task = await client.task(task_id)
        if task is not None:
            return str(task.get("username") or "") or "another account"
    return None


async def check_account(client: AtlasClient, ledger: Ledger) -> None:
    """Raise :class:`AccountMismatchError` if the token is not the account of the run's tasks.

    Free for a new run (nothing to compare); else one read, plus up to three when the
    token's account has no tasks. A run whose account was not recorded yet learns it here.
    """
    recorded = ledger.account
    has_open = bool(ledger.open_tasks())
    if recorded is None and not has_open:
        return
    mine = await token_account(client)
    if mine is None:
        if has_open and (owner := await _owner_of_open_tasks(client, ledger)) is not None:
            raise AccountMismatchError(
                f"this run's tasks belong to the account {recorded or owner!r}, but the token's "
                f"account has no tasks on the server, so it is another account: {_FIX}"
            )
        return  # the run's tasks are gone from the server: nothing of anyone's to protect
    owner = recorded
    if owner is None:  # a ledger from before accounts were recorded: ask one of its tasks
        owner = await _owner_of_open_tasks(client, ledger)
    if owner is not None and owner != mine:
        raise AccountMismatchError(
            f"this run's tasks belong to the account {owner!r}, but the token is for the "
            f"account {mine!r}: {_FIX}"
        )
    ledger.set_account(mine)
