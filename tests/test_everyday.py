"""Everyday use (issue 15): what a dry run shows and refuses, numbers in outcomes.csv, the
server's Dec rule in messages, and an example target file whose comments are true."""

from __future__ import annotations

import csv
import re
import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from atlasbatch._cli.demo import DEMO_OBSERVATIONS_PER_DAY, example_targets
from atlasbatch._exceptions import TargetFileError
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import fast

Factory = Callable[..., Emulator]
REPO = Path(__file__).resolve().parents[1]


def server_args(emu: Emulator) -> list[str]:
    config = emu.config
    return ["--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate)]  # fmt: skip


def outcome_rows(out: Path) -> list[dict[str, str]]:
    with (out / "outcomes.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


# --- the dry run --------------------------------------------------------------------------


def test_dry_run_lists_the_parsed_rows_duplicates_and_invalid_rows(
    atlas_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "t.csv"
    targets.write_text(
        "name,ra,dec,mpc_name,mjd_min,use_reduced\n"
        "SN2023ixf,210.910674,54.311677,,60080,\n"
        "same place,14:03:38.562,+54:18:42.04,,60080,\n"  # 0.3" from the row above
        "Mira,02h19m20.79s,-02d58m39.5s,,,true\n"
        "Ceres,,,Ceres,,\n"
        "Ceres again,,,Ceres,,\n"
        "pole,10,90,,,\n",
        encoding="utf-8",
    )
    before = atlas_emulator.stats()["requests"]

    code = main(["fetch", str(targets), "--dry-run", "--keep-going",
                 "--base-url", atlas_emulator.base_url])  # fmt: skip
    out = capsys.readouterr().out

    assert code == 0
    assert atlas_emulator.stats()["requests"] == before  # nothing was sent
    rows = {int(line.split()[0]): line.split() for line in out.splitlines()
            if line.startswith("  ") and line.split()[0].isdigit()}  # fmt: skip
    assert rows[2] == ["2", "SN2023ixf", "210.910674", "+54.311677", "60080", "to", "now"]
    # sexagesimal RA in hours, as the server reads it; the row's own window and mode
    assert rows[4] == ["4", "Mira", "34.836625", "-2.977639", "survey", "start", "to", "now,",
                       "reduced", "images"]  # fmt: skip
    assert rows[6][:5] == ["6", "Ceres", "again", "mpc", "Ceres"]
    assert sorted(rows) == [2, 3, 4, 5, 6]  # every valid row, not the invalid one
    assert "line 3 (same place) asks what line 2 (SN2023ixf) asks" in out
    assert "line 6 (Ceres again) asks what line 5 (Ceres) asks" in out
    assert "line 7, column 'dec': Dec '90' must be strictly between" in out
    assert "6 rows, 5 valid, 1 invalid; 3 distinct queries (2 duplicate rows" in out


def test_dry_run_of_a_big_file_lists_its_start_and_counts_everything(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "big.csv"
    lines = [f"t{i},{i * 0.01:.2f},{10 + (i % 7) * 0.5},," for i in range(500)]
    lines += [f"copy{i},{i * 0.01:.2f},{10 + (i % 7) * 0.5},," for i in range(40)]
    targets.write_text("name,ra,dec,mjd_min,mjd_max\n" + "\n".join(lines) + "\n")

    assert main(["fetch", str(targets), "--dry-run"]) == 0
    out = capsys.readouterr().out

    assert "the first 30 of 540:" in out
    assert "  … and 10 more" in out  # 40 duplicate rows, 30 listed
    assert "540 rows, 540 valid, 0 invalid; 500 distinct queries (40 duplicate rows" in out
    assert len(out.splitlines()) < 90


@pytest.mark.parametrize("url", ["http://example.org/forcedphot", "http://10.1.2.3:8000/"])
def test_dry_run_refuses_plain_http_to_another_machine_as_a_real_run_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, url: str
) -> None:
    targets = tmp_path / "t.csv"
    targets.write_text("name,ra,dec\nSN2023ixf,210.910674,54.311677\n")
    monkeypatch.setenv("ATLAS_TOKEN", "0123456789abcdef0123456789abcdef01234567")

    real = main(["fetch", str(targets), "--out", str(tmp_path / "run"), "--base-url", url])
    real_err = capsys.readouterr().err
    dry = main(["fetch", str(targets), "--dry-run", "--base-url", url])
    dry_out, dry_err = capsys.readouterr()

    assert real == dry == 2
    assert "refusing plain http" in real_err and "unencrypted" in real_err
    assert dry_err == real_err
    assert "nothing was sent" not in dry_out  # no plan for a run that cannot happen
    assert not (tmp_path / "run").exists()


# --- outcomes.csv and messages ------------------------------------------------------------


def test_outcomes_csv_writes_sexagesimal_positions_without_float_noise(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.01))
    targets = tmp_path / "t.csv"
    targets.write_text(
        "name,ra,dec,mjd_min,mjd_max\n"
        "SN2011fe,14:03:05.733,+54:16:25.18,57300,57400.123456789012\n"
        "edge,00:14:00,+00:11:00,,\n"
    )
    parsed = {t.name: t for t in read_targets(targets).targets}
    # what the conversion gives: 14:03:05.733 h is 210.7738875 deg, 00:14:00 h is 3.5 deg
    assert (parsed["SN2011fe"].ra, parsed["edge"].ra) == (210.77388749999997, 3.4999999999999996)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)

    out = tmp_path / "run"
    assert main(["fetch", str(targets), "--out", str(out), "--no-plots", *server_args(emu)]) == 0

    rows = {row["name"]: row for row in outcome_rows(out)}
    fe = rows["SN2011fe"]
    assert (fe["ra"], fe["dec"]) == ("210.7738875", "54.273661111")
    assert (fe["mjd_min"], fe["mjd_max"]) == ("57300.0", "57400.123456789")
    assert (rows["edge"]["ra"], rows["edge"]["dec"]) == ("3.5", "0.183333333")
    for name, target in parsed.items():  # within 1e-9 of what was sent
        assert float(rows[name]["ra"]) == pytest.approx(target.ra, abs=1e-9)
        assert float(rows[name]["dec"]) == pytest.approx(target.dec, abs=1e-9)
    assert emu.stats()["tasks_created"] == 2


@pytest.mark.parametrize("dec", ["90", "-90", "+90:00:00", "95"])
def test_the_dec_limit_message_says_it_is_the_servers_rule(tmp_path: Path, dec: str) -> None:
    targets = tmp_path / "t.csv"
    targets.write_text(f"name,ra,dec\npole,10,{dec}\n")

    with pytest.raises(TargetFileError) as caught:
        read_targets(targets)

    (problem,) = caught.value.problems
    assert problem.column == "dec"
    assert "strictly between -90 and +90" in problem.message
    assert "ATLAS server's rule" in problem.message


# --- the example target file --------------------------------------------------------------


def test_the_example_files_comments_say_what_the_demo_gives(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(
        **fast(task_seconds=0.005, observations_per_day=DEMO_OBSERVATIONS_PER_DAY)
    )
    example = REPO / "targets_example.csv"
    assert example.read_bytes() == example_targets()  # the demo's copy is the same file
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    out = tmp_path / "run"

    code = main(["fetch", str(example), "--out", str(out), "--no-plots", *server_args(emu)])

    assert code == 0
    rows = outcome_rows(out)
    said_no_data = {row["name"] for row in rows if "no data" in row["comment"].lower()}
    got_no_data = {row["name"] for row in rows if row["state"] == "no_data"}
    assert said_no_data == got_no_data == {"SN2011fe"}  # a demo that shows both outcomes
    assert {row["state"] for row in rows} == {"downloaded", "no_data"}


# --- packaging conventions ----------------------------------------------------------------


def test_licence_citation_and_changelog_agree_with_pyproject() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    citation = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    fields = dict(re.findall(r"^([a-z-]+): (.+)$", citation, flags=re.MULTILINE))

    assert project["license"] == "MIT" == fields["license"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert fields["version"] == project["version"]
    assert fields["cff-version"] == "1.2.0"
    assert "doi: 10.1088/1538-3873/aabadf" in citation  # Tonry et al. 2018, PASP 130, 064505
    assert "2021TNSAN...7....1S" in citation  # Shingles et al. 2021, the server's AstroNote
    assert "## [Unreleased]" in (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
