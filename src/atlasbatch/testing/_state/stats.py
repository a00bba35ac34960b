"""Counters of what the emulator saw and did, for tests and benchmarks to assert on."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TypedDict

__all__ = ["EmulatorStats", "ScopeCounts", "Stats", "TaskStateCounts"]


class ScopeCounts(TypedDict):
    """Per throttle scope: ``write`` (POST, PUT, PATCH, DELETE), ``read`` (GET, HEAD, OPTIONS)."""

    write: int
    read: int


class TaskStateCounts(TypedDict):
    """Live (not deleted, archived or purged) tasks by state."""

    queued: int
    running: int
    finished: int


class EmulatorStats(TypedDict):
    """What ``/forcedphot/_emulator/stats.json`` and :meth:`Emulator.stats` return.

    * ``requests``: every request by method (static downloads included, stats.json excluded);
    * ``status_counts``: responses by status code (as strings; dropped connections have none);
    * ``tasks_created`` / ``tasks_deleted`` (by DELETE) / ``tasks_purged`` (``purge_after``) /
      ``tasks_lost`` (``lose_rate`` attempts) / ``files_expired`` (``expire_after``);
    * ``tasks_live``: created and not deleted, archived or purged; ``tasks_by_state`` splits it;
    * ``cap_rejections``: queue-cap 400s; ``throttled``: 429s per scope; ``scope_requests``:
      requests that reached a throttle (accepted or not) per scope;
    * ``downloads``: result-file GETs (static ``result_url`` or ``data.txt``) that found a file;
    * ``max_writes_in_window``: the most accepted writes of one user inside one window;
    * ``image_requests``: IMGZIP tasks created by ``requestimages`` (also in ``tasks_created``);
      ``max_live_image_requests``: the most a user had at once (the server allows 5);
    * ``faults``: how often each injected fault fired; ``users``: accounts.
    """

    requests: dict[str, int]
    status_counts: dict[str, int]
    tasks_created: int
    tasks_deleted: int
    tasks_purged: int
    tasks_lost: int
    files_expired: int
    cap_rejections: int
    throttled: ScopeCounts
    scope_requests: ScopeCounts
    downloads: int
    max_writes_in_window: int
    image_requests: int
    max_live_image_requests: int
    faults: dict[str, int]
    tasks_live: int
    tasks_by_state: TaskStateCounts
    users: int


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
    image_requests: int = 0
    max_live_image_requests: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    def record_response(self, method: str, status: int | None) -> None:
        """Count one request (``status`` None: the connection was dropped without a response)."""
        self.requests[method] += 1
        if status is not None:
            self.status_counts[str(status)] += 1

    def snapshot(
        self, *, tasks_live: int, tasks_by_state: TaskStateCounts, users: int
    ) -> EmulatorStats:
        """The counters plus the given state counts, as plain JSON-able data."""
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
            "image_requests": self.image_requests,
            "max_live_image_requests": self.max_live_image_requests,
            "faults": dict(sorted(self.faults.items())),
            "tasks_live": tasks_live,
            "tasks_by_state": tasks_by_state,
            "users": users,
        }
