"""A run's nightly families read from its ledger as a stream: memory flat in its size.

:func:`~._outputs.nightly_table.families` groups a list of every row, which at 100,000 targets
(and 800,000 controls) is tens of MB held for the whole nightly table. The ledger gives
rows in line order, and a control's line is its parent's line scaled
(:mod:`._ledger.control_lines`), so controls come in their parents' order: one pass over the input
rows beside one over the controls (a merge) finds each family's controls, and a second
such pass finds the controls whose target has no light curve (families of their own, last,
as :func:`~._outputs.nightly_table.families` puts them). Duplicate rows (few) are fetched by line.
The families and their order are exactly :func:`~._outputs.nightly_table.families`'.
"""

from __future__ import annotations

from collections.abc import Iterator

from atlasbatch._ledger.control_lines import CONTROL_LINE_BASE, MAX_CONTROLS, control_line
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._ledger.schema import OutcomeRow
from atlasbatch._models import State
from atlasbatch._outputs.nightly_table import Family, SourceCurve

__all__ = ["ledger_families"]

_LINES_PER_QUERY = 900  # well under SQLite's limit on the parameters of one statement


def _curve(row: OutcomeRow) -> SourceCurve:
    return SourceCurve(row.target, row.path if row.state is State.DOWNLOADED else None,
                       row.task_id)  # fmt: skip


def _rows(ledger: Ledger, *, controls: bool) -> Iterator[SourceCurve]:
    """The input rows (or the control rows) that are not invalid, in line order."""
    if controls and not ledger.has_controls():  # no pass over every row for nothing
        return
    for row in ledger.iter_outcomes():
        if (row.target.line >= CONTROL_LINE_BASE) == controls and row.state is not State.INVALID:
            yield _curve(row)


class _ByParent:
    """Control rows grouped by parent line, taken in increasing parent order."""

    def __init__(self, rows: Iterator[SourceCurve]) -> None:
        self._rows = rows
        self._next = next(rows, None)

    def groups(self) -> Iterator[tuple[int, list[SourceCurve]]]:
        """Every (parent line, its control rows), in parent order."""
        while self._next is not None:
            parent = self._next.target.control_of
            assert parent is not None  # a control row
            yield parent, self.take(parent)

    def take(self, parent: int) -> list[SourceCurve]:
        """The control rows of ``parent``; those of smaller parents are passed over."""
        found = []
        while self._next is not None and (self._next.target.control_of or 0) <= parent:
            if self._next.target.control_of == parent:
                found.append(self._next)
            self._next = next(self._rows, None)
        return found


def _by_lines(ledger: Ledger, lines: list[int]) -> list[SourceCurve]:
    found = []
    for start in range(0, len(lines), _LINES_PER_QUERY):
        chunk = lines[start : start + _LINES_PER_QUERY]
        found += [_curve(r) for r in ledger.iter_outcomes(chunk) if r.state is not State.INVALID]
    return found


def _controls_of(ledger: Ledger, parents: list[int]) -> dict[int, list[SourceCurve]]:
    lines = [control_line(p, i) for p in parents for i in range(1, MAX_CONTROLS + 1)]
    found: dict[int, list[SourceCurve]] = {p: [] for p in parents}
    for curve in _by_lines(ledger, lines):
        assert curve.target.control_of is not None
        found[curve.target.control_of].append(curve)
    return found


def _family(members: list[SourceCurve], controls: dict[int, list[SourceCurve]]) -> Family:
    own = controls.get(members[0].target.line, [])
    shown = [c for m in members for c in controls.get(m.target.line, []) if c.key is not None]
    return Family(tuple(members), tuple(c for c in own if c.key is not None), len(own),
                  tuple(shown))  # fmt: skip


def ledger_families(ledger: Ledger) -> Iterator[Family]:
    """The families of the run's rows that are not invalid, as
    :func:`~._outputs.nightly_table.families` gives them for the same rows."""
    duplicates = ledger.duplicates()
    rep_of = {line: rep for rep, lines in duplicates.items() for line in lines}
    done: set[int] = set()  # groups of duplicate rows already given (few)
    controls = _ByParent(_rows(ledger, controls=True))
    for row in _rows(ledger, controls=False):
        line = row.target.line
        own = controls.take(line)
        if row.key is None:
            continue
        rep = rep_of.get(line, line)
        if rep not in duplicates:
            yield _family([row], {line: own})
        elif rep not in done:
            done.add(rep)
            lines = sorted([rep, *duplicates[rep]])
            members = [m for m in _by_lines(ledger, lines) if m.key is not None]
            yield _family(members, _controls_of(ledger, [m.target.line for m in members]))
    yield from _orphans(ledger)


def _orphans(ledger: Ledger) -> Iterator[Family]:
    """A family for each control whose target has no light curve (none in its family)."""
    targets = _rows(ledger, controls=False)
    target = next(targets, None)
    for parent, group in _ByParent(_rows(ledger, controls=True)).groups():
        while target is not None and target.target.line < parent:
            target = next(targets, None)
        covered = target is not None and target.target.line == parent and target.key is not None
        if not covered:
            yield from (Family((c,)) for c in group if c.key is not None)
