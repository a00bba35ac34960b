"""Which observing night an exposure belongs to: the site's local night, never split at 0 h UTC.

The site is the first three characters of the exposure name (``Obs``: ``01a59226o0051c`` was
taken by ``01a``). The MJD rolls over at 0 h UTC, which is 14 h local time in Hawaii (a day
boundary in daylight, harmless) but the middle of the night in Chile, South Africa and on
Tenerife. So the night is counted from the site's local noon:

    night = floor(MJD + longitude/360° + 1/2)

with the site's east longitude: the integer MJD at the local (mean solar) midnight inside
the night. Every exposure of one night gets one number, and at the Hawaii sites that
number is simply the exposure's integer MJD. An unknown site is taken to be at longitude
0° (noon UTC boundary) and said once in the log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

__all__ = ["SITE_LONGITUDES", "night_numbers", "sites"]

log = logging.getLogger(__name__)

#: East longitudes (degrees) of the ATLAS units, by the site prefix of ``Obs`` (the unit
#: numbers as the NASA PDS Small Bodies Node files ATLAS exposures: 01 Mauna Loa, 02
#: Haleakalā, 03 Sutherland, 04 El Sauce; longitudes from their MPC codes). A degree is
#: four minutes of local time: the noon boundary needs no more precision than this.
SITE_LONGITUDES: Final[Mapping[str, float]] = {
    "01a": -155.58,  # Mauna Loa, Hawaii (MPC T08)
    "02a": -156.26,  # Haleakalā, Maui, Hawaii (T05)
    "03a": 20.81,  # Sutherland, South Africa (M22)
    "04a": -70.76,  # El Sauce, Río Hurtado, Chile (W68)
    "05r": -16.51,  # Teide, Tenerife
}
_SITE_CHARS = 3
_warned: set[str] = set()


def sites(obs: pd.Series) -> npt.NDArray[np.object_]:
    """The site of each exposure name (``""`` when the name is missing)."""
    names = obs.to_numpy(dtype=object, na_value="")
    return np.array([str(name)[:_SITE_CHARS] for name in names], dtype=object)


def night_numbers(
    mjd: npt.NDArray[np.float64], site: npt.NDArray[np.object_]
) -> npt.NDArray[np.int64]:
    """The night (an integer MJD) of each exposure; ``mjd`` must be finite."""
    longitude = np.zeros(mjd.shape)
    for code in pd.unique(site):
        known = SITE_LONGITUDES.get(str(code))
        if known is None:
            _warn_unknown(str(code))
            continue
        longitude[site == code] = known
    return np.floor(mjd + longitude / 360.0 + 0.5).astype(np.int64)


def _warn_unknown(code: str) -> None:
    if code not in _warned:
        _warned.add(code)
        log.warning("unknown ATLAS site %r: its nights are counted from noon UTC", code)
