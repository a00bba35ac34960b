"""Reading and validating target lists (atlasbatch._targets.read)."""

from __future__ import annotations

import gc
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from atlasbatch import InputError, RowProblem, Target, TargetFileError
from atlasbatch._targets.read import TargetList, read_targets

EXAMPLE = Path(__file__).resolve().parents[1] / "targets_example.csv"
ARCSEC = 1 / 3600


def write(tmp_path: Path, text: str, name: str = "targets.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8", newline="")
    return path


def read(tmp_path: Path, text: str, **options: object) -> TargetList:
    return read_targets(write(tmp_path, text), **options)  # type: ignore[arg-type]


def problems_of(tmp_path: Path, text: str, **options: object) -> list[tuple[int, str, str]]:
    with pytest.raises(TargetFileError) as caught:
        read(tmp_path, text, **options)
    return [(p.line, p.column, p.message) for p in caught.value.problems]


# --- coordinates ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ra", "expected"),
    [
        ("12:34:56.7", 188.73625),
        ("12 34 56.7", 188.73625),
        ("12h34m56.7s", 188.73625),
        ("12h 34m 56.7s", 188.73625),
        ("12H34M56.7S", 188.73625),
        ("12h34m56.7", 188.73625),
        ("00:00:00", 0.0),
        ("23:59:59.99", 359.9999583333333),
        ("+01:00:00", 15.0),
        ("188.73625", 188.73625),
        ("1.8873625e2", 188.73625),
        ("360", 0.0),
        ("360.0", 0.0),
        ("-0", 0.0),
        ("0", 0.0),
        (" 10.5 ", 10.5),
    ],
)
def test_ra_forms(tmp_path: Path, ra: str, expected: float) -> None:
    (target,) = read(tmp_path, f'name,ra,dec\nA,"{ra}",10\n').targets
    assert target.ra == pytest.approx(expected, abs=1e-9)
    assert math.copysign(1, target.ra or 0.0) == 1  # never -0.0


@pytest.mark.parametrize(
    ("dec", "expected"),
    [
        ("+54:18:42.0", 54 + 18 / 60 + 42 / 3600),
        ("54:18:42", 54 + 18 / 60 + 42 / 3600),
        ("-05d02m03s", -(5 + 2 / 60 + 3 / 3600)),
        ("-05d 02m 03.5s", -(5 + 2 / 60 + 3.5 / 3600)),
        ("-05°02′03″", -(5 + 2 / 60 + 3 / 3600)),
        ("-05 02 03", -(5 + 2 / 60 + 3 / 3600)),
        ("-00:30:00", -0.5),
        ("-0:00:36", -0.01),
        ("+89:59:59.9", 89 + 59 / 60 + 59.9 / 3600),
        ("-23.381484", -23.381484),
        ("\u221223.381484", -23.381484),  # a pasted minus sign
        ("\u221205:02:03", -(5 + 2 / 60 + 3 / 3600)),
        ("89.99999", 89.99999),
        ("-89.99999", -89.99999),
    ],
)
def test_dec_forms(tmp_path: Path, dec: str, expected: float) -> None:
    (target,) = read(tmp_path, f"name,ra,dec\nA,10,{dec}\n").targets
    assert target.dec == pytest.approx(expected, abs=1e-12)


@given(
    hours=st.integers(0, 23),
    minutes=st.integers(0, 59),
    seconds=st.floats(0, 59.999, allow_nan=False).map(lambda s: round(s, 3)),
    signed_degrees=st.tuples(st.integers(0, 89), st.booleans()),
)
@settings(max_examples=60, deadline=None)
def test_sexagesimal_matches_arithmetic(
    tmp_path_factory: pytest.TempPathFactory,
    hours: int,
    minutes: int,
    seconds: float,
    signed_degrees: tuple[int, bool],
) -> None:
    degrees, negative = signed_degrees
    sign = "-" if negative else "+"
    ra = f"{hours:02d}:{minutes:02d}:{seconds:06.3f}"
    dec = f"{sign}{abs(degrees):02d} {minutes:02d} {seconds:06.3f}"
    path = write(tmp_path_factory.mktemp("sexa"), f"name,ra,dec\nA,{ra},{dec}\n")
    (target,) = read_targets(path).targets
    assert target.ra == pytest.approx((hours + minutes / 60 + seconds / 3600) * 15, abs=1e-9)
    magnitude = abs(degrees) + minutes / 60 + seconds / 3600
    assert target.dec == pytest.approx(-magnitude if sign == "-" else magnitude, abs=1e-9)


@given(
    ra=st.floats(0, 360, exclude_max=True, allow_nan=False),
    dec=st.floats(-90, 90, exclude_min=True, exclude_max=True, allow_nan=False),
)
@settings(max_examples=60, deadline=None)
def test_decimal_round_trips_exactly(ra: float, dec: float) -> None:
    (target,) = read_targets([{"ra": repr(ra), "dec": dec}]).targets
    assert (target.ra, target.dec) == (ra + 0.0, dec)


SECONDS = st.tuples(st.integers(0, 59), st.text("0123456789", max_size=9)).map(
    lambda parts: f"{parts[0]:02d}" + (f".{parts[1]}" if parts[1] else "")
)


@given(
    hms=st.tuples(st.integers(0, 23), st.integers(0, 59), SECONDS),
    dms=st.tuples(st.sampled_from(["+", "-", ""]), st.integers(0, 89), st.integers(0, 59), SECONDS),
    spelling=st.sampled_from([("{}:{:02d}:{}", "{}{:02d}:{}:{}"), ("{}h {}m {}s", "{}{}d{}m{}s")]),
)
@settings(max_examples=200, deadline=None)
def test_sexagesimal_gives_the_very_floats_astropy_gave(
    hms: tuple[int, int, str], dms: tuple[str, int, int, str], spelling: tuple[str, str]
) -> None:
    # Earlier versions converted with astropy, and a resumed run compares every position
    # with the one its ledger recorded: the same text must give the same float, bit for bit.
    astropy_units = pytest.importorskip("astropy.units")
    angle = pytest.importorskip("astropy.coordinates").Angle
    ra, dec = spelling[0].format(*hms), spelling[1].format(*dms)
    (target,) = read_targets([{"ra": ra, "dec": dec}]).targets
    assert target.ra == angle(ra, unit=astropy_units.hourangle).degree
    assert target.dec == angle(dec, unit=astropy_units.deg).degree


def test_one_column_mixes_spellings_decimals_and_bad_cells(tmp_path: Path) -> None:
    rows = [
        ("12:34:56.7", "+54:18:42"),
        ("12 34 56.7", "-54 18 42"),
        ("12h34m56.7s", "-54d18m42s"),
        ("188.73625", "54.311667"),
        ("12:34", "+54:18:42"),  # two fields: neither form
        ("12:61:00", "54°18′42″"),
        ("\u221212:00:00", "\u221200:30:00"),
        ("23h59m59.9", "-89 59 59.9"),
    ]
    text = "name,ra,dec\n" + "".join(f"r{k},{ra},{dec}\n" for k, (ra, dec) in enumerate(rows))
    result = read(tmp_path, text, keep_going=True)
    by_line = {t.line: (t.ra, t.dec) for t in result.targets}
    hms = 188.73625
    dms = 54 + 18 / 60 + 42 / 3600
    assert by_line[2] == pytest.approx((hms, dms), abs=1e-9)
    assert by_line[3] == pytest.approx((hms, -dms), abs=1e-9)
    assert by_line[4] == pytest.approx((hms, -dms), abs=1e-9)
    assert by_line[5] == pytest.approx((hms, 54.311667), abs=1e-9)
    assert by_line[9] == pytest.approx((359.99958333, -(89 + 59 / 60 + 59.9 / 3600)), abs=1e-7)
    problems = {line: [(p.column, p.message) for p in ps] for line, _, ps in result.invalid}
    assert problems == {
        6: [("ra", "RA '12:34' is neither decimal degrees nor sexagesimal hours "
                   "(12:34:56.7, 12 34 56.7 or 12h34m56.7s)")],
        7: [("ra", "RA '12:61:00': minutes and seconds must be below 60")],
        8: [("ra", "RA '-12:00:00': hours must be in [0, 24) (sexagesimal RA is in hours)")],
    }  # fmt: skip
    assert 7 not in by_line  # its Dec (54°18′42″) was fine, the row is bad all the same


def test_a_cell_utf8_cannot_hold_is_no_angle() -> None:
    with pytest.raises(TargetFileError) as caught:
        read_targets([{"ra": "\ud800", "dec": 1}, {"ra": "12:00:00", "dec": "1\udfff"}])
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, "ra"), (3, "dec")]
    assert "neither decimal degrees nor" in caught.value.problems[0].message


def test_reading_a_target_list_imports_no_astropy(tmp_path: Path) -> None:
    # astropy takes a good part of a second to import; parsing needs none of it
    path = write(tmp_path, "name,ra,dec\nA,12:34:56.7,+54:18:42\nB,10.5,-3\n")
    script = (
        "import sys\n"
        "from atlasbatch import read_targets\n"
        f"assert len(read_targets({str(path)!r}).targets) == 2\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'astropy'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_garbage_collector_is_left_as_it_was(tmp_path: Path) -> None:
    path = write(tmp_path, "name,ra,dec\nA,1,2\nB,3,4\n")
    assert gc.isenabled()
    read_targets(path)
    assert gc.isenabled()
    gc.disable()
    try:
        read_targets(path)
        assert not gc.isenabled()
    finally:
        gc.enable()


# --- columns ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["name", "Target", " OBJECT ", "id", "ObjName"])
@pytest.mark.parametrize("ra", ["ra", "RA", "ra_deg", "RAJ2000", "alpha", "RA deg", "ra-deg"])
@pytest.mark.parametrize("dec", ["Dec", "dec_deg", "DECJ2000", "DEJ2000", "decl", "delta"])
def test_aliases_and_case(tmp_path: Path, name: str, ra: str, dec: str) -> None:
    result = read(tmp_path, f"{name},{ra},{dec}\nSN1,10,20\n")
    assert result.targets == (Target(line=2, name="SN1", ra=10.0, dec=20.0),)
    assert result.columns == ()


def test_window_and_mode_aliases(tmp_path: Path) -> None:
    text = "name,ra,dec,MJD min,mjdmax,Reduced\nA,1,2,60000,60100,yes\n"
    (target,) = read(tmp_path, text).targets
    assert target.window == (60000.0, 60100.0, True)


def test_canonical_name_wins_and_other_aliases_pass_through(tmp_path: Path) -> None:
    result = read(tmp_path, "id,name,ra,raj2000,dec\n7,SN1,10,00:40:00,20\n")
    (target,) = result.targets
    assert (target.name, target.ra) == ("SN1", 10.0)
    assert result.columns == ("id", "raj2000")
    assert dict(target.extra) == {"id": "7", "raj2000": "00:40:00"}


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("name,ra_deg,raj2000,dec", "all mean 'ra'"),
        ("name,RA,ra,dec", "all mean 'ra'"),
        ("name,ra,dec,comment,comment", "more than once"),
        ("target,object,ra,dec", "all mean 'name'"),
        ("name,ra", "add a Dec column"),
        ("name,dec", "add an RA column"),
        ("name,x,y", "no coordinate columns"),
        ("name;ra;dec", "separated by ';'"),
    ],
)
def test_structural_column_problems(tmp_path: Path, header: str, fragment: str) -> None:
    path = write(tmp_path, f"{header}\nA,1,2,3,4\n")
    with pytest.raises(InputError, match=fragment) as caught:
        read_targets(path)
    assert not isinstance(caught.value, TargetFileError)
    assert str(caught.value).startswith(str(path))


def test_pass_through_columns_keep_order_and_text(tmp_path: Path) -> None:
    text = "comment,name,ra,dec,host, z \nnice one,A,1,2,M101,0.0008\n,B,3,4,,\n"
    result = read(tmp_path, text)
    assert result.columns == ("comment", "host", "z")
    assert [dict(t.extra) for t in result.targets] == [
        {"comment": "nice one", "host": "M101", "z": "0.0008"},
        {"comment": "", "host": "", "z": ""},
    ]


def test_blank_header_cells_get_a_name(tmp_path: Path) -> None:
    result = read(tmp_path, "name,ra,dec,\nA,1,2,x\n")
    assert result.columns == ("column4",)
    assert dict(result.targets[0].extra) == {"column4": "x"}


def test_missing_or_blank_names_become_line_numbers(tmp_path: Path) -> None:
    assert [t.name for t in read(tmp_path, "ra,dec\n1,2\n\n3,4\n").targets] == ["line2", "line4"]
    assert [t.name for t in read(tmp_path, "name,ra,dec\n  ,1,2\nB,3,4\n").targets] == [
        "line2",
        "B",
    ]


def test_names_are_stripped(tmp_path: Path) -> None:
    assert read(tmp_path, "name,ra,dec\n  SN 2023ixf  ,1,2\n").targets[0].name == "SN 2023ixf"


def test_mpc_targets(tmp_path: Path) -> None:
    text = "name,ra,dec,mpc_name\nCeres,,, (1) \nStar,10,20,\n"
    ceres, star = read(tmp_path, text).targets
    assert (ceres.mpc_name, ceres.ra, ceres.dec) == ("(1)", None, None)
    assert ceres.radec_line() == "mpc (1)"
    assert (star.mpc_name, star.ra) == (None, 10.0)
    only = read(tmp_path, "mpc\nK22W01O\n").targets
    assert only == (Target(line=2, name="line2", mpc_name="K22W01O"),)


def test_tsv_by_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "name\tra\tdec\tnote\nA, the first\t1\t2\ta, b\n", name="t.tsv")
    (target,) = read_targets(path).targets
    assert (target.name, target.ra, dict(target.extra)) == ("A, the first", 1.0, {"note": "a, b"})


# --- windows and modes --------------------------------------------------------------------


def test_keyword_defaults_fill_blank_cells(tmp_path: Path) -> None:
    text = "name,ra,dec,mjd_min,mjd_max,use_reduced\nA,1,2,,,\nB,1,3,59000,59500,true\n"
    a, b = read(tmp_path, text, mjd_min=58000.0, mjd_max=60000, use_reduced=False).targets
    assert a.window == (58000.0, 60000.0, False)
    assert b.window == (59000.0, 59500.0, True)
    (c,) = read(tmp_path, "name,ra,dec\nC,1,2\n", mjd_min=58000.5, use_reduced=True).targets
    assert c.window == (58000.5, None, True)


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("true", True),
        ("TRUE", True),
        ("Yes", True),
        ("1", True),
        ("false", False),
        ("no", False),
        ("0", False),
        ("", True),
    ],
)
def test_use_reduced_values(tmp_path: Path, cell: str, expected: bool) -> None:
    text = f"name,ra,dec,use_reduced\nA,1,2,{cell}\n"
    assert read(tmp_path, text, use_reduced=True).targets[0].use_reduced is expected


@pytest.mark.parametrize(
    "options",
    [
        {"mjd_min": 60000, "mjd_max": 60000},
        {"mjd_min": 60001, "mjd_max": 60000},
        {"mjd_min": float("nan")},
        {"mjd_max": float("inf")},
        {"mjd_min": "60000"},
        {"mjd_min": True},
        {"mjd_min": 2460000.5},
        {"mjd_max": 0},
        {"use_reduced": "yes"},
        {"keep_going": 1},
    ],
)
def test_bad_options_are_input_errors(tmp_path: Path, options: dict[str, object]) -> None:
    path = write(tmp_path, "name,ra,dec\nA,1,2\n")
    with pytest.raises(InputError) as caught:
        read_targets(path, **options)  # type: ignore[arg-type]
    assert not isinstance(caught.value, TargetFileError)
    assert next(iter(options)) in str(caught.value)


# --- row problems ---------------------------------------------------------------------------

ROW_PROBLEMS = [
    # (cells for name,ra,dec,mjd_min,mjd_max,use_reduced,mpc, column, fragment)
    ("A,,10,,,,", "ra", "RA is missing"),
    ("A,10,,,,,", "dec", "Dec is missing"),
    ("A,,,,,,", "ra", "no ra/dec and no mpc_name"),
    ("A,10,20,,,,Ceres", "mpc", "not both"),
    ("A,,20,,,,Ceres", "mpc", "not both"),
    ("A,nan,20,,,,", "ra", "NaN"),
    ("A,10,NaN,,,,", "dec", "NaN"),
    ("A,inf,20,,,,", "ra", "not a finite number"),
    ("A,10,-inf,,,,", "dec", "not a finite number"),
    ("A,1e400,20,,,,", "ra", "not a finite number"),
    ("A,-0.001,20,,,,", "ra", "outside 0–360"),
    ("A,360.5,20,,,,", "ra", "outside 0–360"),
    ("A,10,90,,,,", "dec", "strictly between"),
    ("A,10,-90,,,,", "dec", "strictly between"),
    ("A,10,+90:00:00,,,,", "dec", "strictly between"),
    ("A,10,95,,,,", "dec", "strictly between"),
    ("A,24:00:00,20,,,,", "ra", "hours must be in [0, 24)"),
    ("A,188:44:10,20,,,,", "ra", "hours must be in [0, 24)"),
    ("A,-01:00:00,20,,,,", "ra", "hours must be in [0, 24)"),
    ("A,12:60:00,20,,,,", "ra", "below 60"),
    ("A,12:34:60,20,,,,", "ra", "below 60"),
    ("A,10,45:00:60,,,,", "dec", "below 60"),
    ("A,25:99:99,20,,,,", "ra", "below 60"),
    ("A,12:34,20,,,,", "ra", "neither decimal degrees nor sexagesimal hours"),
    ("A,12d34m56s,20,,,,", "ra", "neither"),
    ("A,abc,20,,,,", "ra", "neither"),
    ("A,10,N45,,,,", "dec", "neither"),
    ("A,12h34m56\u017f,20,,,,", "ra", "neither"),  # a long s: Unicode case folding of "s"
    ("A,12\u00a034\u00a056,20,,,,", "ra", "neither"),  # no-break spaces
    ("A,\uff11\uff12:34:56,20,,,,", "ra", "neither"),  # fullwidth digits
    ("A,\u0661\u0662:34:56,20,,,,", "ra", "neither"),  # Arabic-Indic digits
    ("A,12:34:56\u212a,20,,,,", "ra", "neither"),  # a Kelvin sign
    ("A,10,-05d02m03\u017f,,,,", "dec", "neither"),
    ("A,10,20,abc,,,", "mjd_min", "not a number"),
    ("A,10,20,,2023-05-19,,", "mjd_max", "write 60083"),
    ("A,10,20,2460083.5,,,", "mjd_min", "the MJD is 60083.00000"),
    ("A,10,20,39999,,,", "mjd_min", "outside [40000, 100000]"),
    ("A,10,20,,0,,", "mjd_max", "outside"),
    ("A,10,20,,nan,,", "mjd_max", "not a finite number"),
    ("A,10,20,,inf,,", "mjd_max", "not a finite number"),
    ("A,10,20,60000,59999,,", "mjd_max", "not after mjd_min 60000"),
    ("A,10,20,60000,60000,,", "mjd_max", "not after"),
    ("A,10,20,,,maybe,", "use_reduced", "not true/false"),
    ("A,,,,,,Cer'es", "mpc", "quote or semicolon"),
    ('A,,,,,,"a""b"', "mpc", "quote or semicolon"),
    ("A,,,,,,x;y", "mpc", "quote or semicolon"),
    ("A,,,,,," + "x" * 301, "mpc", "longer than 300"),
    ("A\x07,1,2,,,,", "name", "control character"),
]


@pytest.mark.parametrize(("cells", "column", "fragment"), ROW_PROBLEMS)
def test_each_row_problem_names_line_and_column(
    tmp_path: Path, cells: str, column: str, fragment: str
) -> None:
    text = f"name,ra,dec,mjd_min,mjd_max,use_reduced,mpc\nOK,1,2,,,,\n\n{cells}\n"
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1, problems
    line, col, message = problems[0]
    assert (line, col) == (4, column)
    assert fragment in message


def test_mjd_checks_against_keyword_defaults(tmp_path: Path) -> None:
    text = "name,ra,dec,mjd_min,mjd_max\nA,1,2,,59000\nB,1,3,61000,\nC,1,4,59500,\n"
    problems = problems_of(tmp_path, text, mjd_min=59000.0, mjd_max=60000.0)
    assert [(line, col) for line, col, _ in problems] == [(2, "mjd_max"), (3, "mjd_min")]
    assert "(the mjd_min option)" in problems[0][2]
    assert "the mjd_max option" in problems[1][2]


def test_all_problems_of_all_rows_at_once(tmp_path: Path) -> None:
    text = (
        "Name,RA,Dec,mjd_min\n"
        "good,1,2,\n"
        "bad1,abc,95,1\n"  # three problems on one row
        "good2,3,4,\n"
        "bad2,,5,\n"
        "good,1,2.1,\n"  # name reused for another position
    )
    with pytest.raises(TargetFileError) as caught:
        read(tmp_path, text)
    error = caught.value
    assert [(p.line, p.column) for p in error.problems] == [
        (3, "RA"),
        (3, "Dec"),
        (3, "mjd_min"),
        (5, "RA"),
        (6, "Name"),
    ]
    assert all(isinstance(p, RowProblem) for p in error.problems)
    assert "5 problem(s)" in str(error)
    assert "line 6, column 'Name'" in str(error)
    assert error.source.endswith("targets.csv")


def test_keep_going_returns_good_rows_and_reports_bad_ones(tmp_path: Path) -> None:
    text = "name,ra,dec\nA,1,2\nB,abc,3\nC,5,6\n,7,95\n"
    result = read(tmp_path, text, keep_going=True)
    assert [t.name for t in result.targets] == ["A", "C"]
    assert [(line, name) for line, name, _ in result.invalid] == [(3, "B"), (5, "line5")]
    assert [p.column for p in result.invalid[0][2]] == ["ra"]
    assert [t.name for t in result.unique] == ["A", "C"]


def test_keep_going_with_every_row_bad_returns_no_targets(tmp_path: Path) -> None:
    result = read(tmp_path, "name,ra,dec\nA,x,2\n", keep_going=True)
    assert (result.targets, len(result.invalid)) == ((), 1)


# --- duplicates ---------------------------------------------------------------------------


def _positions(rows: list[tuple[float, float]], **options: object) -> TargetList:
    return read_targets([{"ra": ra, "dec": dec} for ra, dec in rows], **options)  # type: ignore[arg-type]


def test_duplicates_within_one_arcsecond() -> None:
    result = _positions(
        [(150.0, 2.0), (150.0, 2.0 + 0.9 * ARCSEC), (150.0, 2.0 + 1.1 * ARCSEC), (150.0, 2.0)]
    )
    assert result.duplicate_of == {3: 2, 5: 2}
    assert [t.line for t in result.unique] == [2, 4]
    assert len(result.targets) == 4


def test_duplicates_use_true_angles_not_ra_differences() -> None:
    # At Dec 80 one arcsecond of sky is ~5.76 s of RA: the RA difference alone would miss it.
    step = 0.9 * ARCSEC / math.cos(math.radians(80))
    result = _positions([(10.0, 80.0), (10.0 + step, 80.0), (10.0 + 1.2 * step / 0.9, 80.0)])
    assert result.duplicate_of == {3: 2}


def test_duplicates_across_ra_zero() -> None:
    result = _positions([(359.9999, 10.0), (0.00003, 10.0), (360.0, -10.0), (0.0, -10.0)])
    # 359.9999 and 0.00003 are 0.47" apart on the sky at Dec 10; 360 is 0.
    assert result.duplicate_of == {3: 2, 5: 4}


def test_duplicates_do_not_chain() -> None:
    result = _positions([(20.0, 0.0), (20.0 + 0.8 * ARCSEC, 0.0), (20.0 + 1.6 * ARCSEC, 0.0)])
    assert result.duplicate_of == {3: 2}  # line 4 is 1.6" from line 2: its own query
    assert [t.line for t in result.unique] == [2, 4]


def test_duplicates_need_the_same_window() -> None:
    rows = [
        {"name": "a", "ra": 1, "dec": 2},
        {"name": "b", "ra": 1, "dec": 2, "mjd_min": 60000},
        {"name": "c", "ra": 1, "dec": 2, "use_reduced": True},
        {"name": "d", "ra": 1, "dec": 2, "mjd_min": 60000.0},
    ]
    assert read_targets(rows).duplicate_of == {5: 3}
    # the keyword default is the window of blank cells, so these are the same query
    rows[1]["mjd_min"] = None
    assert read_targets(rows, mjd_min=60000).duplicate_of == {3: 2, 5: 2}


def test_mpc_duplicates_are_exact_and_case_sensitive() -> None:
    rows = [{"mpc_name": m} for m in ["Ceres", " Ceres ", "ceres", "Ceres"]]
    result = read_targets(rows)
    assert result.duplicate_of == {3: 2, 5: 2}
    assert [t.mpc_name for t in result.unique] == ["Ceres", "ceres"]


def test_same_name_same_query_is_a_duplicate(tmp_path: Path) -> None:
    text = "name,ra,dec\nY,10,20\nX,10,20.0004167\nX,10,20.0001944\n"
    result = read(tmp_path, text)
    # X@line4 is 0.70" from Y@line2 and 0.80" from X@line3: it follows its own name.
    assert result.duplicate_of == {4: 3}
    assert [t.name for t in result.unique] == ["Y", "X"]


@pytest.mark.parametrize(
    "second",
    ["X,10,20.001,,", "X,10,20,60000,", "X,,,,Ceres"],
)
def test_same_name_for_a_different_query_is_an_error(tmp_path: Path, second: str) -> None:
    text = f"name,ra,dec,mjd_min,mpc_name\nX,10,20,,\n{second}\n"
    [(line, column, message)] = problems_of(tmp_path, text)
    assert (line, column) == (3, "name")
    assert "already used by line 2" in message


def test_name_shared_with_a_bad_row_is_reported(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "name,ra,dec\nX,bad,20\nX,10,20\n")
    assert [(line, col) for line, col, _ in problems] == [(2, "ra"), (3, "name")]
    assert "which has problems" in problems[1][2]


def test_many_identical_rows_map_to_the_first() -> None:
    result = _positions([(45.0, -30.0)] * 20_000)
    assert len(result.unique) == 1
    assert set(result.duplicate_of.values()) == {2}
    assert len(result.duplicate_of) == 19_999


# --- other inputs ---------------------------------------------------------------------------


def test_dataframe_input() -> None:
    frame = pd.DataFrame(
        {
            "Name": ["A", "B", None, "D"],
            "RA": [10.5, np.nan, 30.0, 40.0],
            "Dec": [-5.0, np.nan, 1.0, 2.0],
            "MPC": [None, "Ceres", None, None],
            "use_reduced": [True, False, True, np.True_],
            "mag": [12.5, np.nan, 13, 14],
            "n": np.array([1, 2, 3, 4], dtype=np.int64),
        }
    )
    result = read_targets(frame, mjd_min=59000)
    a, b, c, d = result.targets
    assert (a.line, a.name, a.ra, a.dec, a.use_reduced) == (2, "A", 10.5, -5.0, True)
    assert (b.mpc_name, b.ra, b.use_reduced) == ("Ceres", None, False)
    assert (c.name, c.mjd_min) == ("line4", 59000.0)
    assert dict(d.extra) == {"mag": "14.0", "n": "4"}
    assert dict(b.extra) == {"mag": "", "n": "2"}
    assert result.columns == ("mag", "n")


def test_dataframe_float_flags_and_gaps() -> None:
    frame = pd.DataFrame({"ra": [1.0, 2.0, 3.0], "dec": 0.0, "use_reduced": [1.0, np.nan, 0.0]})
    assert [t.use_reduced for t in read_targets(frame, use_reduced=True).targets] == [
        True,
        True,
        False,
    ]


def test_dataframe_problems_count_rows_from_line_two() -> None:
    frame = pd.DataFrame({"ra": [1.0, 400.0, 3.0], "dec": [0.0, 0.0, np.inf]})
    with pytest.raises(TargetFileError) as caught:
        read_targets(frame)
    assert [(p.line, p.column) for p in caught.value.problems] == [(3, "ra"), (4, "dec")]
    assert caught.value.source == "DataFrame"


def test_records_input() -> None:
    records: list[dict[str, object]] = [
        {"name": "A", "ra": "12:34:56.7", "dec": "+54:18:42"},
        {"name": "B", "ra": 1, "dec": 2, "comment": "late column"},
        {"name": "C", "mpc_name": "Pallas"},
    ]
    a, b, c = read_targets(iter(records)).targets
    assert a.ra == pytest.approx(188.73625)
    assert (b.ra, dict(b.extra)) == (1.0, {"comment": "late column"})
    assert (c.line, c.mpc_name, dict(c.extra)) == (4, "Pallas", {"comment": ""})


@pytest.mark.parametrize(
    "source",
    [[{"ra": 1, "dec": 2}, ("ra", 1)], {"ra": [1], "dec": [2]}, b"name,ra,dec\n", 42, [], ()],
)
def test_unusable_sources(source: object) -> None:
    with pytest.raises(InputError):
        read_targets(source)  # type: ignore[arg-type]


def test_empty_dataframe() -> None:
    with pytest.raises(InputError, match="no target rows"):
        read_targets(pd.DataFrame({"ra": [], "dec": []}))


def test_wrong_types_in_records_are_row_problems() -> None:
    records: list[dict[str, object]] = [
        {"ra": [1, 2], "dec": 3},
        {"ra": 1, "dec": {"x": 1}},
        {"ra": 1.5, "dec": 2},
    ]
    with pytest.raises(TargetFileError) as caught:
        read_targets(records)
    assert [(p.line, p.column) for p in caught.value.problems] == [(2, "ra"), (3, "dec")]


# --- files ----------------------------------------------------------------------------------


def test_bom_is_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes("name,ra,dec\r\nA,1,2\r\n".encode("utf-8-sig"))
    assert read_targets(path).targets == (Target(line=2, name="A", ra=1.0, dec=2.0),)


def test_latin1_file_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin1.csv"
    path.write_bytes("name,ra,dec\nA,1,2\nCaf\u00e9,3,4\n".encode("latin-1"))
    with pytest.raises(InputError, match=r"line 3: byte 0xE9 is not UTF-8.*save it as UTF-8"):
        read_targets(path)


def test_utf8_names_are_fine(tmp_path: Path) -> None:
    assert read(tmp_path, "name,ra,dec\nCafé ☕,1,2\n").targets[0].name == "Café ☕"


@pytest.mark.parametrize("text", ["", "\n\n", "  \n,,\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError, match="the file is empty"):
        read_targets(path)


@pytest.mark.parametrize("text", ["name,ra,dec\n", "name,ra,dec\n\n,,\n"])
def test_header_only(tmp_path: Path, text: str) -> None:
    with pytest.raises(InputError, match="no target rows"):
        read(tmp_path, text)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        read_targets(tmp_path / "nope.csv")
    with pytest.raises(InputError, match="is a directory"):
        read_targets(tmp_path)


def test_physical_line_numbers_with_blank_lines_crlf_and_quotes(tmp_path: Path) -> None:
    text = '\r\nname,ra,dec\r\n\r\nA,1,2\r\n"B, the second",3,4\r\n,,\r\nC,bad,5\r\n'
    [(line, column, _)] = problems_of(tmp_path, text)
    assert (line, column) == (7, "ra")
    result = read(tmp_path, text.replace("bad", "5"))
    assert [(t.line, t.name) for t in result.targets] == [(4, "A"), (5, "B, the second"), (7, "C")]


@pytest.mark.parametrize(
    "text",
    [
        "name,ra,dec\r\n\r\nA,1,2\r\n,,\r\n  ,  , \r\nB,3,4",  # CRLF, blank rows, no last EOL
        "name,ra,dec\rA,1,2\r\rB,3,4\r",  # old Mac line ends
        "name,ra,dec,note\nA,1,2,x\x0bv\nB,3,4,form\x0cfeed\n",  # csv keeps \v, \f in a field
        "name,ra,dec\nA,1,2\x0bB,3,4\nC,5,6\u2028D,7,8\n",  # … so these are 2 rows, not 4
        "name,ra,dec\nA\x1c,1,2\n\u2028,3,4\n\x1d,5,6\n",  # whitespace to str.strip, no EOL
        "\n\nname,ra,dec\nA,1,2\nB,3\nC,5,6,,\nD,7,8,9\n",  # rows short and long
        "name,ra,dec\nA\tB,12:34:56,-1\t2\t3\n",  # tabs are data in a .csv
    ],
)
def test_files_with_and_without_quotes_split_alike(tmp_path: Path, text: str) -> None:
    # A file without quotes is split in one go; one quote sends it through csv instead.
    def outcome(name: str, data: str) -> object:
        try:
            result = read_targets(write(tmp_path, data, name), keep_going=True)
        except TargetFileError as error:  # only rows can be wrong here
            return error.problems
        extras = [dict(t.extra) for t in result.targets]
        return result.targets, extras, result.invalid, result.duplicate_of, result.columns

    plain = outcome("plain.csv", text)
    assert plain == outcome("quoted.csv", text.replace("name", '"name"', 1))
    assert plain != ((), [], (), {}, ())


def test_multi_line_quoted_field_is_reported_at_its_first_line(tmp_path: Path) -> None:
    text = 'name,ra,dec,comment\nA,1,2,"two\nlines"\nB,x,3,\n'
    problems = problems_of(tmp_path, text)
    assert [(line, col) for line, col, _ in problems] == [(2, "(row)"), (4, "ra")]
    assert "spans lines 2–3" in problems[0][2]


def test_unbalanced_quote_does_not_swallow_rows_silently(tmp_path: Path) -> None:
    text = 'name,ra,dec,comment\nA,1,2,"oops\nB,3,4,\nC,5,6,\n'
    [(line, column, message)] = problems_of(tmp_path, text)
    assert (line, column) == (2, "(row)")
    assert "spans lines 2–4" in message


def test_too_many_fields(tmp_path: Path) -> None:
    text = "name,ra,dec\nSN 2023ixf, M101,210.9,54.3\nB,1,2,,\nC,3\n"
    problems = problems_of(tmp_path, text)
    # line 2's unquoted comma shifts its values; line 3 has only empty extra fields
    # (tolerated); line 4 has too few, so its dec is missing
    assert [(line, col) for line, col, _ in problems] == [
        (2, "(row)"),
        (2, "ra"),
        (2, "dec"),
        (4, "dec"),
    ]
    assert "4 fields but 3 columns" in problems[0][2]


def test_example_file_parses_cleanly() -> None:
    result = read_targets(EXAMPLE)
    assert len(result.targets) >= 20
    assert result.invalid == ()
    assert result.duplicate_of == {}
    assert len({t.name for t in result.targets}) == len(result.targets)
    assert result.columns == ("comment",)
    by_name = {t.name: t for t in result.targets}
    ixf = by_name["SN2023ixf"]
    assert (ixf.ra, ixf.dec) == (210.910674, 54.311677)
    assert ixf.window == (60080.0, 60300.0, False)
    assert by_name["Mira"].dec == pytest.approx(-(2 + 58 / 60 + 39.5 / 3600))
    assert any(t.mjd_min is None for t in result.targets)


def test_100k_decimal_rows_keep_their_line_numbers(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    ra = rng.uniform(0, 360, 100_000)
    dec = np.degrees(np.arcsin(rng.uniform(-0.99, 0.99, 100_000)))
    body = "\n".join(f"t{i},{r:.6f},{d:.6f}" for i, (r, d) in enumerate(zip(ra, dec, strict=True)))
    path = write(tmp_path, "name,ra,dec\n" + body + "\n")
    result = read_targets(path)  # its speed is measured in benchmarks/, not asserted here
    assert len(result.targets) == 100_000
    assert result.targets[-1].line == 100_001
    assert len(result.unique) == 100_000
