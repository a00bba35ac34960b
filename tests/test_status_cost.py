"""``atlasbatch status DIR`` costs the same for 20 rows as for 100,000: it reads counts off
the ledger's indexes and only the rows it prints, counts a folder of light curves once while
the folder does not change, and imports no server client.

A run of 20,000 rows is built through the Ledger API (no server: status of a run needs
none); what status prints is checked against a scan of every row (``iter_outcomes``), and
every SQL statement it issues is traced and its query plan read: none scans a table.
"""

from __future__ import annotations

import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from rich.console import Console

from atlasbatch._cli.file_counts import count_files
from atlasbatch._cli.status import print_status
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import State, Target
from atlasbatch._runs.rundir import LEDGER_NAME
from atlasbatch.cli import main

ROWS = 20_000
INVALID = 30
NOT_FETCHED = (State.FAILED, State.INVALID, State.CANCELLED)


def _fails(line: int) -> bool:
    return line % 500 == 1  # 40 failed queries


def _duplicate_of() -> dict[int, int]:
    """Rows that ask the same as the row above: 19 of a failed query, 19 of a stored one."""
    return {line: line - 1 for line in range(1000, ROWS + 2) if line % 1000 in (2, 600)}


def build_run(folder: Path) -> None:
    """A run of ``ROWS`` rows that ended with its tasks still on the server: most queries
    downloaded, some failed, some rows duplicates, some invalid; three light curves stored."""
    folder.mkdir()
    ledger = Ledger(folder / LEDGER_NAME)
    ledger.bind_server("http://127.0.0.1:9/")  # never asked: status without --remote
    targets = [Target(line=n, name=f"t{n}", ra=(n * 0.01) % 360, dec=10.0)
               for n in range(2, ROWS + 2)]  # fmt: skip
    duplicates = _duplicate_of()
    invalid = [(Target(line=ROWS + 2 + i, name=f"bad{i}"), "ra: not a number")
               for i in range(INVALID)]  # fmt: skip
    ledger.add_targets(targets, duplicates, invalid)
    queries = [t.line for t in targets if t.line not in duplicates]
    for start in range(0, len(queries), 1000):
        lines = queries[start : start + 1000]
        batch, _ = ledger.start_batch(lines)
        ledger.batch_submitted(batch, [(line, 100_000 + line) for line in lines])
    ledger.task_progress([
        (100_000 + line, State.FAILED, None, f"boom {line}") if _fails(line)
        else (100_000 + line, State.DOWNLOADED, f"http://127.0.0.1:9/{line}.txt", None)
        for line in queries
    ])  # fmt: skip
    ledger.close()
    curves = folder / "lightcurves"
    curves.mkdir()
    for name in ("a.txt", "b.txt", "c.txt", "d.txt.part"):  # a partial download is no curve
        (curves / name).write_text("###MJD m dm\n")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("status") / "run"
    build_run(folder)
    return folder


def traced_status(folder: Path) -> tuple[str, list[str]]:
    """What status prints for ``folder`` and every SQL statement it issued."""
    out = io.StringIO()
    ledger = Ledger(folder / LEDGER_NAME)
    statements: list[str] = []
    ledger._db.set_trace_callback(statements.append)  # observes; changes nothing
    try:
        print_status(Console(file=out, width=200), ledger, folder)
    finally:
        ledger.close()
    return out.getvalue(), statements


def test_status_of_20000_rows_says_what_a_scan_of_every_row_says(run_dir: Path) -> None:
    text, _ = traced_status(run_dir)
    ledger = Ledger(run_dir / LEDGER_NAME)
    rows = list(ledger.iter_outcomes())  # the reference: every row with its query's state
    ledger.close()
    counts = Counter(row.state for row in rows)
    assert counts[State.FAILED] == 40 + 19 and counts[State.INVALID] == INVALID  # duplicates
    for state, n in counts.items():
        assert re.search(rf"^ {state.value}\s+│\s+{n} $", text, re.MULTILINE), (state, text)
    assert re.search(rf"^ total\s+│\s+{ROWS + INVALID} $", text, re.MULTILINE), text
    bad = [row for row in rows if row.state in NOT_FETCHED]
    shown = re.findall(r"^ (\d+) +│ (\S+) +│ (\w+) +│ (.*?) *$", text, re.MULTILINE)
    assert shown == [(str(r.target.line), r.target.name, r.state.value, r.error or "")
                     for r in bad[:20]]  # fmt: skip
    assert f"… and {len(bad) - 20} more: see outcomes.csv" in text
    queries = ROWS - len(_duplicate_of())
    assert (f"tasks    {queries} still on the server per the ledger "
            f"(downloaded {queries - 40}, failed 40)") in text  # fmt: skip
    assert f"ended, {queries} task(s) left on the server" in text
    assert "3 light curve(s) in the server's format" in text


def test_no_statement_of_status_scans_a_table(run_dir: Path) -> None:
    _, statements = traced_status(run_dir)
    assert any("FROM targets" in sql for sql in statements)  # the trace saw the queries
    with sqlite3.connect(run_dir / LEDGER_NAME) as db:
        for sql in statements:
            plan = [str(row[-1]) for row in db.execute(f"EXPLAIN QUERY PLAN {sql}")]
            # "SCAN x" alone reads every row; "SCAN x USING ... INDEX" reads an index
            # (the count by state reads targets_state: in SQLite, not in Python)
            assert not [step for step in plan if re.fullmatch(r"SCAN \w+", step)], (sql, plan)


def test_status_imports_no_server_client(run_dir: Path, tmp_path: Path) -> None:
    probe = (
        "import json, sys\nfrom atlasbatch.cli import main\ncode = main(sys.argv[2:])\n"
        "found = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('httpx', 'httpcore', 'tenacity', 'asyncio') or m.startswith("
        "('atlasbatch._http.client', 'atlasbatch._engine')))\n"
        "open(sys.argv[1], 'w').write(json.dumps({'code': code, 'found': found}))\n"
    )
    report = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, "-c", probe, str(report), "status", str(run_dir)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert report.exists(), done.stderr
    assert json.loads(report.read_text()) == {"code": 0, "found": []}


def test_status_command_on_the_big_run(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "… and 69 more: see outcomes.csv" in out  # 59 failed + 30 invalid, 20 shown
    assert f"atlasbatch cleanup {run_dir}" in out


def test_a_folder_is_counted_once_while_it_does_not_change(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / LEDGER_NAME)
    curves = tmp_path / "lightcurves"
    curves.mkdir()
    for name in ("a.txt", "b.txt", "c.txt.part"):
        (curves / name).write_text("x\n")
    # Just written: listed, and not remembered (a file added in the same clock tick as the
    # listing would not change the folder's stamp).
    assert count_files(curves, ".txt", ledger) == 2
    assert ledger.meta("file_counts") is None
    old = time.time() - 3600  # a finished run's folder, left alone for an hour
    os.utime(curves, (old, old))
    assert count_files(curves, ".txt", ledger) == 2
    remembered = ledger.meta("file_counts")
    assert remembered is not None
    assert count_files(curves, ".txt", ledger) == 2  # from the ledger
    assert ledger.meta("file_counts") == remembered
    (curves / "c.txt.part").rename(curves / "c.txt")  # the folder changed: counted again
    assert count_files(curves, ".txt", ledger) == 3
    (curves / "a.txt").unlink()
    os.utime(curves, (old + 1, old + 1))
    assert count_files(curves, ".txt", ledger) == 2
    assert count_files(curves, ".png", ledger) == 0  # each kind of file on its own
    assert count_files(curves, ".txt", None) == 2  # without a ledger: always listed
    ledger.close()
