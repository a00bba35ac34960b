"""Image stamps for chosen targets (issue 13 part 4), end to end over loopback: requested only
for the rows that asked, never more than five live, stored whole, every task deleted."""

from __future__ import annotations

import csv
import logging
import random
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import anyio
import httpx
import pytest

from atlasbatch import Session, TargetFileError
from atlasbatch._http.client import AtlasClient
from atlasbatch._runs.cleanup import cancel_run, cleanup_run
from atlasbatch._runs.rundir import open_run
from atlasbatch._targets.images import with_images
from atlasbatch._targets.read import read_targets
from atlasbatch.cli import main
from atlasbatch.testing import Emulator, Faults

from .helpers import client_settings, fast, grid_targets, write_csv
from .test_durable import fetch_command, run_cli

Factory = Callable[..., Emulator]
WINDOW = {"mjd_min": 58000.0, "mjd_max": 58200.0}
REQUEST_PATH = "/requestimages/"


def rows_wanting(count: int, chosen: set[int]) -> list[dict[str, object]]:
    """``count`` targets; those at the indices ``chosen`` ask for images."""
    return [
        {**row, **WINDOW, "images": "1" if i in chosen else "0"}
        for i, row in enumerate(grid_targets(count))
    ]


def image_posts(emu: Emulator) -> list[tuple[int, int | None]]:
    """(parent task id, status) of every requestimages POST the emulator saw."""
    return [
        (int(r.path.split("/")[-3]), r.status)
        for r in emu.requests()
        if r.method == "POST" and r.path.endswith(REQUEST_PATH)
    ]


def outcomes(out: Path) -> dict[str, dict[str, str]]:
    with (out / "outcomes.csv").open(encoding="utf-8") as handle:
        return {row["name"]: row for row in csv.DictReader(handle)}


def assert_whole_zip(path: Path) -> None:
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None
        assert len(archive.namelist()) == 3


def zips(folder: Path) -> int:
    return len(list(folder.glob("images/*.zip")))


async def until(holds: Callable[[], bool], *, seconds: float = 10.0) -> None:
    """Wait until ``holds()`` (bounded: fail the test after ``seconds``)."""
    for _ in range(int(seconds / 0.02)):
        if holds():
            return
        await anyio.sleep(0.02)
    pytest.fail(f"not so within {seconds} s")


def assert_nothing_left(emu: Emulator) -> None:
    assert emu.tasks() == []  # parents and image requests alike
    assert emu.stats()["tasks_live"] == 0


def fetch(emu: Emulator, targets: Path, out: Path, *extra: str) -> int:
    config = emu.config
    return main(["fetch", str(targets), "--out", str(out), "--base-url", emu.base_url,
                 "--write-rate", str(config.write_rate), "--read-rate", str(config.read_rate),
                 "--no-plots", "--progress", "plain", *extra])  # fmt: skip


def test_images_only_for_the_rows_that_asked_and_never_more_than_five_live(
    atlas_emulator_factory: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, image_task_seconds=0.1))
    chosen = {0, 1, 2, 4, 5, 7, 8, 9}
    rows = rows_wanting(12, chosen)
    rows.append({**rows[3], "name": "same place", "images": "1"})  # asks for row 3's query
    rows.append({"name": "empty", "ra": 20.0, "dec": 30.0, "mjd_min": 50000, "mjd_max": 50001,
                 "images": "yes"})  # fmt: skip
    targets = write_csv(tmp_path / "targets.csv", rows)
    monkeypatch.setenv("ATLAS_TOKEN", emu.token)

    assert fetch(emu, targets, tmp_path / "run") == 0

    posts = image_posts(emu)
    assert {status for _, status in posts} == {302}
    parents = Counter(parent for parent, _ in posts)
    assert set(parents.values()) == {1}  # once per photometry task
    stats = emu.stats()
    assert stats["image_requests"] == len(parents) == len(chosen) + 1  # + row 3's query
    assert stats["max_live_image_requests"] == 5  # five at once, never a sixth
    assert_nothing_left(emu)
    requests = [t for t in emu.tasks(include_archived=True) if t["request_type"] == "IMGZIP"]
    assert {t["parent_task_id"] for t in requests} == set(parents)

    table = outcomes(tmp_path / "run")
    for i, row in enumerate(rows[:12]):
        name = str(row["name"])
        expected = f"images/{name}.zip"
        if i in chosen:
            assert table[name]["images"] == expected
            assert_whole_zip(tmp_path / "run" / expected)
            assert (tmp_path / "run" / "images" / f"{name}.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
        else:
            assert table[name]["images"] == ""
    assert table["same place"]["images"] == "images/t00003.zip"  # its query's files
    assert table["t00003"]["images"] == ""  # the row itself did not ask
    assert table["empty"]["images"] == "not requested: no photometry in the window"
    assert len(list((tmp_path / "run" / "images").glob("*.zip"))) == len(chosen) + 1


@pytest.mark.anyio
async def test_a_lost_answer_is_adopted_not_asked_again(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    faults = Faults(drop_after_commit_rate=0.5, drop_before_commit_rate=0.2,
                    endpoints=frozenset({"requestimages"}))  # fmt: skip
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, image_task_seconds=0.05, seed=3),
                                 faults=faults)  # fmt: skip
    rows = rows_wanting(8, set(range(8)))
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(rows, out_dir=tmp_path)
    assert len(report.outcomes) == 8
    stats = emu.stats()
    assert stats["faults"]["drop_after_commit"] > 0  # some answers were lost
    assert stats["image_requests"] == 8  # still one image request per target
    assert zips(tmp_path) == 8
    assert_nothing_left(emu)


@pytest.mark.anyio
async def test_other_image_requests_of_the_user_are_waited_out(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, image_task_seconds=0.05))
    headers = {"Authorization": f"Token {emu.token}", "Accept": "application/json"}
    async with httpx.AsyncClient(base_url=emu.base_url + "/", headers=headers) as web:
        lines = "\n".join(f"{100 + i} -20" for i in range(5))
        made = (await web.post("queue/", json={"radeclist": lines, **WINDOW})).json()
        theirs = []
        await until(lambda: all(t["finished"] for t in emu.tasks()))
        for task in made:
            answer = await web.post(f"queue/{task['id']}/requestimages/")
            theirs.append(int(httpx.URL(answer.headers["location"]).params["newids"]))

        async def free_when_refused() -> None:
            await until(lambda: any(status == 429 for _, status in image_posts(emu)))
            for child in theirs:  # the user deletes the web page's requests
                assert (await web.delete(f"queue/{child}/")).status_code == 204

        async with anyio.create_task_group() as tg:
            tg.start_soon(free_when_refused)
            async with Session(token=emu.token, settings=client_settings(emu)) as session:
                await session.run(rows_wanting(2, {0, 1}), out_dir=tmp_path)
    assert zips(tmp_path) == 2
    refused = [s for _, s in image_posts(emu) if s == 429]
    assert refused
    for task in made:  # the user's own tasks are theirs to delete
        async with httpx.AsyncClient(base_url=emu.base_url + "/", headers=headers) as web:
            await web.delete(f"queue/{task['id']}/")
    assert_nothing_left(emu)


@pytest.mark.anyio
async def test_cancel_and_cleanup_delete_the_image_requests(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, image_task_seconds=30.0))
    settings = client_settings(emu)
    seen = 0
    async with Session(token=emu.token, settings=settings) as session:
        with anyio.CancelScope() as scope:
            async for _ in session.fetch(rows_wanting(4, {0, 1, 2, 3}), out_dir=tmp_path):
                seen += 1  # a light curve arrived; its image request runs for 30 s
                if seen == 4:
                    await until(lambda: emu.stats()["image_requests"] == 4)
                    scope.cancel()  # stop the run: Ctrl-C, a reboot …
    assert scope.cancelled_caught
    async with AtlasClient(token=emu.token, settings=settings) as client:
        with open_run(tmp_path, base_url=emu.base_url) as ledger:
            report = await cancel_run(client, ledger)
            assert report.deleted == 4  # the image requests: the stored results stay
            assert {t["request_type"] for t in emu.tasks()} == {"FP"}
            await cleanup_run(client, ledger, tmp_path)
            column = ledger.image_column()
            counts = ledger.counts()
    assert_nothing_left(emu)
    assert set(column.values()) == {"failed: cancelled by the user"}
    assert counts["downloaded"] == 4  # cancel kept what was stored


def test_dry_run_shows_the_image_requests(
    atlas_emulator: Emulator, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    targets = write_csv(tmp_path / "targets.csv", rows_wanting(10, {1, 2, 3}))
    before = atlas_emulator.stats()["requests"]
    assert main(["fetch", str(targets), "--dry-run", "--base-url", atlas_emulator.base_url]) == 0
    out = capsys.readouterr().out
    assert "Images for 3 target(s)" in out
    assert "POST   /queue/<id>/requestimages/       3" in out
    assert "server time: 45 min more (3 x ~900 s" in out
    assert main(["fetch", str(targets), "--dry-run", "--images"]) == 0
    assert "Images for 10 target(s)" in capsys.readouterr().out
    assert atlas_emulator.stats()["requests"] == before  # nothing was sent


def test_the_images_column_is_checked_and_many_images_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rows = rows_wanting(3, {0})
    rows[1]["images"] = "maybe"
    with pytest.raises(TargetFileError, match=r"line 3, column 'images': images 'maybe'"):
        read_targets(rows)
    targets = read_targets([{**row, "stamps": "y"} for row in grid_targets(21)])
    assert len(targets.images) == 21  # "stamps" is one of the column's names
    with caplog.at_level(logging.WARNING):
        with_images(read_targets(grid_targets(20)), every=True)
    assert "images asked for" not in caplog.text
    with caplog.at_level(logging.WARNING):
        assert len(with_images(read_targets(grid_targets(21)), every=True).images) == 21
    assert "images asked for 21 targets" in caplog.text


@pytest.mark.slow
def test_kill_nine_and_resume_make_one_image_request_per_target(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    chosen = set(range(0, 24, 3))
    targets = write_csv(tmp_path / "targets.csv", rows_wanting(24, chosen))
    emu = atlas_emulator_factory(
        task_seconds=0.02, image_task_seconds=0.25, write_rate="40/1s", read_rate="400/1s",
        faults=Faults(drop_after_commit_rate=0.1, server_error_rate=0.05),
    )  # fmt: skip
    out, log = tmp_path / "run", tmp_path / "stderr.log"
    rng = random.Random(13)
    for _ in range(4):
        run_cli(fetch_command(emu, targets, out), emu, kill_after=rng.uniform(1.5, 4.0), log=log)
    run_cli(fetch_command(emu, targets, out), emu, kill_after=None, log=log)

    stats = emu.stats()
    assert stats["image_requests"] == len(chosen), stats  # lost answers adopted, none doubled
    assert stats["max_live_image_requests"] <= 5
    requests = [t for t in emu.tasks(include_archived=True) if t["request_type"] == "IMGZIP"]
    assert len({t["parent_task_id"] for t in requests}) == len(chosen)
    assert_nothing_left(emu)
    table = outcomes(out)
    assert {row["state"] for row in table.values()} == {"downloaded"}
    for i in range(24):
        name = f"t{i:05d}"
        assert table[name]["images"] == (f"images/{name}.zip" if i in chosen else "")
        if i in chosen:
            assert_whole_zip(out / "images" / f"{name}.zip")


@pytest.mark.anyio
async def test_a_failed_image_request_says_why_and_is_deleted(
    atlas_emulator_factory: Factory, tmp_path: Path
) -> None:
    # the parent's file expires 0.5 s after it finishes; its image request runs 0.8 s after
    emu = atlas_emulator_factory(**fast(task_seconds=0.02, image_task_seconds=0.8),
                                 faults=Faults(expire_after=0.5))  # fmt: skip
    async with Session(token=emu.token, settings=client_settings(emu)) as session:
        report = await session.run(rows_wanting(2, {0, 1}), out_dir=tmp_path)
    assert {o.state.value for o in report.outcomes} == {"downloaded"}
    with open_run(tmp_path, base_url=emu.base_url) as ledger:
        column = ledger.image_column()
    gone = "The forced photometry data file for the parent task is no longer available."
    assert column == {2: f"failed: {gone}", 3: f"failed: {gone}"}
    assert zips(tmp_path) == 0
    assert_nothing_left(emu)
