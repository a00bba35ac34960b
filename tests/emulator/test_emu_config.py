"""The configuration: validation, ``scaled()``, the test timing, the command line's options."""

from __future__ import annotations

import pytest

from atlasbatch.testing import TEST_TIMING, EmulatorConfig, Faults
from atlasbatch.testing._cli import _config, build_parser
from atlasbatch.testing.pytest_plugin import TEST_DEFAULTS


def test_scaled_multiplies_every_duration() -> None:
    config = EmulatorConfig(
        background_task_seconds=30.0,
        outages=((10.0, 20.0, "drop"),),
        faults=Faults(expire_after=100.0, slow_seconds=2.0, lose_rate=0.1),
    ).scaled(0.1)
    assert (config.write_rate, config.read_rate) == ("60/6s", "600/6s")
    assert config.task_seconds == pytest.approx(6.0)
    assert config.background_task_seconds == pytest.approx(3.0)
    assert (config.runner_idle_poll, config.runner_busy_poll) == pytest.approx((0.5, 0.05))
    assert (config.user_gap, config.cancel_check) == pytest.approx((0.12, 1.5))
    assert config.purge_after == pytest.approx(31 * 8640.0)
    ((start, end, mode),) = config.outages
    assert (start, end, mode) == (pytest.approx(1.0), pytest.approx(2.0), "drop")
    assert (config.faults.expire_after, config.faults.slow_seconds) == pytest.approx((10.0, 0.2))
    # counts and fractions stay
    assert (config.max_queued, config.slots, config.faults.lose_rate) == (500, 16, 0.1)


def test_scaled_rates_stay_plain_decimals() -> None:
    config = EmulatorConfig().scaled(1e-6)
    assert config.write_rate == "60/0.00006s"  # no exponent: DRF's syntax and the client's
    assert config.write is not None
    assert config.write.duration == pytest.approx(6e-5)
    kept = EmulatorConfig(write_rate=None).scaled(0.5, rates=False)
    assert (kept.write_rate, kept.read_rate, kept.task_seconds) == (None, "600/min", 30.0)
    with pytest.raises(ValueError, match="scale factor"):
        EmulatorConfig().scaled(0.0)


def test_new_values_are_validated() -> None:
    for field, value in [
        ("runner_idle_poll", -1.0),
        ("runner_busy_poll", float("nan")),
        ("user_gap", float("inf")),
        ("cancel_check", -0.1),
        ("task_sigma", -0.5),
        ("long_task_rate", 1.5),
        ("long_task_factor", 0.5),
        ("background_users", -1),
        ("background_task_seconds", -2.0),
        ("request_log_size", -1),
    ]:
        with pytest.raises(ValueError, match=field):
            EmulatorConfig(**{field: value})  # type: ignore[arg-type]


def test_fixtures_use_the_instant_runner() -> None:
    assert TEST_DEFAULTS.items() >= TEST_TIMING.items()
    assert all(value == 0.0 for value in TEST_TIMING.values())


def test_help_shows_every_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines anywhere
    for expected in [
        "--user USER the default user's name (default: atlas)",
        "(default: atlas-password)",
        "--write-rate WRITE_RATE writes: e.g. 60/6s, none (default: 60/min)",
        "--task-seconds TASK_SECONDS median task time (default: 60.0)",
        "--runner-idle-poll RUNNER_IDLE_POLL",
        "(default: 5.0)",
        "(default: 0.5)",
        "(default: 1.2)",
        "(default: 15.0)",
        "--background-users",
        "--outage START:END:MODE",
        "--fault-methods M,M",
        "--time-scale F",
    ]:
        assert expected in text, expected


def test_new_options_reach_the_config() -> None:
    args = build_parser().parse_args([
        "--task-sigma", "0.6", "--long-task-rate", "0.01", "--runner-idle-poll", "2",
        "--runner-busy-poll", "0.2", "--user-gap", "0.3", "--cancel-check", "4",
        "--background-users", "3", "--background-task-seconds", "9",
        "--outage", "5:10:503", "--outage", "20:21:drop", "--fault-methods", "delete,post",
        "--fault-endpoints", "results", "--request-log-size", "50",
    ])  # fmt: skip
    config = _config(args)
    assert (config.task_sigma, config.long_task_rate) == (0.6, 0.01)
    assert (config.runner_idle_poll, config.runner_busy_poll) == (2.0, 0.2)
    assert (config.user_gap, config.cancel_check) == (0.3, 4.0)
    assert (config.background_users, config.background_task_seconds) == (3, 9.0)
    assert config.outages == ((5.0, 10.0, "503"), (20.0, 21.0, "drop"))
    assert config.faults.methods == frozenset({"DELETE", "POST"})
    assert config.faults.endpoints == frozenset({"results"})
    assert config.request_log_size == 50


def test_time_scale_applies_last() -> None:
    config = _config(build_parser().parse_args(["--time-scale", "0.1", "--task-seconds", "30"]))
    assert (config.write_rate, config.task_seconds) == ("60/6s", pytest.approx(3.0))
    assert config.runner_idle_poll == pytest.approx(0.5)


@pytest.mark.parametrize(
    "argv",
    [["--outage", "5:1:503"], ["--outage", "1:5:down"], ["--fault-endpoints", "static"]],
)
def test_bad_option_values_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(argv)
