"""Leaving the server's queue clean: cancel a run, clean up after it, find orphans.

All of it goes through :class:`AtlasClient`, so every DELETE uses the same write budget
as a fetch. A task is recognised as ours by the tag in its comment,
``atlasbatch:<run-id>:<batch>``, so even tasks whose POST answer was lost are found.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from atlasbatch._engine.fetcher import ResultSaver, fetch_result, save_result_file, scratch_dir
from atlasbatch._engine.identity import check_account
from atlasbatch._engine.image_cleanup import delete_image_children
from atlasbatch._engine.poller import classify
from atlasbatch._engine.reconcile import settle_batch
from atlasbatch._exceptions import AtlasBatchError
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.streaming import Body
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import FINAL_STATES, State
from atlasbatch._outputs.filenames import FileNames

__all__ = [
    "CleanupReport",
    "Orphan",
    "cancel_run",
    "cleanup_run",
    "find_orphans",
    "run_id_of",
    "settle_open_batches",
]

log = logging.getLogger(__name__)
TAG_PREFIX = "atlasbatch:"


def run_id_of(comment: object) -> str | None:
    """The run id in an atlasbatch tag, else None."""
    if not isinstance(comment, str) or not comment.startswith(TAG_PREFIX):
        return None
    parts = comment.split(":")
    return parts[1] if len(parts) >= 3 else None


@dataclass
class CleanupReport:
    """What a cancel or clean-up did."""

    deleted: int = 0
    downloaded: int = 0
    cancelled: int = 0
    failed: int = 0


async def _tagged_tasks(client: AtlasClient, run_id: str) -> list[dict[str, Any]]:
    return [t async for t in client.iter_tasks() if run_id_of(t.get("comment")) == run_id]


async def _delete(
    client: AtlasClient, ledger: Ledger | None, task_id: int, report: CleanupReport
) -> None:
    try:
        await client.delete(task_id)
    except AtlasBatchError as exc:
        log.error("task %d: delete failed: %s", task_id, exc)
        report.failed += 1
        return
    if ledger is not None:
        ledger.task_deleted(task_id)
    report.deleted += 1


async def settle_open_batches(client: AtlasClient, ledger: Ledger) -> None:
    """Batches a stopped run left "submitting": adopt what the server made, re-queue the rest."""
    for batch, tag, lines in ledger.open_batches():
        await settle_batch(client, ledger, batch, tag, [ledger.target(line) for line in lines])


async def cancel_run(client: AtlasClient, ledger: Ledger) -> CleanupReport:
    """Delete the run's unfinished remote tasks and mark its unfinished targets cancelled.

    The server's state decides: a task that finished meanwhile is recorded as finished and
    left for ``cleanup`` (its result is worth downloading), not cancelled.
    """
    await check_account(client, ledger)  # another account's token would see none of them
    report = CleanupReport()
    await settle_open_batches(client, ledger)
    await _delete_image_children(client, ledger, report, reason="cancelled by the user")
    known = {task.task_id: task.state for task in ledger.open_tasks()}
    on_server: set[int] = set()
    for task in await _tagged_tasks(client, ledger.run_id):
        update = classify(task)
        on_server.add(update.task_id)
        if update.state in (State.QUEUED, State.RUNNING) or update.task_id not in known:
            await _delete(
                client, ledger if update.task_id in known else None, update.task_id, report
            )
        elif known[update.task_id] not in FINAL_STATES:  # a stored result stays stored
            ledger.task_progress(
                [(update.task_id, update.state, update.result_url, update.error_msg)]
            )
    for task_id in known.keys() - on_server:
        ledger.task_deleted(task_id)  # the server no longer has it
    unfinished = (State.PENDING, State.SUBMITTING, State.QUEUED, State.RUNNING)
    for line, rep, state in ledger.lines():
        if rep == line and state in unfinished:
            ledger.set_state(line, State.CANCELLED, error="cancelled by the user")
            report.cancelled += 1
    return report


async def cleanup_run(
    client: AtlasClient, ledger: Ledger, out_dir: Path, *, save_result: ResultSaver | None = None
) -> CleanupReport:
    """Download what finished, then delete every remote task of the run."""
    await check_account(client, ledger)  # another account's token would see none of them
    report = CleanupReport()
    await settle_open_batches(client, ledger)
    await _delete_image_children(client, ledger, report, reason="removed by cleanup")
    save = save_result or partial(save_result_file, out_dir, names=FileNames.of_ledger(ledger))
    known = {task.task_id: task for task in ledger.open_tasks()}
    on_server: set[int] = set()
    for task in await _tagged_tasks(client, ledger.run_id):
        task_id = int(task["id"])
        on_server.add(task_id)
        row = known.get(task_id)
        if row is not None and row.state not in FINAL_STATES:
            await _save_if_finished(
                client, ledger, task, row.line, save=save, report=report, scratch=out_dir
            )
        await _delete(client, ledger if row is not None else None, task_id, report)
    for task_id in set(known) - on_server:
        ledger.task_deleted(task_id)  # the server no longer has it (purged or deleted)
    return report


async def _save_if_finished(
    client: AtlasClient,
    ledger: Ledger,
    task: dict[str, Any],
    line: int,
    *,
    save: ResultSaver,
    report: CleanupReport,
    scratch: Path,
) -> None:
    update = classify(task)
    if update.state in (State.NO_DATA, State.FAILED):
        ledger.task_done(update.task_id, line, update.state, error=update.error_msg)
        return
    if update.state is not State.FINISHED or update.result_url is None:
        ledger.set_state(line, State.CANCELLED, error="removed by cleanup before it finished")
        return
    dest = scratch_dir(scratch) / f"{update.task_id}.part"
    fetched = await fetch_result(client, update.task_id, update.result_url, dest=dest)
    if fetched.body is None or not fetched.rows:
        state = State.NO_DATA if fetched.body is not None else State.FAILED
        error = "No data returned" if fetched.body is not None else fetched.problem
        ledger.task_done(update.task_id, line, state, error=error)
        return
    path = save(ledger.target(line), _take(fetched.body))
    ledger.task_done(update.task_id, line, State.DOWNLOADED, path=path)
    report.downloaded += 1


async def _delete_image_children(
    client: AtlasClient, ledger: Ledger, report: CleanupReport, *, reason: str
) -> None:
    """Image requests carry no tag: the ledger knows them (:mod:`._engine.image_cleanup`)."""
    deleted, refused = await delete_image_children(client, ledger, reason=reason)
    report.deleted += deleted
    report.failed += refused


def _take(body: Body) -> bytes:
    """A checked download's bytes; a scratch copy (a large one spilled to disk) goes."""
    data = body.read()
    body.discard()
    return data


@dataclass(frozen=True, slots=True)
class Orphan:
    """A remote task carrying an atlasbatch tag that no local run knows."""

    task_id: int
    run_id: str
    tag: str
    state: State


async def find_orphans(client: AtlasClient, known_runs: set[str]) -> dict[str, list[Orphan]]:
    """The user's atlasbatch-tagged tasks whose run is unknown here, by run id."""
    found: dict[str, list[Orphan]] = defaultdict(list)
    async for task in client.iter_tasks():
        run_id = run_id_of(task.get("comment"))
        if run_id is not None and run_id not in known_runs:
            state = classify(task).state
            found[run_id].append(Orphan(int(task["id"]), run_id, str(task["comment"]), state))
    return dict(found)
