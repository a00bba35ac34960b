"""Bad target files through the real ``atlasbatch fetch``: exit 2, a line-numbered message,
no ledger, and not one request to the server.

The malformed files are the generated matrix of ``test_targets_bad_input.py`` (there fed to
``read_targets`` alone) plus files only a command line meets: CRLF and TSV files, a file
that is not there or is a folder, 50,000 rows with one bad line, a file with a thousand bad
rows. They all go to one emulator that must see no request at all.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from atlasbatch.cli import main
from atlasbatch.testing import Emulator, EmulatorConfig

from .test_targets_bad_input import ANY_LINE, GOOD, HEADER, ROW_CASES, STRUCTURAL_CASES

LEDGER = "atlasbatch.sqlite3"


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """One emulator for the whole module; it must never hear from the CLI."""
    with Emulator(EmulatorConfig(task_seconds=0.01)) as emulator:
        yield emulator


@pytest.fixture
def fetch(
    emu: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Iterator[FetchRunner]:
    """Run ``atlasbatch fetch FILE`` with a valid token; check the server heard nothing."""
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)  # were the file accepted, requests would go
    monkeypatch.delenv("ATLAS_BASE_URL", raising=False)
    yield FetchRunner(emu, tmp_path, capsys)
    assert emu.stats()["requests"] == {}


class FetchRunner:
    """``runner(path, *options) -> stderr``, asserting exit status 2 and no ledger."""

    def __init__(self, emu: Emulator, folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
        self.emu, self.folder, self.capsys = emu, folder, capsys

    def __call__(self, path: Path, *options: str) -> str:
        out = self.folder / "run"
        argv = ["fetch", str(path), "--out", str(out), "--base-url", self.emu.base_url,
                "--write-rate", "100/1s", "--read-rate", "1000/1s", *options]  # fmt: skip
        code = main(argv)
        captured = self.capsys.readouterr()
        assert code == 2, (code, captured.err)
        assert not (out / LEDGER).exists()
        assert not out.exists() or not any(out.iterdir())
        assert captured.err.startswith("atlasbatch: "), captured.err
        assert self.emu.token not in captured.out + captured.err
        return captured.err


def _write(folder: Path, data: bytes, name: str = "targets.csv") -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("data", "line", "column"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES]
)
def test_bad_row(fetch: FetchRunner, tmp_path: Path, data: bytes, line: int, column: str) -> None:
    path = _write(tmp_path, data)
    err = fetch(path)
    assert f"{path}: " in err
    assert f"line {line}, column {column!r}" in err
    assert "nothing was sent" in err


@pytest.mark.parametrize(
    ("data", "line"), [c[1:] for c in STRUCTURAL_CASES], ids=[c[0] for c in STRUCTURAL_CASES]
)
def test_bad_file(fetch: FetchRunner, tmp_path: Path, data: bytes, line: int | None) -> None:
    path = _write(tmp_path, data)
    err = fetch(path)
    assert err.startswith(f"atlasbatch: {path}: ")  # the file is named first
    if line == ANY_LINE:
        assert re.search(r"\bline \d+", err), err
    elif line is not None:
        assert f"line {line}" in err


def _rows(count: int) -> str:
    return "".join(f"t{i},{i % 360}.5,{(i % 170) - 85}.25,,,,\n" for i in range(count))


EXTRA_ROW_CASES = [
    # (id, file bytes, file name, line, column)
    ("crlf", f"{HEADER}\r\n{GOOD[0]}\r\nbad,1,nan,,,,\r\n".encode(), "t.csv", 3, "dec"),
    ("tsv", f"{HEADER}\n{GOOD[0]}\nbad,inf,1,,,,\n".replace(",", "\t").encode(), "t.tsv", 3,
     "ra"),
    ("utf-8 bom", codecs.BOM_UTF8 + f"{HEADER}\nbad,1,95,,,,\n".encode(), "t.csv", 2, "dec"),
    ("quoted nan", f'{HEADER}\n"bad","NaN","1",,,,\n'.encode(), "t.csv", 2, "ra"),
    ("50k rows, bad middle",
     f"{HEADER}\n{_rows(25_000)}bad,12:34:56.7,+91:00:00,,,,\n{_rows(25_000)}".encode(),
     "big.csv", 25_002, "dec"),
    ("50k rows, bad last", f"{HEADER}\n{_rows(50_000)}bad,-1,0,,,,\n".encode(), "big.csv",
     50_002, "ra"),
]  # fmt: skip


@pytest.mark.parametrize(
    "case", [c[1:] for c in EXTRA_ROW_CASES], ids=[c[0] for c in EXTRA_ROW_CASES]
)
def test_bad_row_in_files_only_a_command_line_meets(
    fetch: FetchRunner, tmp_path: Path, case: tuple[bytes, str, int, str]
) -> None:
    data, name, line, column = case
    path = _write(tmp_path, data, name)
    err = fetch(path)
    assert f"{path}: 1 problem(s)" in err
    assert f"line {line}, column {column!r}" in err


def test_a_thousand_bad_rows_are_all_counted(fetch: FetchRunner, tmp_path: Path) -> None:
    body = "".join(f"bad{i},{400 + i},0,,,,\n" for i in range(1000))
    path = _write(tmp_path, f"{HEADER}\n{GOOD[0]}\n{body}".encode())
    err = fetch(path)
    assert f"{path}: 1000 problem(s)" in err
    assert "line 3, column 'ra'" in err  # the first ones are listed by line…
    assert "and 950 more" in err  # …the rest counted


@pytest.mark.parametrize("kind", ["missing", "folder"])
def test_a_target_file_that_cannot_be_read(fetch: FetchRunner, tmp_path: Path, kind: str) -> None:
    path = tmp_path / "targets.csv"
    if kind == "folder":
        path.mkdir()
    err = fetch(path)
    assert str(path) in err


def test_the_matrix_has_at_least_100_files() -> None:
    files = len(ROW_CASES) + len(STRUCTURAL_CASES) + len(EXTRA_ROW_CASES) + 1 + 2
    assert files >= 100


BAD_OPTIONS = [
    (["--mjd-min", "nan"], "mjd_min must be a finite number"),
    (["--mjd-max", "inf"], "mjd_max must be a finite number"),
    (["--mjd-min", "60000", "--mjd-max", "50000"], "must be greater than mjd_min"),
    (["--mjd-min", "-5"], "outside [40000, 100000]"),
    (["--write-rate", "lots"], "rate 'lots'"),
    (["--read-rate", "0/s"], "at least one request"),
    (["--max-queued", "0"], "max_queued must be at least 1"),
    (["--task-seconds", "-1"], "--task-seconds must be a positive number"),
    (["--base-url", "ftp://127.0.0.1/forcedphot"], "must be an http(s) URL"),
]
NON_FINITE_TASK_SECONDS = [(["--task-seconds", "nan"], "--task-seconds"),
                           (["--task-seconds", "inf"], "--task-seconds")]  # fmt: skip


@pytest.mark.parametrize(
    "case",
    [
        *[pytest.param(c, id=" ".join(c[0])) for c in BAD_OPTIONS],
        *[pytest.param(c, id=" ".join(c[0])) for c in NON_FINITE_TASK_SECONDS],
    ],
)
def test_bad_option_with_a_good_file(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[str], str],
) -> None:
    """Bad options are refused before anything is sent (an emulator of its own: if an
    option slips through, the run reaches this emulator and no other)."""
    options, wanted = case
    monkeypatch.setenv("ATLAS_TOKEN", atlas_emulator.token)
    path = _write(tmp_path, f"{HEADER}\n{GOOD[0]}\n".encode())
    out = tmp_path / "run"
    base = ["--base-url", atlas_emulator.base_url, "--write-rate", "100/1s"]
    code = main(["fetch", str(path), "--out", str(out), *base, *options])
    err = capsys.readouterr().err
    assert (code, atlas_emulator.stats()["requests"]) == (2, {}), err
    assert wanted in err
    assert not (out / LEDGER).exists()
