"""Tight gates: every timing record of every preset, for every (preceding, following) command pair.

The following command must be illegal one tick before ``t_prev + latency`` and legal on time. The
latency comes from the record as declared (``Standard.pair_latency_ticks``), never from the engine.
Where a stricter record of the same preset masks the gate for every address choice (HBM3E's tFAW is
shorter than 4 x tRRD, say), the record is checked alone, in a standard that keeps only it.
"""

from __future__ import annotations

import dataclasses

import pytest

from sieve.dram import Device, available_standards, load_standard

from .harness import Probe

T0 = 200_000  # far beyond every setup command's latencies


def _cases():
    for name in available_standards():
        std = load_standard(name)
        for r, con in enumerate(std.constraints):
            for p in con.prev:
                for n in con.next:
                    yield pytest.param(name, r, p, n, id=f"{name}-{r}-{con.level}-{p}-{n}"
                                       + ("-sibling" if con.sibling else "") + (f"-w{con.window}" if con.window > 1 else ""))


def _addresses(std, con, p, n):
    """Addresses for the preceding commands and the probe: they share the record's node (or are siblings)
    and differ right below it, so rules of deeper levels do not apply."""
    L = len(std.levels)
    lv = std.levels.index(con.level)
    base = [0] * L
    probe = list(base)
    if con.sibling:
        probe[lv] = 1
    elif lv + 1 < L:
        probe[lv + 1] = 1
    # the window's earlier commands each need their own node below the record's level
    prevs = []
    if con.window > 1:
        for k in range(con.window):
            a = list(base)
            a[lv + 1:] = _nth_below(std, lv, k + 2)
            prevs.append(a)
    else:
        prevs.append(base)
    return prevs, probe


def _nth_below(std, lv, k):
    """The k-th node below level lv, as indices for levels lv+1..bank, spreading over the top level first."""
    L = len(std.levels)
    fan = std.fanout[lv + 1:]
    out = [0] * (L - lv - 1)
    for i in range(len(out)):
        out[i] = k % fan[i]
        k //= fan[i]
    return out


def _check(std, r, p, n) -> tuple[bool, str]:
    con = std.constraints[r]
    probe_dev = Probe(Device(std))
    prevs, target = _addresses(std, con, p, n)
    lat = std.pair_latency_ticks(con, p, n)
    row = 3
    # bring the probe's banks and the preceding commands' banks into the states they need, early
    probe_dev.prepare(n, target, row)
    for a in prevs:
        probe_dev.prepare(p, a, row)
    assert probe_dev.engine.last_issue_tick < T0 - 10_000
    tpc = std.ticks_per_ck
    first = T0
    while probe_dev.earliest(p, prevs[0], first) != first or probe_dev.earliest(n, target, first + lat) != first + lat:
        first += 1
        if first > T0 + 2 * tpc:  # no phase fits both; the gate still shows in the timing-ready tick
            first = probe_dev.earliest(p, prevs[0], T0)
            break
    probe_dev.issue(p, prevs[0], first, row)
    for a in prevs[1:]:
        probe_dev.prepare(p, a, row)
        probe_dev.issue(p, a, None, row)
    expected = first + lat
    ready = probe_dev.ready_tick(n, target)
    if ready > expected:
        return False, f"masked: ready at {ready}, record gives {expected}"
    probe_dev.assert_earliest_ready_at(n, target, expected)
    # legal on time for real, when the row buffers allow the command
    if probe_dev.required_first(n, target, row) == n:
        probe_dev.issue(n, target, probe_dev.earliest(n, target, expected), row)
    return True, ""


@pytest.mark.parametrize("name,r,p,n", list(_cases()))
def test_gate_is_tight(name, r, p, n):
    std = load_standard(name)
    ok, why = _check(std, r, p, n)
    if not ok:
        # masked in the full preset: the record alone must still be exact
        alone = dataclasses.replace(std, constraints=(std.constraints[r],))
        ok, why_alone = _check(alone, 0, p, n)
        assert ok, f"record alone: {why_alone} (in the preset: {why})"


def test_every_preset_has_gates():
    for name in available_standards():
        assert len(load_standard(name).constraints) > 10
