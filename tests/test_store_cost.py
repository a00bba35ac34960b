"""Storing results in groups (one worker-thread call, one folder fsync) keeps the order that
makes a run durable: a task is DELETEd only after its file and its ledger row are committed.

The run goes over loopback against the emulator; the outcome handler (called after the
ledger commit, before the DELETE is queued) looks at the disk and at the ledger through a
connection of its own, and stamps the emulator's clock, which also stamps each DELETE.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest

from atlasbatch import State, StorageError
from atlasbatch._engine.downloads import StoreGroups, _Stored
from atlasbatch._engine.pipeline import Pipeline
from atlasbatch._http.client import AtlasClient
from atlasbatch._http.streaming import Body
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Outcome, Target
from atlasbatch._outputs.atomic import write_atomic
from atlasbatch._runs.rundir import LEDGER_NAME
from atlasbatch.testing import Emulator

from .helpers import client_settings, fast

pytestmark = pytest.mark.anyio

Factory = Callable[..., Emulator]
COUNT = 40


def targets(count: int) -> list[Target]:
    """Distinct positions with an MJD window that has data for each."""
    return [target(i) for i in range(count)]


def target(i: int) -> Target:
    return Target(line=i + 2, name=f"t{i:03d}", ra=round(i * 0.1, 6), dec=10.0,
                  mjd_min=58000.0, mjd_max=58200.0)  # fmt: skip


def deletes_seen(emu: Emulator) -> dict[int, float]:
    """Task id -> when the emulator answered its DELETE with success."""
    seen = {}
    for record in emu.requests():
        found = re.search(r"/queue/(\d+)/?$", record.path)
        if record.method == "DELETE" and found and record.status in (200, 204):
            seen[int(found.group(1))] = record.time
    return seen


async def test_no_delete_reaches_the_server_before_its_file_and_ledger_row_are_stored(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01, user_slots=8))
    ledger = Ledger(tmp_path / LEDGER_NAME)
    ledger.bind_server(emu.base_url)
    ledger.add_targets(targets(COUNT), duplicate_of={})
    reader = sqlite3.connect(tmp_path / LEDGER_NAME)  # sees only what is committed
    stored_at: dict[int, float] = {}

    async def check(outcome: Outcome) -> None:
        assert outcome.state is State.DOWNLOADED and outcome.task_id is not None
        path = tmp_path / str(outcome.path)
        assert path.read_bytes().startswith(b"###")
        assert not list(path.parent.glob(f".{path.name}.*.tmp"))  # renamed, not in flight
        row = reader.execute(
            "SELECT state, path FROM targets WHERE line = ?", (outcome.target.line,)
        ).fetchone()
        assert row == ("downloaded", outcome.path)
        stored_at[outcome.task_id] = emu.now()

    try:
        async with AtlasClient(token=emu.token, settings=client_settings(emu)) as client:
            pipeline = Pipeline(client, ledger, out_dir=tmp_path, on_outcome=check)
            with anyio.fail_after(60):
                await pipeline.run()
    finally:
        reader.close()
        ledger.close()

    deleted = deletes_seen(emu)
    assert len(stored_at) == COUNT
    assert deleted.keys() == stored_at.keys()
    assert all(deleted[task] >= stored_at[task] for task in stored_at)
    assert emu.stats()["tasks_live"] == 0


class Disk:
    """A saver that writes for real and can refuse one name (a fake of a failing disk)."""

    def __init__(self, out: Path, *, refuse: str | None = None) -> None:
        self.out, self.refuse = out, refuse
        self.saved: list[str] = []

    def __call__(self, target: Target, data: bytes) -> str:
        path = self.out / f"{target.name}.txt"
        if target.name == self.refuse:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        write_atomic(path, data)
        self.saved.append(target.name)
        return path.name


class Settled:
    """The settle callback of a fake pipeline: what was settled, and with which path."""

    def __init__(self) -> None:
        self.paths: dict[int, str | None] = {}

    async def __call__(
        self, task_id: int, line: int, state: State, *, path: str | None = None, **_: object
    ) -> None:
        assert state is State.DOWNLOADED
        self.paths[task_id] = path


def hand_in(groups: StoreGroups, count: int) -> None:
    """``count`` checked downloads handed in by the workers (task id = line)."""
    for target in targets(count):
        groups.hand_in(_Stored(target.line, target, Body(size=4, data=b"###\n"), None))


async def test_results_handed_in_together_are_stored_in_one_call_then_settled(
    tmp_path: Path,
) -> None:
    disk, settled = Disk(tmp_path), Settled()
    groups = StoreGroups(disk, folder=tmp_path, settle=settled, gather=0.0)
    hand_in(groups, 6)
    await groups.lead()
    assert groups.groups == 1
    assert settled.paths == {i + 2: f"t{i:03d}.txt" for i in range(6)}
    assert sorted(os.listdir(tmp_path)) == [f"t{i:03d}.txt" for i in range(6)]  # no temp left


async def test_a_group_that_fails_to_store_stops_the_run_and_settles_none_of_it(
    tmp_path: Path,
) -> None:
    disk, settled = Disk(tmp_path, refuse="t003"), Settled()
    groups = StoreGroups(disk, folder=tmp_path, settle=settled, gather=0.0)
    hand_in(groups, 6)
    with pytest.raises(StorageError, match="disk is full"):
        await groups.lead()
    assert settled.paths == {}  # so none of the group's tasks is deleted on the server
    assert disk.saved == ["t000", "t001", "t002"]  # stored, and fetched again on resume
