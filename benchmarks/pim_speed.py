"""Speed of PIM simulation: command generation + execution, and one DeepSeek-V3 decode step.

    python benchmarks/pim_speed.py

* Commands/s of generating expert GEMV streams (Numba) and of executing them on the cycle-level engine,
  against the tests' reference timing model on a prefix of the same stream (ratio, same process).
* All PIM work of one DeepSeek-V3 decode step on one GPU of the ``aim`` system: 58 MoE layers, B=256
  (top-8 of 256 experts, Zipf routing), every routed expert on PIM, and decode attention on PIM at a
  2,048-token context, simulated from cold caches. Aim: under 2 s on one core.
* AiM instruction traces (``--aim``): commands/s of ``run_aim_trace(text, device, log=False)`` on the
  repository's micro traces (``scripts/aim_reference_traces.py``, full size) on ``gddr6_aim``. The timed
  call is the whole of what a user gets from a trace held in memory: reading the text, unrolling and
  executing every line, and the complete result (cycles, command and instruction counts, the per-channel
  tables and energy); only the command log is off (``log=False``), as in ``python -m sieve.pim`` without
  ``--check``. Commands counted are those the device issued (inserted ACT/PRE/TMOD included).
  *Cold* is the first call on a freshly made ``Device``: it also resolves the standard's timing tables
  and builds what every later run on that device reuses (command ids, latencies, the executor's
  per-opcode tables, energy data), as a single call from a script pays. *Warm* is later calls on the
  same device, as repeated calls or a sweep see them: the best of several and their median, in wall
  time, and the best in CPU time of the calling thread (what the run costs when other processes share
  the cores; NumPy's BLAS threads are not counted). Each trace gets the same time budget, up to 400
  calls: a shared VM has slow phases of about a second, and a short trace's best of a few calls would
  fall inside one. The Python runner (``fast=False``, the compiled executor's oracle) runs once on the same device for the
  ratio. Aim: 8 M commands/s warm.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import sieve.hw as hwmod  # noqa: E402
import sieve.model as modelmod  # noqa: E402
import sieve.routing as routing  # noqa: E402
from sieve.pim import attention, expert  # noqa: E402
from sieve.pim import attention_time, expert_time  # noqa: E402
from sieve.pim.expert import expert_slices  # noqa: E402
from sieve.trace.gemv import PIMGeometry, gemv_stream  # noqa: E402
from tests.dram.oracle import run_stream  # noqa: E402


def clear_caches() -> None:
    expert._cached.cache_clear()
    expert._simulated.cache_clear()
    expert.expert_slices.cache_clear()
    attention._phase.cache_clear()


def bench_streams(hw, model) -> None:
    geom = PIMGeometry.of(hw)
    up, _ = expert_slices(hw, model, 8)
    gemv_stream(geom, up)  # compile
    t0 = time.perf_counter()
    cmds, rows, cols = gemv_stream(geom, up, repeat=256)
    gen = time.perf_counter() - t0
    dev = hw.pim_device
    addr = np.zeros((len(cmds), len(dev.standard.levels)), dtype=np.int64)
    t0 = time.perf_counter()
    dev.session(log=False).run(cmds, addr, rows, cols, auto_prereq=True)
    run = time.perf_counter() - t0
    prefix = 1500
    names = dev.standard.command_names
    stream = [(names[c], tuple(a), int(r), int(cc)) for c, a, r, cc in zip(cmds[:prefix], addr[:prefix], rows[:prefix],
                                                                         cols[:prefix])]
    t0 = time.perf_counter()
    run_stream(dev.standard, stream, auto_prereq=True)
    ref = time.perf_counter() - t0
    t0 = time.perf_counter()
    dev.session(log=False).run(cmds[:prefix], addr[:prefix], rows[:prefix], cols[:prefix], auto_prereq=True)
    fast = time.perf_counter() - t0
    n = len(cmds)
    print(f"expert GEMV streams ({model.name}, {n:,} commands): generate {n / gen / 1e6:.1f} M commands/s, "
          f"execute {n / run / 1e6:.1f} M commands/s, together {n / (gen + run) / 1e6:.1f} M commands/s; "
          f"execution x{ref / fast:,.0f} the reference model (same {prefix:,}-command prefix)")


def bench_decode_step(hw, model, batch: int = 256, context: int = 2048) -> None:
    routes = routing.generate(model, batch, 1, family="zipf", seed=0, s=1.0)
    counts = routing.expert_counts(routes, model.num_experts)[0]
    clear_caches()
    t0 = time.perf_counter()
    expert_s = 0.0
    for layer_counts in counts:
        active = layer_counts[layer_counts > 0]
        values, mult = np.unique(active, return_counts=True)
        expert_s += sum(m * expert_time(hw, model, int(v)) for v, m in zip(values, mult))
    t_experts = time.perf_counter() - t0
    t1 = time.perf_counter()
    attn_s = sum(attention_time(hw, model, layer, np.full(batch, context)) for layer in range(model.num_layers))
    t_attn = time.perf_counter() - t1
    print(f"DeepSeek-V3 decode step, B={batch}, one GPU, all on PIM: {len(counts)} MoE layers, "
          f"{int((counts > 0).sum()):,} expert runs -> {expert_s * 1e3:.2f} ms of expert time simulated in "
          f"{t_experts:.2f} s; attention at {context} tokens -> {attn_s * 1e3:.2f} ms simulated in {t_attn:.2f} s; "
          f"total {t_experts + t_attn:.2f} s wall")


def _timed(call) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = call()
    return time.perf_counter() - t0, out


def _timed_cpu(call) -> tuple[float, float]:
    """Wall and calling-thread CPU seconds of `call()`."""
    c0, t0 = time.thread_time(), time.perf_counter()
    call()
    return time.perf_counter() - t0, time.thread_time() - c0


def bench_aim_traces(budget_s: float = 0.6, max_runs: int = 400) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    import aim_reference_traces as refs

    from sieve.dram import Device
    from sieve.pim.aim_trace import run_aim_trace

    standard = hwmod.load("gddr6_aim").pim_device.standard
    print("AiM traces on gddr6_aim, run_aim_trace(text, device, log=False); M commands/s: warm best (median) "
          "wall, warm best CPU, cold first call on a new Device; the Python runner once")
    for name, make in refs.MICRO.items():
        text = make(refs.FULL_ROWS)
        dev = Device(standard)
        cold, res = _timed(lambda: run_aim_trace(text, dev, log=False))
        warm, cpu = [], []
        while len(warm) < 3 or (sum(warm) < budget_s and len(warm) < max_runs):
            wall_s, cpu_s = _timed_cpu(lambda: run_aim_trace(text, dev, log=False))
            warm.append(wall_s)
            cpu.append(cpu_s)
        slow, _ = _timed(lambda: run_aim_trace(text, dev, log=False, fast=False))
        n = sum(res.commands.values())
        best, median = min(warm), float(np.median(warm))
        print(f"  {name:<40} {n:>10,} commands  warm {n / best / 1e6:6.2f} ({n / median / 1e6:5.2f}) M/s "
              f"[{best * 1e3:7.2f} ms]  CPU {n / min(cpu) / 1e6:6.2f} M/s  cold {n / cold / 1e6:6.2f} M/s "
              f"[{cold * 1e3:7.2f} ms]  Python runner {n / slow / 1e6:5.2f} M/s (x{slow / best:5.1f})")


def main() -> None:
    if "--aim" in sys.argv[1:]:
        bench_aim_traces()
        return
    hw = hwmod.load("aim")
    model = modelmod.load("deepseek")
    print(f"sieve PIM speed (one core), hardware {hw.name} ({hw.standard.name})")
    bench_streams(hw, model)
    bench_decode_step(hw, model)


if __name__ == "__main__":
    main()
