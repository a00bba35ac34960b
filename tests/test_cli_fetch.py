"""``atlasbatch fetch`` as a user runs it, against the emulator over loopback."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from atlasbatch.cli import main
from atlasbatch.testing import Emulator

from .helpers import grid_targets, write_csv

Factory = Callable[..., Emulator]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATLASBATCH_CONFIG_DIR", str(tmp_path / "config"))
    for name in ("ATLAS_TOKEN", "ATLAS_BASE_URL", "ATLAS_USERNAME", "ATLAS_PASSWORD"):
        monkeypatch.delenv(name, raising=False)


def fast_emulator(factory: Factory, **overrides: object) -> Emulator:
    """The real limits with time running ten times faster, and quick tasks."""
    config: dict[str, object] = {"task_seconds": 0.02, "user_slots": 1,
                                 "write_rate": "600/6s", "read_rate": "6000/6s"}  # fmt: skip
    return factory(**{**config, **overrides})


def server_args(emu: Emulator) -> list[str]:
    config = emu.config
    return ["--base-url", emu.base_url, "--write-rate", str(config.write_rate),
            "--read-rate", str(config.read_rate),
]  # fmt: skip


def targets_with_extras(path: Path, count: int) -> Path:
    rows = [{**row, "catalog_id": f"GAIA-{i}", "pm_ra": f"{i * 0.5}"}
            for i, row in enumerate(grid_targets(count))]  # fmt: skip
    return write_csv(path, rows)


def requests_seen(emu: Emulator) -> dict[str, int]:
    requests = emu.stats()["requests"]
    assert isinstance(requests, dict)
    return requests


def test_fetch_writes_every_output_and_leaves_the_queue_clean(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = fast_emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = targets_with_extras(tmp_path / "targets.csv", 6)
    out = tmp_path / "run"
    code = main(["fetch", str(targets), "--out", str(out), "--csv", *server_args(emu)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    stats = emu.stats()
    assert stats["tasks_live"] == 0
    assert stats["tasks_created"] == 6
    assert requests_seen(emu)["POST"] == 1  # one radeclist batch
    # the summary on stdout; plain progress lines on stderr (not a terminal)
    assert "downloaded" in captured.out and "outcomes.csv" in captured.out
    assert "progress: " in captured.err
    assert emu.token not in captured.out + captured.err
    outcomes = pd.read_csv(out / "outcomes.csv")
    assert list(outcomes["state"]) == ["downloaded"] * 6
    assert list(outcomes["catalog_id"]) == [f"GAIA-{i}" for i in range(6)]  # pass-through
    table = pd.read_parquet(out / "photometry.parquet")
    assert set(table["target"]) == {f"t{i:05d}" for i in range(6)}
    assert {"catalog_id", "pm_ra", "mag_ab", "quality_flags", "task_id"} <= set(table.columns)
    assert set(table["catalog_id"]) == {f"GAIA-{i}" for i in range(6)}
    assert pq.read_table(out / "photometry.parquet").num_rows == len(table)
    assert (out / "photometry.csv").exists()
    assert len(list((out / "lightcurves").glob("*.txt"))) == 6
    pngs = [*(out / "plots").glob("*.png"), out / "overview.png"]
    assert len(pngs) == 7
    assert all(p.read_bytes().startswith(PNG) for p in pngs)

    # the same command again resumes: everything is done, nothing is sent again
    assert main(["fetch", str(targets), "--out", str(out), *server_args(emu)]) == 0
    assert emu.stats()["tasks_created"] == 6
    assert requests_seen(emu)["POST"] == 1


def test_the_summary_lists_what_was_not_fetched_and_why(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = fast_emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)
    targets = tmp_path / "t.csv"
    # the emulator has no data below Dec -50; row 4 is invalid and skipped with --keep-going
    targets.write_text("name,ra,dec\nfine,10,20\nsouth,10,-70\nbroken,10,200\n")
    out = tmp_path / "run"
    argv = ["fetch", str(targets), "--out", str(out), "--keep-going", "--no-plots"]
    assert main([*argv, *server_args(emu)]) == 1  # an invalid row is not a success
    shown = capsys.readouterr().out
    assert "Not fetched" in shown
    assert "broken" in shown and "invalid" in shown and "dec" in shown
    assert list(pd.read_csv(out / "outcomes.csv")["state"]) == ["downloaded", "no_data", "invalid"]
    assert emu.stats()["tasks_created"] == 2 and emu.stats()["tasks_live"] == 0


def test_dry_run_counts_requests_and_sends_nothing(
    atlas_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = grid_targets(250)
    for row in rows[200:]:
        row["mjd_min"] = 60000
    for row in rows[:200]:
        row["mjd_min"] = ""
    rows.append({**rows[0], "name": "again"})  # a duplicate position: queried once
    targets = write_csv(tmp_path / "targets.csv", rows)
    # no token anywhere: a dry run needs none
    code = main(["fetch", str(targets), "--dry-run", "--base-url", atlas_emulator.base_url])
    out = capsys.readouterr().out
    assert code == 0
    assert requests_seen(atlas_emulator) == {}
    assert "nothing was sent" in out
    assert "251 rows" in out and "250 distinct queries" in out
    counts = {line.split()[1]: int(line.split()[2]) for line in out.splitlines()
              if line.strip().startswith(("POST", "DELETE"))}  # fmt: skip
    assert counts == {"/queue/": 3, "/queue/<id>/": 250}  # 2 + 1 batches; one DELETE per task
    assert "Estimated time: 4 h 10 min" in out  # 250 tasks x 60 s, one at a time


def test_bad_target_file_is_refused_with_every_bad_row_and_nothing_sent(
    atlas_emulator: Emulator,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("ATLAS_TOKEN", atlas_emulator.token)
    targets = tmp_path / "bad.csv"
    targets.write_text("name,ra,dec\nok,10,20\nbad-dec,10,95\nbad-ra,abc,5\n")
    out = tmp_path / "run"
    code = main(["fetch", str(targets), "--out", str(out), *server_args(atlas_emulator)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("atlasbatch: ")
    assert "line 3" in err and "line 4" in err and "nothing was sent" in err
    assert requests_seen(atlas_emulator) == {}
    assert not out.exists()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "no ATLAS API token found"),
        (["--write-rate", "fast"], "rate 'fast'"),
        (["--task-seconds", "0"], "--task-seconds must be a positive number"),
    ],
)
def test_usage_errors_exit_2_without_sending(
    atlas_emulator: Emulator,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    targets = write_csv(tmp_path / "t.csv", grid_targets(2))
    base = ["--base-url", atlas_emulator.base_url]
    code = main(["fetch", str(targets), "--out", str(tmp_path / "run"), *base, *extra])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1  # one sentence
    assert requests_seen(atlas_emulator) == {}


def test_fetch_needs_out_unless_dry_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ATLAS_TOKEN", "x" * 40)
    targets = write_csv(tmp_path / "t.csv", grid_targets(2))
    assert main(["fetch", str(targets)]) == 2
    assert "needs --out DIR" in capsys.readouterr().err
    assert main(["fetch"]) == 2  # argparse: TARGETS missing


def test_a_refused_token_is_one_clear_sentence(
    atlas_emulator_factory: Factory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = fast_emulator(atlas_emulator_factory)
    monkeypatch.setenv("ATLAS_TOKEN", "0" * 40)
    targets = write_csv(tmp_path / "t.csv", grid_targets(2))
    code = main(["fetch", str(targets), "--out", str(tmp_path / "run"), *server_args(emu)])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith("atlasbatch: the server refused the token")
    assert "atlasbatch login" in last
    assert emu.stats()["tasks_created"] == 0


@pytest.mark.parametrize("command", [[], ["demo"], ["login"], ["fetch"], ["status"],
                                     ["cancel"], ["cleanup"], ["emulator"]])  # fmt: skip
def test_help_for_every_command(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main([*command, "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: atlasbatch {' '.join(command)}".rstrip())
    assert len(out.splitlines()) > 8


def test_fetch_in_a_subprocess(atlas_emulator_factory: Factory, tmp_path: Path) -> None:
    emu = fast_emulator(atlas_emulator_factory)
    targets = targets_with_extras(tmp_path / "targets.csv", 4)
    out = tmp_path / "run"
    env = {**os.environ, "ATLAS_TOKEN": emu.token}
    result = subprocess.run(
        [sys.executable, "-m", "atlasbatch", "fetch", str(targets), "--out", str(out),
         "--no-plots", *server_args(emu)],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert emu.token not in result.stdout + result.stderr
    with (out / "outcomes.csv").open() as handle:
        assert [row["state"] for row in csv.DictReader(handle)] == ["downloaded"] * 4
    assert emu.stats()["tasks_live"] == 0
    assert not (out / "plots").exists()
