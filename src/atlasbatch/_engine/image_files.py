"""Storing an image request's files: ``images/<stem>.zip`` and ``images/<stem>.jpg``.

Each file is streamed into a hidden temporary sibling of its final path (the run's own
disk), checked, fsynced and renamed into place, so a file in ``images/`` is always whole.
The zip must open and every member's CRC must match (a download cut short fails that); the
preview must start like a JPEG. A damaged download is tried again a few times; a file the
server does not have (404) is no error of ours: the caller says what it means.
"""

from __future__ import annotations

import logging
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Final

import anyio

from atlasbatch._exceptions import NotFoundError, ResultFileError
from atlasbatch._http.client import AtlasClient
from atlasbatch._outputs.results import AtomicFile
from atlasbatch._storage import storage_error

__all__ = ["store_preview", "store_zip"]

log = logging.getLogger(__name__)

_TRIES: Final = 3
_JPEG: Final = b"\xff\xd8\xff"


def _zip_is_whole(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip() is None
    except (zipfile.BadZipFile, EOFError, ValueError):
        return False


def _jpeg_is_whole(path: Path) -> bool:
    data = path.read_bytes()  # a thumbnail: a few kB
    return data.startswith(_JPEG) and data.endswith(b"\xff\xd9")  # start and end markers


async def store_zip(client: AtlasClient, url: str, dest: Path) -> str | None:
    """Download an images.zip into ``dest``; None when stored, else what went wrong."""
    return await _store(client, url, dest, check=_zip_is_whole, what="images.zip")


async def store_preview(client: AtlasClient, url: str, dest: Path) -> bool:
    """Download a preview JPEG into ``dest``; whether it was stored."""
    problem = await _store(client, url, dest, check=_jpeg_is_whole, what="preview.jpg")
    if problem is not None:
        log.warning("%s: no preview stored: %s", dest.name, problem)
    return problem is None


async def _store(
    client: AtlasClient, url: str, dest: Path, *, check: Callable[[Path], bool], what: str
) -> str | None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, folder=dest.parent) from exc
    problem = f"{what} arrived damaged {_TRIES} times"
    for _ in range(_TRIES):
        try:
            pending = AtomicFile(dest)
        except OSError as exc:
            raise storage_error(exc, folder=dest.parent) from exc
        try:
            await client.download(url, pending.temp)
            if await anyio.to_thread.run_sync(check, pending.temp):
                await anyio.to_thread.run_sync(pending.commit)
                return None
        except NotFoundError:
            return f"{what} is not on the server"
        except ResultFileError as exc:  # larger than Settings.max_result_bytes
            problem = str(exc)
        except OSError as exc:  # the run's disk: no waiting mends it
            raise storage_error(exc, folder=dest.parent) from exc
        finally:
            pending.discard()  # after a commit there is nothing left to remove
    return problem
