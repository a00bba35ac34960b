"""Pytest fixtures for tests that talk to the ATLAS emulator over a real loopback socket.

Registered for this project through ``addopts = "-p atlasbatch.testing.pytest_plugin"``;
other projects can add ``pytest_plugins = ["atlasbatch.testing.pytest_plugin"]``.

* ``atlas_emulator``: a started :class:`~atlasbatch.testing.Emulator` with the default
  configuration except :data:`TEST_DEFAULTS`; stopped after the test.
* ``atlas_emulator_factory``: ``factory(**config_overrides) -> Emulator``, started, from the same
  :data:`TEST_DEFAULTS` plus the overrides; all stopped after the test.

The test defaults keep the real rates but run 0.05 s tasks (0.2 s image requests) on a
runner that reacts at once (:data:`~atlasbatch.testing.TEST_TIMING`: no idle or busy poll,
no gap between one user's tasks, no cancel check): tests stay fast, and a test of the
runner's timing passes its own ``runner_idle_poll`` & co.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from atlasbatch.testing import Emulator

__all__ = ["TEST_DEFAULTS", "atlas_emulator", "atlas_emulator_factory"]

TEST_DEFAULTS: dict[str, Any] = {
    "task_seconds": 0.05,
    "image_task_seconds": 0.2,
    "runner_idle_poll": 0.0,
    "runner_busy_poll": 0.0,
    "user_gap": 0.0,
    "cancel_check": 0.0,
}
"""Configuration overrides every fixture-made emulator starts from (``TEST_TIMING`` spelled
out, so that loading the plugin imports nothing heavy)."""


def _make(overrides: dict[str, Any]) -> Emulator:
    # imported here so that merely loading the plugin stays cheap for unrelated test runs
    from atlasbatch.testing import Emulator, EmulatorConfig  # noqa: PLC0415

    return Emulator(EmulatorConfig(**{**TEST_DEFAULTS, **overrides})).start()


@pytest.fixture
def atlas_emulator() -> Iterator[Emulator]:
    """A running emulator (default config with :data:`TEST_DEFAULTS`)."""
    emulator = _make({})
    try:
        yield emulator
    finally:
        emulator.stop()


@pytest.fixture
def atlas_emulator_factory() -> Iterator[Callable[..., Emulator]]:
    """A factory of running emulators, ``factory(**config_overrides)``; all stopped afterwards."""
    started: list[Emulator] = []

    def factory(**overrides: Any) -> Emulator:
        emulator = _make(overrides)
        started.append(emulator)
        return emulator

    try:
        yield factory
    finally:
        for emulator in reversed(started):
            emulator.stop()
