"""Shared fixtures: async tests run on asyncio (the emulator fixtures come from the plugin)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def private_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Never touch the real user's token or run registry (subprocesses inherit this too)."""
    folder = tmp_path / "atlasbatch-config"
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(folder))
    monkeypatch.delenv("ATLAS_TOKEN", raising=False)
    return folder
