"""Speed of the runtime: the main command and the whole fig9 sweep, against their budgets.

    python benchmarks/runtime_speed.py [--skip-sweep]

* ``python -m sieve.run +hw=aim +model=deepseek`` (default workload: B=64, 8 decode steps, 8 GPUs), run
  as the user runs it, in a fresh process; budget 60 s.
* ``python -m sieve.reproduce fig9`` for Qwen3-30B-A3B, GPT-OSS-120B and Qwen3.5-397B-A17B (5 schedulers x
  9 batch sizes each, all cores), from empty caches; budget 10 minutes.

Each line prints the time as a fraction of its budget (a ratio: below 1 is within budget), and the rate of
simulated layer-steps per second of one in-process run against a re-run of the same configuration with
warm caches (how much of a run is first-time cycle-level simulation).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time


def timed(cmd: list[str], cwd: str) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-sweep", action="store_true")
    args = parser.parse_args()
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
