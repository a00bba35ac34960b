"""A target list in flat memory (issue 12): read column-wise, each Target made when asked.

Python memory is measured with tracemalloc (numpy's buffers included; Arrow's are not
Python objects, but they are a few bytes per cell): what a read of 100,000 rows holds
afterwards and at its peak, and what recording them in a ledger adds at its peak. The old
reader held ~340 bytes of Python objects per row and peaked at ~560; recording made a list
of every ledger row first. Lazily made targets must equal those a row read alone makes,
across the chunks the parser works in, and compare, index and slice like tuples.
"""

from __future__ import annotations

import dataclasses
import sqlite3
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pandas as pd
import pytest

from atlasbatch import Target, TargetList, read_targets
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._runs.rundir import record_targets
from atlasbatch._targets.text import CHUNK_ROWS

ROWS = 100_000
T = TypeVar("T")


def traced(work: Callable[[], T]) -> tuple[T, int, int]:
    """``work()``, the Python memory it left allocated and its peak, in bytes."""
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        result = work()
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, after - before, peak - before


def big_csv(path: Path, count: int = ROWS) -> Path:
    """``count`` rows ~0.1 deg apart (no duplicates), as a plain CSV."""
    body = "".join(
        f"t{i:06d},{(i % 3600) * 0.1:.6f},{10.0 + (i // 3600) * 0.1:.6f}\n" for i in range(count)
    )
    path.write_text("name,ra,dec\n" + body, encoding="utf-8")
    return path


def records(count: int) -> Iterator[dict[str, object]]:
    """A generator of records, as the library's callers pass them."""
    for i in range(count):
        yield {"name": f"t{i:06d}", "ra": (i % 3600) * 0.1, "dec": 10.0 + (i // 3600) * 0.1}


# --- memory -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["csv", "records"])
def test_a_list_of_100k_rows_holds_a_few_dozen_bytes_per_row(tmp_path: Path, kind: str) -> None:
    count = ROWS if kind == "csv" else ROWS // 2  # records are slow to make under tracemalloc
    source: object = big_csv(tmp_path / "t.csv") if kind == "csv" else records(count)
    result, held, peak = traced(lambda: read_targets(source))  # type: ignore[arg-type]
    assert len(result.targets) == len(result.unique) == count
    assert held / count < 150, f"{held / count:.0f} bytes per row held after the read"
    assert peak / count < 300, f"{peak / count:.0f} bytes per row at the read's peak"


def test_recording_targets_never_holds_them_all(tmp_path: Path) -> None:
    count = ROWS // 4  # enough for a per-row cost to stand out from the fixed ones
    targets = read_targets(big_csv(tmp_path / "t.csv", count))
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    try:
        added, _, peak = traced(lambda: record_targets(ledger, targets))
        assert added == count
        assert peak / count < 100, f"{peak / count:.0f} bytes per row while recording"
    finally:
        ledger.close()
    with sqlite3.connect(tmp_path / "atlasbatch.sqlite3") as db:
        stored = db.execute("SELECT line, name, rep, ra, dec FROM targets ORDER BY line").fetchall()
    assert len(stored) == count
    every = [(t.line, t.name, t.line, t.ra, t.dec) for t in targets.targets[::999]]
    assert stored[::999] == every


def test_resuming_checks_the_rows_without_holding_them_all(tmp_path: Path) -> None:
    count = ROWS // 4
    targets = read_targets(big_csv(tmp_path / "t.csv", count))
    more = read_targets(big_csv(tmp_path / "more.csv", count + 10))
    ledger = Ledger(tmp_path / "atlasbatch.sqlite3")
    try:
        record_targets(ledger, targets)
        again, _, peak = traced(lambda: record_targets(ledger, targets))
        assert again == 0
        # Every ledger row in a dict to compare against: ~580 bytes a row.
        assert peak / count < 100, f"{peak / count:.0f} bytes per row while resuming"
        assert record_targets(ledger, more) == 10  # rows added at the end of the file
    finally:
        ledger.close()


# --- the same targets ---------------------------------------------------------------------

_HEADER = "name,ra,dec,mpc_name,mjd_min,mjd_max,use_reduced,pmra,pmdec,epoch,images,note"
_KINDS = [  # six kinds of row, in turn; every position its own (no two within 1")
    "{n},{h}:{m}:{s}.5,+54:18:42,,,,,,,,,",
    "{n},{x},-3.25,,60000,60100,yes,,,,1, kept text ",
    "{n},,,({i}),,,,,,,,",
    "{n},{x},20,,,,,1.5,-2,J2016,0,x",
    "{n},400,95,,,,,,,,,",  # two problems
    "{n},{h}h{m}m{s}s,-05d02m03s,,59000,,no,,,,yes,",
]
_INVALID = 4
_IMAGES = (1, 5)


def _text(count: int) -> str:
    rows = [
        _KINDS[i % len(_KINDS)].format(
            n=f"r{i}", i=i, x=f"{i * 0.0037 % 360:.6f}", h=i % 24, m=i // 24 % 60, s=i // 1440
        )
        for i in range(count)
    ]
    twin = rows[CHUNK_ROWS - 3].replace(f"r{CHUNK_ROWS - 3}", "twin")  # one query, two chunks
    rows[CHUNK_ROWS - 3] = rows[CHUNK_ROWS + 3] = twin
    return _HEADER + "\n" + "\n".join(rows) + "\n"


def _alone(target: Target, text: str) -> Target:
    """The target its row makes when read alone, at its own line number."""
    line = text.splitlines()[target.line - 1]
    path_free = [dict(zip(_HEADER.split(","), line.split(","), strict=True))]
    (alone,) = read_targets(path_free).targets
    return dataclasses.replace(alone, line=target.line)


def test_rows_across_chunks_make_the_targets_they_make_alone(tmp_path: Path) -> None:
    text = _text(2 * CHUNK_ROWS + 100)
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    result = read_targets(path, keep_going=True)
    count = 2 * CHUNK_ROWS + 100
    assert [line for line, _, _ in result.invalid] == [
        i + 2 for i in range(count) if i % len(_KINDS) == _INVALID
    ]
    assert result.duplicate_of == {CHUNK_ROWS + 5: CHUNK_ROWS - 1}
    shown = [i for i in range(len(result.targets)) if i < 8 or i % CHUNK_ROWS < 4 or
             i % CHUNK_ROWS > CHUNK_ROWS - 4]  # fmt: skip
    for i in [*shown, -1]:
        target = result.targets[i]
        alone = _alone(target, text)
        assert target == alone
        assert dict(target.extra) == dict(alone.extra)
    made = tuple(result.targets)
    assert result.images == {t.line for t in made if (t.line - 2) % len(_KINDS) in _IMAGES}


@pytest.mark.parametrize("kind", ["csv", "records", "frame"])
def test_lazy_targets_behave_as_the_tuple_they_stand_for(tmp_path: Path, kind: str) -> None:
    text = _text(CHUNK_ROWS + 50)
    path = tmp_path / "t.csv"
    path.write_text(text, encoding="utf-8")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    source = {"csv": path, "records": frame.to_dict("records"), "frame": frame}[kind]
    result = read_targets(source, keep_going=True)  # type: ignore[arg-type]
    made = tuple(result.targets)
    assert result.targets == made and made == result.targets
    assert result.targets[5:20] == made[5:20]
    assert result.targets[::-7] == made[::-7]
    assert result.targets[-1] == made[-1] and result.targets[3] == made[3]
    with pytest.raises(IndexError):
        result.targets[len(made)]
    unique = tuple(result.unique)
    assert [t.line for t in unique] == [t.line for t in made if t.line not in result.duplicate_of]
    assert tuple(read_targets(path, keep_going=True).targets) == made  # csv, records, frame
    again = dataclasses.replace(result, unique=unique)  # what a refresh plan does
    assert isinstance(again, TargetList) and again.unique == result.unique


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_line_numbers_hold_across_the_blocks_a_file_is_split_in(tmp_path: Path, end: str) -> None:
    lines = ["name,ra,dec"]
    for i in range(30_000):  # ~750 kB: several blocks, each cut after a line break
        if i % 997 == 0:
            lines += ["", " , , "]  # a blank line and an all-empty row: skipped, counted
        lines.append(f"t{i},{i * 0.0037 % 360:.6f},{i % 80 - 40}.5")
    path = tmp_path / "t.csv"
    path.write_bytes(end.join(lines).encode() + end.encode())
    result = read_targets(path)
    expected = [(n, line.split(",")[0]) for n, line in enumerate(lines, start=1)]
    assert [(t.line, t.name) for t in result.targets] == [
        (n, name) for n, name in expected[1:] if name.strip()
    ]


def test_a_key_first_seen_late_in_the_records_is_blank_above() -> None:
    count = CHUNK_ROWS + 500  # the key arrives after the first chunk went to Arrow
    rows: list[dict[str, object]] = [
        {"name": f"t{i}", "ra": i * 0.0037 % 360, "dec": 10.0} for i in range(count)
    ]
    rows[CHUNK_ROWS + 7]["note"] = " late "
    rows[3]["early"] = 1
    result = read_targets(iter(rows))
    assert result.columns == ("early", "note")  # in the order first seen
    notes = [(t.line, dict(t.extra)) for t in result.targets if t.extra["note"] or t.extra["early"]]
    assert notes == [
        (5, {"note": "", "early": "1"}),
        (CHUNK_ROWS + 9, {"note": "late", "early": ""}),
    ]
