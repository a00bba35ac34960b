"""Control light curves: N positions on a circle around each target, fetched in the same run.

ATClean (Rest et al., github.com/srest2021/atclean) detects systematics the way this module
prepares for: forced photometry on ``N`` empty positions ``R`` arcseconds around the target
(its defaults: ``num_controls: 8``, ``radius: 17``), measured on the same exposures. A
night where the controls' flux deviates from zero is not to be trusted at the target
either; :mod:`._science.control_cut` applies that test.

Control ``k`` (1..N) sits at angle ``k * 360°/N`` from east towards north, as in ATClean's
``download.py``; ATClean offsets on the flat sky, this module along the great circle (the
same to far below a milliarcsecond at 17″, and right near the poles). Each control is a
:class:`~atlasbatch.Target` with ``control_of`` (its target's line), ``control_index`` and
the name ``<target>_i<kkk>`` (ATClean's file names); its line is derived from both
(:mod:`._ledger.control_lines`), so a resume with the same command finds every control again and
none is asked twice. A duplicate row's controls ask what its representative's controls ask.
Rows given by ``mpc_name`` (moving objects) get no controls.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from atlasbatch._exceptions import InputError, RunMismatchError
from atlasbatch._ledger.control_lines import MAX_CONTROLS, control_line, control_link
from atlasbatch._models import Target

if TYPE_CHECKING:  # the target parser needs pandas; this module does not
    from atlasbatch._ledger.ledger import Ledger
    from atlasbatch._targets.read import TargetList

__all__ = [
    "DEFAULT_CONTROLS",
    "DEFAULT_CONTROL_RADIUS_ARCSEC",
    "ControlSetting",
    "control_positions",
    "input_rows",
    "record_control_setting",
    "with_controls",
]

log = logging.getLogger(__name__)

#: ATClean's ``[Control light curve settings]``: ``num_controls: 8``, ``radius: 17``.
DEFAULT_CONTROLS: Final = 8
DEFAULT_CONTROL_RADIUS_ARCSEC: Final = 17.0
#: Beyond 10′ a position no longer shares the target's part of the detector.
MAX_CONTROL_RADIUS_ARCSEC: Final = 600.0
_META_KEY = "controls"
_SHOWN_CLASHES = 10


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSetting:
    """How many control positions each target gets, and how far out (arcseconds)."""

    count: int = 0
    radius_arcsec: float = DEFAULT_CONTROL_RADIUS_ARCSEC

    def __post_init__(self) -> None:
        if isinstance(self.count, bool) or not isinstance(self.count, int):
            raise InputError(f"controls must be a whole number, not {self.count!r}")
        if not 0 <= self.count <= MAX_CONTROLS:
            raise InputError(f"controls must be between 0 and {MAX_CONTROLS}, not {self.count}")
        radius = self.radius_arcsec
        if not (math.isfinite(radius) and 0 < radius <= MAX_CONTROL_RADIUS_ARCSEC):
            raise InputError(
                f"control radius must be above 0 and at most {MAX_CONTROL_RADIUS_ARCSEC:g} "
                f"arcsec, not {radius:g}"
            )

    def describe(self) -> str:
        """The options that give this setting, as a user types them."""
        return f"--controls {self.count} --control-radius {self.radius_arcsec:g}"


def control_positions(
    ra: float, dec: float, *, count: int, radius_arcsec: float
) -> list[tuple[float, float]]:
    """``count`` positions ``radius_arcsec`` from (ra, dec), in degrees, control 1 first.

    Control ``k`` is at angle ``k * 360°/count`` from east towards north (ATClean's order),
    i.e. at position angle ``90° - k * 360°/count`` (north through east), offset along the
    great circle.
    """
    rho = math.radians(radius_arcsec / 3600.0)
    dec0, ra0 = math.radians(dec), math.radians(ra)
    positions = []
    for k in range(1, count + 1):
        theta = math.radians(90.0 - k * 360.0 / count)
        sin_dec = math.sin(dec0) * math.cos(rho) + math.cos(dec0) * math.sin(rho) * math.cos(theta)
        new_dec = math.asin(max(-1.0, min(1.0, sin_dec)))
        d_ra = math.atan2(
            math.sin(theta) * math.sin(rho) * math.cos(dec0),
            math.cos(rho) - math.sin(dec0) * sin_dec,
        )
        positions.append((math.degrees(ra0 + d_ra) % 360.0, math.degrees(new_dec)))
    return positions


def control_name(name: str, index: int) -> str:
    """``SN 2023ixf`` → ``SN 2023ixf_i003``: ATClean's name for control 3."""
    return f"{name}_i{index:03d}"


def with_controls(targets: TargetList, setting: ControlSetting) -> TargetList:
    """``targets`` plus ``setting.count`` control positions for every row given by RA/Dec.

    A duplicate row's controls are duplicates of its representative's controls (asked once,
    reported for each). Raises :class:`InputError` when a control's name is already a
    target's name: the outputs are keyed by name.
    """
    targets = input_rows(targets)  # a list that has controls already gets them anew
    if setting.count == 0:
        return targets
    by_line = {target.line: target for target in targets.targets}
    duplicate_of = dict(targets.duplicate_of)
    controls: list[Target] = []
    for target in targets.targets:
        rep = by_line[targets.duplicate_of.get(target.line, target.line)]
        for control in _controls_of(target, rep, setting):
            controls.append(control)
            if rep.line != target.line:
                duplicate_of[control.line] = control_line(rep.line, control.control_index or 0)
    skipped = sum(1 for target in targets.targets if target.mpc_name is not None)
    if skipped:
        log.info("%d row(s) given by mpc_name get no control positions", skipped)
    _check_names(targets, controls, duplicate_of)
    return dataclasses.replace(
        targets,
        targets=(*targets.targets, *controls),
        unique=(*targets.unique, *(c for c in controls if c.line not in duplicate_of)),
        duplicate_of=duplicate_of,
    )


def input_rows(targets: TargetList) -> TargetList:
    """``targets`` without their control positions: the rows the target file holds."""
    from atlasbatch._targets.lazy import TargetRows  # noqa: PLC0415 - loaded with any TargetList

    if isinstance(targets.targets, TargetRows) or all(
        target.control_of is None for target in targets.targets
    ):  # a list as read holds no controls: no need to make every target to see it
        return targets
    return dataclasses.replace(
        targets,
        targets=tuple(t for t in targets.targets if t.control_of is None),
        unique=tuple(t for t in targets.unique if t.control_of is None),
        duplicate_of={k: v for k, v in targets.duplicate_of.items() if control_link(k) is None},
    )


def _controls_of(target: Target, rep: Target, setting: ControlSetting) -> Iterator[Target]:
    """The controls of ``target``, placed around its representative ``rep``."""
    if rep.ra is None or rep.dec is None:
        return
    positions = control_positions(
        rep.ra, rep.dec, count=setting.count, radius_arcsec=setting.radius_arcsec
    )
    for index, (ra, dec) in enumerate(positions, start=1):
        yield Target(
            line=control_line(target.line, index), name=control_name(target.name, index),
            ra=ra, dec=dec, mjd_min=target.mjd_min, mjd_max=target.mjd_max,
            use_reduced=target.use_reduced, control_of=target.line, control_index=index,
            # the controls move with their star: the same offsets at every epoch
            pmra=rep.pmra, pmdec=rep.pmdec, epoch=rep.epoch,
        )  # fmt: skip


def _check_names(targets: TargetList, controls: Sequence[Target], same: dict[int, int]) -> None:
    """A control's name must not be another query's name (one file per name)."""
    owner: dict[str, int] = {}
    for target in targets.targets:
        owner.setdefault(target.name, targets.duplicate_of.get(target.line, target.line))
    for line, name, _ in targets.invalid:
        owner.setdefault(name, line)
    clashes = []
    for control in controls:
        query = same.get(control.line, control.line)
        if owner.setdefault(control.name, query) != query:
            clashes.append(f"control {control.name!r} of line {control.control_of}")
    if clashes:
        more = len(clashes) - _SHOWN_CLASHES
        shown = "; ".join(clashes[:_SHOWN_CLASHES]) + (f" (and {more} more)" if more > 0 else "")
        raise InputError(f"control names clash with target names: {shown}; rename those targets")


def record_control_setting(ledger: Ledger, setting: ControlSetting) -> None:
    """Remember the run's control setting; refuse a resume that would change it.

    Controls may be added to a run started without them (new rows, asked once); a run
    started with controls must be resumed with the same ones, or its stored controls would
    no longer match (and the error would name ledger lines instead of the options).
    """
    raw = ledger.meta(_META_KEY)
    stored = ControlSetting(**json.loads(raw)) if raw is not None else None
    if stored is not None and stored.count > 0 and stored != setting:
        raise RunMismatchError(
            f"this run directory was started with {stored.describe()}; run it again with "
            "the same options (or use a new --out)"
        )
    if stored != setting:
        ledger.set_meta(_META_KEY, json.dumps(dataclasses.asdict(setting), sort_keys=True))
