"""Streams executed piece by piece continue one in-order stream; barriers hold every channel."""

from __future__ import annotations

import numpy as np

from sieve.dram import Device

from .streams import random_stream


def test_pieces_equal_one_stream():
    dev = Device("gddr6_aim")
    rng = np.random.default_rng(3)
    names, addr, row, col = random_stream(dev.standard, rng, 60)
    whole = dev.execute(names, addr, row, col, auto_prereq=True)
    session = dev.session()
    ticks = np.concatenate([session.run(names[s], addr[s], row[s], col[s], auto_prereq=True)
                            for s in (slice(0, 17), slice(17, 40), slice(40, 60))])
    assert list(ticks) == list(whole.ticks)


def test_barrier_holds_all_channels():
    dev = Device("gddr6_aim")
    session = dev.session()
    t0 = session.run(["WRGB", "WRGB"], np.array([[0, 0, 0], [5, 0, 0]]))
    assert list(t0) == [0, 0]
    session.barrier(100)
    t1 = session.run(["WRGB", "WRGB"], np.array([[0, 0, 0], [7, 0, 0]]))
    assert list(t1) == [100, 100]
