"""A naive concurrent client: ``asyncio.gather`` over every target, nothing else.

What someone writes in an afternoon: one shared ``httpx.AsyncClient``; per target, POST its
own task (JSON ``ra``, ``dec``, ``mjd_min``), poll that task every 2 s (scaled), download
``result_url``, DELETE the task. A 429 is handled only the guide's way (regex, sleep); a 400
(the queue cap) only by sleeping one poll interval and trying again. The pool timeout is off
(with thousands of coroutines on 100 connections httpx's default 5 s pool timeout would fail
most of them, which is the first thing such a user fixes). Every loop is bounded by a step
count, and the whole gather by the job's deadline.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from benchmarks.clients._common import ClientJob, ClientResult, guide_wait, same_origin

__all__ = ["run_naive"]

_MAX_STEPS = 10_000


class _Naive:
    def __init__(self, job: ClientJob, http: httpx.AsyncClient) -> None:
        self.job = job
        self.http = http
        self.poll = 2.0 * job.time_scale
        self.done = 0

    async def _throttled(self, response: httpx.Response) -> None:
        message = str(response.json().get("detail", ""))
        await asyncio.sleep(guide_wait(message, time_scale=self.job.time_scale))

    async def submit(self, target: dict[str, float | str]) -> str | None:
        body = {"ra": target["ra"], "dec": target["dec"], "mjd_min": self.job.mjd_min}
        for _ in range(_MAX_STEPS):
            response = await self.http.post(f"{self.job.base_url}/queue/", json=body)
            if response.status_code == 201:
                return same_origin(str(response.json()["url"]), self.job.base_url)
            if response.status_code == 429:
                await self._throttled(response)
            elif response.status_code == 400:  # "too many queued tasks": just try again later
                await asyncio.sleep(self.poll)
            else:
                return None
        return None

    async def result_url(self, task_url: str) -> tuple[bool, str | None]:
        for _ in range(_MAX_STEPS):
            response = await self.http.get(task_url)
            if response.status_code == 429:
                await self._throttled(response)
                continue
            if response.status_code != 200:
                return False, None
            body = response.json()
            if body["finishtimestamp"]:
                url = body["result_url"]
                return True, None if url is None else same_origin(str(url), self.job.base_url)
            await asyncio.sleep(self.poll)
        return False, None

    async def delete(self, task_url: str) -> bool:
        for _ in range(_MAX_STEPS):
            response = await self.http.delete(task_url)
            if response.status_code != 429:
                return response.status_code in (200, 204, 404)
            await self._throttled(response)
        return False

    async def one(self, target: dict[str, float | str]) -> bool:
        task_url = await self.submit(target)
        if task_url is None:
            return False
        finished, result_url = await self.result_url(task_url)
        if result_url is not None:
            (await self.http.get(result_url)).raise_for_status()
        ok = await self.delete(task_url) and finished
        self.done += ok
        return ok


async def _run(job: ClientJob) -> ClientResult:
    result = ClientResult()
    headers = {"Authorization": f"Token {job.token}", "Accept": "application/json"}
    timeout = httpx.Timeout(60.0, pool=None)
    async with httpx.AsyncClient(headers=headers, timeout=timeout) as http:
        naive = _Naive(job, http)
        jobs = asyncio.gather(*(naive.one(t) for t in job.targets), return_exceptions=True)
        try:
            outcomes = await asyncio.wait_for(jobs, max(0.0, job.deadline - time.monotonic()))
        except TimeoutError:
            result.limit_hit = True
            result.completed = naive.done
            return result
    for outcome in outcomes:
        if outcome is True:
            result.completed += 1
        else:
            result.failed += 1
            if isinstance(outcome, BaseException):
                result.notes.append(repr(outcome))
    return result


def run_naive(job: ClientJob) -> ClientResult:
    """Run the gather on a fresh event loop in the calling thread."""
    return asyncio.run(_run(job))
