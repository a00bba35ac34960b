"""A result file downloaded in bounded memory: kept in memory when small, spilled when large.

Result files are static files on the server's web front end. Nearly all are a few KB (a
light curve of a few hundred epochs); a full history of a busy field is a few MB; a hostile
or broken one (an endless body from a proxy) must exhaust neither memory nor disk. So the
body is read chunk by chunk into memory up to ``inline`` bytes; beyond that, what was read
and everything after it goes to a scratch file, and the download stops one chunk past the
size limit. Creating, reading back and unlinking a scratch file for every small result cost
more CPU than everything else a download does (issue 12): small bodies never touch disk.

Why not :class:`tempfile.SpooledTemporaryFile`: the spill file here has a name in the run's
scratch folder (removed with it, even after a crash), and what crosses to the check and the
saver is plain ``bytes`` or a path, never an open file handle that every path must close.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import anyio
import httpx

from atlasbatch._exceptions import ResultTooLargeError
from atlasbatch._http.wire import Wire
from atlasbatch._http.wire_faults import raise_for, transport_error
from atlasbatch._storage import storage_error

__all__ = ["INLINE_BYTES", "Body", "stream_body"]

_CHUNK = 1 << 16
#: Bodies up to this size stay in memory; larger ones spill to the scratch file.
INLINE_BYTES = 1 << 20


@dataclass(frozen=True, slots=True)
class Body:
    """A downloaded body of ``size`` bytes: ``data`` in memory, or spilled to ``path``."""

    size: int
    data: bytes | None = None
    path: Path | None = None

    def read(self) -> bytes:
        """The whole body (read from the spill file if there is one)."""
        if self.data is not None:
            return self.data
        assert self.path is not None  # one or the other, by construction
        return self.path.read_bytes()

    def discard(self) -> None:
        """Remove the spill file, if any (an in-memory body just goes with the object)."""
        if self.path is not None:
            self.path.unlink(missing_ok=True)


async def stream_body(
    http: Wire, url: str, spill: Path, *, limit: int, inline: int = INLINE_BYTES
) -> Body:
    """GET ``url``: in memory up to ``inline`` bytes, else in ``spill``.

    ResultTooLargeError beyond ``limit`` bytes (nothing kept).
    """
    try:
        async with http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise_for(response, "GET", url)
            body = await _spool(response, spill, limit=limit, inline=inline)
    except httpx.HTTPError as exc:
        await anyio.Path(spill).unlink(missing_ok=True)  # a cut spill: the next try starts anew
        raise transport_error("GET", url, exc) from None
    if body.size > limit:
        body.discard()
        raise ResultTooLargeError(
            f"{url}: result file larger than the limit of {limit:,} bytes "
            "(Settings.max_result_bytes); nothing of it was kept"
        )
    return body


async def _spool(response: httpx.Response, spill: Path, *, limit: int, inline: int) -> Body:
    """Read the body; stop past ``limit`` bytes (the caller refuses the body).

    Plain blocking writes, no fsync: chunks of a local file are written faster than a thread
    hop, and the spill file is a scratch copy: the saver makes its own copy durable.
    """
    size = 0
    held: list[bytes] = []
    handle: BinaryIO | None = None
    try:
        with contextlib.ExitStack() as closing:
            async for chunk in response.aiter_bytes(_CHUNK):
                size += len(chunk)
                if size > limit:
                    break
                held.append(chunk)
                if size > inline:  # too large to hold: from here on, on disk
                    if handle is None:
                        handle = closing.enter_context(open(spill, "wb"))  # noqa: ASYNC230
                    handle.writelines(held)
                    held.clear()
    except OSError as exc:
        raise storage_error(exc, folder=spill.parent) from exc
    if handle is None:
        return Body(size=size, data=b"".join(held))
    return Body(size=size, path=spill)
