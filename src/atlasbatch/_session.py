"""The importable API: ``Session`` for asyncio code, ``fetch_photometry`` for scripts.

async with atlasbatch.Session(token=token) as session:
    async for outcome in session.fetch("targets.csv"):
        print(outcome.target.name, outcome.state, len(outcome.data or []))
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import AsyncGenerator, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
import httpx
import pandas as pd
from anyio.streams.memory import MemoryObjectSendStream

from atlasbatch._client import AtlasClient
from atlasbatch._config import Settings
from atlasbatch._controls import (
    DEFAULT_CONTROL_RADIUS_ARCSEC,
    ControlSetting,
    record_control_setting,
    with_controls,
)
from atlasbatch._exceptions import InputError
from atlasbatch._fetcher import save_result_file
from atlasbatch._filenames import FileNames
from atlasbatch._identity import check_account
from atlasbatch._ledger import Ledger
from atlasbatch._models import FINAL_STATES, Outcome, State
from atlasbatch._nightly_options import NightlyOptions
from atlasbatch._pipeline import Pipeline
from atlasbatch._registry import register_run
from atlasbatch._rundir import open_run, record_targets, refuse_lost_run
from atlasbatch._storage import Saver, guard_saver
from atlasbatch._targets import TargetList, read_targets
from atlasbatch._unwrap import unwrapped

__all__ = ["RunReport", "Session", "TargetSource", "fetch_photometry"]

log = logging.getLogger(__name__)

TargetSource = str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, object]] | TargetList


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything a finished run produced: one outcome per input row, and the light curves."""

    outcomes: list[Outcome]
    counts: dict[State, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    #: Remote tasks of the run still on the server (their DELETE kept failing); with an
    #: ``out_dir``, ``atlasbatch cleanup DIR`` removes them.
    tasks_left: int = 0

    @property
    def photometry(self) -> pd.DataFrame:
        """All downloaded light curves in one table, with a ``target`` column first."""
        frames = [o.data.assign(target=o.target.name) for o in self.outcomes if o.data is not None]
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        return table[["target", *[c for c in table.columns if c != "target"]]]

    @property
    def ok(self) -> bool:
        """True when every row ended downloaded or no_data."""
        return all(o.ok for o in self.outcomes)

    def nightly(self, options: NightlyOptions | None = None) -> pd.DataFrame:
        """One row per target, filter and night: the cut, clipped, weighted mean flux
        (``photometry_nightly.parquet``'s table; :mod:`atlasbatch._nightly`), from the light
        curves held in memory (``keep_data``); targets are judged by their controls' light
        curves when the run had ``controls``."""
        from atlasbatch._nightly_outputs import outcomes_nightly  # noqa: PLC0415

        return outcomes_nightly(self.outcomes, options or NightlyOptions())


def _as_target_list(source: TargetSource, **options: Any) -> TargetList:
    return source if isinstance(source, TargetList) else read_targets(source, **options)


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
        """
        options = _Options(
            out_dir=None if out_dir is None else Path(out_dir), keep_data=keep_data,
            keep_going=keep_going, mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced,
            save_result=save_result, controls=controls, control_radius=control_radius,
        )  # fmt: skip
        return self._outcomes(targets, options, left=None)

    async def run(self, targets: TargetSource, **options: Any) -> RunReport:
        """Fetch everything and return the report (outcomes in input order)."""
        left: list[int] = []
        stream = self._outcomes(targets, _Options(**_paths(options)), left=left)
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
        return RunReport(outcomes=outcomes, counts=counts, requests=requests, tasks_left=sum(left))

    async def _outcomes(
        self, targets: TargetSource, options: _Options, *, left: list[int] | None
    ) -> AsyncGenerator[Outcome, None]:
        """The outcomes of one run; appends to ``left`` the tasks it left on the server."""
        target_list = _as_target_list(
            targets, mjd_min=options.mjd_min, mjd_max=options.mjd_max,
            use_reduced=options.use_reduced, keep_going=options.keep_going,
        )  # fmt: skip
        target_list = with_controls(target_list, options.control_setting())
        send, receive = anyio.create_memory_object_stream[Outcome](math.inf)
        with unwrapped():  # the AtlasBatchError that stopped the run, not a task-group error
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._run, target_list, options, send, left)
                async with receive:
                    async for outcome in receive:
                        yield outcome

    async def _run(
        self,
        targets: TargetList,
        options: _Options,
        send: MemoryObjectSendStream[Outcome],
        left: list[int] | None,
    ) -> None:
        out_dir = options.out_dir
        async with send:
            await refuse_lost_run(self._client, out_dir)
            with open_run(out_dir, base_url=self.settings.base_url) as ledger:
                record_control_setting(ledger, options.control_setting())
                record_targets(ledger, targets)
                if out_dir is not None:  # so `cleanup --orphans` knows these tasks are not orphans
                    register_run(ledger.run_id, folder=out_dir, server=self.settings.base_url)
                await check_account(self._client, ledger)  # before anything is sent or deleted
                for row in ledger.outcomes():  # rows already final: invalid, or a past run
                    if row.state in FINAL_STATES:
                        await send.send(Outcome(target=row.target, state=row.state,
                                                task_id=row.task_id, error=row.error,
                                                path=row.path))  # fmt: skip
                pipeline = Pipeline(self._client, ledger, out_dir=out_dir,
                                    keep_data=options.keep_data, on_outcome=send.send,
                                    save_result=options.saver(ledger))  # fmt: skip
                await pipeline.run()
                _report_left(ledger.undeleted_count(), out_dir, left)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Options:
    """The options of one :meth:`Session.fetch`."""

    out_dir: Path | None = None
    keep_data: bool = True
    keep_going: bool = False
    mjd_min: float | None = None
    mjd_max: float | None = None
    use_reduced: bool = False
    save_result: Saver | None = None
    controls: int = 0
    control_radius: float = DEFAULT_CONTROL_RADIUS_ARCSEC

    def control_setting(self) -> ControlSetting:
        """The control positions asked for (raises InputError for impossible ones)."""
        return ControlSetting(count=self.controls, radius_arcsec=self.control_radius)

    def saver(self, ledger: Ledger) -> Saver | None:
        """The result saver of ``ledger``'s run, its OSErrors (disk full, read-only) raised
        as StorageError."""
        folder = self.out_dir
        if self.save_result is not None:
            return guard_saver(self.save_result, folder=folder)
        if folder is None:
            return None
        names = FileNames.of_ledger(ledger)  # one file per target, even on macOS
        return guard_saver(partial(save_result_file, folder, names=names), folder=folder)


def _paths(options: dict[str, Any]) -> dict[str, Any]:
    """``run``'s keyword options with ``out_dir`` as a Path."""
    out_dir = options.get("out_dir")
    return {**options, "out_dir": None if out_dir is None else Path(out_dir)}


def _report_left(count: int, out_dir: Path | None, left: list[int] | None) -> None:
    """Say (and count) how many of the run's tasks are still on the server."""
    if count:
        fix = f"`atlasbatch cleanup {out_dir}` removes them" if out_dir else "delete them"
        log.warning("%d task(s) of this run are still on the server: %s", count, fix)
    if left is not None:
        left.append(count)


def fetch_photometry(targets: TargetSource, *, token: str, **options: Any) -> RunReport:
    """Synchronous one-call helper for scripts: fetch ``targets`` and return the report.

    ``options`` are :meth:`Session.fetch`'s, plus ``settings``.
    """
    settings = options.pop("settings", None)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the normal case for a script
    else:
        raise InputError(
            "fetch_photometry() cannot run inside an event loop (a notebook has one): "
            "use `async with Session(token=...) as s: report = await s.run(targets)`"
        )

    async def main() -> RunReport:
        async with Session(token=token, settings=settings) as session:
            return await session.run(targets, **options)

    return anyio.run(main)
