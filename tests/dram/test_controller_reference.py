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
