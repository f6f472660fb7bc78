"""Expert-popularity families: the probability of each popularity rank, per MoE layer.

=================================  ===========================================================
family (parameters)                probability of rank r = 0 .. E-1
=================================  ===========================================================
``uniform``                        1 / E
``zipf(s)``                        proportional to (r + 1) ** -s, s >= 0
``powerlaw(alpha)``                weights drawn per layer from a Pareto law with tail index
                                   alpha > 0 (density ~ x ** -(alpha + 1), x >= 1), sorted;
                                   smaller alpha, heavier tail
``hotcold(hot_fraction, hot_mass)`` round(hot_fraction * E) hot ranks share hot_mass equally,
                                   the rest share 1 - hot_mass
``hotwarmcold(hot_fraction,        three tiers: hot and warm ranks share hot_mass and warm_mass
hot_mass, warm_fraction,           equally within their tier, the remaining (cold) ranks share
warm_mass)``                       1 - hot_mass - warm_mass
``lognormal(sigma)``               proportional to exp(sigma * z_r), z_r the normal quantile at
                                   (E - r - 0.5) / E: popularity spread log-normally, the same
                                   in every layer
``lognormalidle(sigma,             lognormal(sigma) over the first E - round(idle_fraction * E)
idle_fraction)``                   ranks; the last round(idle_fraction * E) ranks are never chosen
                                   (experts a layer's router does not pick in this workload)
=================================  ===========================================================

Which expert holds which rank is a random permutation per layer, so hot experts differ between
layers; ``drift`` moves ranks between decode steps (see :func:`sieve.routing.generate`).
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import Any, Mapping

import numpy as np

from sieve.routing._kernels import _alias


_NORMAL = NormalDist()


class RoutingError(ValueError):
    """Bad input to a routing generator, trace reader or statistic."""


FAMILIES: dict[str, tuple[str, ...]] = {
    "uniform": (),
    "zipf": ("s",),
    "powerlaw": ("alpha",),
    "hotcold": ("hot_fraction", "hot_mass"),
    "hotwarmcold": ("hot_fraction", "hot_mass", "warm_fraction", "warm_mass"),
    "lognormal": ("sigma",),
    "lognormalidle": ("sigma", "idle_fraction"),
}


def _number(family: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise RoutingError(f"{family}: parameter {name}={value!r} must be a number")
    value = float(value)
    if not math.isfinite(value):
        raise RoutingError(f"{family}: parameter {name}={value} must be finite")
    return value


def check_params(family: str, params: Mapping[str, Any]) -> dict[str, float]:
    """Validate a family name and its parameters; return them as floats."""
    if family not in FAMILIES:
        raise RoutingError(f"routing family {family!r} is not known; allowed: {sorted(FAMILIES)}")
    expected = FAMILIES[family]
    unknown = sorted(set(params) - set(expected))
    missing = [p for p in expected if p not in params]
    if unknown or missing:
        raise RoutingError(
            f"{family}: parameters {sorted(params)} do not match; expected exactly {list(expected)}")
    out = {name: _number(family, name, params[name]) for name in expected}
    if family == "zipf" and out["s"] < 0:
        raise RoutingError(f"zipf: s={out['s']} is invalid; allowed: s >= 0")
    if family == "powerlaw" and out["alpha"] <= 0:
        raise RoutingError(f"powerlaw: alpha={out['alpha']} is invalid; allowed: alpha > 0")
    if family in ("lognormal", "lognormalidle") and out["sigma"] < 0:
        raise RoutingError(f"{family}: sigma={out['sigma']} is invalid; allowed: sigma >= 0")
    for name in ("hot_fraction", "hot_mass", "warm_fraction", "warm_mass", "idle_fraction"):
        if name in out and not 0.0 < out[name] < 1.0:
            raise RoutingError(f"{family}: {name}={out[name]} is invalid; allowed: 0 < {name} < 1")
    if family == "hotwarmcold":
        for a, b in (("hot_fraction", "warm_fraction"), ("hot_mass", "warm_mass")):
            if out[a] + out[b] >= 1.0:
                raise RoutingError(f"hotwarmcold: {a} + {b} = {out[a] + out[b]} is invalid; allowed: < 1 "
                                   f"(the cold tier needs experts and mass)")
    return out


def _lognormal(sigma: float, n: int) -> np.ndarray:
    """Weights of ranks 0..n-1 spread log-normally: exp(sigma * z_r), z_r the normal quantile at (n - r - 0.5) / n."""
    quantiles = (n - np.arange(1, n + 1) + 0.5) / n
    z = np.array([_NORMAL.inv_cdf(q) for q in quantiles])
    return np.exp(sigma * (z - z.max()))


def rank_probabilities(family: str, params: Mapping[str, float], num_experts: int, num_layers: int,
                       rng: np.random.Generator) -> np.ndarray:
    """Probabilities of each popularity rank, shape [num_layers, num_experts], rows sum to 1."""
    params = check_params(family, params)
    ranks = np.arange(1, num_experts + 1, dtype=np.float64)
    if family == "uniform":
        row = np.ones(num_experts)
    elif family == "zipf":
        row = ranks ** -params["s"]
    elif family == "lognormal":
        row = _lognormal(params["sigma"], num_experts)
    elif family == "lognormalidle":
        n_idle = min(max(0, round(params["idle_fraction"] * num_experts)), num_experts - 1)
        row = np.zeros(num_experts)
        row[:num_experts - n_idle] = _lognormal(params["sigma"], num_experts - n_idle)
    elif family == "hotcold":
        n_hot = min(max(1, round(params["hot_fraction"] * num_experts)), num_experts - 1)
        row = np.empty(num_experts)
        row[:n_hot] = params["hot_mass"] / n_hot
        row[n_hot:] = (1.0 - params["hot_mass"]) / (num_experts - n_hot)
    elif family == "hotwarmcold":
        n_hot = min(max(1, round(params["hot_fraction"] * num_experts)), num_experts - 2)
        n_warm = min(max(1, round(params["warm_fraction"] * num_experts)), num_experts - n_hot - 1)
        cold_mass = 1.0 - params["hot_mass"] - params["warm_mass"]
        row = np.empty(num_experts)
        row[:n_hot] = params["hot_mass"] / n_hot
        row[n_hot:n_hot + n_warm] = params["warm_mass"] / n_warm
        row[n_hot + n_warm:] = cold_mass / (num_experts - n_hot - n_warm)
    else:  # powerlaw: independent heavy-tailed weights per layer, ordered by rank
        weights = (1.0 - rng.random((num_layers, num_experts))) ** (-1.0 / params["alpha"])
        weights = -np.sort(-weights, axis=1)
        return weights / weights.sum(axis=1, keepdims=True)
    row = row / row.sum()
    return np.repeat(row[None, :], num_layers, axis=0)


def alias_tables(prob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias tables (keep-probability, alias) for each row of ``prob`` ([layers, E])."""
    prob = np.ascontiguousarray(prob, dtype=np.float64)
    if prob.ndim != 2 or prob.shape[1] == 0:
        raise RoutingError(f"prob must have shape [layers, num_experts], got {prob.shape}")
    if np.any(prob < 0) or not np.allclose(prob.sum(axis=1), 1.0):
        raise RoutingError("each row of prob must be non-negative and sum to 1")
    alias_prob = np.empty(prob.shape)
    alias_index = np.empty(prob.shape, dtype=np.int64)
    _alias(prob, alias_prob, alias_index)
    return alias_prob, alias_index
