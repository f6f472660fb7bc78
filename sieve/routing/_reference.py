"""Plain NumPy implementations, used as the independent oracle in tests and the speed baseline.

Sampling k distinct experts with probabilities proportional to p (one after another, renormalising
over the experts not yet picked) is the same law as taking the k largest ``log p + Gumbel`` keys
(the Gumbel-top-k trick), which vectorises over a whole batch.
"""

from __future__ import annotations

import numpy as np


def route_numpy(rank_prob: np.ndarray, perm: np.ndarray, batch_size: int, steps: int, k: int,
                drift: float, rng: np.random.Generator) -> np.ndarray:
    layers, num_experts = rank_prob.shape
    perm = perm.copy()
    log_p = np.log(rank_prob)
    out = np.empty((steps, layers, batch_size, k), dtype=np.int32)
    for s in range(steps):
        if s > 0 and drift > 0.0:
            for layer in range(layers):
                for r in np.flatnonzero(rng.random(num_experts) < drift):
                    j = rng.integers(num_experts)
                    perm[layer, r], perm[layer, j] = perm[layer, j], perm[layer, r]
        keys = log_p[:, None, :] + rng.gumbel(size=(layers, batch_size, num_experts))
        top_ranks = np.argpartition(-keys, k - 1, axis=-1)[..., :k]
        out[s] = np.take_along_axis(perm[:, None, :], top_ranks, axis=-1)
    return out


def counts_numpy(routing: np.ndarray, num_experts: int) -> np.ndarray:
    steps, layers = routing.shape[:2]
    flat = routing.reshape(steps * layers, -1)
    out = np.zeros((steps * layers, num_experts), dtype=np.int64)
    for row in range(flat.shape[0]):
        out[row] = np.bincount(flat[row], minlength=num_experts)
    return out.reshape(steps, layers, num_experts)
