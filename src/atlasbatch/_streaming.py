"""A result file streamed to disk, never held in memory, refused beyond a size limit.

Result files are static files on the server's web front end. A real one is a few MB at
most; a hostile or broken one (an endless body from a proxy) must not exhaust memory or
disk, so the body goes to a scratch file chunk by chunk and stops one chunk past the limit.
"""

from __future__ import annotations

from pathlib import Path

import httpx

from atlasbatch._exceptions import ResultTooLargeError
from atlasbatch._storage import storage_error
from atlasbatch._wire_faults import raise_for, transport_error

__all__ = ["stream_to_file"]

_CHUNK = 1 << 16


async def stream_to_file(http: httpx.AsyncClient, url: str, dest: Path, *, limit: int) -> int:
    """GET ``url`` into ``dest``; its size. ResultTooLargeError beyond ``limit`` bytes."""
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise_for(response, "GET", url)
            size = await _write(response, dest, limit=limit)
    except httpx.HTTPError as exc:
        raise transport_error("GET", url, exc) from None
    if size > limit:
        _remove(dest)
        raise ResultTooLargeError(
            f"{url}: result file larger than the limit of {limit:,} bytes "
            "(Settings.max_result_bytes); nothing of it was kept"
        )
    return size


async def _write(response: httpx.Response, dest: Path, *, limit: int) -> int:
    """Write the body to ``dest``; stop past ``limit`` bytes (the caller refuses the file).

    Plain blocking writes, no fsync: chunks of a local file are written faster than a thread
    hop, and this is a scratch copy: the saver makes its own copy durable.
    """
    size = 0
    try:
        with open(dest, "wb") as handle:  # noqa: ASYNC230
            async for chunk in response.aiter_bytes(_CHUNK):
                size += len(chunk)
                if size > limit:
                    break
                handle.write(chunk)
    except OSError as exc:
        raise storage_error(exc, folder=dest.parent) from exc
    return size


def _remove(path: Path) -> None:
    path.unlink(missing_ok=True)
