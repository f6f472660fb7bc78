"""Statistics as tables.

``bank_table`` — one row per bank: its address (one column per level), ``<CMD>`` counts for every
command of the standard (an all-bank command counts on each bank it touches), ``open_ck`` (CK with a
row open), ``data_ck`` (CK of data bursts: data-moving commands x nBL) and ``utilization``
(``data_ck`` / elapsed CK), and where the standard has energy data (:mod:`sieve.dram.energy`)
``command_pj``, ``background_pj`` and ``energy_pj``.

``utilization_over_time`` — from a command log: one row per (bank, time bin) with the counts of each
command in that bin and the bin's data-burst utilization. Long form, ready for a heatmap pivot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from .energy import bank_energy_columns, has_energy, load_energy

__all__ = ["bank_columns", "bank_table", "utilization_over_time"]


def _bank_index(std) -> "pd.DataFrame":
    import pandas as pd

    idx = np.indices(std.fanout).reshape(len(std.fanout), -1).T
    return pd.DataFrame(idx, columns=list(std.levels))


def _burst_ck(std) -> float:
    return float(std.timing.get("nBL", 1.0))


def bank_columns(device, engine, until_tick: int, energy_data: str | None = None) -> dict[str, np.ndarray]:
    """The columns of :func:`bank_table` as NumPy arrays, one entry per bank (no pandas). Energy columns
    come from the standard's default energy data, or from ``energy_data`` (see
    :func:`sieve.dram.energy.load_energy`), which must then exist."""
    std = device.standard
    tpc = std.ticks_per_ck
    nb = int(np.prod(std.fanout))
    idx = np.indices(std.fanout).reshape(len(std.fanout), -1)
    cols: dict[str, np.ndarray] = {level: idx[l] for l, level in enumerate(std.levels)}
    counts = engine.bank_counts()
    for i, name in enumerate(std.command_names):
        cols[name] = counts[:, i]
    open_ticks = engine.bank_open_ticks_until(until_tick)
    cols["open_ck"] = open_ticks / tpc
    data_cmds = [i for i, c in enumerate(std.commands) if c.access != "none" or c.pim]
    cols["data_ck"] = counts[:, data_cmds].sum(axis=1) * _burst_ck(std) if data_cmds else np.zeros(nb)
    elapsed = until_tick / tpc
    cols["utilization"] = cols["data_ck"] / elapsed if elapsed > 0 else np.zeros(nb)
    if has_energy(std) or energy_data is not None:
        tick_ns = std.tick_ns
        cols.update(bank_energy_columns(load_energy(std, energy_data), counts, open_ticks * tick_ns, until_tick * tick_ns))
    return cols


def bank_table(device, engine, until_tick: int) -> "pd.DataFrame":
    import pandas as pd

    return pd.DataFrame(bank_columns(device, engine, until_tick))


def utilization_over_time(log, bin_ck: float) -> "pd.DataFrame":
    """Per-bank command counts and data-burst utilization in bins of `bin_ck` CK."""
    std = log.standard
    if not bin_ck > 0:
        raise ValueError(f"bin_ck must be positive, got {bin_ck!r}")
    tpc = std.ticks_per_ck
    L = len(std.levels)
    fan = np.asarray(std.fanout)
    nb = int(np.prod(fan))
    names = std.command_names
    span = [int(np.prod(fan[l + 1:])) for l in range(L)]
    scope = np.array([std.levels.index(c.scope) for c in std.commands])
    bins = (log.tick / tpc // bin_ck).astype(np.int64) if len(log) else np.zeros(0, dtype=np.int64)
    nbins = int(bins.max()) + 1 if len(bins) else 0
    counts = np.zeros((len(names), nb, max(nbins, 1)), dtype=np.int64)
    # flat first bank under each command's scope node, then every bank it covers
    prefix = np.zeros(len(log), dtype=np.int64)
    for l in range(L):
        a = np.where(log.addr[:, l] >= 0, log.addr[:, l], 0)
        prefix = prefix * fan[l] + a
    cmd_scope = scope[log.cmd] if len(log) else np.zeros(0, dtype=np.int64)
    for s in np.unique(cmd_scope):
        sel = cmd_scope == s
        first = (prefix[sel] // span[s]) * span[s]
        for k in range(span[s]):
            np.add.at(counts, (log.cmd[sel], first + k, bins[sel]), 1)
    bank_ids = np.repeat(np.arange(nb), max(nbins, 1))
    out = _bank_index(std).iloc[bank_ids].reset_index(drop=True)
    out.insert(0, "bin", np.tile(np.arange(max(nbins, 1)), nb))
    out.insert(1, "start_ck", out["bin"] * bin_ck)
    for i, name in enumerate(names):
        out[name] = counts[i].reshape(-1)
    data_cmds = [n for n, c in zip(names, std.commands) if c.access != "none" or c.pim]
    out["utilization"] = out[data_cmds].sum(axis=1) * _burst_ck(std) / bin_ck if data_cmds else 0.0
    return out
