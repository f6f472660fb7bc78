"""Cost of energy accounting as a fraction of the run it accounts for, both timed in this process.

    python benchmarks/energy_speed.py [--quick]

* Request mode: a streaming HBM3 trace (2,097,152 loads, the reference figures' trace; 262,144 with
  ``--quick``) through ``run_requests``, against the energy accounting of its result: per-bank energy
  from the bank table's command counts and open times, and the totals by command.
* Runtime: warm decode runs (Qwen3-30B-A3B on its paper machine, sched=sieve, B=64; DeepSeek-V3 on 8 GPUs,
  2 steps) with the run's energy accounting (every placed task's FLOPs, bytes and PIM commands summed as its
  duration is asked, :func:`sieve.system.run_energy` of the totals) against the same runs with it switched
  off, alternating, best of five each.

Request mode takes the best of three runs per side. The ratios (accounting / run) are the result, and must
stay below 10%.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sieve.dram import Device  # noqa: E402
from sieve.dram.energy import bank_energy, energy_summary, load_energy  # noqa: E402
from sieve.dram.requests import run_requests  # noqa: E402
from sieve.dram.tracegen import generate  # noqa: E402

BUDGET = 0.10


def best(fn, repeat: int = 3):
    wall, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        wall = min(wall, time.perf_counter() - t0)
    return out, wall


def request_mode(n: int) -> tuple[str, float, float]:
    dev = Device("hbm3")
    std = dev.standard
    trace = generate("seq", n, dev)
    result, run_s = best(lambda: run_requests(dev, trace))
    bank = result.bank
    counts = bank[list(std.command_names)].to_numpy()
    open_ns = bank["open_ck"].to_numpy() * std.tCK_ns
    elapsed_ns = result.cycles_ck * std.tCK_ns

    def account():
        energy = load_energy(std)
        table = bank_energy(energy, counts, open_ns, elapsed_ns)
        bank[list(table.columns)] = table.to_numpy()
        return energy_summary(energy, std, bank, result.reads * std.column_bytes * 8)

    return f"request mode, {n} sequential loads", run_s, best(account)[1]


RUNTIME_CONFIGS = {
    "Qwen3-30B-A3B B=64, 1 GPU": ["+experiment=paper_qwen3_30b_a3b", "sched=sieve", "workload.batch_size=64"],
    "DeepSeek-V3 B=64, 8 GPUs, 2 steps": ["+hw=aim", "+model=deepseek", "workload.decode_steps=2"],
}


def runtime(label: str, overrides: list[str], repeat: int = 5) -> tuple[str, float, float]:
    """A warm run with its energy accounting (every task's work summed, run_energy at the end) against the same
    run with the accounting switched off, alternating; returns (label, run without, extra seconds with)."""
    import sieve.runtime as rt
    from sieve.runtime import costs, result, work

    sim = rt.simulation_from_config(rt.compose([*overrides, "progress=false", "output.timeline=false"]))
    sim.run()  # fills the cycle-level caches
    accounted = dict(work.TASK_WORK)
    plain = {"gpu": work.RunWork.gpu, "pim": work.RunWork.pim, "energy_summary": result.energy_summary}
    off = {"gpu": lambda self, w: None, "pim": lambda self, key, commands, times=1: None,
           "energy_summary": lambda hw, totals: {}}

    def timed(on: bool) -> float:
        costs.TASK_WORK.update(accounted if on else dict.fromkeys(accounted, work._nothing))
        source = plain if on else off
        work.RunWork.gpu, work.RunWork.pim = source["gpu"], source["pim"]
        result.energy_summary = source["energy_summary"]
        t0 = time.perf_counter()
        sim.run()
        return time.perf_counter() - t0

    with_s, without_s = float("inf"), float("inf")
    try:
        for _ in range(repeat):
            with_s, without_s = min(with_s, timed(True)), min(without_s, timed(False))
    finally:
        costs.TASK_WORK.update(accounted)
        work.RunWork.gpu, work.RunWork.pim = plain["gpu"], plain["pim"]
        result.energy_summary = plain["energy_summary"]
    return f"runtime, {label} (warm)", without_s, max(with_s - without_s, 0.0)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    ratios = []
    cases = [request_mode(262_144 if args.quick else 2_097_152),
             *(runtime(label, overrides) for label, overrides in RUNTIME_CONFIGS.items())]
    for label, run_s, energy_s in cases:
        ratios.append(energy_s / run_s)
        print(f"{label}: run {run_s:.3f} s, energy accounting {energy_s * 1e3:.2f} ms, ratio {ratios[-1]:.4f}")
    worst = max(ratios)
    print(f"worst ratio {worst:.4f} (budget {BUDGET})")
    return 0 if worst < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
