"""Per-bank tables and utilization over time agree with the command log they summarize."""

from __future__ import annotations

import numpy as np

from sieve.dram import Device
from sieve.dram.requests import run_requests
from sieve.dram.stats import utilization_over_time
from sieve.dram.tracegen import generate


def test_bank_table_matches_log_and_totals():
    dev = Device("hbm3")
    # long enough to pass tREFI (3.9 us), so every pseudo-channel refreshes at least once
    r, log = run_requests(dev, generate("random", 40000, dev, seed=1), refresh="allbank", log=True)
    bank = r.bank
    assert len(bank) == dev.standard.num_banks
    assert list(bank.columns[:5]) == list(dev.standard.levels)
    names = dev.standard.command_names
    counts = np.bincount(log.cmd, minlength=len(names))
    for i, name in enumerate(names):
        if dev.standard.command(name).scope == "bank":
            assert bank[name].sum() == counts[i] == r.commands[name]
    # an all-bank refresh counts on each bank of its pseudo-channel: 2 stack ids x 4 groups x 4 banks
    assert dev.standard.command("REF").scope == "pseudochannel"
    assert r.commands["REF"] >= 32
    assert bank["REF"].sum() == 2 * 4 * 4 * r.commands["REF"]
    assert (bank["utilization"] <= 1).all() and (bank["open_ck"] <= r.cycles_ck).all()
    assert bank["data_ck"].sum() == 2 * (r.commands["RD"] + r.commands["WR"])


def test_utilization_over_time_sums_to_bank_counts():
    dev = Device("hbm3")
    r, log = run_requests(dev, generate("seq", 20000, dev), log=True)
    util = utilization_over_time(log, bin_ck=500.0)
    per_bank = util.groupby(list(dev.standard.levels), sort=True)[["ACT", "RD"]].sum().reset_index()
    assert (per_bank["RD"].to_numpy() == r.bank["RD"].to_numpy()).all()
    assert (per_bank["ACT"].to_numpy() == r.bank["ACT"].to_numpy()).all()
    assert util["bin"].max() == int(log.tick.max() / 2 // 500)
    assert 0 < util["utilization"].max() <= 1
