"""The budget store: one account's stamps shared by processes, claimed atomically.

Windows on one file stand in for processes on a fake clock (instant); real processes
check what only they can: atomic claims, a kill -9 with claims or a transaction open.
"""

from __future__ import annotations

import logging
import os
import signal
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from atlasbatch._config import Rate
from atlasbatch._http.budget_file import account_key, budget_path
from atlasbatch._http.budget_store import BudgetStore, shared_budget
from atlasbatch._http.limiter import Priority, SlidingWindow

from .test_limiter import FakeClock, max_in_any_window

pytestmark = pytest.mark.anyio

ACCOUNT = "acct"
TOKEN = "0123456789abcdef0123456789abcdef01234567"


def stores(path: Path, clock: FakeClock, count: int = 2) -> list[BudgetStore]:
    """``count`` connections to one file: as many processes, on one (fake) wall clock."""
    return [BudgetStore(path, account=ACCOUNT, clock=clock) for _ in range(count)]


def window_on(store: BudgetStore, clock: FakeClock, rate: Rate) -> SlidingWindow:
    return SlidingWindow(
        rate, name="write", margin=0.0, clock=clock, sleep=clock.sleep, store=store
    )


# --- windows of several processes on one file (fake clock) -------------------------------


async def test_processes_on_one_file_never_exceed_the_limit_together(tmp_path: Path) -> None:
    clock = FakeClock()
    windows = [window_on(s, clock, Rate(10, 1.0)) for s in stores(tmp_path / "b.db", clock)]
    stamps: list[float] = []

    async def worker(limiter: SlidingWindow, count: int) -> None:
        for _ in range(count):
            stamps.append((await limiter.acquire(Priority.DELETE)).stamp)

    async with anyio.create_task_group() as tg:
        for limiter in windows:
            for _ in range(2):
                tg.start_soon(worker, limiter, 10)
    assert len(stamps) == 40
    assert max_in_any_window(stamps, 1.0) == 10  # 10, not 2 x 10
    assert sorted(stamps)[9] == 0.0  # and the burst is still used whole
    assert sorted(stamps)[39] == pytest.approx(3.0, abs=0.01)
    assert windows[0].in_window() == windows[1].in_window() == 10  # each sees the other's


async def test_a_slot_waits_for_the_other_process_s_answer_time(tmp_path: Path) -> None:
    clock = FakeClock()
    first, second = (window_on(s, clock, Rate(1, 1.0)) for s in stores(tmp_path / "b.db", clock))
    permit = await first.acquire()
    clock.now = 0.3  # its answer came back 0.3 s after the send
    first.settle(permit)
    assert (await second.acquire()).stamp == pytest.approx(1.3, abs=0.01)


async def test_a_429_blames_only_requests_no_atlasbatch_process_sent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ours are both processes' 50: the server's 60 leave 10 to another program."""
    clock = FakeClock()
    first, second = (window_on(s, clock, Rate(60, 60.0)) for s in stores(tmp_path / "b.db", clock))
    for limiter, count in ((first, 30), (second, 20)):
        for _ in range(count):
            limiter.settle(await limiter.acquire())
    refused = await second.acquire()
    second.settle(refused)
    caplog.set_level(logging.WARNING, logger="atlasbatch._http.limiter")
    second.refused(refused, retry_after=5.0)
    assert second.limit == 50
    assert first.limit == 60  # the gate and the shrunk limit stay with the process that saw it
    assert [r.getMessage() for r in caplog.records] == [
        "another program using this account sent 10 write requests in the last 60 s; "
        "slowing down to 50 per window"
    ]
    assert first.in_window() == 50  # the refused request was dropped from the shared file


def test_claims_of_a_process_that_never_answers_age_out_within_one_window(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    gone, alive = stores(tmp_path / "b.db", clock)
    assert all(gone.claim("write", limit=3, span=2.0).claim is not None for _ in range(3))
    gone.close()  # killed with three requests in flight: never settled
    clock.now = 0.5
    grant = alive.claim("write", limit=3, span=2.0)
    assert grant.claim is None
    assert grant.wait == pytest.approx(1.5)  # the rest of one window, no more
    clock.now = 2.0 + 1e-6
    assert alive.claim("write", limit=3, span=2.0).claim is not None


def test_a_request_slower_than_the_window_counts_from_its_answer(tmp_path: Path) -> None:
    clock = FakeClock()
    slow, other = stores(tmp_path / "b.db", clock)
    claim = slow.claim("write", limit=1, span=1.0).claim
    assert claim is not None
    clock.now = 5.0
    assert other.claim("write", limit=5, span=1.0).claim is not None  # prunes the old claim
    slow.settle("write", claim)  # answered at last: the server counted it by now
    assert other.count("write", span=1.0).total == 2
    assert other.count("write", span=1.0).answered == 1


def test_a_wall_clock_set_back_holds_a_slot_for_one_window_at_most(tmp_path: Path) -> None:
    clock = FakeClock()
    clock.now = 1000.0
    (store,) = stores(tmp_path / "b.db", clock, count=1)
    assert store.claim("write", limit=1, span=2.0).claim is not None
    clock.now = 0.0  # set back by 1000 s: the stamp now lies in the future
    assert store.claim("write", limit=1, span=2.0).wait == pytest.approx(2.0)


def test_scopes_and_accounts_are_separate(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "b.db"
    mine = BudgetStore(path, account=ACCOUNT, clock=clock)
    other = BudgetStore(path, account="someone else", clock=clock)
    assert mine.claim("write", limit=1, span=9.0).claim is not None
    assert mine.claim("write", limit=1, span=9.0).claim is None
    assert mine.claim("read", limit=1, span=9.0).claim is not None
    assert other.claim("write", limit=1, span=9.0).claim is not None


# --- the file: where, what it holds, what if it cannot be used ----------------------------


def test_the_account_is_the_server_and_token_hashed() -> None:
    key = account_key("https://fallingstar-data.com/forcedphot", TOKEN)
    assert key == account_key("HTTPS://Fallingstar-Data.com:443/forcedphot/", TOKEN)
    assert key != account_key("https://fallingstar-data.com/forcedphot", TOKEN[::-1])
    assert key != account_key("http://127.0.0.1:8000/forcedphot", TOKEN)


def test_the_shared_file_is_private_and_never_holds_the_token(private_config_dir: Path) -> None:
    store = shared_budget("https://fallingstar-data.com/forcedphot", token=TOKEN)
    claim = store.claim("write", limit=60, span=60.25).claim
    assert claim is not None
    store.settle("write", claim)
    store.close()
    path = budget_path()
    assert path.parent == private_config_dir
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for written in path.parent.glob("budget.sqlite3*"):  # the database, its WAL and index
        data = written.read_bytes()
        assert TOKEN.encode() not in data and TOKEN[:10].encode() not in data


def test_a_damaged_file_is_started_afresh(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "b.db"
    path.write_bytes(b"not a database at all\n" * 100)
    caplog.set_level(logging.INFO, logger="atlasbatch._http.budget_store")
    store = BudgetStore(path, account=ACCOUNT)
    assert store.shared
    assert store.claim("write", limit=1, span=1.0).claim is not None
    assert [r.levelno for r in caplog.records] == [logging.INFO]


def test_an_unusable_folder_means_counting_alone_after_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "config"
    blocker.write_text("a file where the folder should be")
    caplog.set_level(logging.INFO, logger="atlasbatch._http.budget_store")
    store = BudgetStore(blocker / "b.db", account=ACCOUNT)
    assert not store.shared
    assert store.claim("write", limit=1, span=9.0).claim is not None
    assert store.claim("write", limit=1, span=9.0).claim is None  # still a mirror, in memory
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1
    assert warnings[0].startswith("cannot use the request budget shared with other atlasbatch")


# --- real processes -------------------------------------------------------------------------


def python(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


CLAIMER = """
    import sys, time
    from pathlib import Path
    from atlasbatch._http.budget_store import BudgetStore

    path, go, limit = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
    store = BudgetStore(path, account="acct")
    for _ in range(10_000):  # all start together: bounded wait for the signal
        if go.exists():
            break
        time.sleep(0.001)
    taken = sum(store.claim("write", limit=limit, span=3600.0).claim is not None
                for _ in range(limit))
    print(taken)
"""


def test_a_slot_is_taken_by_exactly_one_process(tmp_path: Path) -> None:
    path, go, limit = tmp_path / "b.db", tmp_path / "go", 150
    BudgetStore(path, account=ACCOUNT).close()  # the schema, before they race
    children = [python(CLAIMER, str(path), str(go), str(limit)) for _ in range(4)]
    go.touch()
    taken = []
    for child in children:
        out, err = child.communicate(timeout=60)
        assert child.returncode == 0, err
        taken.append(int(out))
    assert sum(taken) == limit  # every slot once: none lost, none taken twice
    assert BudgetStore(path, account=ACCOUNT).count("write", span=3600.0).total == limit


KILLED_WITH_CLAIMS = """
    import os, signal, sys
    from pathlib import Path
    from atlasbatch._http.budget_store import BudgetStore

    store = BudgetStore(Path(sys.argv[1]), account="acct")
    for _ in range(3):
        assert store.claim("write", limit=3, span=5.0).claim is not None
    os.kill(os.getpid(), signal.SIGKILL)  # three requests in flight, never answered
"""


def test_claims_of_a_killed_process_hold_their_slots_for_one_window_at_most(
    tmp_path: Path,
) -> None:
    path = tmp_path / "b.db"
    child = python(KILLED_WITH_CLAIMS, str(path))
    _, err = child.communicate(timeout=60)
    assert child.returncode == -signal.SIGKILL, err
    now = BudgetStore(path, account=ACCOUNT)
    grant = now.claim("write", limit=3, span=5.0)
    assert grant.claim is None  # honoured: those requests may have reached the server ...
    assert 0.0 < grant.wait <= 5.0  # ... for the rest of their window, no longer
    later = BudgetStore(path, account=ACCOUNT, clock=lambda: now._clock() + 5.0)
    assert later.claim("write", limit=3, span=5.0).claim is not None


HOLDS_THE_LOCK = """
    import sqlite3, sys, time
    db = sqlite3.connect(sys.argv[1], isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_process_killed_inside_a_transaction_leaves_no_lock_behind(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "b.db"
    BudgetStore(path, account=ACCOUNT).close()
    child = python(HOLDS_THE_LOCK, str(path))
    try:
        assert child.stdout is not None and child.stdout.readline() == "locked\n"
        caplog.set_level(logging.WARNING, logger="atlasbatch._http.budget_store")
        blocked = BudgetStore(path, account=ACCOUNT, timeout=0.1)
        assert not blocked.shared  # the lock is real: this one gave up and counts alone
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.communicate(timeout=30)
    after = BudgetStore(path, account=ACCOUNT, timeout=5.0)
    assert after.shared
    assert after.claim("write", limit=1, span=1.0).claim is not None
    assert len(caplog.records) == 1  # only the blocked one warned
