"""Small builders shared by the end-to-end tests (no fixtures: plain functions)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from atlasbatch._config import Rate, Settings
from atlasbatch.testing import Emulator


def client_settings(emu: Emulator, **overrides: Any) -> Settings:
    """Client settings that match an emulator's scaled limits, with short polls."""
    config = emu.config
    values: dict[str, Any] = {
        "base_url": emu.base_url,
        "write_rate": Rate.parse(config.write_rate),
        "read_rate": Rate.parse(config.read_rate),
        "max_queued": config.max_queued,
        "window_margin": 0.05,
        "timeout": 5.0,
        "retry_max_wait": 0.2,
        "retry_total_seconds": 30.0,
        "downloads_per_second": 1000.0,
    }
    values.update(overrides)
    return Settings(**values)


def fast(**config: Any) -> dict[str, Any]:
    """Emulator overrides with time scaled for tests: limits per second, not per minute, and
    a runner that reacts at once (``atlasbatch.testing.TEST_TIMING``: no poll, gap or check)."""
    instant_runner = dict.fromkeys(
        ("runner_idle_poll", "runner_busy_poll", "user_gap", "cancel_check"), 0.0
    )
    return {"write_rate": "100/1s", "read_rate": "1000/1s", **instant_runner, **config}


def grid_targets(count: int, *, dec0: float = 10.0, name: str = "t") -> list[dict[str, object]]:
    """``count`` distinct positions ~0.1 deg apart (no two within the 1″ duplicate radius)."""
    return [
        {"name": f"{name}{i:05d}", "ra": round((i * 0.1) % 360, 6), "dec": dec0 + (i // 3600) * 0.1}
        for i in range(count)
    ]


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    """Rows as a CSV file with a header from the first row's keys."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path
