"""Helpers shared by the emulator tests (imported as a plain module, see conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from atlasbatch.testing import Emulator, EmulatorConfig
from atlasbatch.testing._serializer.fields import FieldValue
from atlasbatch.testing._state.clock import Clock
from atlasbatch.testing._state.store import Store
from atlasbatch.testing._state.tasks import Task, User

JSON = {"Accept": "application/json"}


def client(emu: Emulator, token: str | None = "default", **kwargs: object) -> httpx.Client:
    """An httpx client on the emulator's base URL (``token=None``: anonymous)."""
    headers = dict(JSON)
    if token is not None:
        headers["Authorization"] = f"Token {emu.token if token == 'default' else token}"
    return httpx.Client(base_url=emu.base_url + "/", headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0, step: float = 0.02) -> None:
    """Poll until ``predicate()`` is true (fail the test after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            msg = f"condition not met within {timeout} s"
            raise AssertionError(msg)
        time.sleep(step)


def radeclist(count: int, *, start: float = 10.0) -> str:
    """``count`` distinct decimal-degree lines."""
    return "\n".join(f"{start + i * 0.01:.4f} {20 + i * 0.01:.4f}" for i in range(count))


class FakeTime:
    """A monotonic clock the test moves by hand (``fake.now += 5``)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def fake_store(**config: object) -> tuple[Store, FakeTime]:
    """A store (no HTTP, no thread) on a hand-moved clock; real defaults unless overridden."""
    fake = FakeTime()
    settings = EmulatorConfig(**config)  # type: ignore[arg-type]
    return Store(settings, clock=Clock(fake, lambda: 1_800_000_000.0)), fake


def submit(store: Store, user: User, count: int = 1) -> list[Task]:
    """Queue ``count`` tasks for ``user`` now, as a POST would."""
    with store.lock:
        now = store.advance()
        rows: list[dict[str, FieldValue]] = [{"ra": float(i), "dec": 1.0} for i in range(count)]
        return store.create(user, rows, now)


def advance_to(store: Store, fake: FakeTime, instant: float) -> None:
    """Move the clock to ``instant`` and let the runner catch up."""
    fake.now = instant
    with store.lock:
        store.advance()
