"""Counter-based random draws: the same keys always give the same numbers.

The synthetic light curves draw every number from a hash of what it belongs to (a site, a
night, an exposure, a target), never from a stream, so nothing depends on which other rows
were drawn: a narrower window gives exactly a subset of the rows of a wider one, and two
targets in the same sky field see the very same images.
"""

from __future__ import annotations

import hashlib
import math

import numpy as np
import numpy.typing as npt

__all__ = ["Floats", "UInts", "normal", "stable_key", "uniform"]

UInts = npt.NDArray[np.uint64]
Floats = npt.NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


def stable_key(text: str) -> int:
    """A 64-bit key from text (sha256: the same in every process, unlike ``hash``)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def uniform(*keys: int | npt.NDArray[np.integer]) -> Floats:
    """splitmix64 over the keys, element-wise (broadcast), as uniforms in [0, 1)."""
    shape = np.broadcast_shapes(*(np.shape(k) for k in keys))
    # arrays throughout, never numpy scalars: array arithmetic wraps silently modulo 2**64,
    # scalar arithmetic warns about the (intended) overflow
    state = np.full(shape or (1,), _GOLDEN, dtype=np.uint64)
    for key in keys:
        addend = (
            key.astype(np.uint64)
            if isinstance(key, np.ndarray)
            else np.full(1, key & 0xFFFFFFFFFFFFFFFF, dtype=np.uint64)
        )
        state = state + addend + _GOLDEN
        state = (state ^ (state >> np.uint64(30))) * _MIX1
        state = (state ^ (state >> np.uint64(27))) * _MIX2
        state = state ^ (state >> np.uint64(31))
    state = state.reshape(shape)
    return (state >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)


def normal(u1: Floats, u2: Floats) -> Floats:
    """Standard normal deviates from two uniforms (Box-Muller)."""
    result: Floats = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * math.pi * u2)
    return result
