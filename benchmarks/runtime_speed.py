"""Speed of the runtime: the main command and the whole fig9 sweep, against their budgets.

    python benchmarks/runtime_speed.py [--skip-sweep] [--against REV [--rounds N]]

* ``python -m sieve.run +hw=aim +model=deepseek`` (default workload: B=64, 8 decode steps, 8 GPUs), run
  as the user runs it, in a fresh process; budget 60 s.
* ``python -m sieve.reproduce fig9`` for Qwen3-30B-A3B, GPT-OSS-120B and Qwen3.5-397B-A17B (5 schedulers x
  9 batch sizes each, all cores), from empty caches; budget 10 minutes.

Each line prints the time as a fraction of its budget (a ratio: below 1 is within budget), and the rate of
simulated layer-steps per second of one in-process run against a re-run of the same configuration with
warm caches (how much of a run is first-time cycle-level simulation).

``--against REV`` instead times the runtime of this checkout against the one of git revision ``REV`` (checked
out into a temporary worktree that borrows this checkout's compiled core, so the two must have the same
``sieve/_core`` sources): several configurations, each run once to warm the caches and then timed as the best
of five warm runs in CPU seconds of the process (a run is single-threaded; wall time on a shared machine also
counts the time other processes held the cores), this checkout and ``REV`` alternating for ``--rounds``
rounds per configuration (the best of each side kept, so a burst of load falls on both); it prints this/REV.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def timed(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


CONFIGS = [
    ["+hw=aim", "+model=deepseek", "workload.decode_steps=2"],
    ["+hw=aim", "+model=deepseek", "sub_batches=2", "workload.decode_steps=2"],
    ["+hw=aim", "+model=gpt_oss_120b", "num_gpus=4", "workload.batch_size=256"],
    ["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload=mixed"],
]

_WARM_TIMER = """
import sys, time
sys.path.insert(0, sys.argv[1])
import sieve.runtime as rt
assert rt.__file__.startswith(sys.argv[1]), rt.__file__
sim = rt.simulation_from_config(rt.compose([*sys.argv[2:], "progress=false"]))
sim.run()  # fills the cycle-level caches
runs = []
for _ in range(5):
    t0 = time.process_time()
    sim.run()
    runs.append(time.process_time() - t0)
print(min(runs))
"""


def against(rev: str, rounds: int = 2) -> None:
    """This checkout's runtime against revision ``rev``'s, warm, configuration by configuration."""
    import shutil

    here = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        other = Path(tmp) / "other"
        subprocess.run(["git", "-C", str(here), "worktree", "add", "--detach", str(other), rev], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for so in (here / "sieve" / "_core").glob("*.so"):
                shutil.copy2(so, other / "sieve" / "_core" / so.name)

            def warm(root: Path, overrides: list[str]) -> float:
                out = subprocess.run([sys.executable, "-c", _WARM_TIMER, str(root), *overrides], check=True,
                                     capture_output=True, text=True, cwd=tmp).stdout
                return float(out.split()[-1])

            for overrides in CONFIGS:
                a = b = float("inf")
                for _ in range(rounds):
                    a, b = min(a, warm(here, overrides)), min(b, warm(other, overrides))
                print(f"{' '.join(overrides[1:]):60s} this/{rev}: {a / b:.2f}  ({a:.3f} s against {b:.3f} s CPU)",
                      flush=True)
        finally:
            subprocess.run(["git", "-C", str(here), "worktree", "remove", "--force", str(other)], check=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-sweep", action="store_true")
    parser.add_argument("--against", metavar="REV", help="time this runtime against git revision REV's instead")
    parser.add_argument("--rounds", type=int, default=2, help="--against: alternating rounds per configuration")
    args = parser.parse_args()
    if args.against:
        return against(args.against, args.rounds)
    with tempfile.TemporaryDirectory() as tmp:
        t = timed([sys.executable, "-m", "sieve.run", "+hw=aim", "+model=deepseek", "output.plots=true",
                   f"hydra.run.dir={tmp}/run"], tmp)
        print(f"sieve.run deepseek          {t:7.1f} s   {t / 60:.2f} of the 60 s budget")

        import sieve.runtime as rt

        cfg = rt.compose(["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=64",
                          "progress=false"])
        t0 = time.perf_counter()
        rt.simulate(cfg)
        cold = time.perf_counter() - t0
        t0 = time.perf_counter()
        rt.simulate(cfg)
        warm = time.perf_counter() - t0
        print(f"qwen3_30b B=64 in-process   cold {cold:.2f} s, warm {warm:.2f} s: cold/warm x{cold / warm:.1f}")
        if args.skip_sweep:
            return
        total = 0.0
        for model in ("qwen3_30b_a3b", "gpt_oss_120b", "qwen3_5_397b_a17b"):
            t = timed([sys.executable, "-m", "sieve.reproduce", "fig9", "--model", model, "--out", f"{tmp}/fig9"], tmp)
            total += t
            print(f"fig9 {model:22s} {t:7.1f} s")
        print(f"fig9, three models          {total:7.1f} s   {total / 600:.2f} of the 10 min budget")


if __name__ == "__main__":
    main()
