"""Counters of what the emulator saw and did, for tests and benchmarks to assert on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

__all__ = ["Stats"]


@dataclass(slots=True)
class Stats:
    """Mutable counters; the store snapshots them (plus its live task counts) into JSON."""

    requests: Counter[str] = field(default_factory=Counter)
    status_counts: Counter[str] = field(default_factory=Counter)
    tasks_created: int = 0
    tasks_deleted: int = 0
    tasks_purged: int = 0
    tasks_lost: int = 0
    files_expired: int = 0
    cap_rejections: int = 0
    throttled: Counter[str] = field(default_factory=lambda: Counter(write=0, read=0))
    scope_requests: Counter[str] = field(default_factory=lambda: Counter(write=0, read=0))
    downloads: int = 0
    max_writes_in_window: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    def record_response(self, method: str, status: int | None) -> None:
        """Count one request (``status`` None: the connection was dropped without a response)."""
        self.requests[method] += 1
        if status is not None:
            self.status_counts[str(status)] += 1

    def snapshot(self) -> dict[str, object]:
        """The counters as plain JSON-able data."""
        return {
            "requests": dict(self.requests),
            "status_counts": dict(sorted(self.status_counts.items())),
            "tasks_created": self.tasks_created,
            "tasks_deleted": self.tasks_deleted,
            "tasks_purged": self.tasks_purged,
            "tasks_lost": self.tasks_lost,
            "files_expired": self.files_expired,
            "cap_rejections": self.cap_rejections,
            "throttled": {"write": self.throttled["write"], "read": self.throttled["read"]},
            "scope_requests": {
                "write": self.scope_requests["write"],
                "read": self.scope_requests["read"],
            },
            "downloads": self.downloads,
            "max_writes_in_window": self.max_writes_in_window,
            "faults": dict(sorted(self.faults.items())),
        }
