"""Shared fixtures: async tests run on asyncio (the emulator fixtures come from the plugin)."""

from __future__ import annotations

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
