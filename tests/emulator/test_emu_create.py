"""Single-target submission: the 201 body and every validation message (§5.2, §5.3, §16)."""

from __future__ import annotations

import datetime as dt

import httpx
import pytest

from atlasbatch.testing import Emulator

FIELD_ORDER = [
    "url", "id", "user_id", "username", "timestamp", "mpc_name", "ra", "dec", "mjd_min",
    "mjd_max", "radec_epoch_year", "propermotion_ra", "propermotion_dec", "use_reduced",
    "finished", "result_url", "comment", "send_email", "callback_url", "starttimestamp",
    "finishtimestamp", "error_msg", "previewimage_url", "parent_task_id", "parent_task_url",
    "request_type", "pdfplot_url", "queuepos", "imagerequest_task_id", "imagerequest_url",
    "imagerequest_finished", "result_imagestack_url", "result_imagezip_url",
    "userqueuedtasks_on_submit", "waittime", "runtime", "attempt_count",
]  # fmt: skip


def _now_mjd() -> float:
    return dt.datetime.now(dt.UTC).timestamp() / 86400 + 40587


def test_single_target_201_has_every_field_in_order(
    shared_emu: Emulator, user_api: httpx.Client
) -> None:
    response = user_api.post("queue/", json={"ra": 0, "dec": 0})
    assert response.status_code == 201
    body = response.json()
    assert list(body) == FIELD_ORDER
    assert (
        response.headers["Location"] == body["url"] == f"{shared_emu.base_url}/queue/{body['id']}/"
    )
    assert (body["ra"], body["dec"], body["request_type"]) == (0.0, 0.0, "FP")
    assert body["username"].startswith("user")
    assert body["userqueuedtasks_on_submit"] == 0
    assert body["queuepos"] == 0
    assert body["result_url"] is None
    assert body["timestamp"].endswith("Z")
    assert len(body["timestamp"]) == len("2026-11-24T06:17:16Z")
    # mjd_min defaults to now - 30 days, rounded to 5 decimals
    assert abs(body["mjd_min"] - (_now_mjd() - 30)) < 0.01
    assert round(body["mjd_min"], 5) == body["mjd_min"]


def test_send_email_defaults_differ_for_json_and_form(user_api: httpx.Client) -> None:
    by_json = user_api.post("queue/", json={"ra": 1, "dec": 2}).json()
    by_form = user_api.post("queue/", data={"ra": "1", "dec": "2"}).json()
    assert by_json["send_email"] is True
    assert by_form["send_email"] is False


def test_optional_fields_round_trip(user_api: httpx.Client) -> None:
    body = user_api.post(
        "queue/",
        json={
            "ra": "10.5", "dec": -3, "mjd_min": None, "mjd_max": 60000, "use_reduced": True,
            "comment": "  hello  ", "radec_epoch_year": 2016.5, "propermotion_ra": 1.5,
        },
    ).json()  # fmt: skip
    assert (body["ra"], body["mjd_min"], body["mjd_max"]) == (10.5, None, 60000.0)
    assert (body["use_reduced"], body["comment"], body["radec_epoch_year"]) == (
        True,
        "hello",
        "2016.5",
    )
    assert body["propermotion_ra"] == 1.5


@pytest.mark.parametrize(
    ("ra", "dec"), [(0, 0), (0, 20), (10, 0), (359.9, -0.0), (400, 95), ("1.5", "-90")]
)
def test_coordinates_accepted_without_range_check(
    user_api: httpx.Client, ra: object, dec: object
) -> None:
    assert user_api.post("queue/", json={"ra": ra, "dec": dec}).status_code == 201


def test_mpc_name_target(user_api: httpx.Client) -> None:
    body = user_api.post("queue/", json={"mpc_name": " (12267) "}).json()
    assert (body["mpc_name"], body["ra"], body["dec"]) == ("(12267)", None, None)


EITHER = "Either an mpc_name or (ra, dec) must be specified."
NUMBER = ["A valid number is required."]
RADEC = {"ra": 1, "dec": 2}


def _nested(field: str, message: str) -> dict[str, object]:
    return {field: {field: message}}


def _non_field(message: str) -> dict[str, object]:
    return {"non_field_errors": [message]}


INVALID = [
    ({"ra": 1}, {"dec": ["ra was set but dec is missing."]}),
    ({"dec": 1}, {"ra": ["dec was set but ra is missing."]}),
    ({}, _non_field(EITHER)),
    ({"mpc_name": "   "}, _non_field(EITHER)),
    (
        {"mpc_name": "Ceres", **RADEC},
        {"mpc_name": ["mpc_name was given but RA and Dec were not empty."]},
    ),
    (
        {"mpc_name": "a'b"},
        _nested("mpc_name", "Invalid mpc_name. May not contain quotes or semicolons"),
    ),
    ({"ra": "12:34:56.7", "dec": 1}, {"ra": NUMBER}),
    ({"ra": "NaN", "dec": 1}, {"ra": NUMBER}),
    ({"ra": "Infinity", "dec": 1}, {"ra": NUMBER}),
    ({"ra": [1.0], "dec": 1}, {"ra": NUMBER}),
    ({"ra": {}, "dec": 1}, {"ra": NUMBER}),
    ({**RADEC, "mjd_max": 0}, {"mjd_max": ["mjd_max must be a positive MJD."]}),
    ({**RADEC, "mjd_max": -500}, {"mjd_max": ["mjd_max must be a positive MJD."]}),
    (
        {**RADEC, "mjd_min": 60000, "mjd_max": 59000},
        {"mjd_max": ["mjd_max must be greater than mjd_min (60000.0 was applied)."]},
    ),
    (
        {**RADEC, "comment": "x" * 301},
        {"comment": ["Ensure this field has no more than 300 characters."]},
    ),
    ({**RADEC, "request_type": "XX"}, {"request_type": ['"XX" is not a valid choice.']}),
    (
        {**RADEC, "request_type": "SSOSTACK"},
        _non_field("Image stacking only works on MPC objects."),
    ),
    (
        {**RADEC, "request_type": "IMGZIP"},
        _non_field("IMGZIP requests must have a parent_task_id set to an FP task."),
    ),
    (
        {**RADEC, "radec_epoch_year": 2016.55},
        {"radec_epoch_year": ["Ensure that there are no more than 1 decimal places."]},
    ),
    ({**RADEC, "use_reduced": "maybe"}, {"use_reduced": ["Must be a valid boolean."]}),
    (
        {**RADEC, "callback_url": "http://example.org/hook"},
        _nested("callback_url", "callback_url must use https"),
    ),
    (
        {**RADEC, "callback_url": "https://127.0.0.1/hook"},
        _nested("callback_url", "callback_url must resolve to a public address"),
    ),
    ({**RADEC, "callback_url": "not a url"}, {"callback_url": ["Enter a valid URL."]}),
]


@pytest.mark.parametrize(("body", "error"), INVALID)
def test_validation_errors_are_exact(
    user_api: httpx.Client, body: dict[str, object], error: object
) -> None:
    response = user_api.post("queue/", json=body)
    assert response.status_code == 400
    assert response.json() == error
    assert user_api.get("queue/").json()["taskcount"] == 0


def test_mjd_max_below_the_default_window_echoes_the_default(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"ra": 1, "dec": 2, "mjd_max": 50000})
    message = response.json()["mjd_max"][0]
    applied = float(message.split("(")[1].split(" ")[0])
    assert message == f"mjd_max must be greater than mjd_min ({applied} was applied)."
    assert abs(applied - (_now_mjd() - 30)) < 0.01


def test_explicit_null_mjd_min_allows_an_old_mjd_max(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"ra": 1, "dec": 2, "mjd_min": None, "mjd_max": 57000})
    assert response.status_code == 201


def test_form_bodies_follow_html_input_rules(user_api: httpx.Client) -> None:
    body = user_api.post(
        "queue/", data={"ra": "5", "dec": "6", "mjd_min": "", "comment": ""}
    ).json()
    assert (body["mjd_min"], body["comment"], body["use_reduced"]) == (None, "", False)
    bad = user_api.post("queue/", data={"ra": "nan", "dec": "6"})
    assert bad.json() == {"ra": ["A valid number is required."]}


def test_non_json_and_non_object_bodies(user_api: httpx.Client) -> None:
    assert user_api.post("queue/", json=[1, 2]).json() == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }
    broken = user_api.post("queue/", content=b"{", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["detail"].startswith("JSON parse error - ")
    other = user_api.post("queue/", content=b"x", headers={"Content-Type": "text/plain"})
    assert other.status_code == 415
    assert other.json() == {"detail": 'Unsupported media type "text/plain" in request.'}


def test_multipart_bodies_work(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", files={"ra": (None, "7"), "dec": (None, "8")})
    assert response.status_code == 201
    assert (response.json()["ra"], response.json()["dec"]) == (7.0, 8.0)


def test_patch_comment_keeps_the_target(user_api: httpx.Client) -> None:
    task = user_api.post("queue/", json={"ra": 11, "dec": 12}).json()
    response = user_api.patch(f"queue/{task['id']}/", json={"comment": "edited"})
    assert response.status_code == 200
    assert (response.json()["comment"], response.json()["ra"]) == ("edited", 11.0)
    bad = user_api.patch(f"queue/{task['id']}/", json={"ra": None, "dec": None})
    assert bad.json() == {
        "non_field_errors": ["Either an mpc_name or (ra, dec) must be specified."]
    }
