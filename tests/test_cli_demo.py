"""``atlasbatch demo``: every output, valid, from the bundled targets, with no account."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from atlasbatch._cli.demo import example_targets
from atlasbatch.cli import main

PNG = b"\x89PNG\r\n\x1a\n"
REPO_TARGETS = Path(__file__).resolve().parents[1] / "targets_example.csv"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def assert_demo_outputs(out: Path, targets: bytes) -> None:
    rows = len(targets.decode().strip().splitlines()) - 1
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert len(outcomes) == rows
    assert set(outcomes["state"]) <= {"downloaded", "no_data"}
    assert "comment" in outcomes.columns  # the example's pass-through column
    downloaded = outcomes[outcomes["state"] == "downloaded"]
    curves = sorted((out / "lightcurves").glob("*.txt"))
    assert len(curves) == len(downloaded) > 0
    assert all(p.read_text().startswith("###MJD") for p in curves)
    with_pandas = pd.read_parquet(out / "photometry.parquet")
    with_arrow = pq.read_table(out / "photometry.parquet").to_pandas()
    pd.testing.assert_frame_equal(with_pandas, with_arrow)
    assert set(with_pandas["target"]) == set(downloaded["name"])
    assert with_pandas["uJy"].dtype == "Int64" and with_pandas["MJD"].dtype == "float64"
    assert with_pandas["comment"].notna().all()
    plots = sorted((out / "plots").glob("*.png"))
    assert len(plots) == len(downloaded)
    for png in [*plots, out / "overview.png"]:
        assert png.read_bytes().startswith(PNG), png


def test_bundled_targets_are_the_repository_example() -> None:
    assert example_targets() == REPO_TARGETS.read_bytes()


def test_demo_in_a_subprocess_writes_every_output(tmp_path: Path) -> None:
    env = {**os.environ, "ATLASBATCH_CONFIG_DIR": str(tmp_path / "config")}
    env.pop("ATLAS_TOKEN", None)
    result = subprocess.run(
        [sys.executable, "-m", "atlasbatch", "demo", "--task-seconds", "0.05"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = tmp_path / "atlasbatch-demo"
    assert_demo_outputs(out, example_targets())
    assert (out / "targets_example.csv").read_bytes() == example_targets()
    assert "Demo finished" in result.stdout
    assert "atlasbatch login" in result.stdout
    # the demo needs no account and leaves none behind
    assert not (tmp_path / "config" / "token").exists()


def test_demo_shows_live_progress_and_replaces_a_previous_demo(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = tmp_path / "mine.csv"
    targets.write_bytes(b"\n".join(example_targets().splitlines()[:4]) + b"\n")
    out = tmp_path / "demo"
    for progress in ("live", "plain"):
        code = main(["demo", "--out", str(out), "--targets", str(targets),
                     "--task-seconds", "0.02", "--progress", progress])  # fmt: skip
        captured = capsys.readouterr()
        assert code == 0, captured.err
        assert_demo_outputs(out, targets.read_bytes())
        assert (out / "mine.csv").read_bytes() == targets.read_bytes()
        assert f"atlasbatch fetch {out}/mine.csv --out my-first-run" in captured.out
        if progress == "live":  # stderr is no terminal here: rich prints the last frame
            assert "3/3 targets" in captured.err
        else:
            assert "progress: " in captured.err


def test_demo_refuses_a_folder_it_did_not_make(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "precious"
    out.mkdir()
    (out / "thesis.tex").write_text("years of work")
    assert main(["demo", "--out", str(out)]) == 2
    assert "was not made by `atlasbatch demo`" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["thesis.tex"]


def test_demo_with_a_bad_target_file_creates_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("name,ra,dec\nx,1,100\n")
    assert main(["demo", "--out", str(tmp_path / "demo"), "--targets", str(bad)]) == 2
    assert "line 2" in capsys.readouterr().err
    assert not (tmp_path / "demo").exists()
