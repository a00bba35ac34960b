"""What a finished run gives back: :class:`RunReport`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from atlasbatch._models import Outcome, State
from atlasbatch._science.nightly_options import NightlyOptions

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["RunReport"]


@dataclass(frozen=True, slots=True)
class RunReport:
    """Everything a finished run produced: one outcome per input row, and the light curves."""

    outcomes: list[Outcome]
    counts: dict[State, int] = field(default_factory=dict)
    requests: dict[str, int] = field(default_factory=dict)
    #: Remote tasks of the run still on the server (their DELETE kept failing); with an
    #: ``out_dir``, ``atlasbatch cleanup DIR`` removes them.
    tasks_left: int = 0
    #: The server the run asked (the table's ``server`` column).
    server: str = ""
    #: Task id -> when the ledger recorded its download (unix seconds): ``fetched_at``.
    fetched_at: Mapping[int, float] = field(default_factory=dict, repr=False)

    @property
    def photometry(self) -> pd.DataFrame:
        """The light curves held in memory (``keep_data``) in one table: the columns of the
        CLI's ``photometry.parquet`` (server columns, derived columns at 3 sigma, provenance,
        pass-through columns), built anew on each access."""
        from atlasbatch._outputs.table import outcomes_table  # noqa: PLC0415 - pyarrow

        return outcomes_table(self.outcomes, server=self.server, fetched_at=self.fetched_at)

    @property
    def ok(self) -> bool:
        """True when every row ended downloaded or no_data."""
        return all(o.ok for o in self.outcomes)

    def nightly(self, options: NightlyOptions | None = None) -> pd.DataFrame:
        """One row per target, filter and night: the cut, clipped, weighted mean flux
        (``photometry_nightly.parquet``'s table; :mod:`atlasbatch._science.nightly`), from the light
        curves held in memory (``keep_data``); targets are judged by their controls' light
        curves when the run had ``controls``."""
        from atlasbatch._outputs.nightly_files import outcomes_nightly  # noqa: PLC0415

        return outcomes_nightly(self.outcomes, options or NightlyOptions())
