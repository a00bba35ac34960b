"""The floor of a client's CPU: only the requests every client must make, on bare httpx.

Per target, a client of this server has to send its share of a POST (100 positions each),
its share of the list polls (100 tasks a page), one GET of the result file and one DELETE.
This client sends exactly that and nothing else: no ledger, no file, no check, no limiter,
the requests handed straight to an :class:`httpx.AsyncHTTPTransport` (as atlasbatch's
``Wire`` does) by eight workers. Its CPU per 1,000 targets is what the HTTP stack alone
costs on the machine at hand, so ``benchmarks/_cost.py`` can say how much of a client's cost
is its own, and whether a CPU target is reachable at all there (benchmarks/README.md,
fourth round).

It keeps the queue cap (``max_queued`` unstarted tasks): targets go in waves of at most that
many, each submitted, polled until finished, then downloaded and deleted. Every loop is
bounded; it assumes the scale scenario's relaxed rates (it never meets a 429) and stops
with an error on any answer it does not expect.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import anyio
import httpx

__all__ = ["main", "run_floor"]

_WORKERS = 8
_PER_POST = 100
_MAX_POLLS = 10_000
# Between list polls: doubling, so that a slow emulator costs wall time, not CPU (a round of
# pages is 500 tasks of JSON to read): what a floor must not include is waiting spent polling.
_FIRST_PAUSE = 0.01
_LAST_PAUSE = 0.64


class _Floor:
    def __init__(self, job: dict[str, Any]) -> None:
        self.base: str = job["base_url"]
        self.mjd_min: float = job["mjd_min"]
        self.headers = httpx.Headers(
            {"Accept": "application/json", "Authorization": f"Token {job['token']}"}
        )
        limits = httpx.Limits(max_connections=_WORKERS, max_keepalive_connections=_WORKERS)
        self.transport = httpx.AsyncHTTPTransport(limits=limits)

    def here(self, url: str) -> str:
        """``url`` on the emulator (its answers already name it: normally as it is).

        Not ``benchmarks.clients``' ``same_origin``: that parses two URLs a request, and
        importing that package would load atlasbatch into this child; neither is the floor's.
        """
        if url.startswith(self.base):
            return url
        return self.base + url.split("/forcedphot", 1)[1]

    async def call(self, method: str, url: str, body: Any = None, expect: int = 200) -> bytes:
        content = {} if body is None else {"json": body}
        request = httpx.Request(method, url, headers=self.headers, **content)
        response = await self.transport.handle_async_request(request)
        data = await response.aread()
        if response.status_code != expect:
            raise RuntimeError(f"{method} {url}: {response.status_code} {data[:200]!r}")
        return data

    async def submit(self, first: int, count: int) -> list[int]:
        """Tasks for targets ``first`` … ``first + count - 1`` (the scale scenario's grid)."""
        ids: list[int] = []
        for start in range(first, first + count, _PER_POST):
            lines = "\n".join(
                f"{(i % 3600) * 0.1:.6f} {10.0 + (i // 3600) * 0.1:.6f}"
                for i in range(start, min(start + _PER_POST, first + count))
            )
            body = {"radeclist": lines, "mjd_min": self.mjd_min}
            created = json.loads(await self.call("POST", f"{self.base}/queue/", body, 201))
            ids += [task["id"] for task in created]
        return ids

    async def results(self, ids: list[int]) -> dict[int, str | None]:
        """Poll the list until every task of ``ids`` has finished: id -> result_url."""
        wanted, finished = set(ids), dict[int, str | None]()
        pause = _FIRST_PAUSE
        for _ in range(_MAX_POLLS):
            url: str | None = f"{self.base}/queue/?pagesize=100"
            while url:
                page = json.loads(await self.call("GET", url))
                for task in page["results"]:
                    if task["finishtimestamp"] and task["id"] in wanted:
                        finished[task["id"]] = task["result_url"]
                url = page["next"] and self.here(page["next"])
            if len(finished) == len(wanted):
                return finished
            await anyio.sleep(pause)
            pause = min(2 * pause, _LAST_PAUSE)
        raise RuntimeError(f"{len(wanted) - len(finished)} tasks never finished")

    async def collect(self, finished: dict[int, str | None]) -> None:
        """Download every result file and delete every task, eight at a time."""
        send, receive = anyio.create_memory_object_stream[int](len(finished))
        for task_id in finished:
            send.send_nowait(task_id)
        send.close()

        async def worker() -> None:
            async for task_id in receive:
                if (result := finished[task_id]) is not None:
                    await self.call("GET", self.here(result))
                await self.call("DELETE", f"{self.base}/queue/{task_id}/", expect=204)

        with receive:
            async with anyio.create_task_group() as group:
                for _ in range(_WORKERS):
                    group.start_soon(worker)


async def run_floor(job: dict[str, Any]) -> int:
    """Fetch and delete ``job["count"]`` targets in waves of ``job["max_queued"]``: done."""
    floor, count, wave = _Floor(job), int(job["count"]), int(job["max_queued"])
    try:
        for first in range(0, count, wave):
            ids = await floor.submit(first, min(wave, count - first))
            await floor.collect(await floor.results(ids))
    finally:
        await floor.transport.aclose()
    return count


def main(argv: list[str]) -> None:
    """``python -c 'from benchmarks._floor import main; main(...)' JOB_JSON``."""
    print(json.dumps({"done": anyio.run(run_floor, json.loads(argv[0]))}))


if __name__ == "__main__":
    main(sys.argv[1:])
