"""Which task each epoch of a refreshed light curve came from, for the photometry table.

A refresh merges new epochs into the stored light curve, so one file holds rows of several
tasks. The refresh plan records, per file, the MJD up to which the rows came from each
earlier task (:class:`Origin`); rows after the last of them came from the current outcome's
task. Without a refresh every file has one origin: its outcome's task.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from atlasbatch._ledger.ledger import Ledger

__all__ = ["ORIGINS_KEY", "EpochOrigins", "Origin"]

#: The ledger meta key holding the origins of a refresh generation's light curves.
ORIGINS_KEY = "epoch_origins"


@dataclass(frozen=True, slots=True)
class Origin:
    """The stored epochs up to MJD ``upto`` came from ``task_id``, stored at ``stored_at``."""

    upto: float
    task_id: int | None
    stored_at: float | None  # unix time; None: unknown

    def to_list(self) -> list[float | int | None]:
        """The JSON form."""
        return [self.upto, self.task_id, self.stored_at]

    @classmethod
    def from_list(cls, raw: Sequence[float | int | None]) -> Origin:
        """Read the JSON form back."""
        upto, task_id, stored_at = raw
        return cls(
            upto=float(upto or 0.0),
            task_id=None if task_id is None else int(task_id),
            stored_at=None if stored_at is None else float(stored_at),
        )


class EpochOrigins:
    """The earlier origins of each stored light curve (by its path in the run directory)."""

    def __init__(self, by_path: Mapping[str, Sequence[Origin]] | None = None) -> None:
        self.by_path = {path: tuple(origins) for path, origins in (by_path or {}).items()}

    def to_json(self) -> str:
        """The origins as stored in the ledger."""
        raw = {path: [o.to_list() for o in origins] for path, origins in self.by_path.items()}
        return json.dumps(raw, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> EpochOrigins:
        """Read stored origins back."""
        raw = json.loads(text)
        return cls({str(path): [Origin.from_list(o) for o in items] for path, items in raw.items()})

    @classmethod
    def of_ledger(cls, ledger: Ledger) -> EpochOrigins:
        """The origins a run's ledger records (none for a run that is no refresh)."""
        stored = ledger.meta(ORIGINS_KEY)
        return cls() if stored is None else cls.from_json(stored)

    def get(self, path: str) -> tuple[Origin, ...]:
        """The earlier origins of one light curve, oldest first."""
        return self.by_path.get(path, ())

    def split(
        self, path: str, frame: pd.DataFrame, *, task_id: int | None, fetched_at: datetime
    ) -> Iterator[tuple[pd.DataFrame, int | None, datetime]]:
        """The rows of ``frame`` (the light curve at ``path``, sorted by MJD) in runs of one
        origin each: (rows, task id, time stored); the last run is the current outcome's."""
        origins = self.get(path)
        if not origins:
            yield frame, task_id, fetched_at
            return
        mjd = frame["MJD"]
        lower = None
        for origin in origins:
            mask = mjd <= origin.upto if lower is None else (mjd > lower) & (mjd <= origin.upto)
            lower = origin.upto
            if mask.any():
                yield frame[mask], origin.task_id, _when(origin.stored_at, fetched_at)
        rest = ~(mjd <= lower)  # NaN MJDs too: no row is ever left out
        if rest.any():
            yield frame[rest], task_id, fetched_at


def _when(stored_at: float | None, default: datetime) -> datetime:
    return default if stored_at is None else datetime.fromtimestamp(stored_at, tz=UTC)
