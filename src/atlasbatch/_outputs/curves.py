"""Reading stored light-curve files many at a time, stacked into one frame per header.

Parsing a thousand four-line files one by one costs a thousand calls of pandas' fixed
overhead; stacking their rows under one header and parsing once costs one. Files with
another header (a newer server adds ``PA_DEG``) form their own stack. A file that does not
parse is found by parsing its stack file by file; it is logged and left out, as one bad
file must not cost the table every other light curve.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from atlasbatch._exceptions import ResultFileError
from atlasbatch._outputs.results import parse_result

__all__ = ["Stack", "read_stacks"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Stack:
    """Parsed rows of several files with one header; ``curve`` numbers each row's file
    (its index in the list given to :func:`read_stacks`), non-decreasing."""

    rows: pd.DataFrame
    curve: npt.NDArray[np.intp]


@dataclass(slots=True)
class _Pending:
    header: str
    files: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)


def read_stacks(
    paths: Sequence[Path],
    *,
    names: Sequence[str] | None = None,
    unreadable: set[int] | None = None,
    purpose: str = "the photometry table",
) -> Iterator[Stack]:
    """Parse ``paths`` into one :class:`Stack` per distinct header (files without rows and
    unreadable files contribute none). ``names`` label the files in log lines, which say
    they are left out of ``purpose``; the index of every file that cannot be read or parsed
    is added to ``unreadable`` (a file without rows is readable)."""
    labels = names if names is not None else [str(p) for p in paths]
    failed = unreadable if unreadable is not None else set()
    left_out = f"left out of {purpose}"
    pending: dict[tuple[str, ...], _Pending] = {}
    for index, path in enumerate(paths):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            log.error("%s: cannot be read (%s); %s", labels[index], exc, left_out)
            failed.add(index)
            continue
        lines = text.removeprefix("\ufeff").splitlines()
        if not lines or not lines[0].startswith("###"):
            # empty (no rows), or logs why it is not a file
            if _parse_alone(text, labels[index], left_out) is None:
                failed.add(index)
            continue
        data = [line for line in lines[1:] if line.strip()]
        stack = pending.setdefault(tuple(lines[0][3:].split()), _Pending(lines[0]))
        stack.files.append(index)
        stack.counts.append(len(data))
        stack.lines.extend(data)
    for stack in pending.values():
        yield from _parse(stack, paths, labels, failed, left_out)


def _parse(
    stack: _Pending, paths: Sequence[Path], labels: Sequence[str], failed: set[int], left_out: str
) -> Iterator[Stack]:
    """One parse for the whole stack; file by file if that fails, to leave out the bad one."""
    try:
        rows = parse_result("\n".join([stack.header, *stack.lines]) + "\n", source="stack")
    except ResultFileError:
        rows = None
    if rows is not None and len(rows) == sum(stack.counts):
        yield Stack(rows, np.repeat(np.asarray(stack.files, dtype=np.intp), stack.counts))
        return
    for index in stack.files:  # rare: a file changed on disk, or damaged by hand
        one = _parse_alone(paths[index].read_text("utf-8", "replace"), labels[index], left_out)
        if one is None:
            failed.add(index)
        elif len(one):
            yield Stack(one, np.full(len(one), index, dtype=np.intp))


def _parse_alone(text: str, label: str, left_out: str) -> pd.DataFrame | None:
    try:
        return parse_result(text, source=label)
    except ResultFileError as exc:
        log.error("%s; %s", exc, left_out)
        return None
