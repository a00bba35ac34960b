"""The table (Markdown, so the README can hold it as printed) and the check of issue 7's targets."""

from __future__ import annotations

from benchmarks._harness import Row

__all__ = ["check_targets", "markdown_table"]

_HEADER = (
    "| scenario | client | targets | makespan s | T* s | ratio | 429 w/r | 429 late | cap 400 "
    "| writes/t | reads/t | CPU s/1k | peak RSS MB | tasks left |"
)


def _client_label(row: Row) -> str:
    return f"{row.client} ⏱" if row.limit_hit else row.client


def _line(row: Row) -> str:
    late = "–" if row.late_429 is None else str(row.late_429)
    cells = [
        row.scenario,
        _client_label(row),
        str(row.targets),
        f"{row.makespan_s:.2f}",
        f"{row.bound_s:.2f}",
        f"{row.ratio:.3f}",
        f"{row.throttled['write']}/{row.throttled['read']}",
        late,
        str(row.cap_rejections),
        f"{row.writes_per_target:.3f}",
        f"{row.reads_per_target:.3f}",
        f"{row.cpu_s_per_1k:.2f}",
        f"{row.peak_rss_mb:.0f}",
        str(row.tasks_left),
    ]
    return "| " + " | ".join(cells) + " |"


def markdown_table(rows: list[Row]) -> str:
    """All rows as one Markdown table."""
    rule = "|" + "|".join("---" for _ in range(_HEADER.count("|") - 1)) + "|"
    return "\n".join([_HEADER, rule, *(_line(row) for row in rows)])


def check_targets(rows: list[Row]) -> list[str]:
    """Issue 7's targets for atlasbatch, one line per miss (empty: all met)."""
    misses: list[str] = []
    for row in rows:
        if row.client != "atlasbatch":
            continue
        where = f"{row.scenario}: "
        limit = {"server-bound": 1.03, "rate-bound": 1.10}.get(row.scenario.rsplit("-", 1)[0])
        if limit is not None and row.ratio > limit:
            misses.append(f"{where}ratio {row.ratio:.3f} > {limit}")
        if row.late_429:
            misses.append(f"{where}{row.late_429} 429s after the first window")
        if row.cap_rejections:
            misses.append(f"{where}{row.cap_rejections} queue-cap rejections")
        if row.reads_per_target > 0.2:
            misses.append(f"{where}reads per target {row.reads_per_target:.3f} > 0.2")
        if row.scenario.startswith("scale"):
            if row.peak_rss_mb > 250:
                misses.append(f"{where}peak RSS {row.peak_rss_mb:.0f} MB > 250")
            if row.cpu_s_per_1k > 3:
                misses.append(f"{where}CPU {row.cpu_s_per_1k:.2f} s per 1k targets > 3")
        if row.tasks_left:
            misses.append(f"{where}{row.tasks_left} tasks left on the server")
        if row.limit_hit:
            misses.append(f"{where}hit its time limit")
    return misses
