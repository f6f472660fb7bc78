"""Does a model, with its KV cache, fit the memory of its GPUs?

Per GPU, with attention data-parallel and experts expert-parallel (the Sieve paper's layout):

* replicated on every GPU: attention projections of every layer, dense FFN layers, shared experts,
  routers, token embedding and LM head (in ``weight_format``);
* split over GPUs: routed experts, ``num_experts / num_gpus`` per GPU per MoE layer
  (in ``expert_weight_format``);
* the KV cache (bf16) of the GPU's ``batch / num_gpus`` requests, every layer, at their context lengths
  (sliding-window layers keep at most the window; DeltaNet layers their fixed state).

Memory per GPU is the hardware's usable memory (``Hardware.memory_bytes_per_gpu``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from sieve.hw import Hardware
from sieve.model import ModelSpec, matrix_bytes

from ._checks import SystemModelError

__all__ = ["CapacityError", "MemoryUse", "memory_use", "check_capacity"]

log = logging.getLogger(__name__)
# Capacities and uses are printed in GB of 2^30 bytes, the unit in which HBM stacks are sold and the
# Sieve paper's Table 1 states 96 GB per GPU (a stack of 96 x 2^30 bytes would read 103.1 in units of 1e9).
GB = 2**30


class CapacityError(SystemModelError):
    """The model and its KV cache do not fit the configured memory."""


@dataclass(frozen=True)
class MemoryUse:
    """Bytes one GPU holds."""

    replicated_weights: int
    expert_weights: int
    kv_cache: int
    capacity: int

    @property
    def total(self) -> int:
        return self.replicated_weights + self.expert_weights + self.kv_cache

    @property
    def fits(self) -> bool:
        return self.total <= self.capacity

    def describe(self) -> str:
        return (f"{self.total / GB:.1f} GB per GPU (weights {self.replicated_weights / GB:.1f} GB replicated + "
                f"{self.expert_weights / GB:.1f} GB of experts, KV cache {self.kv_cache / GB:.1f} GB) of "
                f"{self.capacity / GB:.1f} GB")


def memory_use(hw: Hardware, model: ModelSpec, num_gpus: int, context_lengths) -> MemoryUse:
    """Bytes per GPU for `model` on `num_gpus` GPUs serving requests with `context_lengths` tokens."""
    if isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, np.integer)) or num_gpus < 1:
        raise SystemModelError(f"num_gpus must be a positive integer, got {num_gpus!r}")
    if model.num_experts % num_gpus:
        raise SystemModelError(f"num_gpus={num_gpus} does not divide num_experts={model.num_experts} of {model.name}")
    lengths = np.asarray(context_lengths, dtype=np.int64).reshape(-1)
    if lengths.size and lengths.min() < 0:
        raise SystemModelError(f"context lengths must be >= 0, got {int(lengths.min())}")
    moe = set(model.moe_layers)
    replicated = 0
    for layer in range(model.num_layers):
        replicated += model.attention_weight_bytes(layer)
        if layer in moe:
            replicated += model.shared_expert_weight_bytes
            replicated += matrix_bytes(model.num_experts, model.hidden_size, model.weight_format)  # router
        else:
            replicated += model.dense_ffn_weight_bytes
    replicated += matrix_bytes(model.embedding_params // model.hidden_size, model.hidden_size, model.weight_format)
    experts = len(moe) * (model.num_experts // num_gpus) * model.expert_weight_bytes
    per_gpu = np.array_split(lengths, num_gpus)[0] if lengths.size else lengths  # the most loaded GPU
    kv = sum(model.kv_cache_bytes(layer, int(c)) for layer in range(model.num_layers) for c in per_gpu)
    return MemoryUse(replicated_weights=int(replicated), expert_weights=int(experts), kv_cache=int(kv),
                     capacity=int(hw.memory_bytes_per_gpu))


def check_capacity(hw: Hardware, model: ModelSpec, num_gpus: int, context_lengths, *,
                   allow_over_capacity: bool = False) -> MemoryUse:
    """Raise :class:`CapacityError` saying by how much the model does not fit, or, with
    ``allow_over_capacity`` (to reproduce results that ignore capacity), log a warning and go on."""
    use = memory_use(hw, model, num_gpus, context_lengths)
    if use.fits:
        return use
    short = use.total - use.capacity
    msg = (f"{model.name} on {num_gpus} x {hw.name} does not fit: {use.describe()}, "
           f"{short / GB:.1f} GB short per GPU")
    if allow_over_capacity:
        log.warning("%s; running anyway (allow_over_capacity)", msg)
        return use
    fewest = _fewest_gpus_that_fit(hw, model, num_gpus, context_lengths)
    more = f"num_gpus={fewest} (the fewest that fit)" if fewest else "more GPUs than experts allow"
    raise CapacityError(f"{msg}; use {more}, a smaller batch or context, or "
                        "allow_over_capacity=True to run anyway")


def _fewest_gpus_that_fit(hw: Hardware, model: ModelSpec, num_gpus: int, context_lengths) -> int | None:
    """The smallest GPU count above ``num_gpus`` that divides the experts and holds model and KV cache."""
    for g in range(num_gpus + 1, model.num_experts + 1):
        if model.num_experts % g == 0 and memory_use(hw, model, g, context_lengths).fits:
            return g
    return None
