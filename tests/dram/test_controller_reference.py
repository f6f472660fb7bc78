"""The compiled controller (cached commands, skipped ticks) against the plain reference controller."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.dram import Device, check_log, load_standard
from sieve.dram.requests import Trace, map_addresses, run_requests

from .ref_controller import run_reference
from .streams import with_short_refresh

def _trace(std, rng, n):
    """Requests to two channels, two banks per level, three rows and four columns: row hits, misses and
    conflicts, reads of queued writes (forwarded), repeated writes (merged), full queues."""
    L = len(std.levels)
    fields = [rng.integers(0, 2, size=n) for _ in range(L)]
    row = rng.integers(0, 3, size=n)
    col = rng.integers(0, 4, size=n)
    value = row
    for l in range(L - 1, 0, -1):
        value = value * std.fanout[l] + fields[l]
    value = (value * std.columns + col) * std.fanout[0] + fields[0]
    return Trace.from_arrays(value * std.column_bytes, rng.random(n) < 0.35)


def _short_refresh(std):
    return with_short_refresh(std, max(c.latency_ck for c in std.constraints if std.refresh_command in c.prev) + 300)


@pytest.mark.parametrize("case", range(24))
def test_controller_matches_reference(case):
    name = ("hbm3", "hbm3e_pim", "gddr6")[case % 3]
    std = load_standard(name)
    refresh = case % 2 == 1
    dev = Device(_short_refresh(std) if refresh else std)
    rng = np.random.default_rng(500 + case)
    queue = (4, 8, 32)[(case // 3) % 3]
    trace = _trace(dev.standard, rng, int(rng.integers(100, 300)))
    completion = "data" if case % 4 == 2 else "issue"
    res, log = run_requests(dev, trace, refresh="allbank" if refresh else "off", queue_size=queue,
                            write_completion=completion, log=True)
    addr, row, col = map_addresses(dev, trace)
    ref, ref_log = run_reference(dev, addr, row, col, trace.is_write, trace.addr, queue_size=queue, refresh=refresh,
                                  write_done_at_issue=completion == "issue")
    got = list(zip(res.per_request.complete_ck * dev.standard.ticks_per_ck, res.per_request.outcome))
    want = [(r.complete, r.outcome) for r in ref]
    assert got == want
    assert list(log.tick) == list(ref_log.tick) and list(log.cmd) == list(ref_log.cmd)
    assert not check_log(dev.standard, log)


def _hot_trace(std, rng, n, *, banks: int, rows: int, write_share: float):
    """Requests over `banks` banks of channel 0 (spread over every level) and `rows` rows: with few banks
    most requests wait behind another request's open row (precharges held back by active requests), with
    many they wait for the shared ACT and column gates."""
    L = len(std.levels)
    fan = np.asarray(std.fanout)
    flat = rng.choice(int(np.prod(fan[1:])), size=banks, replace=False)[rng.integers(0, banks, size=n)]
    fields = [np.zeros(n, dtype=np.int64)]
    for l in range(L - 1, 0, -1):
        fields.insert(1, flat % fan[l])
        flat = flat // fan[l]
    row = rng.integers(0, rows, size=n)
    col = rng.integers(0, 8, size=n)
    value = row
    for l in range(1, L):
        value = value * std.fanout[l] + fields[l]
    value = (value * std.columns + col) * std.fanout[0]
    return Trace.from_arrays(value * std.column_bytes, rng.random(n) < write_share)


@pytest.mark.parametrize("case", range(16))
def test_controller_matches_reference_on_hot_banks(case):
    """Arrival, completion and outcome of every request, the counters and the command log, against the
    reference controller, on one channel's queues kept full."""
    name = ("hbm3", "gddr6", "hbm3e_pim", "hbm3")[case % 4]
    std = load_standard(name)
    refresh = case % 2 == 1
    dev = Device(_short_refresh(std) if refresh else std)
    rng = np.random.default_rng(900 + case)
    banks = (1, 3, 12, 40)[(case // 2) % 4]
    trace = _hot_trace(dev.standard, rng, 250, banks=min(banks, int(np.prod(dev.standard.fanout[1:]))),
                       rows=(2, 5)[case % 2], write_share=(0.0, 0.3, 0.6)[case % 3])
    queue = (8, 32)[(case // 8) % 2]
    res, log = run_requests(dev, trace, refresh="allbank" if refresh else "off", queue_size=queue, log=True)
    addr, row, col = map_addresses(dev, trace)
    ref, ref_log = run_reference(dev, addr, row, col, trace.is_write, trace.addr, queue_size=queue, refresh=refresh)
    assert list(res.arrive_tick) == [r.arrive for r in ref]
    assert list(res.complete_tick) == [r.complete for r in ref]
    assert list(res.per_request.outcome) == [r.outcome for r in ref]
    outcomes = [r.outcome for r in ref]
    assert (res.row_hits, res.row_misses, res.row_conflicts, res.forwarded, res.merged) == tuple(
        outcomes.count(o) for o in ("hit", "miss", "conflict", "forwarded", "merged"))
    assert res.cycles_ck * dev.standard.ticks_per_ck == max(r.complete for r in ref)
    for got, want in zip((log.tick, log.cmd, log.addr, log.row, log.col),
                         (ref_log.tick, ref_log.cmd, ref_log.addr, ref_log.row, ref_log.col)):
        assert np.array_equal(got, want)


def _mixed_trace(std, rng, n):
    """Segments of different shapes in one trace: a few hot banks and rows with few columns (row
    conflicts, forwarded reads, merged writes), requests spread over two channels and every bank, and
    write shares from none to almost all, so the write queue crosses both watermarks."""
    L = len(std.levels)
    fan = np.asarray(std.fanout)
    parts = []
    while sum(len(p) for p in parts) < n:
        m = int(rng.integers(10, 60))
        spread = bool(rng.integers(0, 2))
        banks = int(np.prod(fan[1:])) if spread else int(rng.integers(1, 5))
        chosen = rng.choice(int(np.prod(fan[1:])), size=banks, replace=False)
        flat = chosen[rng.integers(0, banks, size=m)]
        fields = []
        for l in range(L - 1, 0, -1):
            fields.insert(0, flat % fan[l])
            flat = flat // fan[l]
        ch = rng.integers(0, 2, size=m) if spread else np.zeros(m, dtype=np.int64)
        row = rng.integers(0, 6 if spread else int(rng.integers(1, 4)), size=m)
        col = rng.integers(0, 8 if spread else int(rng.integers(1, 4)), size=m)
        value = row
        for l in range(1, L):
            value = value * std.fanout[l] + fields[l - 1]
        value = (value * std.columns + col) * std.fanout[0] + ch
        writes = rng.random(m) < rng.choice([0.0, 0.2, 0.5, 0.95])
        parts.append((value * std.column_bytes, writes))
    addr = np.concatenate([p[0] for p in parts])[:n]
    return Trace.from_arrays(addr, np.concatenate([p[1] for p in parts])[:n])


def _row_runs(std, rng, n):
    """Runs of 1 to 12 requests to one row of one bank (which a queue keeps as one group), the runs to a
    few banks and rows of one channel, so a run often follows, interrupts or repeats another; reads and
    writes mixed in runs, so writes merge into and reads forward from any member of a run."""
    L = len(std.levels)
    fan = np.asarray(std.fanout)
    banks = rng.choice(int(np.prod(fan[1:])), size=int(rng.integers(1, 4)), replace=False)
    parts = []
    while sum(len(p[0]) for p in parts) < n:
        m = int(rng.integers(1, 13))
        flat = int(rng.choice(banks))
        fields = []
        for l in range(L - 1, 0, -1):
            fields.insert(0, flat % fan[l])
            flat //= fan[l]
        value = int(rng.integers(0, 3))
        for l in range(1, L):
            value = value * std.fanout[l] + int(fields[l - 1])
        col = rng.integers(0, 4, size=m)
        writes = rng.random(m) < rng.choice([0.0, 0.3, 0.9])
        parts.append(((value * std.columns + col) * std.fanout[0] * std.column_bytes, writes))
    return Trace.from_arrays(np.concatenate([p[0] for p in parts])[:n],
                             np.concatenate([p[1] for p in parts])[:n])


def _check_against_reference(case: int, make_trace=_mixed_trace, seed: int = 7000) -> None:
    rng = np.random.default_rng(seed + case)
    std = load_standard(("hbm3", "gddr6", "hbm3e_pim")[case % 3])
    refresh = bool(rng.integers(0, 2))
    dev = Device(_short_refresh(std) if refresh else std)
    queue = int(rng.choice([1, 2, 3, 5, 8, 32]))
    completion = ("issue", "data")[int(rng.integers(0, 2))]
    trace = make_trace(dev.standard, rng, int(rng.integers(60, 220)))
    res, log = run_requests(dev, trace, refresh="allbank" if refresh else "off", queue_size=queue,
                            write_completion=completion, log=True)
    addr, row, col = map_addresses(dev, trace)
    ref, ref_log = run_reference(dev, addr, row, col, trace.is_write, trace.addr, queue_size=queue, refresh=refresh,
                                  write_done_at_issue=completion == "issue")
    assert list(res.arrive_tick) == [r.arrive for r in ref]
    assert list(res.complete_tick) == [r.complete for r in ref]
    outcomes = [r.outcome for r in ref]
    assert list(res.per_request.outcome) == outcomes
    assert (res.row_hits, res.row_misses, res.row_conflicts, res.forwarded, res.merged) == tuple(
        outcomes.count(o) for o in ("hit", "miss", "conflict", "forwarded", "merged"))
    reads = [r for r in ref if not r.write]
    assert (res.reads, res.writes) == (len(reads), len(ref) - len(reads))
    tpc = dev.standard.ticks_per_ck
    if reads:
        latency = sum(1 if r.outcome == "forwarded" else r.complete - r.arrive for r in reads)
        assert res.avg_read_latency_ck == latency / len(reads) / tpc
    assert res.cycles_ck * tpc == max(r.complete for r in ref)
    assert res.commands == {name: int((ref_log.cmd == i).sum()) for i, name in enumerate(dev.standard.command_names)}
    for got, want in zip((log.tick, log.cmd, log.addr, log.row, log.col),
                         (ref_log.tick, ref_log.cmd, ref_log.addr, ref_log.row, ref_log.col)):
        assert np.array_equal(got, want)


@pytest.mark.parametrize("case", range(9))
def test_controller_matches_reference_on_mixed_traces(case):
    """Every request's arrival, completion and outcome, every counter and the command log against the
    reference controller, on random traces mixing hot banks, spread requests and write bursts, with
    queues of 1 to 32 entries, refresh on or off and either write completion."""
    _check_against_reference(case)


@pytest.mark.slow
@pytest.mark.parametrize("case", range(9, 209))
def test_controller_matches_reference_on_many_mixed_traces(case):
    _check_against_reference(case)


@pytest.mark.parametrize("case", range(12))
def test_controller_matches_reference_on_runs_to_one_row(case):
    """As above, on runs of requests to one row of one bank: a queue keeps each run as one group whose
    oldest request stands for the others until it leaves."""
    _check_against_reference(case, _row_runs, seed=9100)
