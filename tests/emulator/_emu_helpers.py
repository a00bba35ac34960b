"""Helpers shared by the emulator tests (imported as a plain module, see conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from atlasbatch.testing import Emulator

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
