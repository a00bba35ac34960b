"""The lazy, deterministic task runner, driven by a fake clock (no HTTP, no threads)."""

from __future__ import annotations

from atlasbatch.testing import TEST_TIMING, EmulatorConfig, Faults
from atlasbatch.testing._state.clock import Clock
from atlasbatch.testing._state.store import Store
from atlasbatch.testing._state.tasks import User


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _store(**overrides: object) -> tuple[Store, FakeTime]:
    fake = FakeTime()
    config = EmulatorConfig(**{"task_seconds": 10.0, **TEST_TIMING, **overrides})  # type: ignore[arg-type]
    return Store(config, clock=Clock(fake, lambda: 1_800_000_000.0)), fake


def _submit(store: Store, user: User, count: int) -> list[int]:
    with store.lock:
        now = store.advance()
        rows = [{"ra": float(i), "dec": 1.0} for i in range(count)]
        return [task.id for task in store.create(user, rows, now)]


def _start_order(store: Store, fake: FakeTime, *, until: float, step: float = 1.0) -> list[str]:
    order: list[tuple[float, int, str]] = []
    while fake.now < until:
        fake.now += step
        with store.lock:
            store.advance()
            for task in store.all_tasks():
                if (
                    task.started_at is not None
                    and (task.started_at, task.id, task.user.username) not in order
                ):
                    order.append((task.started_at, task.id, task.user.username))
    return [name for _, _, name in sorted(order)]


def test_round_robin_dispatch_with_one_slot() -> None:
    store, fake = _store(slots=1)
    bob = store.add_user("bob", "pw")
    carol = store.add_user("carol", "pw")
    for user in (store.default_user, bob, carol):
        _submit(store, user, 3)
    order = _start_order(store, fake, until=1100)
    assert order == ["atlas", "bob", "carol"] * 3


def test_one_running_task_per_user_and_slot_limit() -> None:
    store, fake = _store(slots=2)
    bob = store.add_user("bob", "pw")
    _submit(store, store.default_user, 5)
    with store.lock:
        store.advance()
        assert store.runner.counts() == (4, 1)  # a free slot, but atlas already runs one
    _submit(store, bob, 5)
    with store.lock:
        store.advance()
        assert store.runner.counts() == (8, 2)
    fake.now += 10.0
    with store.lock:
        store.advance()
        finished = [t for t in store.all_tasks() if t.state == "finished"]
        assert len(finished) == 2
        assert {t.finished_at for t in finished} == {1010.0}


def test_user_slots_allow_parallel_tasks() -> None:
    store, _ = _store(slots=16, user_slots=3)
    _submit(store, store.default_user, 5)
    with store.lock:
        store.advance()
        assert store.runner.counts() == (2, 3)
        positions = [store.serialize(t, None)["queuepos"] for t in store.all_tasks()]
    assert sorted(positions) == [0, 1, 2, 3, 4]


def test_lazy_replay_gives_event_timestamps_not_request_times() -> None:
    store, fake = _store(slots=1)
    ids = _submit(store, store.default_user, 3)
    fake.now += 1000.0  # nobody asks for a long time
    with store.lock:
        store.advance()
        tasks = [store.get(i) for i in ids]
    assert [t.started_at for t in tasks if t] == [1000.0, 1010.0, 1020.0]
    assert [t.finished_at for t in tasks if t] == [1010.0, 1020.0, 1030.0]
    assert [store.serialize(t, None)["waittime"] for t in tasks if t] == [0.0, 10.0, 20.0]


def test_jitter_is_seeded() -> None:
    def durations(seed: int) -> list[float]:
        store, _ = _store(slots=16, task_jitter=0.5, seed=seed)
        for name in "abcdef":
            _submit(store, store.add_user(name, "pw"), 1)
        with store.lock:
            return [
                t.run_until - t.started_at
                for t in store.all_tasks()
                if t.run_until and t.started_at
            ]

    assert durations(1) == durations(1)
    assert durations(1) != durations(2)
    assert all(5.0 <= d <= 15.0 for d in durations(3))


def test_lost_tasks_are_rerun_with_a_higher_attempt_count() -> None:
    store, fake = _store(slots=1, faults=Faults(lose_rate=0.5), seed=4)
    ids = _submit(store, store.default_user, 10)
    fake.now += 1000.0
    with store.lock:
        store.advance()
        tasks = [store.get(i) for i in ids]
        attempts = [t.attempt_count for t in tasks if t]
        assert all(t is not None and t.state == "finished" for t in tasks)
        assert max(attempts) > 1
        assert store.stats.tasks_lost == sum(attempts) - len(ids)


def test_file_expiry_and_purge() -> None:
    store, fake = _store(faults=Faults(expire_after=5.0), purge_after=20.0)
    (task_id,) = _submit(store, store.default_user, 1)
    fake.now += 11.0
    with store.lock:
        store.advance()
        task = store.get(task_id)
        assert task is not None
        assert task.has_result_url
    fake.now += 5.0
    with store.lock:
        store.advance()
        assert task.state == "finished"
        assert not task.has_result_url
        assert task.error_msg is None
        assert store.serialize(task, None)["result_url"] is None
    fake.now += 20.0
    with store.lock:
        store.advance()
        assert store.get(task_id) is None
        assert store.snapshot()["tasks_purged"] == 1
