"""Speed of the DRAM engine's two front ends, as ratios to pure-Python references in the same process.

    python benchmarks/dram_speed.py [--quick]

* Stream executor: commands/s on a long stream that keeps all 64 banks of an HBM3 channel busy
  (ACT every bank, 32 reads per bank interleaved across banks, PRE every bank; row after row),
  against the reference timing model of the tests on a prefix of the same stream.
* Request mode: requests/s on the streaming trace of the reference figures (2,097,152 loads) and on a
  uniform random trace, against the plain reference controller on a prefix of the same trace; and the
  commands each run issued, executed again by the stream executor (the timing rules alone, no choosing):
  the loop's floor while every command goes through the timing engine.
* Request mode against Ramulator 2.1 on the 2M-request traces (``--ramulator``): the loop
  (``RequestResult.wall_s``, best of two) and ``python -m sieve.dram`` end to end (best of three
  processes), as ratios to Ramulator's loop and process seconds measured on the project's VM
  (REFERENCE_S below); then the same for its three traces with writes (REFERENCE_WRITES_S; the loop best
  of three), and each of them with 256-entry queues beside it, where forwarding and merging look an address
  up among 256 queued writes.
* ``TimingEngine.log()`` on a 1M-command log, as a fraction of the time to simulate those commands.
* Start-up: ``python -m sieve.dram`` and ``python -m sieve.pim`` on 10-line traces, beside
  ``python -c "import numpy"`` (wall and CPU seconds, best of five, with Python's bytecode cache).

The references slow down as their history grows, so each ratio compares both sides on the same
prefix; the compiled side's rate on the full workload is printed beside it. Compiled runs are timed as
the best of three. Absolute times on a shared machine are noise; the ratios are the result.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))  # reference trace builders

from sieve.dram import Device  # noqa: E402
from sieve.dram.requests import Trace, map_addresses, run_requests  # noqa: E402
from sieve.dram.device import StreamSession  # noqa: E402
from sieve.dram.tracegen import generate, write_trace  # noqa: E402
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
    engine_floor(device, trace, res.wall_s)


def engine_floor(device: Device, trace: Trace, loop_s: float) -> None:
    """The timing engine's share of a request-mode loop: the commands it issued for `trace`, executed
    again in the same order per channel by the stream executor, which only checks and applies the timing
    rules (no choosing). The loop can be no faster than this floor."""
    _, log = run_requests(device, trace, log=True)
    addr = np.where(log.addr < 0, 0, log.addr)  # levels below a command's scope do not matter to it
    _, dt = timed(lambda: device.execute(log.cmd, addr, log.row, log.col, log=False), repeat=3)
    print(f"  its {len(log.cmd):,} commands ({len(log.cmd) / len(trace):.2f} a request) through the stream "
          f"executor {dt:.2f} s = {len(trace) / dt / 1e6:.2f} M requests/s: the loop takes x{loop_s / dt:.2f} "
          f"the timing engine's floor")


# Ramulator 2.1 (g++ -O3, one thread) on the project's 2-core VM, 2026-11-30, HBM3 6400
# (../shared/golden/ramulator_hbm3.md, "Speed of the reference"): (loop s, process s) per trace and refresh
# mode, 2,097,152 requests (65,536 for conflict).
REFERENCE_S = {
    ("seq", "off"): (15.70, 15.99), ("seq", "allbank"): (11.25, 11.51),
    ("random", "off"): (20.48, 20.85), ("random", "allbank"): (23.91, 24.34),
    ("conflict", "off"): (19.53, 19.58), ("conflict", "allbank"): (20.86, 20.90),
}
REFERENCE_N = {"seq": 2_097_152, "random": 2_097_152, "conflict": 65_536}
# The same, on the traces with writes (best of three runs; scripts/ramulator_write_traces.py rebuilds them).
REFERENCE_WRITES_S = {
    ("wr_only_seq", "off"): (0.56, 0.60), ("wr_only_seq", "allbank"): (0.53, 0.57),
    ("rw_alternate_2banks", "off"): (1.64, 1.67), ("rw_alternate_2banks", "allbank"): (1.93, 1.98),
    ("rw25_random_1MiB", "off"): (0.68, 0.74), ("rw25_random_1MiB", "allbank"): (0.69, 0.75),
}
ROOT = Path(__file__).resolve().parent.parent


def _cli(args: list[str], repeat: int = 1) -> tuple[float, float]:
    """Best wall and CPU seconds of a `python` subprocess running from this checkout, as a user runs it:
    with Python's bytecode cache (an environment that switches the cache off compiles every module of
    the checkout at each start; the first run writes the cache)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    best_wall = best_cpu = float("inf")
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, env=env, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        best_wall, best_cpu = min(best_wall, wall), min(best_cpu, cpu)
    return best_wall, best_cpu


def bench_ramulator(device: Device, tmp: Path) -> None:
    for (kind, refresh), (ref_loop, ref_process) in REFERENCE_S.items():
        n = REFERENCE_N[kind]
        path = tmp / f"{kind}.trace"
        if not path.exists():
            write_trace(path, kind, n, device)
        res = min((run_requests(device, path, refresh=refresh) for _ in range(2)), key=lambda r: r.wall_s)
        wall, cpu = _cli(["-m", "sieve.dram", str(path), "--refresh", refresh, "--json"], repeat=3)
        print(f"vs Ramulator {kind:<8} {refresh:<7} {n:>9,} requests  loop {res.wall_s:6.2f} s = "
              f"{n / res.wall_s / 1e6:5.2f} M/s x{ref_loop / res.wall_s:5.1f}   "
              f"CLI {wall:6.2f} s (CPU {cpu:5.2f}) x{ref_process / wall:5.1f}")


def bench_ramulator_writes(device: Device, tmp: Path) -> None:
    import ramulator_write_traces as writes

    paths = {p.stem: p for p in writes.write_all(tmp / "writes")}
    for (name, refresh), (ref_loop, ref_process) in REFERENCE_WRITES_S.items():
        trace = paths[name]
        res = min((run_requests(device, trace, refresh=refresh) for _ in range(3)), key=lambda r: r.wall_s)
        deep = min((run_requests(device, trace, refresh=refresh, queue_size=256) for _ in range(3)),
                   key=lambda r: r.wall_s)
        wall, cpu = _cli(["-m", "sieve.dram", str(trace), "--refresh", refresh, "--json"], repeat=3)
        print(f"vs Ramulator {name:<19} {refresh:<7} {res.requests:>7,} requests  loop {res.wall_s:6.3f} s = "
              f"{res.requests / res.wall_s / 1e6:5.2f} M/s x{ref_loop / res.wall_s:5.1f}   "
              f"CLI {wall:5.2f} s (CPU {cpu:5.2f}) x{ref_process / wall:5.1f}   "
              f"[256-entry queues: loop {deep.wall_s:6.3f} s]")


def bench_log(device: Device, n: int) -> None:
    cmds = np.tile(device.cmd_ids(["ACT", "RD", "PRE"]), n // 3 + 1)[:n]
    addr = np.zeros((n, len(device.standard.levels)), dtype=np.int64)
    addr[:, -1] = (np.arange(n) // 3) % device.standard.fanout[-1]
    session = StreamSession(device, log=True)
    _, sim = timed(lambda: session.run(cmds, addr))
    log, dt = timed(session.engine.log, repeat=3)
    assert len(log[0]) == n
    print(f"engine.log()      {n:>9,} commands  {dt:8.3f} s   = {dt / sim:.2f}x the time to simulate them ({sim:.3f} s)")


def bench_startup(tmp: Path) -> None:
    trace = tmp / "ten.trace"
    trace.write_text("".join(f"{'ST' if i % 3 == 2 else 'LD'} {i * 4096:#x}\n" for i in range(10)))
    import aim_reference_traces as refs

    aim = tmp / "ten_aim.csv"
    aim.write_text(refs.MICRO["micro_macab_1024_16banks.csv"](7))  # header, 7 MACs, EOC: 10 lines
    numpy_wall, numpy_cpu = _cli(["-c", "import numpy"], repeat=5)
    print(f"start-up          python -c 'import numpy'      {numpy_wall:5.2f} s wall  {numpy_cpu:5.2f} s CPU")
    for label, args in (("python -m sieve.dram", ["-m", "sieve.dram", str(trace)]),
                        ("python -m sieve.pim ", ["-m", "sieve.pim", str(aim)])):
        wall, cpu = _cli(args, repeat=5)
        print(f"start-up          {label} (10 lines) {wall:5.2f} s wall  {cpu:5.2f} s CPU")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller workloads")
    ap.add_argument("--ramulator", action="store_true", help="also the 2M-request traces against Ramulator 2.1")
    args = ap.parse_args()
    hbm3 = Device("hbm3")
    rows = 40 if args.quick else 400
    n_seq = 2_097_152 // (8 if args.quick else 1)
    print(f"sieve DRAM speed (one core), standard {hbm3.standard.name}")
    bench_stream(hbm3, rows, prefix=3_000)
    bench_requests(hbm3, "seq", generate("seq", n_seq, hbm3), prefix=3_000)
    bench_requests(hbm3, "random", generate("random", n_seq // 2, hbm3, seed=1), prefix=1_000)
    bench_log(hbm3, 1_000_000 // (8 if args.quick else 1))
    with tempfile.TemporaryDirectory() as tmp:
        bench_startup(Path(tmp))
        if args.ramulator:
            bench_ramulator(hbm3, Path(tmp))
            bench_ramulator_writes(hbm3, Path(tmp))


if __name__ == "__main__":
    main()
