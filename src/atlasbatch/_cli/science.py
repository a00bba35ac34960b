"""``fetch``'s science options: control light curves and the nightly table's cuts.

``--controls [N]`` (N 8 when given alone) and ``--control-radius`` add control positions
(:mod:`._runs.controls`); ``--max-dujy``, ``--max-chi``, ``--clip-sigma`` and ``--no-nightly``
shape ``photometry_nightly.parquet`` (:class:`~atlasbatch.NightlyOptions`, whose docstring
names the source of each default).
"""

from __future__ import annotations

import argparse

from atlasbatch._runs.controls import (
    DEFAULT_CONTROL_RADIUS_ARCSEC,
    DEFAULT_CONTROLS,
    ControlSetting,
)
from atlasbatch._science.nightly_options import NightlyOptions

__all__ = ["add_science_arguments", "control_setting", "nightly_options"]


def add_science_arguments(parser: argparse.ArgumentParser) -> None:
    """--controls, --control-radius and the nightly light curve's options."""
    science = parser.add_argument_group(
        "control and nightly light curves (ATClean's method; defaults from ATClean and the "
        "ATLAS output description)"
    )
    science.add_argument(
        "--controls", type=int, nargs="?", const=DEFAULT_CONTROLS, default=0, metavar="N",
        help=f"also fetch N control positions around each RA/Dec target (default N: "
        f"{DEFAULT_CONTROLS}); nights where they deviate are rejected as controls_bad; "
        "each costs one more task: see --dry-run",
    )  # fmt: skip
    science.add_argument(
        "--control-radius", type=float, default=DEFAULT_CONTROL_RADIUS_ARCSEC,
        metavar="ARCSEC", help="radius of the circle of control positions (17)",
    )  # fmt: skip
    science.add_argument(
        "--no-nightly", action="store_true", help="skip photometry_nightly.parquet"
    )
    defaults = NightlyOptions()
    for flag, dest, text in (
        ("--max-dujy", "max_duJy", "reject exposures with duJy above UJY"),
        ("--max-chi", "max_chi", "reject exposures with chi/N above X"),
        ("--clip-sigma", "clip_sigma", "clip exposures S sigma from the night's mean"),
    ):
        value = getattr(defaults, dest)
        science.add_argument(flag, dest=dest, type=float, default=value,
                             metavar=text.split()[-1], help=f"{text} ({value:g})")  # fmt: skip


def control_setting(args: argparse.Namespace) -> ControlSetting:
    """The control positions ``args`` ask for (raises InputError for impossible ones)."""
    return ControlSetting(count=args.controls, radius_arcsec=args.control_radius)


def nightly_options(args: argparse.Namespace) -> NightlyOptions | None:
    """The nightly table's options (None: ``--no-nightly``); raises InputError for bad ones."""
    if args.no_nightly:
        return None
    return NightlyOptions(max_duJy=args.max_duJy, max_chi=args.max_chi, clip_sigma=args.clip_sigma)
