"""``Session``: the importable API for asyncio code (``fetch_photometry`` for scripts).

async with atlasbatch.Session(token=token) as session:
    async for outcome in session.fetch("targets.csv"):
        print(outcome.target.name, outcome.state, len(outcome.data or []))
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncGenerator
from pathlib import Path

import anyio
import httpx
from anyio.streams.memory import MemoryObjectSendStream

from atlasbatch._api.fetch_options import FetchOptions, TargetSource, folder_of, target_list
from atlasbatch._api.report import RunReport
from atlasbatch._config import Settings
from atlasbatch._engine.identity import check_account
from atlasbatch._engine.pipeline import Pipeline
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import FINAL_STATES, Outcome, State
from atlasbatch._runs.controls import (
    DEFAULT_CONTROL_RADIUS_ARCSEC,
    record_control_setting,
)
from atlasbatch._runs.registry import register_run
from atlasbatch._runs.rundir import open_run, record_targets, refuse_lost_run
from atlasbatch._storage import Saver
from atlasbatch._targets.read import TargetList
from atlasbatch._unwrap import unwrapped

__all__ = ["RunReport", "Session"]  # RunReport: also where it was first defined

log = logging.getLogger(__name__)


class Session:
    """An authenticated connection to the server; runs fetches through one rate limiter.

    ``settings`` carries the base URL and the server's limits (defaults: the real server).
    The token is never logged, printed or shown in a repr. A run that cannot go on (a full
    disk, a damaged ledger, a token of another account than the run's) raises that
    :class:`AtlasBatchError` itself; the same call resumes once the cause is fixed.
    """

    def __init__(
        self,
        *,
        token: str,
        settings: Settings | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self._client = AtlasClient(token=token, settings=self.settings, transport=transport)

    def __repr__(self) -> str:
        return f"Session(base_url={self.settings.base_url!r})"

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.__aexit__(*exc)

    @property
    def client(self) -> AtlasClient:
        """The underlying API client (for single calls: list, read, delete)."""
        return self._client

    def fetch(
        self,
        targets: TargetSource,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = True,
        keep_going: bool = False,
        mjd_min: float | None = None,
        mjd_max: float | None = None,
        use_reduced: bool = False,
        save_result: Saver | None = None,
        controls: int = 0,
        control_radius: float = DEFAULT_CONTROL_RADIUS_ARCSEC,
    ) -> AsyncGenerator[Outcome, None]:
        """Yield one :class:`Outcome` per input row as each target ends.

        With ``out_dir`` the run is durable (a ledger, per-target files) and calling again
        resumes it. Iterate to the end, or wrap in ``contextlib.aclosing`` to stop early.
        ``save_result(target, data)`` stores one result file and returns its path relative
        to ``out_dir`` (default: ``lightcurves/<name>.txt``); an OSError it raises stops
        the run as a :class:`StorageError`, and the task stays on the server.
        ``controls`` adds that many control positions ``control_radius`` arcseconds around
        each RA/Dec target (ATClean's 8 at 17″ is the usual choice); they are fetched in the
        same run and yield outcomes too, with ``Target.control_of`` set. A run directory
        started with controls must be resumed with the same ones.

        Bad options or targets raise :class:`InputError` (or :class:`TargetFileError`) here,
        before anything starts.
        """
        options = FetchOptions(
            out_dir=folder_of(out_dir), keep_data=keep_data, keep_going=keep_going,
            mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced, save_result=save_result,
            controls=controls, control_radius=control_radius,
        )  # fmt: skip
        return self._outcomes(target_list(targets, options), options, left=None)

    async def run(
        self,
        targets: TargetSource,
        *,
        out_dir: str | os.PathLike[str] | None = None,
        keep_data: bool = True,
        keep_going: bool = False,
        mjd_min: float | None = None,
        mjd_max: float | None = None,
        use_reduced: bool = False,
        save_result: Saver | None = None,
        controls: int = 0,
        control_radius: float = DEFAULT_CONTROL_RADIUS_ARCSEC,
    ) -> RunReport:
        """Fetch everything and return the report (outcomes in input order); the options
        are :meth:`fetch`'s."""
        options = FetchOptions(
            out_dir=folder_of(out_dir), keep_data=keep_data, keep_going=keep_going,
            mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced, save_result=save_result,
            controls=controls, control_radius=control_radius,
        )  # fmt: skip
        left: list[int] = []
        fetched: dict[int, float] = {}
        stream = self._outcomes(target_list(targets, options), options, left=left, times=fetched)
        outcomes = [outcome async for outcome in stream]
        outcomes.sort(key=lambda o: o.target.line)
        counts: dict[State, int] = {}
        for outcome in outcomes:
            counts[outcome.state] = counts.get(outcome.state, 0) + 1
        requests = {
            "writes": self._client.writes.granted,
            "reads": self._client.reads.granted,
            "downloads": self._client.downloads,
            "throttled": self._client.writes.throttled + self._client.reads.throttled,
        }
        return RunReport(outcomes=outcomes, counts=counts, requests=requests,
                         tasks_left=sum(left), server=self.settings.base_url,
                         fetched_at=fetched)  # fmt: skip

    async def _outcomes(
        self,
        targets: TargetList,
        options: FetchOptions,
        *,
        left: list[int] | None,
        times: dict[int, float] | None = None,
    ) -> AsyncGenerator[Outcome, None]:
        """The outcomes of one run; appends to ``left`` the tasks it left on the server and
        fills ``times`` with the download times the ledger recorded (when data is kept)."""
        send, receive = anyio.create_memory_object_stream[Outcome](math.inf)
        held = [targets]  # handed over: once in the ledger, the run keeps no Target of its own
        del targets
        with unwrapped():  # the AtlasBatchError that stopped the run, not a task-group error
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._run, held, options, send, left, times)
                async with receive:
                    async for outcome in receive:
                        yield outcome

    async def _run(
        self,
        held: list[TargetList],
        options: FetchOptions,
        send: MemoryObjectSendStream[Outcome],
        left: list[int] | None,
        times: dict[int, float] | None,
    ) -> None:
        out_dir = options.out_dir
        async with send:
            await refuse_lost_run(self._client, out_dir)
            with open_run(out_dir, base_url=self.settings.base_url) as ledger:
                record_control_setting(ledger, options.control_setting())
                record_targets(ledger, held.pop())  # memory flat in the number of targets
                if out_dir is not None:  # so `cleanup --orphans` knows these tasks are not orphans
                    register_run(ledger.run_id, folder=out_dir, server=self.settings.base_url)
                await check_account(self._client, ledger)  # before anything is sent or deleted
                for row in ledger.iter_outcomes():  # rows already final: invalid, or a past run
                    if row.state in FINAL_STATES:
                        await send.send(Outcome(target=row.target, state=row.state,
                                                task_id=row.task_id, error=row.error,
                                                path=row.path))  # fmt: skip
                pipeline = Pipeline(self._client, ledger, out_dir=out_dir,
                                    keep_data=options.keep_data, on_outcome=send.send,
                                    save_result=options.saver(ledger))  # fmt: skip
                mark = ledger.last_event()
                await pipeline.run()
                if times is not None and options.keep_data:
                    _download_times(ledger, mark, times)
                _report_left(ledger.undeleted_count(), out_dir, left)


def _download_times(ledger: Ledger, mark: int, times: dict[int, float]) -> None:
    """Task id -> download time, as the ledger recorded it, of what this call downloaded."""
    upto = ledger.last_event()
    while found := ledger.downloads_after(mark, upto=upto, limit=1000):
        for event, at, row in found:
            mark = event
            if row.task_id is not None:
                times[row.task_id] = at


def _report_left(count: int, out_dir: Path | None, left: list[int] | None) -> None:
    """Say (and count) how many of the run's tasks are still on the server."""
    if count:
        fix = f"`atlasbatch cleanup {out_dir}` removes them" if out_dir else "delete them"
        log.warning("%d task(s) of this run are still on the server: %s", count, fix)
    if left is not None:
        left.append(count)
