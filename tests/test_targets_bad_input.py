"""A generated matrix of malformed target files: each fails with a line-numbered error.

Row problems must come back as one TargetFileError whose problems include the bad row's
line; structural problems (encoding, binary data, missing columns, empty files) as an
InputError whose message starts with the file's path and, where a line is to blame, names
it. Hypothesis then throws arbitrary cells and bytes at the reader: it may accept them or
refuse them, but only with these errors.
"""

from __future__ import annotations

import codecs
import random
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from atlasbatch import InputError, TargetFileError
from atlasbatch._targets.read import TargetList, read_targets

HEADER = "name,ra,dec,mjd_min,mjd_max,use_reduced,mpc_name"
GOOD = [
    "SN2023ixf,210.910674,54.311677,,,,",
    "Mira,02:19:20.79,-02:58:39.5,,,,",
    ",10,-20,60000,60100,yes,",
    "Ceres,,,,,,(1)",
]
ANY_LINE = -1  # the error must name some line, which one depends on random bytes

BAD_RA = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "1e400", "1e308", "9" * 400, "-0.0001",
    "360.000001", "400", "-12:00:00", "24:00:00", "25:99:99", "12:60:00", "12:34:60",
    "12:34:59.9.9", "12:34", "12::56", "12:34:56:78", "12 34", "12h34m", "12d34m56s",
    "abc", "0x10", "1_000", "--5", "+-5", "١٢", "true", "[1, 2]", "{}", "12,5", "12°", "1e",
]  # fmt: skip
BAD_DEC = [
    "90", "-90", "90.0000001", "-95", "1e308", "-1e999", "+90:00:00", "-90:00:00",
    "91:00:00", "45:60:00", "45:00:60", "100:00:00", "nan", "inf", "N45", "45N", "-",
    "+", ".", "45:00", "45d", "12h00m00s", "1 2 3 4", "None",
]  # fmt: skip
BAD_MJD = [
    ("abc", ""), ("", "2023-05-19"), ("2460083.5", ""), ("", "0"), ("-1", ""),
    ("1e10", ""), ("nan", ""), ("", "inf"), ("39999.99", ""), ("", "100000.1"),
    ("60000", "59999"), ("60000", "60000"), ("60000,5", ""), ("1e300", ""), ("2023", ""),
    ("", "2023-02-30"),
]  # fmt: skip
BAD_FLAGS = ["maybe", "2", "-1", "ja", "nope", "truee", "1.5", "t"]
BAD_MPC = ["Ceres'", 'a""b', "x;y", "z" * 301, "(1) ;drop"]


def _row(
    name: str, ra: str, dec: str, *, lo: str = "", hi: str = "", flag: str = "", mpc: str = ""
) -> str:
    return ",".join(
        f'"{c}"' if "," in c or '"' in c else c for c in (name, ra, dec, lo, hi, flag, mpc)
    )


def _file_with(bad: str, k: int) -> tuple[str, int]:
    """A file of good rows with ``bad`` after k of them (and a blank line now and then)."""
    before = [GOOD[j % len(GOOD)] for j in range(k % 4)]
    blank = [""] if k % 3 == 0 else []
    after = [GOOD[(k + 1) % len(GOOD)].replace("Mira", "Mira2").replace("SN2023ixf", "X")]
    rows = [HEADER, *before, *blank, bad, *after]
    return "\n".join(rows) + "\n", 2 + len(before) + len(blank)


def _row_cases() -> list[tuple[str, bytes, int, str]]:
    rows: list[tuple[str, str, str]] = []  # (id, bad row, column to blame)
    rows += [(f"ra={v!r}", _row("bad", v, "10"), "ra") for v in BAD_RA]
    rows += [(f"dec={v!r}", _row("bad", "10", v), "dec") for v in BAD_DEC]
    rows += [
        (
            f"mjd={lo!r},{hi!r}",
            _row("bad", "10", "10", lo=lo, hi=hi),
            "mjd_min" if lo and not hi else "mjd_max",
        )
        for lo, hi in BAD_MJD
    ]
    rows += [(f"reduced={v!r}", _row("bad", "10", "10", flag=v), "use_reduced") for v in BAD_FLAGS]
    rows += [(f"mpc={v[:12]!r}", _row("bad", "", "", mpc=v), "mpc_name") for v in BAD_MPC]
    rows += [
        ("ra missing", _row("bad", "", "10"), "ra"),
        ("dec missing", _row("bad", "10", ""), "dec"),
        ("no position", _row("bad", "", ""), "ra"),
        ("mpc and ra", _row("bad", "10", "", mpc="Ceres"), "mpc_name"),
        ("mpc and both", _row("bad", "10", "20", mpc="Ceres"), "mpc_name"),
        ("name reused", _row("Mira", "10", "10"), "name"),
        ("name control", _row("bad\x01", "10", "10"), "name"),
        ("too many fields", "bad,1,2,,,,,extra", "(row)"),
        ("unquoted comma", "bad, a comment,1,2,,,,", "ra"),
        ("unbalanced quote", 'bad,"1,2,,,,', "(row)"),
        ("short row", "bad,1", "dec"),
    ]
    cases = []
    for k, (case_id, bad, column) in enumerate(rows):
        text, line = _file_with(bad, k)
        if case_id == "name reused":  # make sure the earlier Mira row is there
            text, line = f"{HEADER}\n{GOOD[1]}\n{bad}\n", 3
        cases.append((case_id, text.encode(), line, column))
    return cases


def _structural_cases() -> list[tuple[str, bytes, int | None]]:
    """(id, file bytes, line the message must name or None for the file itself)."""
    good = f"{HEADER}\n{GOOD[0]}\n".encode()
    cases: list[tuple[str, bytes, int | None]] = [
        ("empty", b"", None),
        ("blank lines", b"\n\n  \n", None),
        ("commas only", b",,,\n,,\n", None),
        ("header only", HEADER.encode() + b"\n", None),
        ("header and blank rows", HEADER.encode() + b"\n\n,,,,,,\n", None),
        ("no coordinate columns", b"name,x,y\nA,1,2\n", None),
        ("ra without dec", b"name,ra\nA,1\n", None),
        ("dec without ra", b"name,Dec\nA,1\n", None),
        ("duplicate columns", b"name,ra,ra,dec\nA,1,1,2\n", None),
        ("ambiguous aliases", b"name,ra_deg,raj2000,dec\nA,1,1,2\n", None),
        ("two name aliases", b"target,object,ra,dec\nA,B,1,2\n", None),
        ("semicolons", b"name;ra;dec\nA;1;2\n", None),
        ("pipes", b"name|ra|dec\nA|1|2\n", None),
        ("zip", b"PK\x03\x04" + bytes(range(40)), None),
        ("gzip", b"\x1f\x8b\x08\x00" + bytes(20), None),
        ("xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(20), None),
        ("pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", None),
        ("parquet", b"PAR1\x15\x04", None),
        ("utf-16 le", codecs.BOM_UTF16_LE + good.decode().encode("utf-16-le"), None),
        ("utf-16 be", codecs.BOM_UTF16_BE + good.decode().encode("utf-16-be"), None),
        ("utf-16 no bom", good.decode().encode("utf-16-le"), 1),
        ("utf-32", good.decode().encode("utf-32"), None),
        ("latin-1 name", good + "Caf\u00e9,1,2,,,,\n".encode("latin-1"), 3),
        ("cp1252 quotes", good + good + "\u201cA\u201d,1,2,,,,\n".encode("cp1252"), 5),
        ("latin-1 header", "name,ra,dec,d\u00e9c\n".encode("latin-1"), 1),
        ("nul mid-file", good + b"B,1,2\x00,,,,\n", 3),
        ("huge field", good + b"B," + b"1" * 200_000 + b",2,,,,\n", 3),
        ("truncated utf-8", good + "B,1,2,,,,\u00e9".encode()[:-1], 3),
    ]
    rng = random.Random(20240519)
    for k in range(12):
        garbage = rng.randbytes(rng.randint(50, 2000))
        cases.append((f"garbage {k}", garbage if k % 2 else good + garbage, ANY_LINE))
    return cases


ROW_CASES = _row_cases()
STRUCTURAL_CASES = _structural_cases()


def test_the_matrix_has_at_least_100_files() -> None:
    assert len(ROW_CASES) + len(STRUCTURAL_CASES) + 1 >= 100


@pytest.mark.parametrize(
    ("data", "line", "column"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES]
)
def test_bad_row(tmp_path: Path, data: bytes, line: int, column: str) -> None:
    path = tmp_path / "targets.csv"
    path.write_bytes(data)
    with pytest.raises(TargetFileError) as caught:
        read_targets(path)
    error = caught.value
    assert (line, column) in {(p.line, p.column) for p in error.problems}, error.problems
    assert {p.line for p in error.problems} == {line}  # the good rows around it stay good
    assert f"line {line}, column {column!r}" in str(error)
    assert str(error).startswith(str(path))
    assert error.source == str(path)


@pytest.mark.parametrize(
    ("data", "line"), [c[1:] for c in STRUCTURAL_CASES], ids=[c[0] for c in STRUCTURAL_CASES]
)
def test_bad_file(tmp_path: Path, data: bytes, line: int | None) -> None:
    path = tmp_path / "targets.csv"
    path.write_bytes(data)
    with pytest.raises(InputError) as caught:
        read_targets(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: ")
    assert not isinstance(caught.value, TargetFileError)  # a file problem, not a row problem
    if line == ANY_LINE:
        assert re.search(r"\bline \d+", message)
    elif line is not None:
        assert f"line {line}" in message


def test_a_bad_last_row_of_a_large_file(tmp_path: Path) -> None:
    path = tmp_path / "large.csv"
    body = "".join(f"t{i},{i % 360}.5,{(i % 170) - 85}.25,,,,\n" for i in range(30_000))
    path.write_text(f"{HEADER}\n{body}last,12:34:56.7,+91:00:00,,,,\n")
    with pytest.raises(TargetFileError) as caught:
        read_targets(path)
    assert [(p.line, p.column) for p in caught.value.problems] == [(30_002, "dec")]


CELL = st.one_of(
    st.text(max_size=12),
    st.text(alphabet="0123456789+-.:hmsde \t", max_size=14),
    st.floats().map(repr),
    st.integers(-(10**30), 10**30).map(str),
)


def _outcome(source: object, **options: bool) -> TargetList | InputError:
    try:
        return read_targets(source, **options)  # type: ignore[arg-type]
    except InputError as error:
        return error


@given(ra=CELL, dec=CELL, lo=CELL, hi=CELL)
@settings(max_examples=150, deadline=None)
def test_arbitrary_cells_are_accepted_sanely_or_blamed_on_their_row(
    ra: str, dec: str, lo: str, hi: str
) -> None:
    records = [
        {"name": "ok", "ra": 1, "dec": 2},
        {"name": "x", "ra": ra, "dec": dec, "mjd_min": lo, "mjd_max": hi},
    ]
    outcome = _outcome(records)
    if isinstance(outcome, InputError):
        assert isinstance(outcome, TargetFileError)
        assert outcome.problems
        assert {p.line for p in outcome.problems} == {3}
        assert {p.column for p in outcome.problems} <= {"ra", "dec", "mjd_min", "mjd_max"}
        return
    target = outcome.targets[1]
    assert target.ra is not None
    assert 0 <= target.ra < 360
    assert target.dec is not None
    assert -90 < target.dec < 90
    for mjd in (target.mjd_min, target.mjd_max):
        assert mjd is None or 40000 <= mjd <= 100000
    if target.mjd_min is not None and target.mjd_max is not None:
        assert target.mjd_max > target.mjd_min


@given(data=st.binary(max_size=300))
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_arbitrary_bytes_never_escape_as_other_errors(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.csv"
    path.write_bytes(HEADER.encode() + b"\n" + data)
    outcome = _outcome(path, keep_going=True)  # anything but InputError would propagate
    if isinstance(outcome, InputError):
        assert str(outcome).startswith(str(path))
    else:
        assert len(outcome.targets) + len(outcome.invalid) >= 1
