"""Synthetic routing: which experts each token picks, per decode step and MoE layer."""

from __future__ import annotations

import logging
import numbers
from typing import Any

import numpy as np

from sieve.model import ModelSpec, load
from sieve.routing._kernels import _route
from sieve.routing.families import RoutingError, alias_tables, check_params, rank_probabilities

log = logging.getLogger(__name__)

ROUTING_DTYPE = np.int32


def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RoutingError(f"{name} must be an integer, got {value!r}")
    if value <= 0:
        raise RoutingError(f"{name}={value} is invalid; allowed: >= 1")
    return int(value)


def as_generator(seed: int | np.random.Generator) -> np.random.Generator:
    """A Generator from an integer seed, or the Generator itself (whose state then advances)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise RoutingError(f"seed={seed!r} is invalid; allowed: an integer >= 0 or a numpy.random.Generator")
    return np.random.default_rng(int(seed))


def resolve_model(model: ModelSpec | str) -> ModelSpec:
    if isinstance(model, ModelSpec):
        return model
    if isinstance(model, str):
        return load(model)
    raise RoutingError(f"model must be a ModelSpec or a preset name, got {type(model).__name__}")


def generate(model: ModelSpec | str, batch_size: int, steps: int, *, family: str = "preset",
             seed: int | np.random.Generator, drift: float | None = None, **params: float) -> np.ndarray:
    """Route ``batch_size`` tokens through every MoE layer of ``model`` for ``steps`` decode steps.

    Returns an int32 array [steps, num_moe_layers, batch_size, top_k]: expert ids, distinct within
    each token. ``family`` is one of :data:`sieve.routing.FAMILIES` with its parameters as keywords,
    or ``"preset"`` for the model's calibrated family (:func:`sieve.routing.preset`).

    ``drift`` is the probability, per step and per popularity rank, that the rank swaps experts
    with a uniformly chosen rank: 0 keeps each layer's hot experts fixed for the whole run, 1
    reshuffles about every rank every step. Defaults: the preset's value, else 0.
    """
    spec = resolve_model(model)
    batch_size = _positive_int("batch_size", batch_size)
    steps = _positive_int("steps", steps)
    if family == "preset":
        if params:
            raise RoutingError(f"family='preset' takes no family parameters, got {sorted(params)}")
        from sieve.routing.presets import preset

        chosen = preset(spec.name)
        family, params = chosen.family, dict(chosen.params)
        drift = chosen.drift if drift is None else drift
    drift = 0.0 if drift is None else drift
    if isinstance(drift, bool) or not isinstance(drift, numbers.Real) or not 0.0 <= drift <= 1.0:
        raise RoutingError(f"drift={drift!r} is invalid; allowed: 0 <= drift <= 1")
    params = check_params(family, params)
    rng = as_generator(seed)

    layers, num_experts = spec.num_moe_layers, spec.num_experts
    rank_prob = rank_probabilities(family, params, num_experts, layers, rng)
    chosen_ranks = int((rank_prob > 0).sum(axis=1).min())
    if chosen_ranks < spec.top_k:
        raise RoutingError(f"{family} {params} leaves {chosen_ranks} experts that can be chosen; "
                           f"{spec.name} routes each token to {spec.top_k}")
    alias_prob, alias_index = alias_tables(rank_prob)
    perm = np.argsort(rng.random((layers, num_experts)), axis=1, kind="stable").astype(np.int64)
    out = np.empty((steps, layers, batch_size, spec.top_k), dtype=ROUTING_DTYPE)
    _route(rng, alias_prob, alias_index, rank_prob, perm, float(drift), out)
    log.debug("routed %s: family=%s %s drift=%s shape=%s", spec.name, family, params, drift, out.shape)
    return out
