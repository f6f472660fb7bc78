"""Token-to-expert counts and the statistics the Sieve paper reports about them."""

from __future__ import annotations

import math
import numbers

import numpy as np

from sieve.model import ModelSpec
from sieve.routing._kernels import _count
from sieve.routing.families import RoutingError

COUNT_DTYPE = np.int32


def check_routing(routing: np.ndarray, num_experts: int) -> np.ndarray:
    """Validate a routing array [steps, layers, tokens, k] against ``num_experts``."""
    if isinstance(num_experts, bool) or not isinstance(num_experts, numbers.Integral) or num_experts <= 0:
        raise RoutingError(f"num_experts={num_experts!r} is invalid; allowed: an integer >= 1")
    routing = np.asarray(routing)
    if routing.ndim != 4:
        raise RoutingError(f"routing must have shape [steps, layers, tokens, k]; got {routing.ndim} dims "
                           f"{routing.shape}")
    if not np.issubdtype(routing.dtype, np.integer):
        raise RoutingError(f"routing must hold integer expert ids, got dtype {routing.dtype}")
    if routing.size:
        lo, hi = int(routing.min()), int(routing.max())
        if lo < 0 or hi >= num_experts:
            bad = lo if lo < 0 else hi
            raise RoutingError(f"expert id {bad} is out of range; allowed: 0..{num_experts - 1} "
                               f"(num_experts={num_experts})")
    return routing


def expert_counts(routing: np.ndarray, num_experts: int) -> np.ndarray:
    """Tokens per expert: int32 [steps, layers, num_experts] from routing [steps, layers, tokens, k]."""
    routing = check_routing(routing, num_experts)
    out = np.zeros(routing.shape[:2] + (int(num_experts),), dtype=COUNT_DTYPE)
    _count(np.ascontiguousarray(routing), int(num_experts), out)
    return out


def stats(counts: np.ndarray, model: ModelSpec | None = None) -> dict[str, float | None]:
    """Statistics of token-to-expert counts ``[..., num_experts]`` (e.g. [steps, layers, E]).

    Fractions of *activated* experts (pooled over all steps and layers) with exactly 1, exactly 2,
    3-4 and more than 4 tokens (the paper's bins; ``frac_le4`` is the first three together);
    ``active_fraction``: mean share of experts with at least one token; ``top10_share``: share of
    tokens that go to the busiest 10% of experts (rounded up) of their layer and step; ``gini``:
    mean Gini coefficient of the per-expert counts; ``act_ratio``: activated / total parameters
    given the mean number of active experts per layer (needs ``model`` and counts shaped
    [..., num_moe_layers, E]; None without a model); ``layer_active_fraction``: the median over layers
    (axis -2) of each layer's mean share of experts with at least one token (None for 1-d counts).
    """
    counts = np.asarray(counts)
    if counts.ndim < 1 or counts.shape[-1] == 0:
        raise RoutingError(f"counts must have shape [..., num_experts], got {counts.shape}")
    if not np.issubdtype(counts.dtype, np.integer):
        raise RoutingError(f"counts must be integers, got dtype {counts.dtype}")
    if counts.size and counts.min() < 0:
        raise RoutingError(f"counts must be >= 0, found {int(counts.min())}")
    num_experts = counts.shape[-1]
    rows = counts.reshape(-1, num_experts).astype(np.int64)
    active = rows > 0
    n_active = int(active.sum())
    if n_active == 0:
        raise RoutingError("no expert received a token; statistics of activated experts are undefined")
    n1, n2 = int((rows == 1).sum()), int((rows == 2).sum())
    n34 = int(((rows >= 3) & (rows <= 4)).sum())
    ordered = np.sort(rows, axis=1)
    totals = rows.sum(axis=1)
    n_top = max(1, math.ceil(0.1 * num_experts))
    top10 = float(ordered[:, -n_top:].sum() / totals.sum())
    used = totals > 0
    i = np.arange(1, num_experts + 1)
    gini_rows = (2.0 * (ordered[used] * i).sum(axis=1)) / (num_experts * totals[used]) - \
        (num_experts + 1.0) / num_experts
    act_ratio = None
    if model is not None:
        if counts.ndim < 2 or counts.shape[-2:] != (model.num_moe_layers, model.num_experts):
            raise RoutingError(
                f"act_ratio needs counts shaped [..., {model.num_moe_layers}, {model.num_experts}] "
                f"for {model.name}, got {counts.shape}")
        per_layer = (counts > 0).sum(axis=-1).reshape(-1, model.num_moe_layers).mean(axis=0)
        act_ratio = model.act_ratio(per_layer)
    layer_active = None
    if counts.ndim >= 2:
        per_layer = (counts > 0).mean(axis=-1).reshape(-1, counts.shape[-2]).mean(axis=0)
        layer_active = float(np.median(per_layer))
    return {
        "frac_1": n1 / n_active,
        "frac_2": n2 / n_active,
        "frac_3_4": n34 / n_active,
        "frac_gt4": (n_active - n1 - n2 - n34) / n_active,
        "frac_le4": (n1 + n2 + n34) / n_active,
        "active_fraction": float(active.mean()),
        "top10_share": top10,
        "gini": float(gini_rows.mean()),
        "act_ratio": act_ratio,
        "layer_active_fraction": layer_active,
    }
