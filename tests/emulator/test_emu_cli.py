"""``atlasbatch emulator`` as a real subprocess: the issue's "Done when" checks."""

from __future__ import annotations

import io
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pandas as pd
import pytest

TOKEN = "0123456789abcdef0123456789abcdef01234567"
BOB = "fedcba9876543210fedcba9876543210fedcba98"


@pytest.fixture
def server() -> Iterator[tuple[subprocess.Popen[str], str]]:
    command = [
        sys.executable, "-m", "atlasbatch.testing._cli", "--port", "0", "--token", TOKEN,
        "--task-seconds", "0.05", "--add-user", f"bob:pw:{BOB}", "--runner-idle-poll", "0",
        "--runner-busy-poll", "0", "--user-gap", "0",
    ]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first_line = process.stdout.readline().strip()
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/forcedphot", first_line), first_line
        yield process, first_line
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()
        if process.stderr is not None:
            process.stderr.close()


def test_cli_serves_the_done_when_checks(server: tuple[subprocess.Popen[str], str]) -> None:
    process, base = server
    headers = {"Authorization": f"Token {TOKEN}", "Accept": "application/json"}
    with httpx.Client(base_url=base + "/", headers=headers, timeout=10) as api:
        first = api.post("queue/", json={"ra": 210.910674, "dec": 54.311677, "mjd_min": 60000})
        assert first.status_code == 201
        batch = api.post("queue/", json={"radeclist": "\n".join(f"{i} 10" for i in range(100))})
        assert (batch.status_code, len(batch.json())) == (201, 100)
        statuses = [api.post("queue/", json={"ra": 1, "dec": 2}).status_code for _ in range(58)]
        assert statuses == [201] * 58
        refused = api.post("queue/", json={"ra": 1, "dec": 2})
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        unit = "second" if wait == 1 else "seconds"
        expected = f"Request was throttled. Expected available in {wait} {unit}."
        assert refused.json() == {"detail": expected}
        deadline = time.monotonic() + 10
        while not (task := api.get(f"queue/{first.json()['id']}/").json())["finished"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        text = httpx.get(task["result_url"]).text
        frame = pd.read_csv(io.StringIO(text.lstrip("#")), sep=r"\s+")
        assert list(frame.columns)[:5] == ["MJD", "m", "dm", "uJy", "duJy"]
        assert str(frame["uJy"].dtype) == "int64"
    bob_headers = {"Authorization": f"Token {BOB}", "Accept": "application/json"}
    with httpx.Client(base_url=base + "/", headers=bob_headers, timeout=10) as bob:
        lines = "\n".join(f"{i % 360} 10" for i in range(100))
        for _ in range(5):
            assert bob.post("queue/", json={"radeclist": lines}).status_code == 201
        capped = bob.post("queue/", json={"radeclist": lines}).json()["non_field_errors"]
        match = re.fullmatch(
            r"ERROR: You have too many queued tasks \((\d+) queued \+ 100 requested > 500\)\.",
            capped,
        )
        assert match is not None, capped
        assert 400 < int(match.group(1)) <= 500
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


def test_cli_refuses_a_non_loopback_host() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "atlasbatch.testing._cli", "--host", "192.0.2.1", "--port", "0"],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stdout == ""
    assert "non-loopback" in result.stderr


def test_cli_main_rejects_bad_rates(capsys: pytest.CaptureFixture[str]) -> None:
    from atlasbatch.testing._cli import main  # noqa: PLC0415

    with pytest.raises(SystemExit):
        main(["--write-rate", "lots"])
    assert "write-rate" in capsys.readouterr().err
