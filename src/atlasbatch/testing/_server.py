"""The emulator handle: a uvicorn server in a daemon thread, plus inspection of its state."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from types import TracebackType
from typing import Self

import uvicorn

from ._config import EmulatorConfig, OutageMode
from ._fault_settings import Faults
from ._serializer.fields import JsonValue
from ._state.outage import OutageHandle
from ._state.requestlog import RequestRecord
from ._state.stats import EmulatorStats
from ._state.store import Store
from ._state.tasks import TaskTiming, task_timing
from ._web.app import PREFIX, create_app
from ._web.faults import FaultMiddleware

__all__ = ["Emulator", "is_loopback"]

_START_TIMEOUT = 10.0


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (``127.0.0.0/8``, ``::1``) or ``localhost``."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Emulator:
    """A running ATLAS forced-photometry server emulator on a loopback port.

    Use as a context manager (``with Emulator(config) as emu: ...``) or call :meth:`start` and
    :meth:`stop`. The HTTP server runs in a daemon thread with its own event loop; every method
    here takes the state lock and first brings the task runner up to the current time, so what
    it returns is consistent with what a request made now would see.
    """

    def __init__(
        self, config: EmulatorConfig | None = None, *, allow_non_loopback: bool = False
    ) -> None:
        self.config = config or EmulatorConfig()
        if not allow_non_loopback and not is_loopback(self.config.host):
            msg = f"refusing to bind the non-loopback address {self.config.host!r}"
            raise ValueError(msg)
        self._store = Store(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port = self.config.port

    # -- lifecycle --------------------------------------------------------------------------

    def _bind(self) -> socket.socket:
        host = self.config.host.strip("[]")
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on accepted sockets whose proto
        # says TCP, and without it Nagle + delayed ACKs add ~40 ms to every response
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, self.config.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        return sock

    def start(self) -> Self:
        """Bind, start serving in a background thread, and wait until it accepts connections."""
        if self._thread is not None:
            msg = "the emulator is already running"
            raise RuntimeError(msg)
        sock = self._bind()
        self._port = int(sock.getsockname()[1])
        with self._store.lock:
            self._store.base_url = self.base_url
            clock = self._store.clock
            clock.zero = clock.now()  # the emulator's clock (outages, request log) starts here
        app = FaultMiddleware(create_app(self._store), self._store)
        config = uvicorn.Config(
            app,
            http="h11",
            loop="asyncio",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="atlas-emulator", daemon=True
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                msg = "the emulator's HTTP server did not start"
                raise RuntimeError(msg)
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop serving and join the thread (idempotent)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses and users ----------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound TCP port (the chosen one when the config asked for port 0)."""
        return self._port

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/forcedphot``, the API base (IPv6 hosts in brackets)."""
        host = self.config.host.strip("[]")
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self._port}{PREFIX}"

    @property
    def token(self) -> str:
        """The API token of the default user (``config.username``)."""
        return self._store.default_user.token

    def add_user(self, username: str, password: str, *, token: str | None = None) -> str:
        """Create another account (own throttle budget and queue cap); return its token."""
        with self._store.lock:
            return self._store.add_user(username, password, token=token).token

    # -- inspection and control -------------------------------------------------------------

    def stats(self) -> EmulatorStats:
        """The counters of ``/_emulator/stats.json`` (see :class:`EmulatorStats`)."""
        with self._store.lock:
            self._store.advance()
            return self._store.snapshot()

    def reset_stats(self) -> None:
        """Zero all counters and empty the request log (tasks stay; live counts reflect them)."""
        with self._store.lock:
            self._store.reset_stats()

    def set_faults(self, faults: Faults) -> None:
        """Swap the faults at runtime (next request / next task attempt)."""
        with self._store.lock:
            self._store.set_faults(faults)

    @property
    def faults(self) -> Faults:
        """The faults in force."""
        return self._store.faults

    def now(self) -> float:
        """Seconds on the emulator's clock: 0 when it started serving."""
        with self._store.lock:
            return self._store.clock.elapsed(self._store.clock.now())

    def requests(self) -> list[RequestRecord]:
        """The latest requests it saw (``config.request_log_size`` of them), oldest first.

        Every request but ``stats.json``: arrival time on the emulator's clock, method, path,
        query, status sent (``None``: dropped) and the fault that shaped it, if any.
        """
        with self._store.lock:
            return self._store.requests.records()

    def task_timings(self, *, include_archived: bool = True) -> list[TaskTiming]:
        """Every task's submit, start and finish instants on the emulator's clock, by id."""
        with self._store.lock:
            self._store.advance()
            zero = self._store.clock.zero
            tasks = self._store.all_tasks(include_archived=include_archived)
            return [task_timing(task, zero) for task in tasks]

    def outage(self, mode: OutageMode = "503") -> OutageHandle:
        """Take the whole site down now, until :meth:`end_outage` (or the ``with`` block ends).

        ``"503"``: every request (API, result files, ``data.txt``, token log-in) gets Apache's
        HTML 503 page; ``"drop"``: every connection is dropped without an answer. Nothing
        behind the front end changes meanwhile; the runner keeps running tasks. Overrides the
        configured ``outages`` while on. Counted in ``stats()["faults"]`` as ``outage_503`` /
        ``outage_drop`` and in :meth:`requests`.
        """
        if mode not in ("503", "drop"):
            msg = f"an outage's mode is '503' or 'drop', got {mode!r}"
            raise ValueError(msg)
        with self._store.lock:
            self._store.outage.manual = mode
        return OutageHandle(self.end_outage, mode)

    def end_outage(self) -> None:
        """End an outage started by :meth:`outage` (configured windows still apply)."""
        with self._store.lock:
            self._store.outage.manual = None

    def tasks(self, *, include_archived: bool = False) -> list[dict[str, JsonValue]]:
        """Every user's tasks as the owner sees them, by id; archived ones get ``"archived"``."""
        with self._store.lock:
            self._store.advance()
            result = []
            for task in self._store.all_tasks(include_archived=include_archived):
                body = self._store.serialize(task, task.user)
                if include_archived:
                    body["archived"] = task.archived
                result.append(body)
            return result

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Block until no task is queued or running (raise ``TimeoutError`` after ``timeout``).

        The background users' endless load does not count.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._store.lock:
                self._store.advance()
                waiting, running = self._store.runner.counts(include_background=False)
            if waiting == 0 and running == 0:
                return
            if time.monotonic() > deadline:
                msg = f"{waiting} queued and {running} running tasks after {timeout} s"
                raise TimeoutError(msg)
            time.sleep(0.01)
