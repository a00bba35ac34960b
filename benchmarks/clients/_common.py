"""What every client gets and returns, and the API guide's reading of a 429."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

__all__ = ["ClientJob", "ClientResult", "ClientRunner", "guide_wait", "same_origin"]

_SECONDS = re.compile(r"available in (\d+) seconds")
_MINUTES = re.compile(r"available in (\d+) minutes")


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientJob:
    """One client's assignment: where, what, and how long it may take at most.

    ``time_scale`` is the emulator's clock factor (0.1 for ``60/6s``): the guide's 10 s poll
    becomes 1 s. ``deadline`` is a ``time.monotonic()`` instant; a client that reaches it
    stops and reports ``limit_hit``. ``task_seconds`` is the emulator's median task time: no
    client is told it except ``cli-told`` (``--task-seconds``, the comparison with the oracle).
    ``downloads_per_second`` is atlasbatch's download pace (None: its default, time-scaled).
    """

    base_url: str
    token: str
    targets: list[dict[str, float | str]]
    mjd_min: float
    time_scale: float
    deadline: float
    write_rate: str
    read_rate: str
    max_queued: int
    task_seconds: float
    downloads_per_second: float | None = None


@dataclass(slots=True)
class ClientResult:
    """What a client reports back: targets it saw through, failures, and whether it timed out."""

    completed: int = 0
    failed: int = 0
    limit_hit: bool = False
    late_429: int | None = None  # 429s after the first write window (atlasbatch only)
    # signed relative error of the client's ETA when 25 / 50 % of the targets were final
    # (None: it had no estimate yet); empty for clients without an ETA
    eta_error: dict[int, float | None] = field(default_factory=dict)
    cpu_s: float | None = None  # CPU seconds, for a client that runs in a child process
    notes: list[str] = field(default_factory=list)


ClientRunner = Callable[[ClientJob], ClientResult]


def guide_wait(message: str, *, time_scale: float) -> float:
    """Seconds to sleep after a 429, exactly as the guide's example computes them.

    The emulator words its wait in its own (scaled) seconds, so a number found in the text is
    used as is; the guide's fallback of 10 s is a real-time constant and is scaled. Note the
    guide's pattern does not match DRF's singular "available in 1 second.", so a one-second
    wait falls back to 10 s (scaled) — a real quirk of the seed, kept on purpose.
    """
    seconds = _SECONDS.findall(message)
    minutes = _MINUTES.findall(message)
    if seconds:
        return float(int(seconds[0]))
    if minutes:
        return float(int(minutes[0])) * 60.0 * time_scale
    return 10.0 * time_scale


def same_origin(url: str, base_url: str) -> str:
    """``url`` moved onto ``base_url``'s scheme, host and port (the real server answers
    absolute URLs on its public host whatever host was asked; the emulator already uses its
    own, so this is normally a no-op)."""
    parsed, base = httpx.URL(url), httpx.URL(base_url)
    if (parsed.scheme, parsed.host, parsed.port) == (base.scheme, base.host, base.port):
        return url
    return str(parsed.copy_with(scheme=base.scheme, host=base.host, port=base.port))
