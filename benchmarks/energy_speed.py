"""Cost of energy accounting as a fraction of the run it accounts for, both timed in this process.

    python benchmarks/energy_speed.py [--quick]

* Request mode: a streaming HBM3 trace (2,097,152 loads, the reference figures' trace; 262,144 with
  ``--quick``) through ``run_requests``, against the energy accounting of its result: per-bank energy
  from the bank table's command counts and open times, and the totals by command.
* Runtime: one decode run (``+experiment=paper_qwen3_30b_a3b``, sched=sieve, B=64, the default decode
  steps) against its system energy: the PIM command counts of every PIM expert the run placed
  (:func:`sieve.system.energy.pim_expert_commands` over the experts table) and
  :func:`sieve.system.run_energy`.

Each side is the best of three runs; the ratios (accounting / run) are the result, and must stay below 10%.
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


def runtime() -> tuple[str, float, float]:
    import sieve.runtime as rt
    from sieve.system.energy import RunTotals, pim_expert_commands, run_energy

    overrides = ["+experiment=paper_qwen3_30b_a3b", "sched=sieve", "workload.batch_size=64", "progress=false",
                 "output.timeline=false"]
    result, run_s = best(lambda: rt.simulate(overrides), repeat=1)
    hw, model = result.simulation.hw, result.simulation.model
    tokens = result.experts.loc[result.experts["where"] == "pim", "tokens"].to_numpy()

    def account():
        commands = pim_expert_commands(hw, model, tokens)
        s = result.summary
        totals = RunTotals(seconds=s["tpot_s"] * s["decode_steps"], num_gpus=s["num_gpus"],
                           tokens=s["batch_size"] * s["decode_steps"], pim_commands=commands)
        return run_energy(hw, totals)

    return f"runtime, Qwen3-30B-A3B B=64 ({len(tokens)} PIM experts)", run_s, best(account)[1]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    args = p.parse_args()
    ratios = []
    for label, run_s, energy_s in (request_mode(262_144 if args.quick else 2_097_152), runtime()):
        ratios.append(energy_s / run_s)
        print(f"{label}: run {run_s:.3f} s, energy accounting {energy_s * 1e3:.2f} ms, ratio {ratios[-1]:.4f}")
    worst = max(ratios)
    print(f"worst ratio {worst:.4f} (budget {BUDGET})")
    return 0 if worst < BUDGET else 1


if __name__ == "__main__":
    sys.exit(main())
