"""Proper motion and epoch in the emulator (§5.2, §5.3, §11): the server's validation texts,
the fields as the task JSON shows them, and a forced position that moves with them."""

from __future__ import annotations

import io
import math

import httpx
import numpy as np
import pandas as pd
import pytest
from _emu_helpers import wait_for

from atlasbatch.testing._sky.movers import (
    DEFAULT_EPOCH,
    HIGH_PM_STARS,
    PSF_SIGMA_ARCSEC,
    mjd_of_year,
    moved,
)

RADEC = {"ra": 10.0, "dec": 20.0}
BARNARD = HIGH_PM_STARS[0]
WINDOW = {"mjd_min": 57230, "mjd_max": 61000}  # the survey's first ten years


def _finished(api: httpx.Client, body: dict[str, object]) -> dict[str, object]:
    created = api.post("queue/", json=body)
    assert created.status_code == 201, created.text
    task_id = created.json()["id"]
    wait_for(lambda: api.get(f"queue/{task_id}/").json()["finished"])
    task: dict[str, object] = api.get(f"queue/{task_id}/").json()
    return task


def _curve(api: httpx.Client, body: dict[str, object]) -> pd.DataFrame:
    task = _finished(api, body)
    frame = pd.read_csv(io.StringIO(api.get(str(task["result_url"])).text.lstrip("#")), sep=r"\s+")
    frame["year"] = 2000.0 + (frame["MJD"] - 51544.5) / 365.25
    return frame


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"radec_epoch_year": 2016.55}, ["Ensure that there are no more than 1 decimal places."]),
        ({"radec_epoch_year": "2016.50"}, ["Ensure that there are no more than 1 decimal places."]),
        ({"radec_epoch_year": "J2016"}, ["A valid number is required."]),
        ({"radec_epoch_year": "NaN"}, ["A valid number is required."]),
        ({"radec_epoch_year": 12345678}, ["Ensure that there are no more than 7 digits in total."]),
        (
            {"radec_epoch_year": 1234567.0},
            ["Ensure that there are no more than 7 digits in total."],
        ),
        ({"propermotion_ra": "fast"}, ["A valid number is required."]),
        ({"propermotion_ra": "NaN"}, ["A valid number is required."]),
        ({"propermotion_dec": "Infinity"}, ["A valid number is required."]),
        ({"propermotion_dec": [1.0]}, ["A valid number is required."]),
    ],
)
def test_bad_motion_fields_get_the_servers_exact_400(
    user_api: httpx.Client, fields: dict[str, object], error: list[str]
) -> None:
    response = user_api.post("queue/", json={**RADEC, **fields})
    assert response.status_code == 400
    assert response.json() == {next(iter(fields)): error}
    assert user_api.get("queue/").json()["taskcount"] == 0


def test_the_epoch_comes_back_as_a_one_decimal_string_on_every_radeclist_task(
    user_api: httpx.Client,
) -> None:
    body = {
        "radeclist": "10 20\n11 21\nmpc Ceres", "radec_epoch_year": 2016,
        "propermotion_ra": "-801.551", "propermotion_dec": 10362.394,
    }  # fmt: skip
    tasks = user_api.post("queue/", json=body).json()
    assert [
        (t["radec_epoch_year"], t["propermotion_ra"], t["propermotion_dec"]) for t in tasks
    ] == [
        ("2016.0", -801.551, 10362.394)
    ] * 3  # every field but the list applies to every line, MPC ones too (§5.4)


def test_a_form_body_sends_blank_motion_fields_as_null(user_api: httpx.Client) -> None:
    body = {"ra": "10", "dec": "20", "radec_epoch_year": "", "propermotion_ra": ""}
    task = user_api.post("queue/", data=body).json()
    assert (task["radec_epoch_year"], task["propermotion_ra"]) == (None, None)
    moving = user_api.post("queue/", data={**body, "radec_epoch_year": "2015.5"}).json()
    assert moving["radec_epoch_year"] == "2015.5"


def test_proper_motion_without_an_epoch_is_accepted_and_moves_from_j2000(
    user_api: httpx.Client,
) -> None:
    motion = {"propermotion_ra": 3000.0, "propermotion_dec": -4000.0}
    curve = _curve(user_api, {**RADEC, **WINDOW, **motion})
    ra, dec = moved(10.0, 20.0, epoch=DEFAULT_EPOCH, pmra=3000.0, pmdec=-4000.0,
                    mjd=curve["MJD"].to_numpy())  # fmt: skip
    assert np.abs(curve["RA"] - ra).max() < 0.0002  # the columns' jitter is 0.07″
    assert np.abs(curve["Dec"] - dec).max() < 0.0002
    zero_epoch = _curve(user_api, {**RADEC, **WINDOW, **motion, "radec_epoch_year": 0})
    assert zero_epoch["Dec"].round(3).equals(curve["Dec"].round(3))  # the runner skips 0


def test_the_forced_position_moves_from_the_epoch_and_the_flux_follows_the_psf(
    user_api: httpx.Client,
) -> None:
    star = {"ra": BARNARD.ra, "dec": BARNARD.dec, "use_reduced": True, **WINDOW}
    still = _curve(user_api, star)
    motion = {"radec_epoch_year": "2016.0", "propermotion_ra": BARNARD.pmra,
              "propermotion_dec": BARNARD.pmdec}  # fmt: skip
    moving = _curve(user_api, {**star, **motion})

    assert np.allclose(still["RA"], BARNARD.ra, atol=1e-4)
    assert np.allclose(still["Dec"], BARNARD.dec, atol=1e-4)
    years = moving["year"] - 2016.0
    assert np.allclose(moving["Dec"], BARNARD.dec + BARNARD.pmdec * years / 3.6e6, atol=1e-4)

    # without the motion: the share of a Gaussian PSF found d arcsec away, exp(-d²/4σ²)
    clean = still["err"].eq(0) & still["chi/N"].lt(10) & still["mag5sig"].gt(17)
    distance = (still["year"] - 2016.0).abs() * math.hypot(BARNARD.pmra, BARNARD.pmdec) / 1e3
    expected = BARNARD.flux * np.exp(-(distance**2) / (4 * PSF_SIGMA_ARCSEC**2))
    residual = (still["uJy"] - expected) / still["duJy"]
    assert residual[clean].abs().median() < 1.5
    assert still.loc[still["year"] > 2017.5, "uJy"].abs().median() < 50
    # with it: the whole flux, every year
    by_year = moving[moving["err"].eq(0) & moving["chi/N"].lt(10)].groupby(
        moving["year"].astype(int)
    )["uJy"]
    assert by_year.median().between(0.95 * BARNARD.flux, 1.05 * BARNARD.flux).all()


def test_a_wrong_motion_makes_a_still_source_fade_too(user_api: httpx.Client) -> None:
    body = {**RADEC, **WINDOW, "use_reduced": True}
    still = _curve(user_api, body)
    wandering = _curve(user_api, {**body, "radec_epoch_year": "2020.0",
                                  "propermotion_ra": 5000.0, "propermotion_dec": 0.0})  # fmt: skip
    at = mjd_of_year(2020.0)
    near = (wandering["MJD"] - at).abs() < 30
    far = (wandering["MJD"] - at).abs() > 3 * 365
    assert wandering.loc[near, "uJy"].median() == pytest.approx(
        still.loc[near, "uJy"].median(), rel=0.1
    )
    assert still["uJy"].median() > 100  # a source to lose (this position's is ~190 µJy)
    assert abs(wandering.loc[far, "uJy"].median()) < 0.2 * still["uJy"].median()  # noise only
