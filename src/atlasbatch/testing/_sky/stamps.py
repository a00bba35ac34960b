"""The bytes of an image request's zip and of a task's preview JPEG: small and deterministic.

The real ``images.zip`` holds FITS cut-outs of the target on the survey's images and the
preview is a JPEG thumbnail (§11, §12); a client only stores them, so the emulator makes a
few 32×32 FITS stamps (astropy writes them) of a star at the target's position, with
seeded noise, and a 64×64 greyscale JPEG (Pillow, which matplotlib already requires). The
same task always gives the same bytes, so tests can compare files.
"""

from __future__ import annotations

import functools
import io
import zipfile
from typing import Final

import numpy as np

__all__ = ["STAMPS", "image_zip", "preview_jpeg"]

STAMPS: Final = 3  # stamps per zip
_SIZE: Final = 32
_ZIP_TIME: Final = (2020, 1, 1, 0, 0, 0)  # fixed entry times: the same zip every time


def _stamp(seed: int, index: int) -> np.ndarray[tuple[int, int], np.dtype[np.float32]]:
    """A star (Gaussian, 2 px sigma) in the middle of noise, seeded by task and stamp."""
    rng = np.random.default_rng([seed, index])
    y, x = np.mgrid[0:_SIZE, 0:_SIZE] - (_SIZE - 1) / 2
    star = 1000.0 * np.exp(-(x**2 + y**2) / (2 * 2.0**2))
    pixels: np.ndarray[tuple[int, int], np.dtype[np.float32]] = (
        star + rng.normal(0.0, 10.0, (_SIZE, _SIZE))
    ).astype(np.float32)
    return pixels


def _fits(seed: int, index: int, *, ra: float | None, dec: float | None, mjd: float) -> bytes:
    from astropy.io import fits  # noqa: PLC0415 - a third of a second: only when asked

    hdu = fits.PrimaryHDU(_stamp(seed, index))
    header = hdu.header
    header["CRVAL1"], header["CRVAL2"] = ra or 0.0, dec or 0.0
    header["CRPIX1"] = header["CRPIX2"] = (_SIZE + 1) / 2
    header["CDELT1"], header["CDELT2"] = -1.86 / 3600, 1.86 / 3600  # ATLAS: 1.86"/px
    header["CTYPE1"], header["CTYPE2"] = "RA---TAN", "DEC--TAN"
    header["MJD-OBS"] = mjd
    header["FILTER"] = "co"[index % 2]
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


@functools.lru_cache(maxsize=32)
def image_zip(parent_id: int, *, ra: float | None, dec: float | None, mjd: float) -> bytes:
    """The zip of FITS stamps an image request of task ``parent_id`` leaves."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for index in range(STAMPS):
            epoch = mjd + 2.0 * index
            name = f"01a{int(epoch)}o{index + 1:04d}{'co'[index % 2]}.fits"
            entry = zipfile.ZipInfo(name, date_time=_ZIP_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, _fits(parent_id, index, ra=ra, dec=dec, mjd=epoch))
    return buffer.getvalue()


@functools.lru_cache(maxsize=32)
def preview_jpeg(task_id: int) -> bytes:
    """A task's preview thumbnail: the first stamp, scaled to 64×64 grey levels."""
    from PIL import Image  # noqa: PLC0415 - only when a preview is asked for

    pixels = _stamp(task_id, 0)
    grey = np.clip(pixels / pixels.max() * 255.0, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(grey).resize((64, 64)).save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()
