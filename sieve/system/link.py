"""Seconds of NVLink traffic between the GPUs of one machine, and expert placement across them.

The GPUs meet in a non-blocking switch (NVSwitch), so only each GPU's own link can be a bottleneck.
Every GPU has two independent directions of ``hw.link.bytes_per_s_per_direction`` each: one for the
bytes it sends, one for the bytes it receives. A collective ends when the busiest direction of the
busiest GPU has drained, plus one link latency::

    t = max_g max(S_g, R_g) / bandwidth + latency        (S_g: bytes GPU g sends, R_g: receives)

One GPU has no link traffic: 0 s. With two or more GPUs the latency is paid even when no byte crosses
a link, because every GPU still waits for the others' (empty) messages. Bytes a GPU keeps for itself
never use a link.

Experts are expert-parallel: :func:`expert_owner` gives each GPU a contiguous block of experts.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import numpy as np

from sieve.hw import Hardware, Link
from sieve.model import ModelSpec

from ._checks import SystemModelError, as_link, count, counts, positive

__all__ = ["LinkTraffic", "collective_time", "combine_time", "combine_traffic", "dispatch_time", "dispatch_traffic",
           "expert_owner", "routing_allgather_time", "routing_allgather_traffic"]


class LinkTraffic(NamedTuple):
    """Bytes each GPU sends and receives in one collective; its time is :func:`collective_time` of them, its
    link energy counts :attr:`bytes_sent` (every byte crosses the switch once)."""

    sent: np.ndarray
    received: np.ndarray

    @property
    def bytes_sent(self) -> float:
        return float(self.sent.sum())

    def seconds(self, hw: Hardware | Link) -> float:
        return collective_time(hw, self.sent, self.received)


def collective_time(hw: Hardware | Link, bytes_sent: Sequence[float], bytes_received: Sequence[float]) -> float:
    """``max_g max(bytes_sent[g], bytes_received[g]) / bandwidth + latency``; 0 s for one GPU."""
    link = as_link(hw)
    sent, received = np.asarray(bytes_sent, dtype=float), np.asarray(bytes_received, dtype=float)
    if sent.ndim != 1 or sent.shape != received.shape or sent.size == 0:
        raise SystemModelError(
            f"bytes_sent and bytes_received must be 1-d with one entry per GPU, got shapes "
            f"{sent.shape} and {received.shape}")
    for name, arr in (("bytes_sent", sent), ("bytes_received", received)):
        if not np.all((arr >= 0) & np.isfinite(arr)):
            raise SystemModelError(f"{name} must be finite and >= 0, got {arr.tolist()}")
    if sent.size == 1:
        return 0.0
    busiest = float(np.maximum(sent, received).max())
    return busiest / link.bytes_per_s_per_direction + link.latency_s


def routing_allgather_time(hw: Hardware | Link, model: ModelSpec, tokens_per_gpu: Sequence[int],
                           id_bytes: int = 4, weight_bytes: int = 4) -> float:
    """AllGather of routing maps: every GPU sends its tokens' top-k expert ids and router weights to
    every other GPU.

    With ``b = top_k * (id_bytes + weight_bytes)`` bytes per token, ``t_g`` tokens on GPU ``g`` and
    ``G`` GPUs: ``S_g = (G - 1) b t_g`` and ``R_g = b (sum(t) - t_g)``. Defaults: int32 ids, fp32
    weights."""
    return routing_allgather_traffic(model, tokens_per_gpu, id_bytes, weight_bytes).seconds(hw)


def routing_allgather_traffic(model: ModelSpec, tokens_per_gpu: Sequence[int], id_bytes: int = 4,
                              weight_bytes: int = 4) -> LinkTraffic:
    """The bytes :func:`routing_allgather_time` counts: ``S_g = (G - 1) b t_g``, ``R_g = b (sum(t) - t_g)``."""
    tokens = counts("tokens_per_gpu", tokens_per_gpu, ndim=1)
    if tokens.size == 0:
        raise SystemModelError("tokens_per_gpu must have one entry per GPU, got none")
    per_token = model.top_k * (count("id_bytes", id_bytes) + count("weight_bytes", weight_bytes))
    sent = (tokens.size - 1) * per_token * tokens
    received = per_token * (tokens.sum() - tokens)
    return LinkTraffic(sent, received)


def _all_to_all_bytes(tokens, model: ModelSpec, activation_bytes: float):
    matrix = counts("tokens", tokens, ndim=2)
    if matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise SystemModelError(f"tokens must be a square [src_gpu, dst_gpu] matrix, got shape {matrix.shape}")
    per_token = model.hidden_size * positive("activation_bytes", activation_bytes)
    remote = matrix - np.diag(np.diag(matrix))
    return remote.sum(axis=1) * per_token, remote.sum(axis=0) * per_token


def dispatch_time(hw: Hardware | Link, model: ModelSpec, tokens, activation_bytes: float = 2) -> float:
    """All-to-all dispatch: ``tokens[s, d]`` token vectors go from their home GPU ``s`` to GPU ``d``,
    which owns experts they are routed to.

    Each vector is ``hidden_size * activation_bytes`` bytes; ``S_s = sum_{d != s} tokens[s, d]`` vectors,
    ``R_d = sum_{s != d} tokens[s, d]`` vectors; the diagonal stays on its GPU. Whether a token routed
    to several experts of one GPU is sent once or once per expert is the caller's count."""
    return dispatch_traffic(model, tokens, activation_bytes).seconds(hw)


def dispatch_traffic(model: ModelSpec, tokens, activation_bytes: float = 2) -> LinkTraffic:
    """The bytes :func:`dispatch_time` counts, per GPU."""
    return LinkTraffic(*_all_to_all_bytes(tokens, model, activation_bytes))


def combine_time(hw: Hardware | Link, model: ModelSpec, tokens, activation_bytes: float = 2) -> float:
    """All-to-all combine: the expert outputs of a dispatch return to their home GPUs.

    ``tokens`` is the dispatch's own ``[src_gpu, dst_gpu]`` matrix; results flow from ``dst`` back to
    ``src`` (the transposed traffic), ``hidden_size * activation_bytes`` bytes each."""
    return combine_traffic(model, tokens, activation_bytes).seconds(hw)


def combine_traffic(model: ModelSpec, tokens, activation_bytes: float = 2) -> LinkTraffic:
    """The bytes :func:`combine_time` counts, per GPU: the dispatch's, in the other direction."""
    sent, received = _all_to_all_bytes(tokens, model, activation_bytes)
    return LinkTraffic(received, sent)


def expert_owner(num_experts: int, num_gpus: int) -> np.ndarray:
    """[num_experts] GPU that owns each expert: contiguous blocks of ``num_experts / num_gpus``.

    Expert ``e`` lives on GPU ``e // (num_experts // num_gpus)``. ``num_gpus`` must divide
    ``num_experts`` so every GPU holds the same number of experts."""
    num_experts, num_gpus = count("num_experts", num_experts), count("num_gpus", num_gpus)
    if num_gpus == 0 or num_experts == 0:
        raise SystemModelError(
            f"num_experts={num_experts} and num_gpus={num_gpus} must both be at least 1")
    if num_gpus > num_experts:
        raise SystemModelError(
            f"num_gpus={num_gpus} exceeds num_experts={num_experts}: more GPUs than experts allow "
            f"(expert parallelism gives every GPU at least one expert)")
    if num_experts % num_gpus:
        raise SystemModelError(
            f"num_gpus={num_gpus} does not divide num_experts={num_experts}; expert parallelism needs "
            f"the same number of experts on every GPU (valid num_gpus up to 64: "
            f"{', '.join(str(d) for d in range(1, min(num_experts, 64) + 1) if num_experts % d == 0)})")
    return np.arange(num_experts, dtype=np.int64) // (num_experts // num_gpus)
