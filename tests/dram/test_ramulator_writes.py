"""Request mode against Ramulator 2.1's HBM3 figures on traces with writes (refresh off and all-bank).

The traces are rebuilt from their description by ``scripts/ramulator_write_traces.py`` and checked byte
for byte by their md5 before use. Reference semantics: a write completes when its WR issues; a read of a
buffered write is forwarded and a write to a buffered address merged, neither reaching the scheduler;
a forwarded read completes through the channel's FIFO of reads in flight; writes wait while reads are
queued unless the write queue holds more than 0.8 x 32 entries, until it falls below 0.2 x 32.
"""

from __future__ import annotations

import hashlib

import pytest

from sieve.dram import Device, check_log
from sieve.dram.requests import Trace, run_requests
from tests import scripts

writes = scripts.load("ramulator_write_traces")

# trace, refresh: mem ticks, ACT, PREpb, PREab, RD, WR, REFab, hit, miss, conflict, forwarded, merged,
# avg read latency (CK), mean LD completion - accept (CK)
GOLDEN = {
    ("wr_only_seq", "off"): (33_799, 4_096, 3_072, 0, 0, 131_072, 0, 126_976, 1_024, 3_072, 0, 0, None, None),
    ("wr_only_seq", "allbank"): (31_909, 4_160, 1_232, 64, 0, 131_072, 64, 126_912, 2_928, 1_232, 0, 0, None, None),
    ("rw_alternate_2banks", "off"): (1_158_189, 11_915, 11_913, 0, 30_638, 30_808, 0, 49_454, 1_092, 10_900,
                                     2_130, 1_960, 589.07, 590.35),
    ("rw_alternate_2banks", "allbank"): (1_241_575, 11_873, 11_711, 87, 30_615, 30_830, 3_168, 49_482, 1_239,
                                         10_724, 2_153, 1_938, 629.83, 631.12),
    ("rw25_random_1MiB", "off"): (51_885, 1_024, 0, 0, 195_302, 65_053, 0, 259_331, 1_024, 0, 1_373, 416,
                                  52.15, 52.25),
    ("rw25_random_1MiB", "allbank"): (56_367, 5_120, 0, 128, 195_299, 65_044, 128, 255_223, 5_120, 0, 1_376,
                                      425, 55.34, 55.44),
}


@pytest.fixture(scope="module")
def hbm3():
    return Device("hbm3")


@pytest.fixture(scope="module")
def traces():
    out = {}
    for name, (addr, store) in writes.traces().items():
        text = writes.text(addr, store)
        assert hashlib.md5(text.encode()).hexdigest() == writes.MD5[name], name  # the reference's trace
        out[name] = Trace.from_arrays(addr, store)
    return out


@pytest.mark.parametrize("name,refresh", list(GOLDEN), ids=[f"{n}-{r}" for n, r in GOLDEN])
def test_every_counter_equals_the_reference(hbm3, traces, name, refresh):
    (ticks, act, pre, prea, rd, wr, ref, hit, miss, conflict, fwd, merged, latency, seen) = GOLDEN[name, refresh]
    r = run_requests(hbm3, traces[name], refresh=refresh)
    assert r.cycles_ck * 2 == ticks
    c = r.commands
    assert (c["ACT"], c["PRE"], c["PREA"], c["RD"], c["WR"], c["REF"]) == (act, pre, prea, rd, wr, ref)
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (hit, miss, conflict)
    assert (r.forwarded, r.merged) == (fwd, merged)
    loads = r.per_request[~r.per_request.write]
    if latency is None:
        assert len(loads) == 0
    else:
        assert round(r.avg_read_latency_ck, 2) == latency
        assert round(float((loads.complete_ck - loads.arrive_ck).mean()), 2) == seen


# ---- the exact command sequence of 12 requests on channel 0 --------------------------------------

TWELVE = [("ST", 0x0), ("ST", 0x8000), ("ST", 0x4000), ("ST", 0xC000), ("LD", 0x200), ("LD", 0x0),
          ("ST", 0x100000), ("LD", 0x10000), ("ST", 0x10200), ("LD", 0x8200), ("ST", 0x0), ("LD", 0x100200)]
TWELVE_COMPLETE = [351, 147, 181, 189, 109, 1, 177, 117, 151, 125, 0, 265]
# (tick, command, PC, SID, BG, bank) of channel 0's log
TWELVE_LOG = [
    (1, "ACT", 0, 0, 0, 0), (9, "ACT", 0, 0, 1, 0), (17, "ACT", 0, 1, 0, 0), (65, "RD", 0, 0, 0, 0),
    (73, "RD", 0, 0, 1, 0), (81, "RD", 0, 1, 0, 0), (93, "PRE", 0, 0, 0, 0), (145, "ACT", 0, 0, 0, 0),
    (147, "WR", 0, 1, 0, 0), (149, "ACT", 1, 0, 0, 0), (151, "WR", 0, 0, 1, 0), (157, "ACT", 1, 1, 0, 0),
    (177, "WR", 0, 0, 0, 0), (181, "WR", 1, 0, 0, 0), (189, "WR", 1, 1, 0, 0), (221, "RD", 0, 0, 0, 0),
    (268, "PRE", 0, 0, 0, 0), (319, "ACT", 0, 0, 0, 0), (351, "WR", 0, 0, 0, 0),
]


@pytest.mark.parametrize("refresh", ["off", "allbank"])
def test_twelve_request_command_sequence(hbm3, refresh):
    """Reads first while few writes are buffered; a read of a buffered write is forwarded and a second
    write to it merged; write mode starts when the read queue empties (line 11 has left it for the
    active buffer); the bank of an active request is not precharged, so line 0 completes last."""
    trace = Trace.from_arrays([a for _, a in TWELVE], [k == "ST" for k, _ in TWELVE])
    r, log = run_requests(hbm3, trace, refresh=refresh, log=True)
    df = log.to_frame()
    assert set(df.channel) == {0}
    got = list(zip(df.tick, df.command, df.pseudochannel, df.sid, df.bankgroup, df.bank))
    assert got == TWELVE_LOG
    pr = r.per_request
    assert list(pr.complete_ck * 2) == TWELVE_COMPLETE
    assert (pr.outcome[5], pr.outcome[10]) == ("forwarded", "merged")
    assert (r.forwarded, r.merged, r.commands["RD"], r.commands["WR"]) == (1, 1, 4, 6)
    assert r.cycles_ck * 2 == 351
    assert not check_log(hbm3.standard, log)
