"""The compiled engine against the reference model, and the protocol checker over every stream."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.dram import Device, check_log, load_standard

from .oracle import run_stream
from .streams import random_stream, with_short_refresh

STREAMS = 4000  # half of them on standards with PIM commands
PRESETS = ("hbm3", "hbm3_aim", "hbm3e_pim", "hbm3e_aim", "gddr6", "gddr6_aim")


def _devices():
    out = []
    for name in PRESETS:
        std = load_standard(name)
        out.append((name, Device(std), Device(with_short_refresh(std, 1000))))
    return out


@pytest.mark.parametrize("block", range(8))
def test_engine_matches_reference_model(block):
    """4,000 random streams over every preset (2,000 on standards with PIM commands): mixed banks, rows,
    every command, half of them with refresh."""
    devices = _devices()
    per_block = STREAMS // 8
    rng = np.random.default_rng(1000 + block)
    for k in range(per_block):
        name, plain, short_ref = devices[k % len(devices)]
        refresh = k % 2 == 1
        dev = short_ref if refresh else plain
        n = int(rng.integers(5, 25))
        names, addr, row, col = random_stream(dev.standard, rng, n)
        res = dev.execute(names, addr, row, col, refresh="allbank" if refresh else "off", auto_prereq=True)
        stream = [(str(c), tuple(int(x) for x in a), int(r), int(cc)) for c, a, r, cc in zip(names, addr, row, col)]
        ticks, history = run_stream(dev.standard, stream, auto_prereq=True, refresh=refresh)
        assert list(res.ticks) == ticks, f"{name} stream {block}/{k} (refresh {refresh}): {stream}"
        logged = [(int(t), dev.standard.command_names[c]) for t, c in zip(res.log.tick, res.log.cmd)]
        assert logged == [(h.tick, h.name) for h in history]
        violations = check_log(dev.standard, res.log)
        assert not violations, "\n".join(map(str, violations[:5]))


def _counts_from_log(std, log) -> np.ndarray:
    """[banks, commands]: each logged command counted once on every bank under its node (the log holds
    -1 below a command's scope, i.e. every index there)."""
    fanout = np.array(std.fanout)
    out = np.zeros((int(np.prod(fanout)), len(std.command_names)), dtype=np.int64)
    banks = np.stack(np.meshgrid(*[np.arange(f) for f in fanout], indexing="ij"), -1).reshape(-1, len(fanout))
    for c, a in zip(log.cmd, log.addr):
        under = np.all((a < 0) | (banks == a), axis=1)
        out[under, c] += 1
    return out


@pytest.mark.parametrize("name", PRESETS)
def test_bank_counts_spread_each_command_over_its_banks(name):
    """The engine keeps one count per node a command is addressed to; `bank_counts` must equal counting
    every logged command on each bank under its node."""
    std = load_standard(name)
    dev = Device(with_short_refresh(std, 1000))
    rng = np.random.default_rng(7)
    for _ in range(20):
        names, addr, row, col = random_stream(dev.standard, rng, int(rng.integers(20, 60)))
        res = dev.execute(names, addr, row, col, refresh="allbank", auto_prereq=True)
        assert (res.engine.bank_counts() == _counts_from_log(dev.standard, res.log)).all()
