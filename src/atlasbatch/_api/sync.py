"""``fetch_photometry``: the whole run in one synchronous call, for scripts."""

from __future__ import annotations

import asyncio
import dataclasses
import os

import anyio

from atlasbatch._api.fetch_options import TargetSource
from atlasbatch._api.report import RunReport
from atlasbatch._api.session import Session
from atlasbatch._config import Settings
from atlasbatch._exceptions import InputError
from atlasbatch._runs.controls import DEFAULT_CONTROL_RADIUS_ARCSEC
from atlasbatch._storage import Saver

__all__ = ["fetch_photometry"]


def fetch_photometry(
    targets: TargetSource,
    *,
    token: str,
    base_url: str | None = None,
    settings: Settings | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    keep_data: bool = True,
    keep_going: bool = False,
    mjd_min: float | None = None,
    mjd_max: float | None = None,
    use_reduced: bool = False,
    save_result: Saver | None = None,
    controls: int = 0,
    control_radius: float = DEFAULT_CONTROL_RADIUS_ARCSEC,
) -> RunReport:
    """Synchronous one-call helper for scripts: fetch ``targets`` and return the report.

    ``base_url`` and ``settings`` choose the server and its limits (``base_url`` alone: the
    real server's limits at another URL, e.g. an emulator's); the other options are
    :meth:`Session.fetch`'s. Bad options raise :class:`InputError` before anything starts.
    """
    settings = _settings(settings, base_url)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass  # no loop running: the normal case for a script
    else:
        raise InputError(
            "fetch_photometry() cannot run inside an event loop (a notebook has one): "
            "use `async with Session(token=...) as s: report = await s.run(targets)`"
        )

    session = Session(token=token, settings=settings)  # checks the token and the URL

    async def main() -> RunReport:
        async with session:
            return await session.run(
                targets, out_dir=out_dir, keep_data=keep_data, keep_going=keep_going,
                mjd_min=mjd_min, mjd_max=mjd_max, use_reduced=use_reduced,
                save_result=save_result, controls=controls, control_radius=control_radius,
            )  # fmt: skip

    return anyio.run(main)


def _settings(settings: object, base_url: object) -> Settings:
    """The settings of :func:`fetch_photometry`: ``settings`` at ``base_url``."""
    if settings is not None and not isinstance(settings, Settings):
        raise InputError(f"settings must be an atlasbatch.Settings, not {settings!r}")
    chosen = settings or Settings()
    if base_url is None:
        return chosen
    if not isinstance(base_url, str):
        raise InputError(f"base_url must be a URL string, not {base_url!r}")
    if settings is not None and settings.base_url not in (base_url, Settings().base_url):
        raise InputError(
            f"base_url={base_url!r} and settings.base_url={settings.base_url!r} differ: "
            "give one of them"
        )
    return dataclasses.replace(chosen, base_url=base_url)
