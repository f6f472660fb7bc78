"""Synthetic request traces: streaming, single-bank row conflicts, uniform random."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from .device import Device
from .requests import Trace
from .spec import StandardError

__all__ = ["GENERATORS", "generate", "write_trace"]

GENERATORS = ("seq", "conflict", "random")

# More requests than this could not be held (their addresses alone would take 8 TiB); NumPy's arange
# even returns an empty array for some lengths near 2^63.
MAX_REQUESTS = 2**40


def generate(kind: str, n: int, device: Device, seed: int = 0, write_fraction: float = 0.0) -> Trace:
    """``seq``: loads of 0, 32, 64, ...; ``conflict``: (i mod rows) placed in the row field of bank 0
    of channel 0 (a new row every request, RoBaRaCoCh); ``random``: uniform transaction-aligned
    addresses over the device, a `write_fraction` of them stores."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 0 < n < MAX_REQUESTS:
        raise StandardError(f"the number of requests must be a positive integer below "
                            f"2^{MAX_REQUESTS.bit_length() - 1}, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise StandardError(f"seed must be a non-negative integer, got {seed!r}")
    if (isinstance(write_fraction, bool) or not isinstance(write_fraction, (int, float, np.integer, np.floating))
            or not 0.0 <= write_fraction <= 1.0):
        raise StandardError(f"write_fraction must lie in 0..1, got {write_fraction!r}")
    try:
        return _generate(kind, int(n), device, seed, write_fraction)
    except MemoryError:
        raise StandardError(f"{n} requests do not fit in memory (their addresses alone take "
                            f"{n * 8 / 2**30:.1f} GiB)") from None


def _generate(kind: str, n: int, device: Device, seed: int, write_fraction: float) -> Trace:
    std = device.standard
    tx = std.column_bytes
    if kind == "seq":
        if n * tx > std.capacity_bytes:
            raise StandardError(f"{n} sequential requests of {tx} B exceed the device ({std.capacity_bytes} B)")
        addr = np.arange(n, dtype=np.uint64) * np.uint64(tx)
        writes = None
    elif kind == "conflict":
        row_shift = int(np.log2(std.capacity_bytes // std.rows))
        addr = (np.arange(n, dtype=np.uint64) % np.uint64(std.rows)) << np.uint64(row_shift)
        writes = None
    elif kind == "random":
        rng = np.random.default_rng(seed)
        addr = rng.integers(0, std.capacity_bytes // tx, size=n, dtype=np.uint64) * np.uint64(tx)
        writes = (rng.random(n) < write_fraction).astype(np.uint8)
    else:
        raise StandardError(f"unknown trace kind {kind!r}; available: {', '.join(GENERATORS)}")
    return Trace.from_arrays(addr, writes, source=f"<{kind}>")


def write_trace(path: str | Path, kind: str, n: int, device: Device, seed: int = 0) -> Path:
    """Write a generated trace; the file appears whole or not at all."""
    trace = generate(kind, n, device, seed)
    path = Path(path)
    ops = np.where(trace.is_write.astype(bool), "ST", "LD")
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".trace-")
    try:
        with os.fdopen(fd, "w") as f:
            f.writelines(f"{op} {a:#x}\n" for op, a in zip(ops.tolist(), trace.addr.tolist()))
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return path
