"""The real runner's timing, at its real values, on a hand-moved clock (instant, exact).

Polls (5 s idle, 0.5 s busy), the 1.2 s gap between one user's tasks, the 15 s cancel check,
background load and the task-time distribution, all replayed lazily by the runner.
"""

from __future__ import annotations

import statistics

import pytest
from _emu_helpers import advance_to, fake_store, submit

from atlasbatch.testing import EmulatorConfig
from atlasbatch.testing._state.store import Store
from atlasbatch.testing._state.tasks import Task
from atlasbatch.testing._state.timing import PollGrid, cancel_noticed_at, task_duration


def _started(task: Task) -> float:
    assert task.started_at is not None
    return task.started_at


def _waittime(store: Store, task: Task) -> object:
    with store.lock:
        return store.serialize(task, task.user)["waittime"]


def test_the_defaults_are_the_real_servers() -> None:
    config = EmulatorConfig()
    assert (config.runner_idle_poll, config.runner_busy_poll) == (5.0, 0.5)
    assert (config.user_gap, config.cancel_check) == (1.2, 15.0)
    assert (config.slots, config.user_slots, config.task_seconds) == (16, 1, 60.0)
    assert (config.write_rate, config.read_rate, config.max_queued) == ("60/min", "600/min", 500)
    assert config.purge_after == 31 * 86400.0
    assert (config.task_sigma, config.background_users) == (0.0, 0)


def test_a_task_sent_to_an_idle_runner_waits_for_its_next_poll() -> None:
    store, fake = fake_store(task_seconds=10.0)
    (first,) = submit(store, store.default_user)
    advance_to(store, fake, 1005.0)
    assert 1000.0 <= _started(first) <= 1005.0  # the first poll after the submission
    finished_at = _started(first) + 10.0
    # the slot comes free 1.2 s after the finish; from then on the runner polls every 5 s
    advance_to(store, fake, finished_at + 1.2 + 2.0)
    (second,) = submit(store, store.default_user)
    advance_to(store, fake, fake.now + 10.0)
    assert _started(second) == pytest.approx(finished_at + 1.2 + 5.0)
    assert _waittime(store, second) == 3.0  # whole seconds, as the API shows it


def test_a_busy_runner_polls_every_half_second() -> None:
    store, fake = fake_store(task_seconds=60.0)
    bob = store.add_user("bob", "pw")
    (long_task,) = submit(store, store.default_user)
    advance_to(store, fake, 1006.0)
    busy_since = _started(long_task)  # the poll that found work: the busy grid starts here
    advance_to(store, fake, busy_since + 10.2)
    (bobs,) = submit(store, bob)
    assert bobs.started_at is None  # a free slot, but nobody has looked yet
    advance_to(store, fake, busy_since + 10.49)
    assert bobs.started_at is None
    advance_to(store, fake, busy_since + 10.6)
    assert _started(bobs) == pytest.approx(busy_since + 10.5)


def test_one_users_tasks_are_spaced_by_the_gap() -> None:
    store, fake = fake_store(task_seconds=10.0)
    tasks = submit(store, store.default_user, 3)
    advance_to(store, fake, 1100.0)
    starts = [_started(task) for task in tasks]
    assert starts[1] == pytest.approx(starts[0] + 11.2)
    assert starts[2] == pytest.approx(starts[1] + 11.2)
    assert [task.finished_at for task in tasks] == pytest.approx([s + 10.0 for s in starts])


def test_the_gap_holds_the_slot_too() -> None:
    store, fake = fake_store(task_seconds=10.0, slots=1)
    bob = store.add_user("bob", "pw")
    (mine,) = submit(store, store.default_user)
    (bobs,) = submit(store, bob)
    advance_to(store, fake, 1100.0)
    assert _started(bobs) == pytest.approx(_started(mine) + 11.2)


@pytest.mark.parametrize(
    ("deleted_after", "next_start_after"),
    [
        (3.0, 15.0 + 1.2),  # noticed at the first 15 s check
        (20.0, 30.0 + 1.2),  # ... at the second
        (15.0, 15.0 + 1.2),  # a check right then
    ],
)
def test_deleting_a_running_task_blocks_the_user_until_the_next_check(
    deleted_after: float, next_start_after: float
) -> None:
    store, fake = fake_store(task_seconds=60.0)
    first, second = submit(store, store.default_user, 2)
    advance_to(store, fake, 1005.0)
    started = _started(first)
    advance_to(store, fake, started + deleted_after)
    with store.lock:
        store.delete(first)
        assert store.get(first.id) is None  # gone from the API at once
    advance_to(store, fake, started + 100.0)
    assert _started(second) == pytest.approx(started + next_start_after)


def test_a_cancelled_job_that_ends_before_the_check_frees_its_user_at_its_end() -> None:
    store, fake = fake_store(task_seconds=10.0)
    first, second = submit(store, store.default_user, 2)
    advance_to(store, fake, 1005.0)
    started = _started(first)
    advance_to(store, fake, started + 3.0)
    with store.lock:
        store.delete(first)
    advance_to(store, fake, started + 50.0)
    assert _started(second) == pytest.approx(started + 10.0 + 1.2)


def test_cancel_noticed_at_edges() -> None:
    kwargs = {"started_at": 100.0, "run_until": 1000.0}
    assert cancel_noticed_at(deleted_at=100.0, cancel_check=15.0, **kwargs) == 115.0
    assert cancel_noticed_at(deleted_at=130.0, cancel_check=15.0, **kwargs) == 130.0
    assert cancel_noticed_at(deleted_at=130.0, cancel_check=0.0, **kwargs) == 130.0


def test_poll_grid_switches_between_idle_and_busy() -> None:
    grid = PollGrid(idle=5.0, busy=0.5, start=100.0, phase=2.0)
    assert grid.next_tick(100.0) == 103.0  # the idle grid: 98, 103, 108 …
    grid.mark_busy(103.0)
    assert grid.next_tick(103.1) == 103.5
    assert grid.next_tick(104.0) == 104.0
    grid.mark_idle(110.2)
    assert grid.next_tick(110.3) == pytest.approx(115.2)
    assert PollGrid(idle=0.0, busy=0.0, start=0.0, phase=0.0).next_tick(7.25) == 7.25


def test_background_users_make_our_tasks_wait_their_turn() -> None:
    store, fake = fake_store(task_seconds=10.0, background_users=2, slots=1)
    advance_to(store, fake, 1006.0)  # background-1 (user 2) runs since the first poll
    (mine,) = submit(store, store.default_user)
    with store.lock:
        # round-robin: this pass goes on with users after 2 (background-2), then user 1
        assert store.serialize(mine, mine.user)["queuepos"] == 2
        assert [t.id for t in store.user_tasks(mine.user)] == [mine.id]
        assert store.all_tasks() == [mine]  # the load is listed nowhere
    advance_to(store, fake, 1100.0)
    waited = _started(mine) - mine.submitted_at
    assert waited > 10.0  # one whole background task, plus the gaps, at least
    with store.lock:
        stats = store.snapshot()
    assert (stats["tasks_created"], stats["tasks_live"], stats["users"]) == (1, 1, 1)
    assert stats["tasks_purged"] == 0


def test_background_load_keeps_the_runner_busy() -> None:
    store, fake = fake_store(task_seconds=10.0, background_users=1)
    advance_to(store, fake, 1050.0)
    (mine,) = submit(store, store.default_user)
    advance_to(store, fake, 1051.0)
    # a busy runner polls every 0.5 s: no 5 s idle wait
    assert _started(mine) - mine.submitted_at <= 0.5


def test_task_times_are_log_normal_around_the_median() -> None:
    config = EmulatorConfig(task_seconds=60.0, task_sigma=0.6, seed=7)
    times = [task_duration(config, task_id=i, attempt=1) for i in range(1, 2001)]
    assert statistics.median(times) == pytest.approx(60.0, rel=0.1)
    assert min(times) < 15.0
    assert max(times) > 240.0  # the heavy tail
    assert times == [task_duration(config, task_id=i, attempt=1) for i in range(1, 2001)]
    other_seed = EmulatorConfig(task_seconds=60.0, task_sigma=0.6, seed=8)
    assert task_duration(other_seed, task_id=1, attempt=1) != times[0]
    assert task_duration(config, task_id=1, attempt=2) != times[0]  # a retry draws anew


def test_a_fraction_of_tasks_runs_much_longer() -> None:
    config = EmulatorConfig(task_seconds=10.0, long_task_rate=0.05, long_task_factor=30.0)
    times = [task_duration(config, task_id=i, attempt=1) for i in range(1, 4001)]
    assert set(times) == {10.0, 300.0}
    assert 0.03 < times.count(300.0) / len(times) < 0.07


def test_fixed_task_time_by_default_and_background_time_apart() -> None:
    config = EmulatorConfig(task_seconds=2.0, background_task_seconds=30.0)
    assert task_duration(config, task_id=5, attempt=1) == 2.0
    assert task_duration(config, task_id=5, attempt=1, background=True) == 30.0


def test_the_runner_uses_the_drawn_times() -> None:
    store, fake = fake_store(task_seconds=10.0, task_sigma=0.6, user_gap=0.0, seed=3)
    tasks = submit(store, store.default_user, 5)
    advance_to(store, fake, 10_000.0)
    spans = [(t.finished_at or 0.0) - _started(t) for t in tasks]
    expected = [task_duration(store.config, task_id=t.id, attempt=1) for t in tasks]
    assert spans == pytest.approx(expected)
    assert len(set(spans)) == 5
