"""Multi-target ``radeclist`` submission (§5.4, SplitRaDecListTests, TaskCreateResponseTests)."""

from __future__ import annotations

import httpx
import pytest
from _emu_helpers import radeclist

from atlasbatch.testing._serializer.radeclist import dec_to_degrees, ra_to_degrees


def test_100_lines_with_trailing_newline_make_100_tasks(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"radeclist": radeclist(100) + "\n"})
    assert response.status_code == 201
    assert "Location" not in response.headers
    tasks = response.json()
    assert len(tasks) == 100
    assert len({task["timestamp"] for task in tasks}) == 1
    assert [t["userqueuedtasks_on_submit"] for t in tasks] == list(range(100))
    assert user_api.get("queue/").json()["taskcount"] == 100


def test_101_lines_are_refused_and_nothing_is_created(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"radeclist": radeclist(101)})
    assert response.status_code == 400
    assert response.json() == {"radeclist": "Number of lines (101) is above the limit of 100"}
    assert user_api.get("queue/").json()["taskcount"] == 0


def test_three_lines_get_consecutive_queue_positions(api: httpx.Client) -> None:
    # a fresh emulator: with other users' tasks queued, round robin would interleave them
    tasks = api.post("queue/", data={"radeclist": radeclist(3)}).json()
    assert [t["userqueuedtasks_on_submit"] for t in tasks] == [0, 1, 2]
    assert [t["queuepos"] for t in tasks] == [0, 1, 2]


def test_crlf_and_blank_lines_are_handled(user_api: httpx.Client) -> None:
    text = "\r\n".join(
        [*radeclist(100).split("\n")[:50], "", "  ", *radeclist(50, start=50).split("\n")]
    )
    tasks = user_api.post("queue/", json={"radeclist": text + "\r\n\r\n"}).json()
    assert len(tasks) == 100


def test_sexagesimal_and_mpc_lines(user_api: httpx.Client) -> None:
    text = "\n".join(
        [
            "12:34:56.7 +12:30:00",
            "12h34m56.7s, -00:30:00",
            "00 52 20.21 +56 34 03.9",
            "mpc Makemake",
            "MPC_(12267)",
            "10.5,-20.25",
        ]
    )
    tasks = user_api.post("queue/", json={"radeclist": text}).json()
    got = [(t["ra"], t["dec"], t["mpc_name"]) for t in tasks]
    assert got[0] == (188.73625, 12.5, None)
    assert got[1] == (188.73625, -0.5, None)
    assert got[2][1] == 56.56775
    assert got[3:] == [(None, None, "Makemake"), (None, None, "(12267)"), (10.5, -20.25, None)]


def test_explicit_ra_dec_fields_become_the_first_target(user_api: httpx.Client) -> None:
    tasks = user_api.post("queue/", json={"ra": 0, "dec": 0, "radeclist": "5 6"}).json()
    assert [(t["ra"], t["dec"]) for t in tasks] == [(0.0, 0.0), (5.0, 6.0)]


def test_other_fields_apply_to_every_row(user_api: httpx.Client) -> None:
    tasks = user_api.post(
        "queue/", json={"radeclist": "1 2\n3 4", "comment": "run-7", "use_reduced": True}
    ).json()
    assert {(t["comment"], t["use_reduced"]) for t in tasks} == {("run-7", True)}


RA_ERROR = (
    "could not convert ra to decimal degrees, could not parse sexegesimal input. "
    "Original value was `{}`"
)
DEC_ERROR = (
    "could not convert dec to decimal degrees, could not parse sexegesimal input. "
    "Original value was `{}`"
)
LINE_ERRORS = [
    (
        "1 2\n12.5",
        "Error on line 2: Could not find two columns. Separate RA and Dec by a comma or a space."
        " For MPC object names, start the line with 'mpc ', e.g., 'mpc Makemake'",
    ),
    ("1 2\n25:99:99 10", "Error on line 2: " + RA_ERROR.format("25:99:99")),
    ("mpc_", "Error on line 1: MPC name is blank"),
    ("mpc a;b", "Error on line 1: Invalid mpc_name. May not contain quotes or semicolons"),
    ("\n\n  \n", "No coordinates or MPC object names were given."),
    ("-5 10", "Error on line 1: " + RA_ERROR.format("-5")),
    ("400 10", "Error on line 1: " + RA_ERROR.format("400")),
    ("24:00:00 10", "Error on line 1: " + RA_ERROR.format("24:00:00")),
    ("10 90", "Error on line 1: " + DEC_ERROR.format("90")),
    ("10 95", "Error on line 1: " + DEC_ERROR.format("95")),
]


@pytest.mark.parametrize(("text", "message"), LINE_ERRORS)
def test_line_errors_are_exact(user_api: httpx.Client, text: str, message: str) -> None:
    response = user_api.post("queue/", json={"radeclist": text})
    assert response.status_code == 400
    assert response.json() == {"radeclist": message}
    assert user_api.get("queue/").json()["taskcount"] == 0


def test_non_string_radeclist_is_refused(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"radeclist": ["1 2"]})
    assert response.json() == {
        "radeclist": "radeclist must be a string of newline-separated coordinates or MPC names"
    }


def test_row_errors_come_back_in_the_field_shape(user_api: httpx.Client) -> None:
    response = user_api.post("queue/", json={"radeclist": "1 2", "mjd_max": -1})
    assert response.json() == {"mjd_max": ["mjd_max must be a positive MJD."]}


@pytest.mark.parametrize(
    ("text", "degrees"),
    [
        ("12:34:56.7", 188.73625),
        ("0", 0.0),
        ("360", 360.0),
        ("00:00:00", 0.0),
        ("23 59 59.99", 359.9999583),
    ],
)
def test_ra_conversion(text: str, degrees: float) -> None:
    assert ra_to_degrees(text) == pytest.approx(degrees, abs=1e-7)


@pytest.mark.parametrize(
    ("text", "degrees"), [("-12:30:00", -12.5), ("+89:59:59.9", 89.99997), ("-00:30:00", -0.5)]
)
def test_dec_conversion(text: str, degrees: float) -> None:
    # astrocalc rounds to the precision of the input: 59.9 s -> 5 decimals
    assert dec_to_degrees(text) == pytest.approx(degrees, abs=1e-7)
