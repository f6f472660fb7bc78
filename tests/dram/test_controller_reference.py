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
