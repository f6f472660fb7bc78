"""Address mapping RoBaRaCoCh: on HBM3 the bit fields of the reference configuration
(shared/golden/ramulator_hbm3.md: [0:5) offset, [5:9) channel, [9:14) column, [14] PC, [15] SID, [16:18) bank
group, [18:20) bank, [20:33) row), and on a geometry that is not all powers of two (24 banks as 6 groups of 4)
a dense mixed-radix split: every address below the capacity has its own fields and they rebuild it."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.dram import Device
from sieve.dram.requests import Trace, TraceError, map_addresses

# (address, (channel, pseudochannel, sid, bankgroup, bank), row, column): requests of the reference's
# 12-request trace and single bits
HAND = [
    (0x0, (0, 0, 0, 0, 0), 0, 0),
    (0x20, (1, 0, 0, 0, 0), 0, 0),
    (0x200, (0, 0, 0, 0, 0), 0, 1),
    (0x4000, (0, 1, 0, 0, 0), 0, 0),
    (0x8000, (0, 0, 1, 0, 0), 0, 0),
    (0xC000, (0, 1, 1, 0, 0), 0, 0),
    (0x10200, (0, 0, 0, 1, 0), 0, 1),
    (0x40000, (0, 0, 0, 0, 1), 0, 0),
    (0x100200, (0, 0, 0, 0, 0), 1, 1),
    (2 ** 33 - 32, (15, 1, 1, 3, 3), 8191, 31),
]


def test_hbm3_fields_by_hand():
    addr, row, col = map_addresses(Device("hbm3"), Trace.from_arrays([a for a, *_ in HAND]))
    assert [tuple(int(x) for x in r) for r in addr] == [lv for _, lv, _, _ in HAND]
    assert list(row) == [r for *_, r, _ in HAND] and list(col) == [c for *_, c in HAND]


def test_hbm3_fields_are_the_reference_bit_ranges():
    a = np.random.default_rng(3).integers(0, 2 ** 33, size=20_000, dtype=np.uint64)
    addr, row, col = map_addresses(Device("hbm3"), Trace.from_arrays(a))
    bits = a.astype(np.int64)
    field = lambda lo, hi: (bits >> lo) & ((1 << (hi - lo)) - 1)  # noqa: E731
    assert (addr[:, 0] == field(5, 9)).all() and (col == field(9, 14)).all()
    assert (addr[:, 1] == field(14, 15)).all() and (addr[:, 2] == field(15, 16)).all()
    assert (addr[:, 3] == field(16, 18)).all() and (addr[:, 4] == field(18, 20)).all()
    assert (row == field(20, 33)).all()


def test_mixed_radix_geometry_is_dense():
    dev = Device("hbm3e_pim")  # 6 bank groups: not a power of two
    std = dev.standard
    tx = std.column_bytes
    lines = np.concatenate([np.arange(4096), std.capacity_bytes // tx - 1 - np.arange(4096),
                            np.random.default_rng(5).integers(0, std.capacity_bytes // tx, size=20_000)])
    a = lines.astype(np.uint64) * np.uint64(tx) + np.uint64(7)  # an offset inside the transaction is dropped
    addr, row, col = map_addresses(dev, Trace.from_arrays(a))
    # rebuild each address from its fields, most significant (row) first
    radices = [(std.rows, row), *((std.fanout[l], addr[:, l]) for l in range(len(std.levels) - 1, 0, -1)),
               (std.columns, col), (std.fanout[0], addr[:, 0])]
    rebuilt = np.zeros(len(a), dtype=np.int64)
    for radix, digit in radices:
        assert ((0 <= digit) & (digit < radix)).all()
        rebuilt = rebuilt * radix + digit
    assert (rebuilt == lines).all()


def test_address_at_the_capacity_is_refused():
    dev = Device("hbm3e_pim")
    with pytest.raises(TraceError, match="beyond the device"):
        map_addresses(dev, Trace.from_arrays([0, dev.standard.capacity_bytes]))


@pytest.mark.parametrize("name", ["hbm3", "hbm3e_pim", "gddr6"])
def test_flat_bank_ids_are_the_level_fields(name):
    """Request mode maps straight to flat bank ids (levels from the channel down); the controller's
    table of each bank's levels gives back the fields `map_addresses` splits, row and column alike."""
    from sieve._core.controller import bank_levels
    from sieve.dram.requests import _map_banks

    dev = Device(name)
    std = dev.standard
    a = np.random.default_rng(11).integers(0, std.capacity_bytes, size=30_000, dtype=np.uint64)
    trace = Trace.from_arrays(np.concatenate([a, np.array([0, std.capacity_bytes - 1], dtype=np.uint64)]))
    levels, row, col = map_addresses(dev, trace)
    bank, brow, bcol = _map_banks(dev, trace, "RoBaRaCoCh")
    assert bank.min() == 0 and bank.max() == int(np.prod(std.fanout)) - 1
    assert np.array_equal(bank_levels(dev.engine(logging=False))[bank], levels)
    assert np.array_equal(brow, row) and np.array_equal(bcol, col)
    with pytest.raises(TraceError, match="beyond the device"):
        _map_banks(dev, Trace.from_arrays([std.capacity_bytes]), "RoBaRaCoCh")


def _split_by_hand(addr, sizes, dest, weights):
    """split_banks in plain Python integers: peel each field off the low end, in order."""
    width = len(weights)
    bank, row, col = [], [], []
    for a in addr:
        rest, b, r, c = int(a), 0, None, None
        for size, to in zip(sizes, dest):
            value, rest = rest % size, rest // size
            if 0 <= to < width:
                b += value * weights[to]
            elif to == width:
                r = value
            elif to == width + 1:
                c = value
        bank.append(b), row.append(r), col.append(c)
    return bank, row, col


@pytest.mark.parametrize("seed", range(16))
def test_split_banks_agrees_with_peeling_by_hand(seed):
    """Random layouts, powers of two (read as bit ranges) or not, of fields of size 1 up to those that reach
    past bit 64, against the field-by-field split in Python integers."""
    from sieve._core import addrmap

    rng = np.random.default_rng(seed)
    width = int(rng.integers(1, 5))
    fanout = rng.choice([1, 2, 4, 8], size=width) if seed % 2 == 0 else rng.integers(1, 7, size=width)
    weights = [int(np.prod(fanout[l + 1:])) for l in range(width)]
    dest = [-1, *rng.permutation([*range(width), width, width + 1])]
    sizes = [int(rng.choice([1, 2, 32, 2 ** 20] if seed % 2 == 0 else [1, 3, 32, 1000]))]
    long = [2 ** 13, 2 ** 30] if seed % 4 == 0 else [2 ** 40, 2 ** 62] if seed % 4 == 2 else [5, 8192, 10 ** 12]
    sizes += [int(fanout[to]) if to < width else int(rng.choice(long)) for to in dest[1:]]
    addr = rng.integers(0, 2 ** 64, size=500, dtype=np.uint64)
    bank, row, col = (np.empty(len(addr), dtype=np.int32) for _ in range(3))
    to_int32 = lambda v: ((v + 2 ** 31) % 2 ** 32) - 2 ** 31  # noqa: E731  (row and column are 32-bit)
    addrmap.split_banks(addr, np.array(sizes), np.array(dest), np.array(weights, dtype=np.int64), bank, row, col)
    want_bank, want_row, want_col = _split_by_hand(addr, sizes, dest, weights)
    assert bank.tolist() == want_bank
    assert row.tolist() == [to_int32(r) for r in want_row] and col.tolist() == [to_int32(c) for c in want_col]
