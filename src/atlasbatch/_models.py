"""Frozen records shared by every stage: targets in, outcomes out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["FINAL_STATES", "Motion", "Outcome", "State", "Target", "motion_of"]

Motion = tuple[float | None, float, float]
"""A moving star's ``(epoch, pmra, pmdec)``: what its POST must share besides the window."""


class State(StrEnum):
    """Where a target is in its life; the last five are final outcomes."""

    PENDING = "pending"  # validated, not yet sent
    SUBMITTING = "submitting"  # in a batch whose POST may be in flight
    QUEUED = "queued"  # the server has a task for it, not started
    RUNNING = "running"  # the task has started
    FINISHED = "finished"  # the task finished with a result file, not yet downloaded
    DOWNLOADED = "downloaded"  # result on disk (the remote task may still await deletion)
    NO_DATA = "no_data"  # finished with "No data returned"
    FAILED = "failed"  # finished with another error, or could not be fetched
    INVALID = "invalid"  # rejected by validation, never sent
    CANCELLED = "cancelled"  # cancelled by the user before it finished


FINAL_STATES = frozenset(
    {State.DOWNLOADED, State.NO_DATA, State.FAILED, State.INVALID, State.CANCELLED}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    """One validated row of the target list.

    ``line`` is the row's line number in the input (the header is line 1), so errors and
    outcomes can point back at it. Either ``ra``/``dec`` (decimal degrees, ICRS) or
    ``mpc_name`` is set. ``mjd_min`` None means the whole survey history. ``pmra``/``pmdec``
    (mas/yr; RA as the angular rate μα* = μα cos δ, like Gaia's ``pmra``) and ``epoch`` (the
    decimal year of ``ra``/``dec``, rounded to the server's one decimal place) move the
    forced position with the star; see :attr:`motion`.

    A control position (``--controls``, :mod:`._runs.controls`) has ``control_of``, the line of
    the target it surrounds, and ``control_index`` (1..N); its own ``line`` is derived from
    both (:mod:`._ledger.control_lines`), past the input's lines. Both are None for input rows.
    """

    line: int
    name: str
    ra: float | None = None
    dec: float | None = None
    mpc_name: str | None = None
    mjd_min: float | None = None
    mjd_max: float | None = None
    use_reduced: bool = False
    pmra: float | None = None
    pmdec: float | None = None
    epoch: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, hash=False)
    control_of: int | None = None
    control_index: int | None = None

    @property
    def motion(self) -> Motion | None:
        """``(epoch, pmra, pmdec)`` of a moving star; None for one that stays put."""
        return motion_of(
            pmra=self.pmra, pmdec=self.pmdec, epoch=self.epoch, mpc=self.mpc_name is not None
        )

    @property
    def window(
        self,
    ) -> tuple[float | None, float | None, bool] | tuple[float | None, float | None, bool, Motion]:
        """What one POST must share: the MJD window, the photometry mode and, for a moving
        star, its :attr:`motion` (every field of a radeclist POST applies to all its lines)."""
        window = (self.mjd_min, self.mjd_max, self.use_reduced)
        motion = self.motion
        return window if motion is None else (*window, motion)

    def motion_fields(self) -> dict[str, str | float]:
        """The request fields that move the forced position (none for a star that stays put).

        ``radec_epoch_year`` goes as a string with one decimal place (the server refuses
        more); without an epoch the server applies ``force.sh``'s own default.
        """
        motion = self.motion
        if motion is None:
            return {}
        epoch, pmra, pmdec = motion
        fields: dict[str, str | float] = {"propermotion_ra": pmra, "propermotion_dec": pmdec}
        if epoch is not None:
            fields["radec_epoch_year"] = f"{epoch:.1f}"
        return fields

    def radec_line(self) -> str:
        """This target as one line of the server's ``radeclist`` field."""
        if self.mpc_name is not None:
            return f"mpc {self.mpc_name}"
        # Fixed notation: repr() would write 1e-05, which the server's parser may not read.
        return f"{self.ra:.7f} {self.dec:.7f}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """The end of one input row: exactly one per target, failures included.

    ``data`` holds the light curve when ``state`` is downloaded and the caller asked to
    keep data in memory; ``path`` is the per-target file when a run directory is used.
    """

    target: Target
    state: State
    task_id: int | None = None
    error: str | None = None
    path: str | None = None
    data: pd.DataFrame | None = field(default=None, compare=False, repr=False)

    @property
    def ok(self) -> bool:
        """True for downloaded and no_data: the server answered the question."""
        return self.state in (State.DOWNLOADED, State.NO_DATA)


def motion_of(
    *, pmra: float | None, pmdec: float | None, epoch: float | None, mpc: bool = False
) -> Motion | None:
    """``(epoch, pmra, pmdec)`` when the proper motion moves the forced position, else None.

    The server's runner passes ``pmra=``/``pmdec=`` only when non-zero, so a zero motion (and
    an epoch without motion) changes nothing and is not sent; MPC targets follow their orbit.
    """
    if mpc or not (pmra or pmdec):
        return None
    return (epoch, pmra or 0.0, pmdec or 0.0)
