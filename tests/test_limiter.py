"""The throttle mirror against a fake clock: exact window arithmetic, priorities, 429s.

The server side of the longer scenarios is the emulator's clone of DRF's throttle, fed by
hand on the same fake clock: a fake server, so these tests take no wall time.
"""

from __future__ import annotations

import logging
import math
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import anyio
import anyio.lowlevel
import pytest
from httpx import Response

from atlasbatch._config import Rate
from atlasbatch._http.limiter import Permit, Priority, SlidingWindow
from atlasbatch._http.responses import retry_after_seconds
from atlasbatch.testing import Rate as ServerRate
from atlasbatch.testing._state.throttle import SlidingWindowThrottle

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
    for permit in permits:
        limiter.settle(permit)  # all answered: the last one with a 429
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
    for permit in permits:
        limiter.settle(permit)
    limiter.refused(permits[-1], retry_after=1.0)  # someone else used 7 of our 10
    assert limiter.limit == 3
    assert limiter.throttled == 1
    for _ in range(20):
        await limiter.acquire()
    assert limiter.limit == 10  # grown back after quiet windows


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


# --- what the server can make the mirror do: bounded waits, one shrink per event, recovery


def writes(clock: FakeClock) -> SlidingWindow:
    """The real server's write scope with the default margin (window 60.25 s)."""
    return SlidingWindow(Rate(60, 60.0), name="write", margin=0.25, clock=clock, sleep=clock.sleep)


async def answered(limiter: SlidingWindow, count: int) -> list[Permit]:
    """``count`` requests granted and answered (accepted by the server)."""
    permits = [await limiter.acquire(Priority.DELETE) for _ in range(count)]
    for permit in permits:
        limiter.settle(permit)
    return permits


def refuse(limiter: SlidingWindow, permit: Permit, retry_after: float | None) -> float:
    """A 429 as the client records it: the answer is in, then it turns out refused."""
    limiter.settle(permit)
    return limiter.refused(permit, retry_after=retry_after)


async def test_a_huge_retry_after_is_bounded_by_the_window() -> None:
    clock = FakeClock()
    limiter = writes(clock)
    (permit,) = await answered(limiter, 1)
    assert refuse(limiter, permit, 1e9) == pytest.approx(60.25)
    assert limiter.closed_until() == pytest.approx(60.25)
    nxt = await limiter.acquire()
    assert nxt.stamp == pytest.approx(60.25)  # not 1e9 s: DRF never asks for more than D
    assert limiter.closed_until() is None


@pytest.mark.parametrize("odd", [None, math.nan, math.inf, -5.0])
async def test_an_unusable_wait_closes_the_gate_briefly_with_jitter(odd: float | None) -> None:
    waits = set()
    for _ in range(10):
        clock = FakeClock()
        limiter = writes(clock)
        (permit,) = await answered(limiter, 1)
        waits.add(refuse(limiter, permit, odd))
    assert all(2.5 <= wait <= 5.0 for wait in waits), waits
    assert len(waits) > 1  # jittered: clients told nothing do not all return at once


async def test_a_zero_retry_after_still_closes_the_gate() -> None:
    clock = FakeClock()
    limiter = writes(clock)
    (permit,) = await answered(limiter, 1)
    assert refuse(limiter, permit, 0.0) == 1.0  # DRF's least; no tight loop of 429s


def retry_after_response(header: str | None, *, detail: str, date: str | None = None) -> Response:
    headers = {} if header is None else {"Retry-After": header}
    if date is not None:
        headers["Date"] = date
    return Response(429, headers=headers, json={"detail": detail})


SEVEN = "Request was throttled. Expected available in 7 seconds."


@pytest.mark.parametrize(
    ("header", "detail", "expected"),
    [
        ("12", SEVEN, 12.0),
        ("1000000000", SEVEN, 1e9),  # taken as said; the mirror bounds it by the window
        ("-5", SEVEN, 7.0),
        ("nan", SEVEN, 7.0),
        ("inf", SEVEN, 7.0),
        ("", SEVEN, 7.0),
        ("soon", SEVEN, 7.0),
        (None, "Request was throttled. Expected available in 1 second.", 1.0),
        (None, "Request was throttled. Expected available in 2 minutes.", 120.0),
        ("nan", "Request was throttled.", None),
        (None, "Request was throttled.", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", SEVEN, 7.0),  # long past: as odd as negative
    ],
)
def test_retry_after_seconds_header_then_detail(
    header: str | None, detail: str, expected: float | None
) -> None:
    assert retry_after_seconds(retry_after_response(header, detail=detail)) == expected


def test_retry_after_as_an_http_date_counts_from_the_servers_own_date() -> None:
    response = retry_after_response(
        "Wed, 21 Oct 2015 07:28:30 GMT", detail=SEVEN, date="Wed, 21 Oct 2015 07:28:00 GMT"
    )
    assert retry_after_seconds(response) == 30.0


def test_retry_after_as_an_http_date_without_a_date_header_uses_our_clock() -> None:
    soon = datetime.now(UTC) + timedelta(seconds=40)
    response = retry_after_response(format_datetime(soon, usegmt=True), detail=SEVEN)
    assert retry_after_seconds(response) == pytest.approx(40.0, abs=2.0)


async def test_four_429s_in_flight_together_shrink_once(caplog: pytest.LogCaptureFixture) -> None:
    """The other program used 56 of 60; our four parallel deletes all meet a 429."""
    clock = FakeClock()
    limiter = writes(clock)
    await answered(limiter, 4)  # the server counted these four of ours
    clock.now = 1.0
    parallel = [await limiter.acquire(Priority.DELETE) for _ in range(4)]
    caplog.set_level(logging.INFO, logger="atlasbatch._http.limiter")
    for retry_after in (59.0, None, math.nan, 1e9):  # odd values change nothing either
        clock.now += 0.05
        refuse(limiter, parallel.pop(), retry_after)
    assert limiter.throttled == 4
    assert limiter.limit == 4  # what the server let us have: not 60 -> 7 -> 6 -> 5 -> 4
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "another program using this account sent 56 write requests in the last 60 s; "
        "slowing down to 4 per window"
    ]
    closed = limiter.closed_until()
    assert closed is not None
    assert closed <= clock.now + 60.25 + 1e-9  # 1e9 s bounded by the window


async def test_a_later_event_shrinks_again() -> None:
    clock = FakeClock()
    limiter = writes(clock)
    permits = await answered(limiter, 5)
    refuse(limiter, permits[-1], 2.0)
    assert limiter.limit == 4
    clock.now = 61.0  # the gate reopened and our four left the window
    permits = await answered(limiter, 3)
    refuse(limiter, permits[-1], 2.0)  # the other program now holds 58
    assert limiter.limit == 2
    assert limiter.throttled == 2


async def test_the_limit_never_falls_below_one() -> None:
    clock = FakeClock()
    limiter = writes(clock)
    (permit,) = [await limiter.acquire()]
    refuse(limiter, permit, 30.0)  # none of the 60 in the server's window was ours
    assert limiter.limit == 1


async def test_recovery_doubles_per_quiet_window_and_says_when_full(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    limiter = writes(clock)
    (permit,) = [await limiter.acquire()]
    refuse(limiter, permit, 30.0)
    caplog.set_level(logging.INFO, logger="atlasbatch._http.limiter")
    seen = []
    for quiet_windows in range(5):
        clock.now = 30.0 + quiet_windows * 60.25  # counted from when the gate reopened
        seen.append(limiter.limit)
    assert seen == [1, 16, 32, 60, 60]  # doubling, by at least a quarter of the rate
    await limiter.acquire()
    infos = [r.getMessage() for r in caplog.records if r.levelno == logging.INFO]
    assert infos == ["write budget back to full: 60 per 60 s"]


class OtherProgram:
    """Another script of the same user: one write every ``every`` s from 0 until ``stop``."""

    def __init__(self, server: SlidingWindowThrottle, *, every: float, stop: float) -> None:
        self.server = server
        self.every = every
        self.stop = stop
        self.sent = 0

    def catch_up(self, now: float) -> None:
        """Its requests up to ``now`` reach the server (before ours made at ``now``)."""
        while self.sent * self.every <= min(now, self.stop):
            self.server.check(USER, self.sent * self.every)
            self.sent += 1


USER = "same-user"


async def deletes_against(
    limiter: SlidingWindow,
    server: SlidingWindowThrottle,
    other: OtherProgram,
    *,
    clock: FakeClock,
    until: float,
) -> list[tuple[float, int, bool]]:
    """Our deletes, one at a time, through the fake DRF throttle: (time, limit, accepted)."""
    log: list[tuple[float, int, bool]] = []
    for _ in range(100_000):  # bounded: the window lets at most 60 through per 60 s
        if clock() >= until:
            return log
        permit = await limiter.acquire(Priority.DELETE)
        other.catch_up(clock())
        decision = server.check(USER, clock())
        limiter.settle(permit)
        if not decision.accepted:
            limiter.refused(permit, retry_after=decision.retry_after)
        log.append((clock(), limiter.limit, decision.accepted))
    raise AssertionError("the delete loop did not end")


async def test_budget_back_to_full_within_four_windows_after_the_other_program_stops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """1 POST + 1 DELETE a second from another script takes every write slot that frees."""
    clock = FakeClock()
    clock.now = 30.0  # the other program has been running for half a window
    limiter = writes(clock)
    server = SlidingWindowThrottle(ServerRate(60, 60.0))
    stop = 300.0
    other = OtherProgram(server, every=0.5, stop=stop)
    log = await deletes_against(limiter, server, other, clock=clock, until=stop + 6 * 60.25)

    during = [entry for entry in log if entry[0] <= stop]
    assert min(limit for _, limit, _ in during) == 1
    refused = [t for t, _, accepted in log if not accepted]
    # 270 s of a budget taken whole: the gate backs off to two probes a window (12 here),
    # not the one a second DRF's "1 second" would draw
    assert len(refused) <= 16
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    full_again = min(t for t, limit, _ in log if t >= stop and limit == 60)
    assert full_again <= stop + 4 * 60.25
    since = [t for t, _, accepted in log if accepted and t >= full_again]
    assert max_in_any_window(since, 60.0) == 60  # and the whole budget is really used again
