"""The pending queue: lines and window codes in send order, Targets read when sent.

What the submitter relies on: a batch is the first waiting query's window, gathered from
the whole queue in input order; requeued queries go after those already waiting; a line is
never waiting twice; and a run's start holds a few bytes per pending query, not a Target.
"""

from __future__ import annotations

import tracemalloc
from collections import Counter
from pathlib import Path

import pytest

from atlasbatch._config import Settings
from atlasbatch._engine.book import Book
from atlasbatch._engine.line_states import LineStates
from atlasbatch._engine.pending import Pending
from atlasbatch._engine.submitter import BACKLOG, Submitter
from atlasbatch._http.client import AtlasClient
from atlasbatch._ledger.control_lines import control_line
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target


def _target(line: int, mjd_min: float = 60000.0) -> Target:
    return Target(line=line, name=f"t{line}", ra=line * 0.01, dec=10.0, mjd_min=mjd_min)


def test_a_batch_is_the_first_window_gathered_from_the_whole_queue() -> None:
    pending = Pending()
    # windows alternate, and the first window comes back far beyond one search step
    pending.load([_target(line, 60000.0 + line % 2) for line in range(2, 10_002)])
    assert len(pending) == 10_000
    assert pending.batch(3) == [2, 4, 6]
    for line in range(2, 10_002, 2):  # send every even line: only odd ones wait
        pending.remove(line)
    assert pending.batch(3) == [3, 5, 7]
    assert len(pending) == 5_000 and 4 not in pending and 5 in pending


def test_requeued_queries_wait_behind_the_others_and_never_twice() -> None:
    pending = Pending()
    pending.load([_target(line) for line in (2, 3, 4, 5)])
    for line in (2, 3):
        pending.remove(line)
    pending.extend([_target(3), _target(2), _target(4)])  # 4 is still waiting: not again
    assert list(pending) == [4, 5, 3, 2]
    assert pending.batch(10) == [4, 5, 3, 2]
    pending.remove(3)
    pending.extend([_target(3)])  # requeued a second time
    assert list(pending) == [4, 5, 2, 3] and len(pending) == 4


def test_only_the_ledger_order_can_be_loaded() -> None:
    with pytest.raises(ValueError, match="line 3 is not after line 5"):
        Pending().load([_target(5), _target(3)])


def test_a_run_start_holds_no_target_per_pending_query(tmp_path: Path) -> None:
    count = 20_000
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    ledger.add_targets([_target(line) for line in range(2, count + 2)], {})
    book = Book()
    tracemalloc.start()
    try:
        book.load(ledger)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(book.pending) == count
    # the state per line (a dict) and 12 bytes a query; a Target each was ~500 bytes
    assert peak / count < 250, f"{peak / count:.0f} bytes per pending query at the peak"
    lines = book.pending.batch(100)
    assert lines == list(range(2, 102))
    assert [t.name for t in ledger.queries_at(lines[:3])] == ["t2", "t3", "t4"]


def test_the_rows_per_state_follow_every_change(tmp_path: Path) -> None:
    """Counted as states change (a live display asks four times a second), duplicates
    with their representative, as a count from scratch gives them."""
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    ledger.add_targets([_target(line) for line in range(2, 12)], {5: 2, 6: 2, 11: 9})
    book = Book()
    book.load(ledger)

    def recount() -> dict[State, int]:
        counts: Counter[State] = Counter()
        for line, state in book.state.items():
            counts[state] += 1 + len(book.members.get(line, ()))
        return {state: n for state, n in counts.items() if n}

    assert book.counts() == recount() == {State.PENDING: 10}
    book.set(2, State.QUEUED)
    book.set(9, State.DOWNLOADED)
    book.set(3, State.NO_DATA)
    book.set(2, State.FAILED)
    assert book.counts() == recount() == {State.PENDING: 4, State.FAILED: 3,
                                          State.DOWNLOADED: 2, State.NO_DATA: 1}  # fmt: skip


def test_a_state_per_line_costs_a_byte_not_a_dict_entry() -> None:
    states = LineStates()
    tracemalloc.start()
    try:
        for line in range(2, 100_002):
            states[line] = State.PENDING
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 2 * 100_000, held  # a dict held ~80 bytes a line
    control = control_line(7, 3)
    states[control] = State.QUEUED
    states[5] = State.DOWNLOADED
    states[5] = State.FAILED  # a line set again is still one line
    assert len(list(states.items())) == 100_001
    assert states.get(5) is State.FAILED and states.get(control) is State.QUEUED
    assert states.get(0) is None and states.get(200_000) is None
    assert states.get(control_line(7, 4)) is None
    assert list(states.items())[:2] == [(2, State.PENDING), (3, State.PENDING)]
    assert list(states.items())[-1] == (control, State.QUEUED)


@pytest.mark.anyio
async def test_sending_waits_for_the_backlog_but_not_for_the_image_stage(tmp_path: Path) -> None:
    """Settled tasks not yet deleted hold back new batches once there are BACKLOG of them;
    those the image stage holds (minutes each, at the server's image pace) do not."""
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    ledger.add_targets([_target(line) for line in range(2, 12)], {})
    book = Book()
    book.load(ledger)
    settings = Settings(base_url="http://127.0.0.1:9/forcedphot", batch_size=5)
    async with AtlasClient(token="emulator-token-0000", settings=settings) as client:

        async def refused(target: Target, why: str) -> None:
            raise AssertionError(why)

        sender = Submitter(client, ledger, book, notify=lambda: None, on_refused=refused)
        book.undeleted.update(range(100, 100 + BACKLOG))  # settled, awaiting their DELETE
        assert sender.next_batch() is None
        book.images = 1  # one of them is the image stage's
        batch = sender.next_batch()
        assert batch is not None and [t.line for t in batch] == [2, 3, 4, 5, 6]
        book.waiting[100] = 2  # or one of them still waits to run
        book.images = 0
        assert sender.next_batch() is not None
