"""A bounded log of the requests the emulator saw, on its own clock, for pacing tests."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

__all__ = ["RequestLog", "RequestRecord"]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request as the server saw it.

    ``time``: when it arrived, in seconds on the emulator's clock (0 = the emulator's start;
    the same clock as :meth:`Emulator.now` and :meth:`Emulator.task_timings`). ``status``:
    the status sent, ``None`` when the connection was dropped without an answer. ``fault``:
    the injected fault or outage that shaped the answer (``"server_error"``, ``"outage_503"``,
    ``"outage_drop"`` …), ``None`` for an untouched one.
    """

    time: float
    method: str
    path: str
    query: str
    status: int | None
    fault: str | None = None


class RequestLog:
    """The newest ``size`` records (older ones fall off); not thread-safe: use the store lock."""

    def __init__(self, size: int) -> None:
        self._records: deque[RequestRecord] = deque(maxlen=size)

    def add(self, record: RequestRecord) -> None:
        """Append one record (dropping the oldest when full)."""
        self._records.append(record)

    def records(self) -> list[RequestRecord]:
        """The kept records, oldest first."""
        return list(self._records)

    def clear(self) -> None:
        """Forget every record."""
        self._records.clear()
