"""Request-trace mode against Ramulator 2's HBM3 figures (../shared/golden/ramulator_hbm3.md)."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.dram import Device, check_log
from sieve.dram.spec import StandardError
from sieve.dram.requests import Trace, run_requests
from sieve.dram.tracegen import generate

# Reference figures (CK) measured with Ramulator 2.1 on the same traces, refresh off.
GOLDEN = {
    "seq": dict(requests=2_097_152, cycles_ck=330_822.5, ACT=65_536, PRE=64_512,
                hits=2_031_616, misses=1_024, conflicts=64_512, latency=103.7),
    "conflict": dict(requests=65_536, cycles_ck=4_718_574.5, ACT=65_536, PRE=65_535,
                     hits=0, misses=1, conflicts=65_535, latency=2_357.4),
}


@pytest.fixture(scope="module")
def hbm3():
    return Device("hbm3")


@pytest.mark.parametrize("kind", ["seq", "conflict"])
def test_reference_agreement(hbm3, kind):
    g = GOLDEN[kind]
    trace = generate(kind, g["requests"], hbm3)
    r = run_requests(hbm3, trace, refresh="off")
    print(f"{kind}: sieve {r.cycles_ck} CK vs Ramulator {g['cycles_ck']} CK")
    assert r.cycles_ck == g["cycles_ck"]
    assert r.commands["ACT"] == g["ACT"] and r.commands["PRE"] == g["PRE"]
    assert (r.row_hits, r.row_misses, r.row_conflicts) == (g["hits"], g["misses"], g["conflicts"])
    assert r.avg_read_latency_ck == pytest.approx(g["latency"], abs=0.05)
    assert r.commands["RD"] == g["requests"]


def test_conflict_timeline(hbm3):
    """ACT, RD, PRE, ACT, RD ... on one bank: RD waits nRCDRD (+1 tick for the 1.5-CK ACT, then the
    rising edge), PRE waits nRAS after the ACT, the next ACT nRC after the previous one."""
    trace = generate("conflict", 4, hbm3)
    r, log = run_requests(hbm3, trace, log=True)
    names = [hbm3.standard.command_names[c] for c in log.cmd]
    assert names == ["ACT", "RD", "PRE", "ACT", "RD", "PRE", "ACT", "RD", "PRE", "ACT", "RD"]
    assert list(log.tick) == [1, 65, 93, 145, 209, 237, 289, 353, 381, 433, 497]
    assert r.cycles_ck == (497 + 44) / 2
    assert not check_log(hbm3.standard, log)


def test_stream_start_two_pseudochannels(hbm3):
    """The first ACTs of a streaming trace go to both pseudo-channels, 4 ticks apart (ACT holds the
    shared row bus for 3 ticks, then the next rising edge); reads then alternate between them."""
    trace = generate("seq", 4096, hbm3)
    _, log = run_requests(hbm3, trace, log=True)
    df = log.to_frame()
    ch0 = df[df.channel == 0]
    acts = ch0[ch0.command == "ACT"]
    assert list(acts.tick[:2]) == [1, 5]
    assert list(acts.pseudochannel[:2]) == [0, 1]
    rds = ch0[ch0.command == "RD"]
    assert list(rds.tick[:3]) == [65, 69, 73]
    assert list(rds.pseudochannel[:3]) == [0, 1, 0]


@pytest.mark.parametrize("refresh", ["off", "allbank"])
def test_request_logs_obey_the_protocol(hbm3, refresh):
    rng = np.random.default_rng(7)
    n = 6000
    # channel 0 only (bits 5-8 clear), few rows: row hits, misses and conflicts, reads and writes mixed,
    # and long enough to span several refresh intervals
    addr = (rng.integers(0, 1 << 13, size=n) << 9) & ((1 << 22) - 1)
    trace = Trace.from_arrays(addr, rng.random(n) < 0.3)
    r, log = run_requests(hbm3, trace, refresh=refresh, log=True)
    assert r.reads + r.writes == n
    assert r.row_hits and r.row_misses and r.row_conflicts
    assert not check_log(hbm3.standard, log)
    if refresh == "allbank":
        assert r.commands["REF"] > 0


def test_refresh_costs_time(hbm3):
    trace = generate("conflict", 20_000, hbm3)
    off = run_requests(hbm3, trace, refresh="off")
    on = run_requests(hbm3, trace, refresh="allbank")
    assert on.cycles_ck > off.cycles_ck
    # one REF per pseudo-channel per tREFI while the trace runs
    expected = int(on.cycles_ck // hbm3.standard.timing["nREFI"]) * 32
    assert abs(on.commands["REF"] - expected) <= 32


def test_forwarding_and_merging(hbm3):
    trace = Trace.from_arrays([0, 0, 0, 64], [1, 1, 0, 0])
    r = run_requests(hbm3, trace)
    assert r.merged == 1 and r.forwarded == 1
    assert r.commands["WR"] == 1 and r.commands["RD"] == 1


def test_determinism(hbm3):
    trace = generate("random", 20_000, hbm3, seed=3)
    a = run_requests(hbm3, trace)
    b = run_requests(hbm3, trace)
    assert a.cycles_ck == b.cycles_ck
    assert a.per_request.equals(b.per_request)


# Micro traces of the reference's "Traces with writes" section: channel 0, pseudo-channel 0, the two
# stack ids alternating (bit 15), columns 0, 0, 1, 1, 2, 2 (bits 9-13).
_SID_PAIRS = [0x0, 0x8000, 0x200, 0x8200, 0x400, 0x8400]


def test_single_write_completes_when_its_wr_issues(hbm3):
    """ACT at tick 1, WR nRCDWR (15 CK = 30 ticks, counted from the end of the 3-tick ACT) later on
    the next rising edge: tick 33. Ramulator 2 calls a write's callback when its WR issues."""
    r, log = run_requests(hbm3, Trace.from_arrays([0], [1]), log=True)
    assert list(log.tick) == [1, 33]
    assert r.cycles_ck == 33 / 2


def test_write_completion_data_adds_the_write_latency(hbm3):
    """The named alternative: the write completes with its last data beat, nCWL + nBL after the WR."""
    t = hbm3.standard.timing
    r = run_requests(hbm3, Trace.from_arrays([0], [1]), write_completion="data")
    assert r.cycles_ck == 33 / 2 + t["nCWL"] + t["nBL"]


def test_writes_to_the_two_stack_ids_are_spaced_by_nbl(hbm3):
    """No nCCDR between WRs to the two SIDs of a pseudo-channel (it binds RD to RD only): WR at 33, 41
    (after the second ACT), then every nBL = 2 CK = 4 ticks. Reads alternate every nCCDR = 3 CK."""
    tpc = hbm3.standard.ticks_per_ck
    t = hbm3.standard.timing
    _, log = run_requests(hbm3, Trace.from_arrays(_SID_PAIRS, [1] * 6), log=True)
    wr = [int(k) for k, c in zip(log.tick, log.cmd) if hbm3.standard.command_names[c] == "WR"]
    assert wr == [33, 41, 45, 49, 53, 57]
    assert all(b - a == t["nBL"] * tpc for a, b in zip(wr[1:], wr[2:]))
    r, log = run_requests(hbm3, Trace.from_arrays(_SID_PAIRS, [0] * 6), log=True)
    rd = [int(k) for k, c in zip(log.tick, log.cmd) if hbm3.standard.command_names[c] == "RD"]
    assert rd == [65, 73, 79, 85, 91, 97]
    assert all(b - a == t["nCCDR"] * tpc for a, b in zip(rd[1:], rd[2:]))
    assert r.cycles_ck * tpc == 141


def test_unknown_write_completion_is_a_clear_error(hbm3):
    with pytest.raises(StandardError, match="write_completion 'late' is not one of issue, data"):
        run_requests(hbm3, Trace.from_arrays([0], [1]), write_completion="late")


def test_controller_refuses_bank_ids_outside_the_device():
    from sieve._core.controller import Controller

    dev = Device("hbm3")
    eng = dev.engine(logging=False)
    ones = np.ones(2, dtype=np.int32)
    for bad in (-1, eng.num_banks):
        with pytest.raises(ValueError, match=rf"bank ids must lie in 0\.\.{eng.num_banks - 1}"):
            Controller(eng, dev.tables, np.array([0, bad], dtype=np.int32), ones, ones,
                       np.zeros(2, dtype=np.uint8), np.arange(2, dtype=np.uint64))
    with pytest.raises(ValueError, match="different lengths"):
        Controller(eng, dev.tables, np.zeros(3, dtype=np.int32), ones, ones,
                   np.zeros(2, dtype=np.uint8), np.arange(2, dtype=np.uint64))


def test_request_mode_refuses_a_geometry_beyond_32_bit_indices():
    import dataclasses

    from sieve.dram import load_standard

    big = dataclasses.replace(load_standard("hbm3"), rows=2 ** 31)
    with pytest.raises(StandardError, match="fewer than 2\\^31 banks, rows and columns"):
        run_requests(Device(big), Trace.from_arrays([0, 64]))
