"""The emulator's whole state: users, tasks, throttles, runner, counters, behind one lock.

The HTTP thread and the test thread both go through :class:`Store`; every public method must
be called with :attr:`Store.lock` held (the callers do ``with store.lock: ...``), and starts by
advancing the runner to the current time so that what a caller sees is always up to date.
"""

from __future__ import annotations

import functools
import hashlib
import random
import secrets
import threading
from collections.abc import Sequence

from .._config import EmulatorConfig
from .._fault_settings import Faults
from .._serializer.fields import FieldValue, JsonValue
from .._sky.lightcurve import Job, render_result
from .._state.clock import Clock
from .._state.images import child_fields, detach, is_image
from .._state.outage import OutageSwitch
from .._state.requestlog import RequestLog
from .._state.runner import Runner
from .._state.stats import EmulatorStats, Stats, TaskStateCounts
from .._state.tasks import DEFAULT_FIELDS, Task, User, serialize_task
from .._state.throttle import SlidingWindowThrottle, ThrottleDecision

__all__ = ["Store"]


@functools.lru_cache(maxsize=128)
def _cached_result(job: Job) -> str:
    return render_result(job)


class Store:
    """Users, tasks and everything that happens to them."""

    def __init__(self, config: EmulatorConfig, *, clock: Clock | None = None) -> None:
        self.config = config
        self.faults = config.faults
        self.lock = threading.RLock()
        self.clock = clock or Clock()
        self.stats = Stats()
        self.base_url = "http://127.0.0.1/forcedphot"
        self._users_by_id: dict[int, User] = {}
        self._users_by_token: dict[str, User] = {}
        self._tasks: dict[int, Task] = {}
        self._live_by_user: dict[int, dict[int, Task]] = {}
        self._next_task_id = 1
        self.runner = Runner(
            config,
            self.clock,
            self.stats,
            lookup=self._tasks.get,
            purge=self._purge,
            spawn=self._spawn_background,
        )
        self.outage = OutageSwitch(config.outages)
        self.requests = RequestLog(config.request_log_size)
        self._throttles = {
            "write": SlidingWindowThrottle(config.write),
            "read": SlidingWindowThrottle(config.read),
        }
        self._fault_rng = random.Random(config.seed + 2)
        self.default_user = self.add_user(config.username, config.password, token=config.token)
        for number in range(1, config.background_users + 1):
            user = self.add_user(f"background-{number}", secrets.token_hex(8), background=True)
            self.runner.keep_busy(user)

    # -- time and faults --------------------------------------------------------------------

    def advance(self) -> float:
        """Bring the runner up to now; return now (monotonic seconds)."""
        now = self.clock.now()
        self.runner.advance(now)
        return now

    def set_faults(self, faults: Faults) -> None:
        """Swap the fault settings (effective for the next request / task attempt)."""
        self.faults = faults
        self.runner.faults = faults

    def draw(self, rate: float) -> bool:
        """One seeded Bernoulli draw (no draw at all when the rate is 0)."""
        return rate > 0 and self._fault_rng.random() < rate

    def choice(self, options: Sequence[int]) -> int:
        """One seeded choice (e.g. of a 5xx status)."""
        return options[self._fault_rng.randrange(len(options))]

    # -- users ------------------------------------------------------------------------------

    def add_user(
        self,
        username: str,
        password: str,
        *,
        token: str | None = None,
        is_staff: bool = False,
        background: bool = False,
    ) -> User:
        """Create an account and its API token."""
        if any(user.username == username for user in self._users_by_id.values()):
            msg = f"user {username!r} already exists"
            raise ValueError(msg)
        token = token or secrets.token_hex(20)
        if token in self._users_by_token:
            msg = "that token already belongs to another user"
            raise ValueError(msg)
        user_id = len(self._users_by_id) + 1
        user = User(user_id, username, password, token, is_staff=is_staff, background=background)
        self._users_by_id[user.id] = user
        self._users_by_token[token] = user
        self._live_by_user[user.id] = {}
        return user

    def user_for_token(self, token: str) -> User | None:
        """The owner of an API token."""
        return self._users_by_token.get(token)

    def user_for_password(self, username: str, password: str) -> User | None:
        """The user with these credentials (``/api-token-auth/`` and Basic auth)."""
        for user in self._users_by_id.values():
            if user.username == username and secrets.compare_digest(user.password, password):
                return user
        return None

    def throttle(self, scope: str, ident: object, now: float) -> ThrottleDecision:
        """Run the scope's throttle for one request and count it."""
        decision = self._throttles[scope].check(ident, now)
        self.stats.scope_requests[scope] += 1
        if not decision.accepted:
            self.stats.throttled[scope] += 1
        elif scope == "write":
            self.stats.max_writes_in_window = max(
                self.stats.max_writes_in_window, decision.in_window
            )
        return decision

    # -- tasks ------------------------------------------------------------------------------

    def mjd_min_default(self, now: float) -> float:
        """The model default of ``mjd_min``: 30 days ago, rounded to 5 decimals."""
        return round(self.clock.mjd(now) - 30.0, 5)

    def unstarted_count(self, user: User) -> int:
        """What the queue cap counts: the user's tasks that have not started."""
        return self.runner.unstarted_count(user.id)

    def create(self, user: User, rows: Sequence[dict[str, FieldValue]], now: float) -> list[Task]:
        """Save validated rows as new tasks (one shared timestamp) and queue them."""
        queued_before = self.unstarted_count(user)
        created = []
        for index, row in enumerate(rows):
            fields = DEFAULT_FIELDS | row
            if "mjd_min" not in row:
                fields["mjd_min"] = self.mjd_min_default(now)
            task = self._new_task(user, fields, now, queued_before + index)
            self.runner.enqueue(task)
            created.append(task)
        self.stats.tasks_created += len(created)
        user.version += 1
        self.runner.advance(now)
        return created

    def _new_task(
        self, user: User, fields: dict[str, FieldValue], now: float, queued_before: int
    ) -> Task:
        timestamp = self.clock.epoch_seconds(now)
        task = Task(self._next_task_id, user, fields, timestamp, queued_before, submitted_at=now)
        self._next_task_id += 1
        self._tasks[task.id] = task
        self._live_by_user[user.id][task.id] = task
        return task

    def _spawn_background(self, user: User) -> Task:
        """The next task of a background user (a target of its own, at the runner's time)."""
        now = self.runner.time
        target: dict[str, FieldValue] = {
            "ra": float(self._next_task_id % 360),
            "dec": 0.0,
            "mjd_min": self.mjd_min_default(now),
        }
        fields = DEFAULT_FIELDS | target
        return self._new_task(user, fields, now, self.unstarted_count(user))

    def request_images(self, parent: Task, now: float) -> Task:
        """Queue an image request (IMGZIP child) of ``parent``, a finished FP task (§14)."""
        user = parent.user
        fields = DEFAULT_FIELDS | child_fields(parent)
        child = self._new_task(user, fields, now, self.unstarted_count(user))
        child.parent, parent.image_child = parent, child
        self.runner.enqueue(child)
        self.stats.tasks_created += 1
        self.stats.image_requests += 1
        live = self.live_images(user)
        self.stats.max_live_image_requests = max(self.stats.max_live_image_requests, live)
        parent.touch()
        self.runner.advance(now)
        return child

    def live_images(self, user: User) -> int:
        """The user's IMGZIP tasks that are not deleted (what the limit of 5 counts)."""
        return sum(1 for task in self._live_by_user[user.id].values() if is_image(task))

    def get(self, task_id: int) -> Task | None:
        """Any stored task, archived ones included (not hard-deleted ones)."""
        return self._tasks.get(task_id)

    def delete(self, task: Task) -> None:
        """DELETE semantics: queued/running -> hard delete; finished -> archive."""
        if task.archived:
            return
        self._live_by_user[task.user.id].pop(task.id, None)
        if task.state == "finished":
            task.archived = True
            # the .txt and .jpg stay while a live image request needs them (§8)
            task.file_present = task.file_present and task.image_child is not None
        else:
            self.runner.remove(task)
            del self._tasks[task.id]
        self.stats.tasks_deleted += 1
        detach(task)
        task.touch()

    def update(self, task: Task, attrs: dict[str, FieldValue]) -> None:
        """PATCH/PUT: store the validated fields (a running job keeps its snapshot)."""
        task.fields.update(attrs)
        task.touch()

    def _purge(self, task_id: int) -> None:
        task = self._tasks.pop(task_id, None)
        if task is not None:
            self._live_by_user[task.user.id].pop(task_id, None)
            detach(task)
            if not task.user.background:
                self.stats.tasks_purged += 1
            task.touch()

    def user_tasks(self, user: User, *, started: bool | None = None) -> list[Task]:
        """The user's non-archived tasks in id order, optionally filtered on having started."""
        tasks = list(self._live_by_user[user.id].values())
        if started is None:
            return tasks
        return [task for task in tasks if (task.starttimestamp is not None) is started]

    def list_state(self, user: User) -> str:
        """A digest of everything the user's task pages show (for the list ETag)."""
        positions = self.runner.positions()
        state = [(tid, positions.get(tid)) for tid in sorted(self.runner.unfinished_ids(user.id))]
        text = f"{user.id}:{user.version}:{len(self._live_by_user[user.id])}:{state}"
        return hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()

    def serialize(self, task: Task, viewer: User | None) -> dict[str, JsonValue]:
        """The task JSON as the API shows it to ``viewer``."""
        queuepos = self.runner.positions().get(task.id)
        return serialize_task(task, base_url=self.base_url, queuepos=queuepos, viewer=viewer)

    def result_text(self, task: Task) -> str | None:
        """The result file's text, or None when the file does not exist (any more)."""
        if task.archived or not task.file_present or task.job is None:
            return None
        return _cached_result(task.job)

    # -- inspection -------------------------------------------------------------------------

    def all_tasks(self, *, include_archived: bool = False) -> list[Task]:
        """Every stored task in id order (the background users' load left out)."""
        return [
            t
            for t in self._tasks.values()
            if (include_archived or not t.archived) and not t.user.background
        ]

    def snapshot(self) -> EmulatorStats:
        """The stats document (``/_emulator/stats.json``)."""
        by_state: TaskStateCounts = {"queued": 0, "running": 0, "finished": 0}
        live = 0
        for user_id, tasks in self._live_by_user.items():
            if self._users_by_id[user_id].background:
                continue
            live += len(tasks)
            for task in tasks.values():
                by_state[task.state] += 1
        users = sum(1 for user in self._users_by_id.values() if not user.background)
        return self.stats.snapshot(tasks_live=live, tasks_by_state=by_state, users=users)

    def reset_stats(self) -> None:
        """Zero the counters (live task counts are state, not counters, and stay)."""
        fresh = Stats()
        for name in Stats.__slots__:
            setattr(self.stats, name, getattr(fresh, name))
        self.requests.clear()
