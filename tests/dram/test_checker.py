"""The protocol checker finds nothing in clean logs and finds each kind of deliberate corruption."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from sieve.dram import Device, check_log
from sieve.dram.requests import run_requests
from sieve.dram.tracegen import generate

from .streams import random_stream


@pytest.fixture(scope="module")
def conflict_log():
    dev = Device("hbm3")
    _, log = run_requests(dev, generate("conflict", 3, dev), log=True)
    assert not check_log(dev.standard, log)
    return dev, log  # ACT 1, RD 65, PRE 93, ACT 145, RD 209, PRE 237, ACT 289, RD 353


def _with(log, **arrays):
    return dataclasses.replace(log, **{k: np.asarray(v) for k, v in arrays.items()})


def test_read_two_ticks_early(conflict_log):
    dev, log = conflict_log
    tick = log.tick.copy()
    tick[1] -= 2  # RD at 63: still a rising edge, but before ACT + nRCDRD
    v = check_log(dev.standard, _with(log, tick=tick))
    assert v and all(x.index == 1 for x in v)
    assert any("nRCDRD" in x.rule for x in v)


def test_read_on_falling_edge(conflict_log):
    dev, log = conflict_log
    tick = log.tick.copy()
    tick[4] += 1  # RD at 210: timing fine, wrong edge
    v = check_log(dev.standard, _with(log, tick=tick))
    assert [x.rule for x in v] == ["may issue only on odd ticks"]


def test_activate_before_row_cycle(conflict_log):
    dev, log = conflict_log
    tick = log.tick.copy()
    tick[3] -= 2  # second ACT at 143 < 1 + nRC (144 ticks)
    v = check_log(dev.standard, _with(log, tick=tick))
    assert any("nRC" in x.rule for x in v)


def test_missing_precharge(conflict_log):
    dev, log = conflict_log
    keep = np.arange(len(log)) != 2  # drop the first PRE
    v = check_log(dev.standard, _with(log, tick=log.tick[keep], cmd=log.cmd[keep], addr=log.addr[keep],
                                       row=log.row[keep], col=log.col[keep]))
    assert any("closed" in x.rule for x in v)


def test_all_bank_activate_over_a_bank_on_its_row():
    """gddr6_aim: ACT to bank 0 row 3, then MAC16 row 3 -> ACT16 over the open bank, legal; had bank 0
    held another row, the ACT16 is reported."""
    dev = Device("gddr6_aim")
    res = dev.execute(["ACT", "MAC16"], np.array([[0, 0, 0], [0, -1, -1]]), np.array([3, 3]), np.array([0, 0]),
                      auto_prereq=True)
    log = res.log
    names = [dev.standard.command_names[c] for c in log.cmd]
    assert names == ["ACT", "ACT16", "MAC16"]
    assert not check_log(dev.standard, log)
    row = log.row.copy()
    row[0] = 4
    v = check_log(dev.standard, _with(log, row=row))
    assert [x.index for x in v] == [1] and "closed or on row 3" in v[0].rule


def test_read_of_a_row_that_is_not_open(conflict_log):
    dev, log = conflict_log
    row = log.row.copy()
    row[1] = 99
    v = check_log(dev.standard, _with(log, row=row))
    assert [x.index for x in v] == [1] and "row 99" in v[0].rule


def test_four_activate_window():
    dev = Device("hbm3")
    # five ACTs to five banks of one pseudo-channel, each at its earliest legal tick
    banks = [(0, 0, 0, bg, b) for bg in range(4) for b in range(2)][:5]
    res = dev.execute(["ACT"] * 5, np.array(banks), row=np.zeros(5, dtype=np.int64))
    assert not check_log(dev.standard, res.log)
    assert res.ticks[4] - res.ticks[0] == 48  # nFAW, the window binds the fifth
    tick = res.log.tick.copy()
    tick[4] -= 2
    v = check_log(dev.standard, _with(res.log, tick=tick))
    assert any("4 x ACT" in x.rule and "nFAW" in x.rule for x in v)


def test_random_corruptions_are_found():
    """Pull one command of a clean random log earlier, to the tick before its earliest legal tick:
    the checker must object."""
    dev = Device("hbm3")
    rng = np.random.default_rng(11)
    found = 0
    for _ in range(60):
        names, addr, row, col = random_stream(dev.standard, rng, 15)
        res = dev.execute(names, addr, row, col, auto_prereq=True)
        log = res.log
        assert not check_log(dev.standard, log)
        # replay the log prefix in a fresh engine to learn the first legal tick of command i
        i = int(rng.integers(1, len(log)))
        eng = dev.engine()
        for j in range(i):
            eng.issue_at(int(log.cmd[j]), log.addr[j], int(log.tick[j]), int(log.row[j]), int(log.col[j]), True)
        ready = eng.ready_tick(int(log.cmd[i]), log.addr[i])
        if ready == 0 or ready > log.tick[i]:
            continue  # nothing constrains it, or it waited for stream order rather than a rule
        tick = log.tick.copy()
        tick[i] = ready - 1
        v = check_log(dev.standard, _with(log, tick=tick))
        assert v, f"corruption of #{i} not found"
        found += 1
    assert found > 20
