"""The throttle mirror: a client-side copy of the server's sliding-window budgets.

DRF's ``SimpleRateThrottle`` keeps, per user and scope, the times of the requests it
*accepted* in the last D seconds and refuses a request when N of them are there. A leaky
bucket (aiolimiter) admits up to 2N-1 requests in one such window, so the writes are
mirrored exactly instead: we keep our own list of request times and let a request go only
while fewer than N lie in the window. The server stamps a request when it *arrives*, which
we cannot see, but it lies between our send and the answer: each request is stamped with
its send time while in flight and moved to the time its answer came back (``settle``), so
network jitter can never squeeze one request too many into the server's window.

On a 429 the server's word wins, within reason: the gate closes for ``Retry-After``
seconds, bounded by the window (DRF never asks for more, and a broken header must not stall
a week-long run). A 429 our own count cannot explain means someone else spends the same
budget (another script of the same user, a browser tab): the limit shrinks to what the
server evidently allowed us. 429s that arrive together (requests in flight at the same
time) are one event and shrink the limit once. Each quiet window after the gate reopens
doubles the limit again (by at least a quarter of the rate), so the budget is whole again
about four windows after the other program stops. A probe made too early costs one 429 event:
no more refused requests than were in flight together.

The stamps live in a :class:`~atlasbatch._http.budget_store.BudgetStore`: by default a private
one in memory, or the file that every atlasbatch process of the same account shares, so
that two commands in a row, or in parallel, never exceed the limit together (a slot is
claimed atomically across processes). The shrunk limit, the gate and the priorities stay
per process: with our own processes counted in the store, a 429 we cannot explain now
truly means another program.

Waiters are served by priority (submissions before reads before deletes), FIFO within one
process. The clock and sleep are injectable so tests run instantly; the window's clock
times the gate and recovery, the store keeps its stamps on its own (wall) clock and
answers only with counts and durations.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import IntEnum

import anyio

from atlasbatch._config import Rate
from atlasbatch._http.budget_store import BudgetStore

__all__ = ["Permit", "Priority", "SlidingWindow"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]

_FLOOR = 1  # never mirror fewer than one request per window, or we could never probe again
_SHORT_WAIT = 5.0  # the gate, before jitter, when a 429 says nothing usable about the wait
_STEPS_TO_FULL = 4  # growth is at least 1/4 of the rate per quiet window
_MAX_BACKOFF = 16  # doublings of the gate; the window bounds it long before


class Priority(IntEnum):
    """Lower goes first. Deletes free no queue slot, so they take what is left."""

    SUBMIT = 0
    READ = 1
    DELETE = 2


@dataclass(eq=False)
class Permit:
    """One granted request: :meth:`SlidingWindow.settle` it when its answer is in, or
    :meth:`SlidingWindow.refused` on a 429.

    ``stamp`` is when the server counted it at the latest; ``sent`` when it was granted
    (both on the window's clock); ``claim`` its row in the store.
    """

    stamp: float
    claim: int
    sent: float = field(init=False)

    def __post_init__(self) -> None:
        self.sent = self.stamp


@dataclass(order=True)
class _Ticket:
    priority: int
    seq: int
    turn: anyio.Event = field(compare=False, default_factory=anyio.Event)


class SlidingWindow:
    """Mirror of one DRF throttle scope (``name`` is "write" or "read").

    ``store`` holds the stamps: the one :func:`~atlasbatch._http.budget_store.shared_budget`
    opens shares the budget with every atlasbatch process of the account; ``None`` keeps
    them in this window only (on ``clock``).
    """

    def __init__(
        self,
        rate: Rate,
        *,
        name: str,
        margin: float = 0.25,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        store: BudgetStore | None = None,
    ) -> None:
        self.name = name
        self.rate = rate
        self._span = rate.seconds + margin
        # 429s this close after the first one of an event belong to it (DRF's unit is 1 s)
        self._together = min(1.0, 0.1 * self._span)
        # recovery doubles, but by at least a quarter of the rate: from 1 (or anything) to
        # full takes at most 3 quiet windows, +1 for the gate: whole within 4 windows
        self._min_step = math.ceil(rate.requests / _STEPS_TO_FULL)
        self._clock = clock
        self._sleep = sleep
        self._store = store if store is not None else BudgetStore.private(clock=clock)
        self._in_flight: set[Permit] = set()  # granted, not yet answered
        self._waiters: list[_Ticket] = []
        self._seq = itertools.count()
        self._gate_until = -math.inf
        self._event_start = -math.inf  # the first 429 of the latest throttle event
        self._base_limit = rate.requests  # the limit the last 429 left ...
        self._quiet_since = -math.inf  # ... growing per quiet window after this (gate open)
        self._shrunk = False
        self._accepted = 0  # answers that were not 429s
        self._accepted_at_event = -1  # ... as of the latest event's first 429
        self._fruitless = 0  # events in a row with nothing accepted between them
        self.granted = 0
        self.throttled = 0

    @property
    def limit(self) -> int:
        """Requests per window we allow ourselves now: ``rate.requests`` unless shrunk."""
        return self._limit_at(self._clock())

    def closed_until(self) -> float | None:
        """When the gate a 429 closed opens again (on this window's clock); None if open."""
        return self._gate_until if self._gate_until > self._clock() else None

    def in_window(self) -> int:
        """Requests of ours the server still counts now (every atlasbatch process's, when
        the store is shared)."""
        return self._store.count(self.name, span=self._span).total

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
                claim, delay = self._try_claim(self._clock())
                if claim is not None:
                    return self._grant(ticket, claim)
                await self._sleep(delay)
        except BaseException:
            self._forget(ticket)
            raise

    def settle(self, permit: Permit) -> None:
        """The answer to ``permit``'s request is in: the server counted it no later than now."""
        self._in_flight.discard(permit)
        self._accepted += 1  # until refused() says otherwise
        permit.stamp = self._clock()
        self._store.settle(self.name, permit.claim)

    def refused(self, permit: Permit, *, retry_after: float | None) -> float:
        """Record a 429 for ``permit``; return how long this scope is now closed.

        The server does not count a refused request, so its stamp is dropped. The first 429
        of an event may shrink the limit (see :meth:`_new_event`); every 429 restarts the
        quiet time that recovery counts from when the gate reopens.
        """
        now = self._clock()
        self.throttled += 1
        if permit not in self._in_flight:
            self._accepted -= 1  # settled a moment ago, but refused after all
        self._in_flight.discard(permit)
        self._store.drop(permit.claim)
        limit = self._limit_at(now)
        if not self._same_event(permit, now):
            limit = self._new_event(now, limit)
        self._gate_until = max(self._gate_until, now + self._bounded_wait(retry_after))
        # a window is quiet only if we could send in it: count from when the gate reopens
        self._base_limit, self._quiet_since = limit, self._gate_until
        self._wake_head()
        return self._gate_until - now

    def _same_event(self, permit: Permit, now: float) -> bool:
        """Was this 429 part of the latest event: gate still shut, or sent along with it?"""
        return now < self._gate_until or permit.sent <= self._event_start + self._together

    def _new_event(self, now: float, limit: int) -> int:
        """The first 429 of an event: the limit the server's refusal evidently implies.

        Only answered requests count as ours: those still in flight may be refused too.
        If they already fill the limit, the refusal is explained and nothing changes. The
        user is warned once per episode (until the budget is back to full): a probe that
        meets the other program again is logged at INFO only.
        """
        self._event_start = now
        fruitless = self._accepted == self._accepted_at_event
        self._fruitless = self._fruitless + 1 if fruitless else 0
        self._accepted_at_event = self._accepted
        ours = self._store.count(self.name, span=self._span).answered
        shrunk = max(_FLOOR, ours)
        if shrunk >= limit:  # explained by our own count, or already at the floor
            return limit
        log.log(
            logging.INFO if self._shrunk else logging.WARNING,
            "another program using this account sent %d %s request%s in the last %g s; "
            "slowing down to %d per window",
            self.rate.requests - ours,
            self.name,
            "" if self.rate.requests - ours == 1 else "s",
            self.rate.seconds,
            shrunk,
        )
        self._shrunk = True
        return shrunk

    def _bounded_wait(self, retry_after: float | None) -> float:
        """The server's wait (a short jittered one when it gave none), within (0, window].

        Doubled per fruitless event in a row: while another program takes every slot that
        frees, DRF keeps saying "1 second" and each probe would be one more 429. The backoff
        stops at half a window, so a probe notices soon enough when the other one stops.
        """
        if retry_after is None or not math.isfinite(retry_after) or retry_after < 0:
            # jitter: several clients told nothing must not all come back at once
            wait = min(self._span, _SHORT_WAIT) * random.uniform(0.5, 1.0)
        else:  # DRF asks for 1 <= N <= window seconds; a 0 must not become a tight loop
            wait = max(retry_after, min(1.0, self._span))
        backoff = min(wait * 2.0 ** min(self._fruitless, _MAX_BACKOFF), self._span / 2)
        return min(max(wait, backoff), self._span)

    def _limit_at(self, now: float) -> int:
        """The shrunk limit, grown once per whole quiet window since the gate reopened."""
        full = self.rate.requests
        limit = self._base_limit
        if limit >= full:
            return full
        quiet = int((now - self._quiet_since) // self._span)
        for _ in range(min(quiet, _STEPS_TO_FULL)):
            limit = min(full, max(2 * limit, limit + self._min_step))
        return limit

    def _grant(self, ticket: _Ticket, claim: int) -> Permit:
        heapq.heappop(self._waiters)
        now = self._clock()
        self.granted += 1
        permit = Permit(now, claim)
        if self._in_flight:  # never answered (the caller gave up): forgotten with the window
            self._in_flight = {p for p in self._in_flight if p.stamp > now - self._span}
        self._in_flight.add(permit)
        self._wake_head()
        return permit

    def _try_claim(self, now: float) -> tuple[int | None, float]:
        """Claim a slot in the store if the gate is open and one fits: (claim, 0); else
        (None, seconds to wait before trying again)."""
        gate = self._gate_until - now
        if gate > 0:
            return None, gate
        limit = self._limit_at(now)
        self._note_recovery(limit)
        grant = self._store.claim(self.name, limit=limit, span=self._span)
        return grant.claim, max(grant.wait, 1e-3)

    def _note_recovery(self, limit: int) -> None:
        if self._shrunk and limit >= self.rate.requests:
            self._shrunk = False
            log.info("%s budget back to full: %d per %g s", self.name, limit, self.rate.seconds)

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
