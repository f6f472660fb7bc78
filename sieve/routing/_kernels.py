"""Numba kernels behind :mod:`sieve.routing`. Private: callers go through the validating wrappers.

Kernels fill arrays the wrappers allocate and draw randomness only through ``rng.random()``, which
Numba maps onto the same bit generator as NumPy; the same seed therefore gives the same routing
with or without ``NUMBA_DISABLE_JIT``.
"""

import numpy as np
from numba import njit

# Rejections in a row before a pick falls back to an exact scan over the remaining experts.
# Rejection is exact too; the cap only bounds the time spent when a few picked experts hold
# nearly all of the probability mass.
_MAX_REJECTIONS = 64


@njit(cache=True)
def _route(rng, alias_prob, alias_index, rank_prob, perm, drift, out):
    """Fill ``out[step, layer, token, :]`` with distinct experts.

    Per layer, ``rank_prob[layer, r]`` is the probability of popularity rank ``r`` (alias tables
    ``alias_prob``/``alias_index`` sample it in O(1)) and ``perm[layer, r]`` is the expert holding
    rank ``r``; ``perm`` is updated in place as ranks drift between steps. A token's k experts are
    drawn one after another from the ranks it has not yet picked, each with probability
    proportional to ``rank_prob`` (successive sampling without replacement).
    """
    steps, layers, tokens, k = out.shape
    num_experts = rank_prob.shape[1]
    # taken[r] == stamp marks rank r as already picked by the current token; a fresh stamp per
    # token clears the marks without touching the array.
    taken = np.full(num_experts, -1, dtype=np.int64)
    stamp = 0
    for s in range(steps):
        for layer in range(layers):
            if s > 0 and drift > 0.0:
                for r in range(num_experts):
                    if rng.random() < drift:
                        j = int(rng.random() * num_experts)
                        tmp = perm[layer, r]
                        perm[layer, r] = perm[layer, j]
                        perm[layer, j] = tmp
            for t in range(tokens):
                stamp += 1
                remaining = 1.0
                n = 0
                rejections = 0
                while n < k:
                    if rejections < _MAX_REJECTIONS:
                        u = rng.random() * num_experts
                        r = int(u)
                        if u - r >= alias_prob[layer, r]:
                            r = alias_index[layer, r]
                        if taken[r] == stamp:
                            rejections += 1
                            continue
                    else:
                        target = rng.random() * remaining
                        r = -1
                        last = -1
                        for c in range(num_experts):
                            if taken[c] == stamp or rank_prob[layer, c] <= 0.0:
                                continue
                            last = c
                            target -= rank_prob[layer, c]
                            if target < 0.0:
                                r = c
                                break
                        if r < 0:  # rounding left a sliver of mass past the last rank
                            r = last
                    taken[r] = stamp
                    remaining -= rank_prob[layer, r]
                    out[s, layer, t, n] = perm[layer, r]
                    n += 1
                    rejections = 0


@njit(cache=True)
def _alias(prob, alias_prob, alias_index):
    """Walker/Vose alias tables for each row of ``prob`` (filled into the two output arrays).

    Column ``c`` keeps itself with probability ``alias_prob[c]`` and otherwise yields
    ``alias_index[c]``; a uniform column plus that coin reproduces the row's distribution.
    """
    layers, n = prob.shape
    scaled = np.empty(n)
    small = np.empty(n, dtype=np.int64)
    large = np.empty(n, dtype=np.int64)
    for layer in range(layers):
        n_small = 0
        n_large = 0
        for i in range(n):
            scaled[i] = prob[layer, i] * n
            alias_prob[layer, i] = 1.0
            alias_index[layer, i] = i
            if scaled[i] < 1.0:
                small[n_small] = i
                n_small += 1
            else:
                large[n_large] = i
                n_large += 1
        while n_small > 0 and n_large > 0:
            n_small -= 1
            lo = small[n_small]
            n_large -= 1
            hi = large[n_large]
            alias_prob[layer, lo] = scaled[lo]
            alias_index[layer, lo] = hi
            scaled[hi] = scaled[hi] + scaled[lo] - 1.0
            if scaled[hi] < 1.0:
                small[n_small] = hi
                n_small += 1
            else:
                large[n_large] = hi
                n_large += 1
        # Columns left on either list hold 1 up to rounding and keep themselves (set above).


@njit(cache=True)
def _count(routing, num_experts, out):
    """``out[step, layer, e]`` = number of tokens whose picks include expert ``e``."""
    steps, layers, tokens, k = routing.shape
    for s in range(steps):
        for layer in range(layers):
            for t in range(tokens):
                for j in range(k):
                    out[s, layer, routing[s, layer, t, j]] += 1
