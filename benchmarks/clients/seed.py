"""The seed algorithm: the API guide's example loop, one target after another.

Ported from the guide's ``requests`` script to synchronous httpx, step for step: a fresh
session per request (the guide's ``with requests.Session() as s:`` inside each loop), a
form-encoded POST of ``ra``, ``dec``, ``mjd_min``; on 429 the guide's regex and sleep; poll
``GET /queue/<id>/`` straight away and then every 10 s (scaled) until ``finishtimestamp``;
download ``result_url``; DELETE the task (the guide has that line commented out; every client
here deletes, so that the write budget is compared like for like). Where the guide calls
``sys.exit()`` on an unexpected status, this port gives up on that one target instead.
Every loop is bounded by a step count and by the job's deadline.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from benchmarks.clients._common import ClientJob, ClientResult, guide_wait, same_origin

__all__ = ["run_seed"]

_MAX_STEPS = 10_000


class _DeadlineError(Exception):
    """The job's time limit was reached."""


def _sleep(seconds: float, deadline: float) -> None:
    left = deadline - time.monotonic()
    if left <= 0:
        raise _DeadlineError
    time.sleep(min(seconds, left))


def _request(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> httpx.Response:
    with httpx.Client(timeout=60.0) as session:  # the guide opens a session per request
        return session.request(method, url, headers=headers, **kwargs)


def _throttled_wait(response: httpx.Response, time_scale: float) -> float:
    message = str(response.json().get("detail", ""))
    return guide_wait(message, time_scale=time_scale)


def _submit(job: ClientJob, target: dict[str, float | str], headers: dict[str, str]) -> str | None:
    data = {"ra": target["ra"], "dec": target["dec"], "mjd_min": job.mjd_min}
    for _ in range(_MAX_STEPS):
        response = _request("POST", f"{job.base_url}/queue/", headers, data=data)
        if response.status_code == 201:  # successfully queued
            return same_origin(str(response.json()["url"]), job.base_url)
        if response.status_code != 429:  # the guide prints the error and exits
            return None
        _sleep(_throttled_wait(response, job.time_scale), job.deadline)
    return None


def _wait_for_result(
    job: ClientJob, task_url: str, headers: dict[str, str]
) -> tuple[bool, str | None]:
    """(finished, result_url): poll at once, then every 10 s (scaled)."""
    for _ in range(_MAX_STEPS):
        response = _request("GET", task_url, headers)
        if response.status_code == 200:
            body = response.json()
            if body["finishtimestamp"]:
                url = body["result_url"]
                return True, None if url is None else same_origin(str(url), job.base_url)
            _sleep(10.0 * job.time_scale, job.deadline)
        elif response.status_code == 429:
            _sleep(_throttled_wait(response, job.time_scale), job.deadline)
        else:
            return False, None
    return False, None


def _delete(job: ClientJob, task_url: str, headers: dict[str, str]) -> bool:
    for _ in range(_MAX_STEPS):
        response = _request("DELETE", task_url, headers)
        if response.status_code != 429:
            return response.status_code in (200, 204, 404)
        _sleep(_throttled_wait(response, job.time_scale), job.deadline)
    return False


def _one(job: ClientJob, target: dict[str, float | str], headers: dict[str, str]) -> bool:
    task_url = _submit(job, target, headers)
    if task_url is None:
        return False
    finished, result_url = _wait_for_result(job, task_url, headers)
    if result_url is not None:
        _request("GET", result_url, headers).raise_for_status()
    deleted = _delete(job, task_url, headers)
    return finished and deleted


def run_seed(job: ClientJob) -> ClientResult:
    """Every target in turn: submit, poll, download, delete."""
    result = ClientResult()
    headers = {"Authorization": f"Token {job.token}", "Accept": "application/json"}
    for target in job.targets:
        if time.monotonic() >= job.deadline:
            result.limit_hit = True
            break
        try:
            ok = _one(job, target, headers)
        except _DeadlineError:
            result.limit_hit = True
            break
        except httpx.HTTPError as exc:
            result.notes.append(f"{target['name']}: {exc!r}")
            ok = False
        if ok:
            result.completed += 1
        else:
            result.failed += 1
    return result
