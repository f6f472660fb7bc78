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
