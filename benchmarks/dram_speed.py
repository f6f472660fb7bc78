"""Speed of the DRAM engine's two front ends, as ratios to pure-Python references in the same process.

    python benchmarks/dram_speed.py [--quick]

* Stream executor: commands/s on a long stream that keeps all 64 banks of an HBM3 channel busy
  (ACT every bank, 32 reads per bank interleaved across banks, PRE every bank; row after row),
  against the reference timing model of the tests on a prefix of the same stream.
* Request mode: requests/s on the streaming trace of the reference figures (2,097,152 loads) and on a
  uniform random trace, against the plain reference controller on a prefix of the same trace.

The references slow down as their history grows, so each ratio compares both sides on the same
prefix; the compiled side's rate on the full workload is printed beside it. Compiled runs are timed as
the best of three. Absolute times on a shared machine are noise; the ratios are the result.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sieve.dram import Device  # noqa: E402
from sieve.dram.requests import Trace, map_addresses, run_requests  # noqa: E402
from sieve.dram.tracegen import generate  # noqa: E402
from tests.dram.oracle import run_stream  # noqa: E402
from tests.dram.ref_controller import run_reference  # noqa: E402


def busy_stream(device: Device, rows: int):
    std = device.standard
    banks = np.array(list(np.ndindex(*std.fanout[1:])))
    nb = len(banks)
    per_row = nb * (2 + std.columns)
    n = rows * per_row
    names = np.empty(n, dtype=object)
    addr = np.zeros((n, len(std.levels)), dtype=np.int64)
    row = np.repeat(np.arange(rows), per_row)
    col = np.zeros(n, dtype=np.int64)
    block = ["ACT"] * nb + ["RD"] * (nb * std.columns) + ["PRE"] * nb
    block_addr = np.concatenate([banks, np.tile(banks, (std.columns, 1)), banks])
    block_col = np.concatenate([np.zeros(nb), np.repeat(np.arange(std.columns), nb), np.zeros(nb)])
    for r in range(rows):
        s = slice(r * per_row, (r + 1) * per_row)
        names[s] = block
        addr[s, 1:] = block_addr
        col[s] = block_col
    return device.cmd_ids(names), addr, row, col


def timed(fn, repeat: int = 1):
    """Result of `fn` and its best wall time over `repeat` runs (the machine is shared; the best run is
    the one least disturbed)."""
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, best


def bench_stream(device: Device, rows: int, prefix: int) -> None:
    cmds, addr, row, col = busy_stream(device, rows)
    res, dt = timed(lambda: device.execute(cmds, addr, row, col, log=False), repeat=3)
    fast_rate = len(cmds) / dt
    names = device.standard.command_names
    stream = [(names[c], tuple(int(x) for x in a), int(r), int(cc))
              for c, a, r, cc in zip(cmds[:prefix], addr[:prefix], row[:prefix], col[:prefix])]
    (ticks, _), dt_ref = timed(lambda: run_stream(device.standard, stream, auto_prereq=False))
    pre, dt_pre = timed(lambda: device.execute(cmds[:prefix], addr[:prefix], row[:prefix], col[:prefix], log=False),
                        repeat=3)
    assert list(pre.ticks) == ticks, "engine and reference disagree"
    ratio = (prefix / dt_pre) / (prefix / dt_ref)
    print(f"stream executor   {len(cmds):>9,} commands  {fast_rate / 1e6:8.2f} M commands/s   "
          f"x{ratio:,.0f} the reference model (same {prefix:,}-command prefix)")


def bench_requests(device: Device, label: str, trace: Trace, prefix: int) -> None:
    runs = [run_requests(device, trace) for _ in range(3)]
    res = min(runs, key=lambda r: r.wall_s)
    rate = len(trace) / res.wall_s
    small = Trace.from_arrays(trace.addr[:prefix], trace.is_write[:prefix])
    addr, row, col = map_addresses(device, small)
    (ref, _), dt_ref = timed(lambda: run_reference(device, addr, row, col, small.is_write, small.addr))
    fast = min((run_requests(device, small) for _ in range(3)), key=lambda r: r.wall_s)
    assert list(fast.per_request.complete_ck * device.standard.ticks_per_ck) == [r.complete for r in ref]
    ratio = dt_ref / fast.wall_s
    print(f"request mode {label:<8} {len(trace):>9,} requests  {rate / 1e6:8.2f} M requests/s   "
          f"x{ratio:,.0f} the reference controller (same {prefix:,}-request prefix)  "
          f"[{res.cycles_ck:,.1f} CK]")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    args = ap.parse_args()
    hbm3 = Device("hbm3")
    rows = 40 if args.quick else 400
    n_seq = 2_097_152 // (8 if args.quick else 1)
    print(f"sieve DRAM speed (one core), standard {hbm3.standard.name}")
    bench_stream(hbm3, rows, prefix=3_000)
    bench_requests(hbm3, "seq", generate("seq", n_seq, hbm3), prefix=3_000)
    bench_requests(hbm3, "random", generate("random", n_seq // 2, hbm3, seed=1), prefix=1_000)


if __name__ == "__main__":
    main()
