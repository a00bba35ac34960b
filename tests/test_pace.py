"""The pacer on a fake clock: probes that grow, plans from measured pace, honest ETAs."""

from __future__ import annotations

import itertools

import pytest

from atlasbatch._engine.pace import Pace


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def make(prior: float = 60.0, floor: float = 1.0, ceiling: float = 300.0) -> tuple[Pace, FakeClock]:
    clock = FakeClock()
    return Pace(prior=prior, floor=floor, ceiling=ceiling, clock=clock), clock


def test_before_any_completion_probes_grow_from_the_floor_up_to_the_prior() -> None:
    pace, clock = make()
    delays = []
    for _ in range(40):
        delay = pace.next_delay(active=5)
        delays.append(delay)
        clock.now += delay
        pace.observe(completions=0, runtimes=[], running=0, started=0)
    assert delays[0] == 1.5  # 1.5 read floors, not the 60 s guess
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == 60.0  # the prior only caps the probe step
    # a task that takes S seconds is seen within about S/4 of its end
    times = [sum(delays[:i]) for i in range(1, len(delays) + 1)]
    for s in (3.0, 10.0, 45.0, 200.0):
        seen = next(t for t in times if t >= s)
        assert seen - s <= max(2.0, 0.25 * s) + 1e-9


def test_estimates_are_none_until_something_finished() -> None:
    pace, clock = make()
    assert pace.runtime is None and pace.cycle is None and pace.eta(10) is None
    clock.now = 5.0
    pace.observe(completions=0, runtimes=[], running=1, started=0)
    assert pace.eta(10) is None


def test_after_completions_the_next_poll_aims_at_ten_of_them() -> None:
    pace, clock = make(prior=60.0, floor=0.1)
    pace.observe(completions=0, runtimes=[], running=1, started=0)  # first poll: the anchor
    for _ in range(5):  # one task of ours every 2 s, seen two at a time
        clock.now += 4.0
        pace.observe(completions=2, runtimes=[2.0, 2.0], running=1, started=1)
    assert pace.runtime == 2.0
    assert pace.cycle == pytest.approx(2.0)
    assert pace.next_delay(active=100) == pytest.approx(20.0)  # ten completions away
    assert pace.eta(50) == pytest.approx(100.0)


def test_at_the_tail_the_poll_is_due_when_the_last_task_should_end() -> None:
    pace, clock = make(prior=60.0, floor=0.1)
    pace.observe(completions=0, runtimes=[], running=1, started=0)
    for _ in range(3):
        clock.now += 4.0
        pace.observe(completions=2, runtimes=[2.0, 2.0], running=1, started=1)
    assert pace.next_delay(active=3) == pytest.approx(6.0)
    assert pace.next_delay(active=1) == pytest.approx(2.0)


def test_an_overdue_poll_probes_again_from_the_last_news() -> None:
    pace, clock = make(prior=60.0, floor=0.5)
    pace.observe(completions=0, runtimes=[], running=1, started=0)
    clock.now += 2.0
    pace.observe(completions=2, runtimes=[1.0, 1.0], running=1, started=1)
    clock.now += 30.0  # the last task is long: nothing new for a while
    pace.observe(completions=0, runtimes=[], running=1, started=0)
    assert pace.cycle == pytest.approx(16.0)  # the quiet spell slows the measured pace
    assert pace.next_delay(active=1) == pytest.approx(0.25 * 30.0)  # overdue: probe again


def test_a_resume_does_not_count_what_finished_while_nobody_looked() -> None:
    """120 tasks finished during the downtime must not read as 120 completions in 1 s."""
    pace, _ = make(prior=60.0, floor=1.0)
    pace.observe(completions=120, runtimes=[30.0] * 120, running=1, started=0)
    assert pace.cycle == pytest.approx(30.0)  # from the runtimes, not 120 per poll interval
    assert pace.next_delay(active=40) >= 30.0


def test_heavy_tails_do_not_drag_the_runtime_estimate() -> None:
    pace, _ = make()
    pace.observe(completions=11, runtimes=[5.0] * 10 + [3000.0], running=1, started=0)
    assert pace.runtime == 5.0


def test_tasks_created_after_an_idle_spell_restart_the_probe() -> None:
    pace, clock = make(prior=60.0, floor=1.0)
    clock.now = 10_000.0
    pace.created(idle=True)
    assert pace.next_delay(active=1) == 1.5
