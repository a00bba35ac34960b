"""Runner outcomes and result files (§6, §11, §12): format, window, mode, no-data rules."""

from __future__ import annotations

import io
import math
from collections.abc import Callable

import httpx
import pandas as pd
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import RESULT_FILE_HEADER, Emulator
from atlasbatch.testing._sky.lightcurve import Job, has_data, render_result

COLUMNS = [
    "MJD", "m", "dm", "uJy", "duJy", "F", "err", "chi/N", "RA", "Dec", "x", "y", "maj", "min",
    "phi", "apfit", "mag5sig", "Sky", "Obs",
]  # fmt: skip


def _finished(api: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    task_id = api.post("queue/", json=body).json()["id"]
    wait_for(lambda: api.get(f"queue/{task_id}/").json()["finished"])
    task: dict[str, object] = api.get(f"queue/{task_id}/").json()
    return task


def _frame(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text.lstrip("#")), sep=r"\s+")


def test_finished_task_fields(user_api: httpx.Client) -> None:
    task = _finished(user_api, {"ra": 210.910674, "dec": 54.311677})
    assert (task["error_msg"], task["queuepos"], task["attempt_count"]) == (None, None, 1)
    assert (
        task["result_url"]
        == f"{str(task['url']).split('/queue/')[0]}/static/results/job{task['id']:05d}.txt"
    )
    assert task["pdfplot_url"] == f"{task['url']}plot.pdf"
    assert isinstance(task["waittime"], float)
    assert isinstance(task["runtime"], float)
    assert task["finishtimestamp"] >= task["starttimestamp"] >= task["timestamp"]  # type: ignore[operator]


def test_result_file_parses_with_pandas(user_api: httpx.Client) -> None:
    task = _finished(
        user_api, {"ra": 210.910674, "dec": 54.311677, "mjd_min": 60000, "mjd_max": 60100}
    )
    text = user_api.get(str(task["result_url"])).text
    assert text.splitlines()[0] == RESULT_FILE_HEADER
    frame = _frame(text)
    assert list(frame.columns) == COLUMNS
    assert len(frame) > 40
    assert str(frame["uJy"].dtype) == str(frame["duJy"].dtype) == "int64"
    assert set(frame["F"]) <= {"c", "o"}
    assert frame["MJD"].is_monotonic_increasing
    assert frame["MJD"].between(60000, 60100).all()
    assert frame["Obs"].str.fullmatch(r"0[1-4]a\d{5}o\d{4}[co]").all()
    assert (frame["Obs"].str[3:8].astype(int) == frame["MJD"].astype(int)).all()
    assert user_api.get(f"queue/{task['id']}/data.txt").text == text


def test_same_target_and_window_give_identical_files(user_api: httpx.Client) -> None:
    body = {"ra": 150.1, "dec": 2.2, "mjd_min": 59000, "mjd_max": 59200}
    first, second = _finished(user_api, body), _finished(user_api, body)
    assert first["id"] != second["id"]
    assert (
        user_api.get(str(first["result_url"])).content
        == user_api.get(str(second["result_url"])).content
    )
    reduced = _finished(user_api, {**body, "use_reduced": True})
    flux = _frame(user_api.get(str(first["result_url"])).text)["uJy"]
    total = _frame(user_api.get(str(reduced["result_url"])).text)["uJy"]
    assert len(flux) == len(total)
    assert not flux.equals(total)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"ra": 10.0, "dec": -60.0}, "Dec below -50"),
        ({"ra": 10.0, "dec": 10.0, "mjd_min": None, "mjd_max": 57000}, "window before the survey"),
        ({"mpc_name": "2020 nodata"}, "MPC name containing nodata"),
    ],
)
def test_no_data_tasks(user_api: httpx.Client, body: dict[str, object], why: str) -> None:
    task = _finished(user_api, body)
    assert (task["error_msg"], task["result_url"], task["pdfplot_url"]) == (
        "No data returned",
        None,
        None,
    ), why
    header_only = user_api.get(f"queue/{task['id']}/data.txt")
    assert (header_only.status_code, header_only.text) == (200, RESULT_FILE_HEADER + "\n")


def test_mpc_targets_move(user_api: httpx.Client) -> None:
    task = _finished(user_api, {"mpc_name": "Makemake", "mjd_min": 60000, "mjd_max": 60060})
    frame = _frame(user_api.get(str(task["result_url"])).text)
    assert frame["RA"].max() - frame["RA"].min() > 1.0


def test_unknown_result_files_are_apache_404s(user_api: httpx.Client) -> None:
    for path in ("static/results/job99999.txt", "static/results/job1.txt", "static/results/x"):
        response = user_api.get(path)
        assert response.status_code == 404
        assert "<title>404 Not Found</title>" in response.text


def test_window_subsets_and_density() -> None:
    wide = Job(
        ra=1.0,
        dec=2.0,
        mpc_name=None,
        mjd_min=60000,
        end_mjd=60400,
        use_reduced=False,
        observations_per_day=0.5,
    )
    narrow = Job(
        ra=1.0,
        dec=2.0,
        mpc_name=None,
        mjd_min=60100,
        end_mjd=60200,
        use_reduced=False,
        observations_per_day=0.5,
    )
    wide_rows = render_result(wide).splitlines()[1:]
    narrow_rows = render_result(narrow).splitlines()[1:]
    assert set(narrow_rows) < set(wide_rows)
    assert 300 < len(wide_rows) < 500  # ~0.5 per filter and day over 400 days
    sparse = Job(
        ra=1.0,
        dec=2.0,
        mpc_name=None,
        mjd_min=60000,
        end_mjd=60400,
        use_reduced=False,
        observations_per_day=0.02,
    )
    assert len(render_result(sparse).splitlines()[1:]) < 40
    none = Job(
        ra=1.0,
        dec=2.0,
        mpc_name=None,
        mjd_min=60000,
        end_mjd=60400,
        use_reduced=False,
        observations_per_day=0.0,
    )
    assert not has_data(none)  # fmt: skip


def test_observations_per_day_is_configurable(
    atlas_emulator_factory: Callable[..., Emulator],
) -> None:
    emu = atlas_emulator_factory(observations_per_day=3.0)
    with client(emu) as api:
        task = _finished(api, {"ra": 10, "dec": 10, "mjd_min": 60000, "mjd_max": 60010})
        rows = _frame(api.get(str(task["result_url"])).text)
    assert math.isclose(len(rows), 2 * 3 * 10, rel_tol=0.25)
