"""Expert picks per second: the Numba routing generator against plain NumPy, in one process.

    python benchmarks/routing_speed.py [--model qwen3_next_80b_a3b] [--batch 256] [--steps 200]

Both sides draw the same law (successive sampling of top-k distinct experts, see
sieve.routing._reference); NumPy uses the vectorised Gumbel-top-k trick. Times are the best of
several repeats after a warm-up, so JIT compilation is not counted.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import sieve.model as model
import sieve.routing as routing
from sieve.routing._reference import route_numpy


def best_of(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="qwen3_next_80b_a3b")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    spec = model.load(args.model)
    chosen = routing.preset(spec.name)
    picks = args.steps * spec.num_moe_layers * args.batch * spec.top_k

    routing.generate(spec, args.batch, 1, seed=0)  # compile (or load the cache) first
    numba_s = best_of(lambda: routing.generate(spec, args.batch, args.steps, seed=1), args.repeats)

    rng = np.random.default_rng(1)
    prob = routing.rank_probabilities(chosen.family, chosen.params, spec.num_experts, spec.num_moe_layers, rng)
    perm = np.argsort(rng.random(prob.shape), axis=1)
    numpy_steps = max(1, args.steps // 10)  # NumPy is slow; time fewer steps and scale per pick
    numpy_picks = numpy_steps * spec.num_moe_layers * args.batch * spec.top_k
    numpy_s = best_of(lambda: route_numpy(prob, perm, args.batch, numpy_steps, spec.top_k, chosen.drift,
                                          np.random.default_rng(1)), max(1, args.repeats // 2))

    numba_rate, numpy_rate = picks / numba_s, numpy_picks / numpy_s
    print(f"model {spec.name}: {spec.num_experts} experts, top-{spec.top_k}, {spec.num_moe_layers} MoE layers; "
          f"B={args.batch}; preset {chosen.family} {chosen.params}, drift {chosen.drift}")
    print(f"numba  {numba_rate / 1e6:8.1f} M expert picks/s  ({picks:,} picks in {numba_s:.3f} s)")
    print(f"numpy  {numpy_rate / 1e6:8.1f} M expert picks/s  ({numpy_picks:,} picks in {numpy_s:.3f} s)")
    print(f"ratio  {numba_rate / numpy_rate:8.1f} x")


if __name__ == "__main__":
    main()
