"""Fixtures for the emulator tests: clients bound to a running emulator."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from _emu_helpers import client

from atlasbatch.testing import Emulator


@pytest.fixture
def emu(atlas_emulator: Emulator) -> Emulator:
    """The default test emulator (``task_seconds=0.05``)."""
    return atlas_emulator


@pytest.fixture
def make_client() -> Iterator[Callable[..., httpx.Client]]:
    """``make_client(emu, token="default"|None|"<key>")``; all closed after the test."""
    clients: list[httpx.Client] = []

    def factory(emu: Emulator, token: str | None = "default", **kwargs: object) -> httpx.Client:
        made = client(emu, token, **kwargs)
        clients.append(made)
        return made

    yield factory
    for made in clients:
        made.close()


@pytest.fixture
def api(emu: Emulator, make_client: Callable[..., httpx.Client]) -> httpx.Client:
    """A client of the default emulator, authenticated as its default user."""
    return make_client(emu)


@pytest.fixture(scope="module")
def shared_emu() -> Iterator[Emulator]:
    """One unthrottled emulator per test module, for tests that only need their own user."""
    from atlasbatch.testing import TEST_TIMING, EmulatorConfig  # noqa: PLC0415

    config = EmulatorConfig(task_seconds=0.05, write_rate=None, read_rate=None, **TEST_TIMING)
    with Emulator(config) as shared:
        yield shared


_user_numbers = itertools.count(1)


@pytest.fixture
def user_api(shared_emu: Emulator, make_client: Callable[..., httpx.Client]) -> httpx.Client:
    """A client of the module's shared emulator, as a brand-new user (own tasks and budget)."""
    token = shared_emu.add_user(f"user{next(_user_numbers)}", "pw")
    return make_client(shared_emu, token)
