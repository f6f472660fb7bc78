"""Input checks shared by the GPU and NVLink models."""

from __future__ import annotations

import numpy as np

from sieve.hw import GPU, Hardware, Link


class SystemModelError(ValueError):
    """A GPU or NVLink model was given an invalid size, count or type."""


def count(name: str, value) -> int:
    """``value`` as a non-negative Python int, or an error naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise SystemModelError(f"{name} must be a non-negative integer, got {value!r}")
    if value < 0:
        raise SystemModelError(f"{name}={value} is negative; allowed: >= 0")
    return int(value)


def positive(name: str, value) -> float:
    """``value`` as a positive finite float, or an error naming it."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise SystemModelError(f"{name} must be a positive number, got {value!r}")
    if not 0 < value < float("inf"):
        raise SystemModelError(f"{name}={value!r} is invalid; allowed: a positive finite number")
    return float(value)


def counts(name: str, values, ndim: int) -> np.ndarray:
    """``values`` as an int64 array of ``ndim`` dimensions with no negative entry."""
    arr = np.asarray(values)
    if arr.ndim != ndim:
        raise SystemModelError(f"{name} must be a {ndim}-d array of token counts, got shape {arr.shape}")
    if arr.size and arr.dtype.kind not in "iu":
        raise SystemModelError(f"{name} must hold integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise SystemModelError(f"{name} holds a negative count ({arr.min()}); allowed: >= 0")
    return arr.astype(np.int64)


def as_gpu(hw) -> GPU:
    if isinstance(hw, Hardware):
        return hw.gpu
    if isinstance(hw, GPU):
        return hw
    raise SystemModelError(f"expected a sieve.hw.Hardware or sieve.hw.GPU, got {type(hw).__name__}")


def as_link(hw) -> Link:
    if isinstance(hw, Hardware):
        return hw.link
    if isinstance(hw, Link):
        return hw
    raise SystemModelError(f"expected a sieve.hw.Hardware or sieve.hw.Link, got {type(hw).__name__}")
