"""Random command streams for differential tests."""

from __future__ import annotations

import dataclasses

import numpy as np

from sieve.dram import load_standard


def with_short_refresh(std, interval_ck: float):
    """A copy of `std` whose refresh comes every `interval_ck` CK, so short streams see refreshes."""
    timing = dict(std.timing)
    timing[std.refresh_interval] = float(interval_ck)
    return dataclasses.replace(std, timing=timing)


def random_stream(std, rng: np.random.Generator, n: int, *, spread: int = 2, rows: int = 3):
    """n commands over a few nodes per level (so commands interact), random rows and columns.

    Returns (names, addr [n, L], row, col) as used by Device.execute and the reference model.
    """
    names = np.array([c.name for c in std.commands if not c.refreshes])
    L = len(std.levels)
    picks = rng.integers(0, len(names), size=n)
    addr = np.stack([rng.integers(0, min(spread, std.fanout[l]), size=n) for l in range(L)], axis=1)
    row = rng.integers(0, min(rows, std.rows), size=n)
    col = rng.integers(0, std.columns, size=n)
    return names[picks], addr.astype(np.int64), row.astype(np.int64), col.astype(np.int64)


def presets():
    return [load_standard(name) for name in ("hbm3",)]
