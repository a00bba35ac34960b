"""``fetch --dry-run``: what a run would send and how long it would take; sends nothing.

The counts follow the pipeline's own rules: one POST per batch of up to ``batch_size``
distinct queries sharing one (mjd_min, mjd_max, reduced) window, one DELETE per task, a
task-list poll for about every ten completions plus a few at the tail, one static download
per task. The time is the larger of what the server's one-task-at-a-time runner needs and
what the write budget allows (see design.md, "Physical bound").

The report also shows the rows as parsed (positions in decimal degrees, windows), which
rows share one query and which rows are invalid, so that a user can check the input
before a run of days; the listings are cut short on big files, the counts never are.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atlasbatch._config import Settings
from atlasbatch._durations import format_duration
from atlasbatch._http.base_url import check_base_url
from atlasbatch._models import Target
from atlasbatch._runs.controls import input_rows
from atlasbatch._targets.images import describe_image_cost

if TYPE_CHECKING:  # the target parser needs pandas; this module does not
    from atlasbatch._targets.read import TargetList

__all__ = ["RunPlan", "plan_run", "render_plan"]

_COMPLETIONS_PER_POLL = 10
_TAIL_POLLS = 8
#: How many rows each listing shows: all of a small file, the start of a big one.
SHOWN_ROWS = 30
_NAME_WIDTH = 24


@dataclass(frozen=True, slots=True, kw_only=True)
class RunPlan:
    """Request counts and time estimate for one run."""

    rows: int
    invalid: int
    queries: int
    duplicates: int
    windows: int
    posts: int
    deletes: int
    reads: int
    downloads: int
    task_seconds: float
    user_slots: int
    runner_seconds: float
    write_seconds: float
    budget_seconds: float
    targets: TargetList = field(repr=False, compare=False)
    #: Of the queries, how many are control positions (``--controls``), and per target.
    controls: int = 0
    controls_per_target: int = 0

    @property
    def writes(self) -> int:
        """POSTs and DELETEs share the write budget."""
        return self.posts + self.deletes

    @property
    def total_seconds(self) -> float:
        """The estimate: the slower of the runner and the write budget."""
        return max(self.runner_seconds, self.write_seconds)


def plan_run(targets: TargetList, settings: Settings, *, user_slots: int = 1) -> RunPlan:
    """Count the requests ``targets`` need at ``settings``' limits.

    Raises :class:`~atlasbatch.InputError` for a base URL a real run would refuse (plain
    http to another machine): a dry run must not approve what the run then stops at.
    """
    check_base_url(settings.base_url)
    inputs = input_rows(targets)  # the file's rows: control positions are added, not read
    per_window = Counter(t.window for t in targets.unique)
    posts = sum(math.ceil(n / settings.batch_size) for n in per_window.values())
    queries = len(targets.unique)
    rate = settings.write_rate
    task = settings.task_prior
    runner = math.ceil(queries / user_slots) * task
    # Submissions go first; deletes use what is left. The last write cannot come before
    # the budget allowed all the earlier ones, nor before the last task finished.
    writes = posts + queries
    budget = ((writes - 1) // rate.requests) * rate.seconds if writes else 0.0
    submit = ((posts - 1) // rate.requests) * rate.seconds + task if posts else 0.0
    polls = math.ceil(queries / _COMPLETIONS_PER_POLL) + (_TAIL_POLLS if queries else 0)
    return RunPlan(
        rows=len(inputs.targets) + len(inputs.invalid),
        invalid=len(inputs.invalid),
        queries=queries,
        duplicates=len(inputs.duplicate_of),
        windows=len(per_window),
        posts=posts,
        deletes=queries,
        reads=polls,
        downloads=queries,
        task_seconds=task,
        user_slots=user_slots,
        runner_seconds=runner,
        write_seconds=max(budget, submit),
        budget_seconds=budget,
        targets=inputs,
        controls=queries - len(inputs.unique),
        controls_per_target=max((t.control_index or 0 for t in targets.unique), default=0),
    )


def _write_time(plan: RunPlan, settings: Settings) -> str:
    rate = settings.write_rate
    if plan.writes <= rate.requests:
        return f"fit in one {rate.seconds:g} s window of the write budget"
    return f"{format_duration(plan.budget_seconds)} of write budget at least"


def render_plan(plan: RunPlan, *, source: str, settings: Settings, refreshed: int = 0) -> str:
    """The dry-run report as plain text."""
    write, read = settings.write_rate, settings.read_rate
    lines = [
        "Dry run: nothing was sent.",
        *_rows_as_parsed(plan.targets),
        *_duplicate_rows(plan.targets),
        *_invalid_rows(plan.targets),
        f"{source}: {plan.rows} rows, {plan.rows - plan.invalid} valid, {plan.invalid} invalid; "
        f"{plan.queries} distinct queries ({plan.duplicates} duplicate rows share one), "
        f"{plan.windows} batch group(s) (MJD window, mode, motion)",
    ]
    lines += _control_cost(plan)
    lines += describe_image_cost(plan.targets, task_seconds=plan.task_seconds)
    if refreshed:
        lines.append(f"--since-last: {refreshed} queries asked only after their last stored MJD")
    lines += [
        f"Requests (server limits: writes {write.requests} per {write.seconds:g} s, reads "
        f"{read.requests} per {read.seconds:g} s, queue cap {settings.max_queued}):",
        f"  POST   /queue/        {plan.posts:>7}  batches of <= {settings.batch_size} "
        "targets sharing one window",
        f"  DELETE /queue/<id>/   {plan.deletes:>7}  one per task, after its result is saved",
        f"  GET    /queue/ (list) {plan.reads:>7}  about; task-list polls",
        f"  result downloads      {plan.downloads:>7}  at most; static files, not throttled",
        f"  writes in all         {plan.writes:>7}  -> {_write_time(plan, settings)}",
        f"Estimated time: {format_duration(plan.total_seconds)} "
        f"({plan.queries} tasks x {plan.task_seconds:g} s, {plan.user_slots} task(s) at a time "
        "per user on the server; change the assumption with --task-seconds)",
    ]
    return "\n".join(lines)


def _control_cost(plan: RunPlan) -> list[str]:
    """What ``--controls`` costs: (N+1)x the tasks of the targets given by RA/Dec."""
    if not plan.controls:
        return []
    plain = plan.queries - plan.controls
    alone = math.ceil(plain / plan.user_slots) * plan.task_seconds
    return [
        f"--controls {plan.controls_per_target}: {plan.controls} control positions, "
        f"{plan.controls_per_target} around each target given by RA/Dec: {plan.queries} tasks "
        f"instead of {plain} ({plan.queries / plain:.3g}x), "
        f"{format_duration(plan.runner_seconds)} of server time instead of "
        f"{format_duration(alone)} at {plan.user_slots} task(s) at a time per user"
    ]


def _rows_as_parsed(targets: TargetList) -> list[str]:
    """A table of the valid rows: what would be asked for each (the first SHOWN_ROWS)."""
    rows = targets.targets[:SHOWN_ROWS]
    if not rows:
        return []
    more = len(targets.targets) - len(rows)
    width = min(max(len(t.name) for t in rows), _NAME_WIDTH)
    lines = [
        "Rows as parsed (RA, Dec in decimal degrees; sexagesimal RA is read in hours)"
        + (f", the first {len(rows)} of {len(targets.targets)}:" if more else ":"),
        f"  {'line':>6}  {'name':<{width}}  {'RA':>11}  {'Dec':>11}  MJD window",
    ]
    lines += [
        f"  {t.line:>6}  {_cut(t.name, width):<{width}}  {_position(t)}  {_window(t)}" for t in rows
    ]
    return lines


def _duplicate_rows(targets: TargetList) -> list[str]:
    """Rows that ask what an earlier row asks: queried once, reported for each."""
    pairs = list(targets.duplicate_of.items())
    if not pairs:
        return []
    names = {t.line: t.name for t in targets.targets}
    lines = [
        'Duplicate rows (within 1" or the same mpc_name, and the same window: asked once, '
        "reported for each):"
    ]
    lines += [
        f"  line {line} ({_cut(names[line], _NAME_WIDTH)}) asks what line {first} "
        f"({_cut(names[first], _NAME_WIDTH)}) asks"
        for line, first in pairs[:SHOWN_ROWS]
    ]
    return lines + _more(len(pairs))


def _invalid_rows(targets: TargetList) -> list[str]:
    """The problems of the rows --keep-going reports as invalid instead of refusing them."""
    problems = [problem for _, _, found in targets.invalid for problem in found]
    if not problems:
        return []
    lines = ["Invalid rows (not sent; reported as invalid):"]
    return lines + [f"  {problem}" for problem in problems[:SHOWN_ROWS]] + _more(len(problems))


def _more(count: int) -> list[str]:
    return [f"  … and {count - SHOWN_ROWS} more"] if count > SHOWN_ROWS else []


def _cut(name: str, width: int) -> str:
    return name if len(name) <= width else name[: width - 1] + "…"


def _position(target: Target) -> str:
    if target.ra is None or target.dec is None:
        return f"{'mpc ' + (target.mpc_name or ''):<24}"
    return f"{target.ra:>11.6f}  {target.dec:>+11.6f}"


def _window(target: Target) -> str:
    low = "survey start" if target.mjd_min is None else f"{target.mjd_min:.10g}"
    high = "now" if target.mjd_max is None else f"{target.mjd_max:.10g}"
    return f"{low} to {high}" + (", reduced images" if target.use_reduced else "")
