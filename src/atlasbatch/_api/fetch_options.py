"""The options of a fetch through the API, checked before anything starts.

A wrong type or value is an :class:`InputError` when :meth:`Session.fetch`,
:meth:`Session.run` or :func:`fetch_photometry` is called, never a TypeError from inside a
task group once the run has started.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import pandas as pd

from atlasbatch._engine.fetcher import save_result_file
from atlasbatch._exceptions import InputError
from atlasbatch._ledger.ledger import Ledger
from atlasbatch._outputs.filenames import FileNames
from atlasbatch._runs.controls import DEFAULT_CONTROL_RADIUS_ARCSEC, ControlSetting, with_controls
from atlasbatch._storage import Saver, guard_saver
from atlasbatch._targets.read import TargetList, read_targets

__all__ = ["FetchOptions", "TargetSource", "folder_of", "target_list"]

TargetSource = str | os.PathLike[str] | pd.DataFrame | Iterable[Mapping[str, object]] | TargetList


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchOptions:
    """The options of one :meth:`Session.fetch` or :meth:`Session.run`, checked when made."""

    out_dir: Path | None = None
    keep_data: bool = True
    keep_going: bool = False
    mjd_min: float | None = None
    mjd_max: float | None = None
    use_reduced: bool = False
    save_result: Saver | None = None
    controls: int = 0
    control_radius: float = DEFAULT_CONTROL_RADIUS_ARCSEC

    def __post_init__(self) -> None:
        # Checked here, when fetch() or run() is called: a wrong type must not surface as
        # a TypeError from deep inside a task group, after the run has started.
        for name in ("keep_data", "keep_going", "use_reduced"):
            if not isinstance(getattr(self, name), bool):
                raise InputError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if self.save_result is not None and not callable(self.save_result):
            raise InputError(f"save_result must be a callable or None, not {self.save_result!r}")
        self.control_setting()

    def control_setting(self) -> ControlSetting:
        """The control positions asked for (raises InputError for impossible ones)."""
        return ControlSetting(count=self.controls, radius_arcsec=self.control_radius)

    def saver(self, ledger: Ledger) -> Saver | None:
        """The result saver of ``ledger``'s run, its OSErrors (disk full, read-only) raised
        as StorageError."""
        folder = self.out_dir
        if self.save_result is not None:
            return guard_saver(self.save_result, folder=folder)
        if folder is None:
            return None
        names = FileNames.of_ledger(ledger)  # one file per target, even on macOS
        return guard_saver(partial(save_result_file, folder, names=names), folder=folder)


def folder_of(out_dir: object) -> Path | None:
    """``out_dir`` as a Path; InputError for anything that is not a path."""
    if out_dir is None:
        return None
    if not isinstance(out_dir, str | os.PathLike) or not str(out_dir):
        raise InputError(f"out_dir must be a folder path (str or Path) or None, not {out_dir!r}")
    return Path(out_dir)


def target_list(source: TargetSource, options: FetchOptions) -> TargetList:
    """The validated targets with their controls (raises before anything is sent)."""
    if isinstance(source, TargetList):
        targets = source
    else:
        targets = read_targets(
            source, mjd_min=options.mjd_min, mjd_max=options.mjd_max,
            use_reduced=options.use_reduced, keep_going=options.keep_going,
        )  # fmt: skip
    return with_controls(targets, options.control_setting())
