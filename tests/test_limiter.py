"""The throttle mirror against a fake clock: exact window arithmetic, priorities, 429s."""

from __future__ import annotations

import anyio
import anyio.lowlevel
import pytest

from atlasbatch._config import Rate
from atlasbatch._limiter import Priority, SlidingWindow

pytestmark = pytest.mark.anyio


class FakeClock:
    """Time that moves only when someone sleeps: the tests take no wall time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await anyio.lowlevel.checkpoint()


def window(rate: Rate, clock: FakeClock, margin: float = 0.0) -> SlidingWindow:
    return SlidingWindow(rate, name="write", margin=margin, clock=clock, sleep=clock.sleep)


def max_in_any_window(stamps: list[float], seconds: float) -> int:
    return max(sum(1 for s in stamps if t - seconds < s <= t) for t in stamps)


async def test_never_more_than_the_limit_in_any_sliding_window() -> None:
    clock = FakeClock()
    limiter = window(Rate(10, 1.0), clock)
    stamps: list[float] = []

    async def worker(count: int) -> None:
        for _ in range(count):
            permit = await limiter.acquire(Priority.SUBMIT)
            stamps.append(permit.stamp)

    async with anyio.create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(worker, 10)
    assert len(stamps) == 30
    assert max_in_any_window(stamps, 1.0) == 10
    # The burst is used whole: 10 at t=0, 10 at t=1, 10 at t=2 (not paced at 0.1 s).
    assert sorted(stamps)[9] == 0.0
    assert sorted(stamps)[29] == pytest.approx(2.0, abs=0.01)


async def test_margin_widens_the_window() -> None:
    clock = FakeClock()
    limiter = window(Rate(2, 1.0), clock, margin=0.5)
    stamps = [(await limiter.acquire()).stamp for _ in range(3)]
    assert stamps[2] == pytest.approx(1.5, abs=0.01)


async def test_submissions_go_before_waiting_deletes() -> None:
    clock = FakeClock()
    limiter = window(Rate(1, 1.0), clock)
    await limiter.acquire(Priority.SUBMIT)  # the window is now full
    order: list[str] = []

    async def take(priority: Priority, label: str) -> None:
        await limiter.acquire(priority)
        order.append(label)

    async with anyio.create_task_group() as tg:
        tg.start_soon(take, Priority.DELETE, "delete")
        await anyio.lowlevel.checkpoint()
        tg.start_soon(take, Priority.SUBMIT, "submit")
    assert order == ["submit", "delete"]


async def test_a_429_closes_the_gate_and_drops_the_refused_stamp() -> None:
    clock = FakeClock()
    limiter = window(Rate(5, 10.0), clock)
    permits = [await limiter.acquire() for _ in range(5)]
    wait = limiter.refused(permits[-1], retry_after=7.0)
    assert wait == 7.0
    assert limiter.in_window() == 4  # the refused request was not counted by the server
    # The server had 5 when ours were 4: one was someone else's, so mirror 4 from now on.
    assert limiter.limit == 4
    nxt = await limiter.acquire()
    assert nxt.stamp == pytest.approx(10.0, abs=0.01)  # not before our own oldest leaves


async def test_the_gate_holds_even_when_our_window_has_room() -> None:
    clock = FakeClock()
    limiter = window(Rate(5, 10.0), clock)
    permit = await limiter.acquire()
    limiter.refused(permit, retry_after=3.0)
    nxt = await limiter.acquire()
    assert nxt.stamp == pytest.approx(3.0, abs=0.01)


async def test_a_429_below_our_count_shrinks_the_limit_then_it_recovers() -> None:
    clock = FakeClock()
    limiter = window(Rate(10, 1.0), clock)
    permits = [await limiter.acquire() for _ in range(4)]
    limiter.refused(permits[-1], retry_after=1.0)  # someone else used 7 of our 10
    assert limiter.limit == 3
    assert limiter.throttled == 1
    for _ in range(20):
        await limiter.acquire()
    assert limiter.limit > 3  # additive increase after quiet windows
    assert limiter.limit <= 10


async def test_a_cancelled_waiter_does_not_block_the_next() -> None:
    clock = FakeClock()
    limiter = window(Rate(1, 1.0), clock)
    await limiter.acquire()
    with anyio.move_on_after(0):
        await limiter.acquire(Priority.SUBMIT)
    permit = await limiter.acquire(Priority.DELETE)
    assert permit.stamp == pytest.approx(1.0, abs=0.01)


async def test_a_request_counts_from_its_answer_not_its_send() -> None:
    """The server stamps on arrival, somewhere before the answer: mirror the later bound."""
    clock = FakeClock()
    limiter = window(Rate(1, 1.0), clock)
    permit = await limiter.acquire()
    clock.now = 0.3  # the answer came back 0.3 s after the send
    limiter.settle(permit)
    nxt = await limiter.acquire()
    assert nxt.stamp == pytest.approx(1.3, abs=0.01)  # not 1.0: arrival may have been at 0.3
