"""The throttle mirror: a client-side copy of the server's sliding-window budgets.

DRF's ``SimpleRateThrottle`` keeps, per user and scope, the times of the requests it
*accepted* in the last D seconds and refuses a request when N of them are there. A leaky
bucket (aiolimiter) admits up to 2N-1 requests in one such window, so the writes are
mirrored exactly instead: we keep our own list of request times and let a request go only
while fewer than N lie in the window. The server stamps a request when it *arrives*, which
we cannot see, but it lies between our send and the answer: each request is stamped with
its send time while in flight and moved to the time its answer came back (``settle``), so
network jitter can never squeeze one request too many into the server's window.

On a 429 the server's word wins: the gate closes for ``Retry-After`` seconds and, if the
server counted more than we sent (another script of the same user), the limit shrinks to
what we really had in the window and grows back by one request per quiet window.

Waiters are served by priority (submissions before reads before deletes), FIFO within one.
The clock and sleep are injectable so tests run instantly.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

import anyio

from atlasbatch._config import Rate

__all__ = ["Permit", "Priority", "SlidingWindow"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Priority(IntEnum):
    """Lower goes first. Deletes free no queue slot, so they take what is left."""

    SUBMIT = 0
    READ = 1
    DELETE = 2


@dataclass(eq=False)
class Permit:
    """One granted request: :meth:`SlidingWindow.settle` it when its answer is in, or
    :meth:`SlidingWindow.refused` on a 429."""

    stamp: float


@dataclass(order=True)
class _Ticket:
    priority: int
    seq: int
    turn: anyio.Event = field(compare=False, default_factory=anyio.Event)


class SlidingWindow:
    """Mirror of one DRF throttle scope (``name`` is "write" or "read")."""

    def __init__(
        self,
        rate: Rate,
        *,
        name: str,
        margin: float = 0.25,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
    ) -> None:
        self.name = name
        self.rate = rate
        self.limit = rate.requests
        self._span = rate.seconds + margin
        self._clock = clock
        self._sleep = sleep
        self._stamps: list[float] = []  # sorted; at most N + in-flight entries
        self._waiters: list[_Ticket] = []
        self._seq = itertools.count()
        self._gate_until = 0.0
        self._last_throttle = -float("inf")
        self.granted = 0
        self.throttled = 0

    def in_window(self) -> int:
        """Requests of ours the server still counts now."""
        self._expire(self._clock())
        return len(self._stamps)

    async def acquire(self, priority: Priority = Priority.READ) -> Permit:
        """Wait for a slot in the window, then claim it; the request must go out at once."""
        ticket = _Ticket(int(priority), next(self._seq))
        heapq.heappush(self._waiters, ticket)
        if self._waiters[0] is ticket:
            ticket.turn.set()
        try:
            while True:
                await ticket.turn.wait()
                if self._waiters[0] is not ticket:  # a more urgent waiter arrived meanwhile
                    ticket.turn = anyio.Event()
                    continue
                delay = self._delay(self._clock())
                if delay <= 0:
                    return self._grant(ticket)
                await self._sleep(delay)
        except BaseException:
            self._forget(ticket)
            raise

    def settle(self, permit: Permit) -> None:
        """The answer to ``permit``'s request is in: the server counted it no later than now."""
        self._drop(permit)
        permit.stamp = self._clock()
        bisect.insort(self._stamps, permit.stamp)

    def refused(self, permit: Permit, *, retry_after: float | None) -> float:
        """Record a 429 for ``permit``; return how long this scope is now closed.

        The server does not count a refused request, so its stamp is dropped. If we had
        fewer than ``limit`` requests in the window, someone else used the rest: shrink.
        """
        now = self._clock()
        self.throttled += 1
        self._drop(permit)
        ours = self.in_window()
        if ours < self.limit:
            log.warning(
                "%s budget: server counted more than our %d requests; limit %d -> %d",
                self.name,
                ours,
                self.limit,
                max(1, ours),
            )
            self.limit = max(1, ours)
        wait = retry_after if retry_after is not None else min(self.rate.seconds, 5.0)
        self._gate_until = max(self._gate_until, now + wait)
        self._last_throttle = now
        self._wake_head()
        return wait

    def _grant(self, ticket: _Ticket) -> Permit:
        heapq.heappop(self._waiters)
        now = self._clock()
        bisect.insort(self._stamps, now)
        self.granted += 1
        self._wake_head()
        return Permit(now)

    def _delay(self, now: float) -> float:
        """Seconds until one more request fits (0 if it fits now)."""
        self._expire(now)
        self._recover(now)
        gate = self._gate_until - now
        if len(self._stamps) < self.limit:
            return max(gate, 0.0)
        oldest_leaves = self._stamps[len(self._stamps) - self.limit] + self._span - now
        return max(gate, oldest_leaves, 1e-3)

    def _recover(self, now: float) -> None:
        """Grow a shrunken limit back by one per quiet window (additive increase)."""
        if self.limit < self.rate.requests and now - self._last_throttle >= self._span:
            self.limit += 1
            self._last_throttle = now

    def _expire(self, now: float) -> None:
        expired = bisect.bisect_right(self._stamps, now - self._span)
        del self._stamps[:expired]

    def _drop(self, permit: Permit) -> None:
        with contextlib.suppress(ValueError):  # already expired from the window
            self._stamps.remove(permit.stamp)

    def _forget(self, ticket: _Ticket) -> None:
        was_head = bool(self._waiters) and self._waiters[0] is ticket
        if ticket in self._waiters:
            self._waiters.remove(ticket)
            heapq.heapify(self._waiters)
        if was_head:
            self._wake_head()

    def _wake_head(self) -> None:
        if self._waiters:
            self._waiters[0].turn.set()
