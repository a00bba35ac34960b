"""The synthetic light curves' cadence and bad points (``_sky.cadence``, ``_sky.quality``).

Fetched over loopback at ATLAS's own density: visits of four exposures within an hour,
every one or two nights per unit, from the four units, in the moon's filter; the FAQ's bad
points at the documented rates; ``observations_per_day`` as the density knob.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import httpx
import numpy as np
import pandas as pd
import pytest
from _emu_helpers import client, wait_for

from atlasbatch.testing import Emulator
from atlasbatch.testing._sky.cadence import ATLAS_OBSERVATIONS_PER_DAY
from atlasbatch.testing._sky.lightcurve import Job, render_result

Factory = Callable[..., Emulator]
YEAR_2023 = {"mjd_min": 59945.0, "mjd_max": 60310.0}  # all four units at work


def _frame(text: str) -> pd.DataFrame:
    frame = pd.read_csv(io.StringIO(text.lstrip("#")), sep=r"\s+", dtype={"Obs": str})
    frame["site"] = frame["Obs"].str[:3]
    frame["night"] = frame["Obs"].str[3:8].astype(int)
    frame["number"] = frame["Obs"].str[9:13].astype(int)
    return frame


def _fetch(api: httpx.Client, body: dict[str, object]) -> pd.DataFrame:
    task_id = api.post("queue/", json=body).json()["id"]
    wait_for(lambda: api.get(f"queue/{task_id}/").json()["finished"])
    return _frame(api.get(str(api.get(f"queue/{task_id}/").json()["result_url"])).text)


def _curve(dec: float = 10.0, *, per_day: float = ATLAS_OBSERVATIONS_PER_DAY, **window: float)\
        -> pd.DataFrame:  # fmt: skip
    job = Job(ra=150.0, dec=dec, mpc_name=None, mjd_min=window.get("mjd_min", 59945.0),
              end_mjd=window.get("mjd_max", 60310.0), use_reduced=False,
              observations_per_day=per_day)  # fmt: skip
    return _frame(render_result(job))


@pytest.fixture(scope="module")
def atlas_year(shared_emu: Emulator) -> pd.DataFrame:
    """A year of a Dec +10 target at ATLAS's density, fetched over loopback."""
    token = shared_emu.add_user("cadence", "pw")
    with client(shared_emu, token) as api:
        emu_config = shared_emu.config
        assert emu_config.observations_per_day == 0.5  # the shared one: the test default
        return _fetch(api, {"ra": 150.0, "dec": 10.0, **YEAR_2023})


def test_a_visit_is_four_exposures_within_an_hour_in_one_filter(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(observations_per_day=ATLAS_OBSERVATIONS_PER_DAY)
    with client(emu) as api:
        frame = _fetch(api, {"ra": 150.0, "dec": 10.0, **YEAR_2023})
    nights = frame.groupby(["site", "night"])
    per_night = nights.size()
    assert (per_night % 4 == 0).all()  # whole visits only
    assert (per_night == 4).mean() > 0.9  # one visit a night at ATLAS's own density
    single = nights.filter(lambda g: len(g) == 4).groupby(["site", "night"])
    span_hours = single["MJD"].agg(lambda m: m.max() - m.min()) * 24
    assert span_hours.between(0.5, 1.0).all()
    assert (single["F"].nunique() == 1).all()
    assert (single["number"].agg(lambda n: n.is_monotonic_increasing)).all()
    assert (frame["night"] == frame["MJD"].astype(int)).all()  # Obs carries the exposure's MJD
    assert (frame["Obs"].str[-1] == frame["F"]).all()
    assert frame["Obs"].str.fullmatch(r"0[1-4]a\d{5}o\d{4}[co]").all()


def test_each_unit_comes_back_every_one_or_two_nights_when_the_sky_is_clear(
    atlas_emulator_factory: Factory,
) -> None:
    emu = atlas_emulator_factory(observations_per_day=ATLAS_OBSERVATIONS_PER_DAY)
    with client(emu) as api:
        frame = _fetch(api, {"ra": 150.0, "dec": 10.0, **YEAR_2023})
    assert set(frame["site"]) == {"01a", "02a", "03a", "04a"}
    for site, rows in frame.groupby("site"):
        gaps = np.diff(np.unique(rows["night"]))
        assert gaps.min() >= 1, site
        # scheduled every 1-2 nights; clouds (20-35 % of nights) make some gaps longer
        assert np.isin(gaps, (1, 2)).mean() > 0.6, site
        assert np.median(gaps) <= 2, site
    per_day = len(frame) / 2 / (YEAR_2023["mjd_max"] - YEAR_2023["mjd_min"])
    assert per_day == pytest.approx(ATLAS_OBSERVATIONS_PER_DAY, rel=0.1)


def test_the_density_knob_keeps_whole_visits(atlas_year: pd.DataFrame) -> None:
    per_night = atlas_year.groupby(["site", "night"]).size()
    assert (per_night % 4 == 0).all()
    per_day = len(atlas_year) / 2 / (YEAR_2023["mjd_max"] - YEAR_2023["mjd_min"])
    assert per_day == pytest.approx(0.5, rel=0.2)  # observations_per_day per filter
    tiny = _curve(per_day=0.02)
    assert 0 < len(tiny) < 40  # the scale benchmark's tiny files
    assert (tiny.groupby(["site", "night"]).size() % 4 == 0).all()


def test_the_filter_follows_the_moon() -> None:
    frame = _curve()
    age = np.mod(frame["night"] + 0.5 - 51549.76, 29.530589)  # days since new moon
    dark = (age < 6.5) | (age > 29.530589 - 6.5)
    assert ((frame["F"] == "c") == dark).all()
    assert 0.3 < (frame["F"] == "c").mean() < 0.6


def test_units_join_the_survey_when_they_did_and_see_only_their_sky() -> None:
    early = _curve(mjd_min=57230.0, mjd_max=57700.0)  # 2015-2016: Haleakala alone
    assert set(early["site"]) == {"02a"}
    middle = _curve(mjd_min=58000.0, mjd_max=58400.0)  # 2017-2018: both Hawaii units
    assert set(middle["site"]) == {"01a", "02a"}
    north = _curve(dec=55.0)  # too far north for Sutherland and El Sauce
    assert set(north["site"]) == {"01a", "02a"}
    south = _curve(dec=-45.0)
    assert set(south["site"]) == {"01a", "02a", "03a", "04a"}


def test_bad_points_come_at_the_documented_rates() -> None:
    # ten years at ATLAS's density: almost 19,000 exposures (fewer units before 2022)
    frame = _curve(mjd_min=57230.0, mjd_max=60900.0)
    assert len(frame) > 15_000

    def rate(mask: pd.Series[bool]) -> float:
        return float(mask.mean())

    assert 0.002 < rate(frame["err"] != 0) < 0.01  # tphot codes: 0.5 %
    assert set(frame.loc[frame["err"] != 0, "err"]) == {1, 2, 3}
    assert 0.001 < rate(frame["chi/N"] > 10) < 0.006  # outliers: 0.3 %
    assert 0.0003 < rate(frame["mag5sig"] < 10) < 0.005  # failed solutions: 0.2 %
    poor = frame["mag5sig"].between(10, 17)  # cloud, twilight, moonlight: 3 % of visits
    assert 0.01 < rate(poor) < 0.05
    assert 0.015 < rate(frame["duJy"] > 160) < 0.06  # ATClean's uncertainty cut
    assert rate(frame["duJy"] >= 10000) > 0  # the FAQ's cut has something to cut
    edge = (frame["x"] < 100) | (frame["x"] > 10460) | (frame["y"] < 100) | (frame["y"] > 10460)
    assert 0.025 < rate(edge) < 0.05  # 1.9 % per axis
    assert rate((frame["maj"] >= 5) | (frame["apfit"] <= -1) | (frame["Sky"] <= 17)) > 0.001
    faq_good = (
        (frame["duJy"] < 10000) & (frame["err"] == 0) & ~edge & frame["maj"].between(1.6, 5)
        & frame["min"].between(1.6, 5) & frame["apfit"].between(-1, -0.1)
        & (frame["mag5sig"] > 17) & (frame["Sky"] > 17)
    )  # fmt: skip
    assert 0.85 < rate(faq_good) < 0.97


def test_positions_in_one_field_share_every_image_but_not_their_noise() -> None:
    def job(ra: float) -> Job:
        return Job(ra=ra, dec=10.0, mpc_name=None, mjd_min=60000.0, end_mjd=60200.0,
                   use_reduced=False, observations_per_day=1.0)  # fmt: skip

    target, control = _frame(render_result(job(150.0))), _frame(render_result(job(150.005)))
    assert target["Obs"].tolist() == control["Obs"].tolist()  # 17″ away: the same exposures
    assert target["MJD"].tolist() == control["MJD"].tolist()
    assert target["mag5sig"].tolist() == control["mag5sig"].tolist()  # the same sky
    assert target["uJy"].tolist() != control["uJy"].tolist()
    assert render_result(job(150.0)) == render_result(job(150.0))  # deterministic


def test_the_window_never_changes_the_rows_it_contains() -> None:
    wide, narrow = (
        _curve(mjd_min=59900.0, mjd_max=60400.0),
        _curve(mjd_min=60000.0, mjd_max=60100.0),
    )
    inside = wide[wide["MJD"].between(60000.0, 60100.0)].reset_index(drop=True)
    pd.testing.assert_frame_equal(inside, narrow)
