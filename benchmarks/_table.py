"""The tables (Markdown, so the README can hold them as printed) and the check of the targets.

Two tables: the scenarios (atlasbatch, the guide's seed loop, the naive gather, the scale
run) and the CLI comparison (``atlasbatch fetch`` not told vs told the task time).
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks._harness import Row

__all__ = ["check_targets", "cli_table", "markdown_table"]

_TERMS = {"runner": "run", "writes": "wr", "submit": "sub", "queue_cap": "cap"}
_MAIN = (
    "| scenario | client | targets | f | makespan s | T* s | ratio | 1st result s | ETA err 25/50 "
    "| 429 w/r | cap 400 | writes/t | reads/t | CPU s/1k | peak RSS MB | tasks left |"
)
_CLI = (
    "| scenario | client | targets | makespan s | span s | T* s | ratio "
    "| vs told (makespan, span) | reads/t | 429 w/r | 1st result s | tasks left |"
)
# issue 10's targets for the oracle-free rows, and the CLI comparison's
_SERVER_BOUND_RATIO = 1.05
_RATE_BOUND_RATIO = 1.10
_SERVER_BOUND_MIN_TARGETS = 100
_READS_SERVER_BOUND = 0.2
_ETA_HALFWAY = 0.2
_FIRST_RESULT_REAL = 2.0  # seconds at real speed, or 25 % of a task if longer
_CLI_RATIO = {"0.3s": 1.15, "0.05s": 1.5}
_CLI_READS = {"0.3s": 0.35}


def _family(row: Row) -> str:
    """``server-bound``, ``rate-bound``, ``cli`` or ``scale`` (names are family-regime-size)."""
    for family in ("server-bound", "rate-bound", "cli", "scale"):
        if row.scenario.startswith(family + "-"):
            return family
    return row.scenario


def _client_label(row: Row) -> str:
    return f"{row.client} ⏱" if row.limit_hit else row.client


def _num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _eta(row: Row) -> str:
    if not row.eta_error:
        return "–"
    cells = ["none" if row.eta_error.get(m) is None else f"{row.eta_error[m]:+.0%}"
             for m in (25, 50)]  # fmt: skip
    return " / ".join(cells)


def _main_line(row: Row) -> str:
    cells = [
        row.scenario, _client_label(row), str(row.targets), f"{row.time_scale:g}",
        f"{row.makespan_s:.2f}", f"{row.bound_s:.2f} ({_TERMS.get(row.bound_term, '?')})",
        f"{row.ratio:.3f}", _num(row.first_result_s, ".3f"), _eta(row),
        f"{row.throttled['write']}/{row.throttled['read']}", str(row.cap_rejections),
        f"{row.writes_per_target:.3f}", f"{row.reads_per_target:.3f}",
        f"{row.cpu_s_per_1k:.2f}", f"{row.peak_rss_mb:.0f}", str(row.tasks_left),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _told(rows: list[Row], row: Row) -> Row | None:
    return next((r for r in rows if r.scenario == row.scenario and r.client == "cli-told"), None)


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def _cli_line(row: Row, told: Row | None) -> str:
    versus = "–"
    if told is not None and row is not told:
        wall = _ratio(row.makespan_s, told.makespan_s)
        span = _ratio(row.server_span_s, told.server_span_s)
        versus = f"{_num(wall, '.3f')}, {_num(span, '.3f')}"
    cells = [
        row.scenario, _client_label(row), str(row.targets), f"{row.makespan_s:.2f}",
        _num(row.server_span_s, ".2f"), f"{row.bound_s:.2f}", f"{row.ratio:.3f}", versus,
        f"{row.reads_per_target:.3f}", f"{row.throttled['write']}/{row.throttled['read']}",
        _num(row.first_result_s, ".3f"), str(row.tasks_left),
    ]  # fmt: skip
    return "| " + " | ".join(cells) + " |"


def _table(header: str, lines: list[str]) -> str:
    rule = "|" + "|".join("---" for _ in range(header.count("|") - 1)) + "|"
    return "\n".join([header, rule, *lines])


def markdown_table(rows: list[Row]) -> str:
    """The scenario rows as one Markdown table (CLI rows excluded)."""
    return _table(_MAIN, [_main_line(r) for r in rows if not r.client.startswith("cli")])


def cli_table(rows: list[Row]) -> str:
    """The CLI comparison rows (empty string if there are none)."""
    cli = [r for r in rows if r.client.startswith("cli")]
    return _table(_CLI, [_cli_line(r, _told(rows, r)) for r in cli]) if cli else ""


def _atlas_misses(row: Row) -> list[str]:
    misses: list[str] = []
    family = _family(row)
    limit = {"server-bound": _SERVER_BOUND_RATIO, "rate-bound": _RATE_BOUND_RATIO}.get(family)
    sized = family != "server-bound" or row.targets >= _SERVER_BOUND_MIN_TARGETS
    if limit is not None and sized and row.ratio > limit:
        misses.append(f"ratio {row.ratio:.3f} > {limit}")
    if family == "server-bound" and row.reads_per_target > _READS_SERVER_BOUND:
        misses.append(f"reads per target {row.reads_per_target:.3f} > {_READS_SERVER_BOUND}")
    if limit is not None:
        misses += _first_result_and_eta(row)
    return misses


def _first_result_and_eta(row: Row) -> list[str]:
    misses: list[str] = []
    allowed = max(_FIRST_RESULT_REAL * row.time_scale, 0.25 * row.median_task_s)
    first = row.first_result_s
    if first is None or first > allowed:
        misses.append(f"time to first result {_num(first, '.3f')} s > {allowed:.3f} s")
    halfway = row.eta_error.get(50)
    if halfway is None or abs(halfway) > _ETA_HALFWAY:
        misses.append(f"ETA at half-way off by {_num(halfway, '+.0%')} (limit ±20 %)")
    return misses


def _common_misses(row: Row) -> list[str]:
    misses: list[str] = []
    throttled = row.throttled["write"] + row.throttled["read"]
    if throttled:
        misses.append(f"{throttled} 429s")
    if row.cap_rejections:
        misses.append(f"{row.cap_rejections} queue-cap rejections")
    if row.tasks_left:
        misses.append(f"{row.tasks_left} tasks left on the server")
    if row.limit_hit:
        misses.append("hit its time limit")
    return misses


def _scale_misses(row: Row) -> list[str]:
    misses: list[str] = []
    if row.peak_rss_mb > 250:
        misses.append(f"peak RSS {row.peak_rss_mb:.0f} MB > 250")
    if row.cpu_s_per_1k > 3:
        misses.append(f"CPU {row.cpu_s_per_1k:.2f} s per 1k targets > 3")
    return misses


def _cli_misses(row: Row, told: Row | None) -> list[str]:
    case = row.scenario.split("-", 2)[1]
    limit = _CLI_RATIO.get(case)
    span = None if told is None else _ratio(row.server_span_s, told.server_span_s)
    misses: list[str] = []
    if limit is not None and (span is None or span > limit):
        misses.append(f"span vs told {_num(span, '.3f')} > {limit}")
    reads = _CLI_READS.get(case)
    if reads is not None and row.reads_per_target > reads:
        misses.append(f"reads per target {row.reads_per_target:.3f} > {reads}")
    return misses


def check_targets(rows: list[Row]) -> list[str]:
    """Issue 10's targets (and the scale run's), one line per miss (empty: all met)."""
    checks: dict[str, Callable[[Row], list[str]]] = {
        "atlasbatch": lambda r: (
            _scale_misses(r) if r.scenario.startswith("scale") else _atlas_misses(r)
        ),
        "cli": lambda r: _cli_misses(r, _told(rows, r)),
        "cli-told": lambda r: [],
    }
    misses: list[str] = []
    for row in rows:
        check = checks.get(row.client)
        if check is not None:
            misses += [
                f"{row.scenario}/{row.client}: {m}" for m in check(row) + _common_misses(row)
            ]
    return misses
