"""Waiting out a server that does not answer: one probe at a time, full-jitter backoff.

A bulk run lasts days, so an outage of hours is weather, not an error. Every request of a
client shares one :class:`Outage`: the first transient failure (5xx, an error page from the
proxy, a timeout, a refused connection) marks the server unreachable; from then on only one
request at a time goes out, after a full-jitter exponential backoff capped at ``max_wait``,
while every other request waits for its answer. An outage therefore costs a handful of
requests, not one retry loop per worker, and the first answer lets everyone go at once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import anyio
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    stop_never,
    wait_none,
)
from tenacity.stop import stop_base

from atlasbatch._http.wire_faults import TransientError

__all__ = ["Outage"]

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")

_FIRST_WAIT = 0.5  # seconds: the backoff's first ceiling; it doubles per failed try


class Outage:
    """The server's reachability as this client has seen it, and the turn to probe it."""

    def __init__(
        self,
        *,
        max_wait: float,
        clock: Clock = time.monotonic,
        sleep: Sleep = anyio.sleep,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self._max_wait = max_wait
        self._clock = clock
        self._sleep = sleep
        self._rng = rng
        self._lock = anyio.Lock()
        self.since: dt.datetime | None = None  # wall time of the first failure, for displays
        self.next_try = 0.0  # monotonic time of the next probe
        self.failures = 0  # consecutive failed tries
        self.last_error = ""

    @property
    def down(self) -> bool:
        """True between a transient failure and the next answer."""
        return self.since is not None

    def seconds_to_next_try(self) -> float:
        """For displays: how long until the next probe (0 when the server is up)."""
        return max(0.0, self.next_try - self._clock()) if self.down else 0.0

    @contextlib.asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """Wrap one request: free while the server is up; one probe at a time while down."""
        if not self.down:
            yield
            return
        async with self._lock:
            if self.down:  # still down: this request is the probe, the others wait for it
                await self._sleep(max(0.0, self.next_try - self._clock()))
                yield
                return
        yield

    def failed(self, error: str) -> float:
        """Record a transient failure; the seconds until the next probe."""
        now = self._clock()
        if self.since is None:
            self.since = dt.datetime.now().astimezone()
            log.warning("server unreachable (%s); waiting, a few requests at a time", error)
        if now >= self.next_try:  # failures of requests sent together count once
            self.failures += 1
            ceiling = min(self._max_wait, _FIRST_WAIT * 2.0 ** (self.failures - 1))
            self.next_try = now + ceiling * self._rng()
        self.last_error = error
        return self.next_try - now

    def answered(self) -> None:
        """The server answered (whatever the status): it is reachable again."""
        if self.since is not None:
            log.warning("server reachable again after %d failed tries", self.failures)
        self.since = None
        self.failures = 0
        self.next_try = 0.0

    async def call(
        self,
        once: Callable[[], Awaitable[T]],
        *,
        attempts: int | None,
        seconds: float,
        sleep: Sleep,
    ) -> T:
        """Run ``once`` until it answers, through this gate; re-raise what is not transient.

        :class:`TransientError` marks the server unreachable and is tried again (one probe
        at a time for the whole client) until ``attempts``/``seconds`` run out, which by
        default they never do: only an answer or a permanent error ends the wait.
        """
        if self.down:
            return await self._retrying(once, attempts=attempts, seconds=seconds, sleep=sleep)
        # The server is up: one plain try. Building tenacity's loop for every request cost
        # more CPU than the rest of this gate (issue 12); a failure enters it with what is
        # left of the patience.
        start = self._clock()
        try:
            result = await once()
        except TransientError as transient:
            self._note(transient)
            spent = self._clock() - start
            if attempts == 1 or spent >= seconds:  # as tenacity's stop after a first try
                raise transient.cause from None
            left = None if attempts is None else attempts - 1
            return await self._retrying(once, attempts=left, seconds=seconds - spent, sleep=sleep)
        self.answered()
        return result

    async def _retrying(
        self,
        once: Callable[[], Awaitable[T]],
        *,
        attempts: int | None,
        seconds: float,
        sleep: Sleep,
    ) -> T:
        retrying = AsyncRetrying(
            retry=retry_if_exception_type(TransientError),
            wait=wait_none(),  # the gate spaces the tries, shared by every request
            stop=_stop(attempts, seconds),
            sleep=sleep,
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    async with self.turn():
                        try:
                            result = await once()
                        except TransientError as transient:
                            self._note(transient)
                            raise
                    self.answered()
                    return result
        except TransientError as transient:
            raise transient.cause from None
        raise AssertionError("unreachable: tenacity either returns or raises")  # pragma: no cover

    def _note(self, transient: TransientError) -> None:
        wait = self.failed(str(transient.cause))
        log.info("%s; next try in %.1f s", transient.cause, wait)


def _stop(attempts: int | None, seconds: float) -> stop_base:
    """tenacity's stop condition for the configured patience (none: wait for ever)."""
    stop: stop_base = stop_never
    if attempts is not None:
        stop = stop_after_attempt(attempts)
    if seconds != float("inf"):
        stop = stop | stop_after_delay(seconds)
    return stop
