"""Decode attention on PIM: scores and the weighted sum as GEMVs over the KV caches (NeuPIMs style).

Work is cut into units that each own a KV cache slice: one unit per (request, KV head) for GQA, one
per request for MLA, whose compressed latent all heads share. A unit longer than an even share of all
the tokens (``ceil(total / channels)``) is split into equal blocks no longer than that share (split-K,
as FlashDecoding does on GPUs), so every channel gets work and one long request cannot hold up the layer. Units go to channels
longest first, each to the least-loaded channel. A channel then runs, for its units one after
another, the score GEMVs (every query head of the unit over its keys), waits for the GPU's softmax
(``hw.pim.handoff_s``), and runs the weighted-sum GEMVs (over the values, stored transposed); the GPU
adds partial outputs of split units. The layer takes as long as its busiest channel.

Per unit and token block of ``t`` tokens:

* GQA: ``group`` GEMVs of ``t x head_dim`` (scores), ``group`` GEMVs of ``head_dim x t`` (weighted sum);
* MLA (weight-absorbed decode, as serving systems run it): ``heads`` GEMVs of
  ``t x (kv_lora_rank + rope)`` and ``heads`` GEMVs of ``kv_lora_rank x t``.

Sliding-window layers attend to at most ``sliding_window`` tokens. Linear-attention (DeltaNet) layers
keep a fixed-size recurrent state rewritten every step; they run on the GPU and cost nothing here.
Each GEMV sequence is simulated on the cycle-level engine (cached by shape); a channel's phases are
the sums of its units' simulated phases. The cache is bf16.
"""

from __future__ import annotations

import heapq
import math
from functools import lru_cache

import numpy as np

from sieve.hw import Hardware
from sieve.model import ModelSpec
from sieve.trace.gemv import GemvShape, LayoutError, PIMGeometry, gemv_stream

from .expert import _hw, _model

__all__ = ["attention_units", "attention_time", "AttentionTime"]


def attention_units(model: ModelSpec, layer: int, context_lengths: np.ndarray, channels: int):
    """(tokens per unit, GEMVs per phase, scores width, weighted-sum rows) for `layer`, or None when the
    layer has no KV cache."""
    layer_type = model.layer_types[layer]
    if layer_type == "linear_attention":
        return None
    tokens = np.asarray(context_lengths, dtype=np.int64)
    if layer_type == "sliding_attention":
        tokens = np.minimum(tokens, model.sliding_window)
    tokens = tokens[tokens > 0]
    if model.attention == "mla":
        per_request, gemvs = 1, model.num_attention_heads
        width, rows = model.kv_lora_rank + model.qk_rope_head_dim, model.kv_lora_rank
    else:
        per_request = model.num_key_value_heads
        gemvs = model.num_attention_heads // model.num_key_value_heads
        width = rows = model.head_dim
    units = np.repeat(tokens, per_request)
    if len(units):
        # Split-K (FlashDecoding): no block longer than an even share of all tokens, so one long request
        # cannot keep a channel busy while the others idle.
        target = math.ceil(int(units.sum()) / channels)
        pieces = -(-units // target)
        units = np.repeat(-(-units // pieces), pieces)
    return units, gemvs, width, rows


@lru_cache(maxsize=65536)
def _phase(hw: Hardware, shape: GemvShape, repeat: int) -> tuple[int, np.ndarray]:
    """Ticks of `repeat` GEMVs of `shape` on one channel, until the last result is read back, and the
    commands the channel issued (by command index)."""
    geom = PIMGeometry.of(hw)
    session = hw.pim_device.session(log=False)
    cmds, rows, cols = gemv_stream(geom, shape, repeat=repeat)
    ticks = session.run(cmds, np.zeros((len(cmds), len(hw.standard.levels)), dtype=np.int64), rows, cols,
                        auto_prereq=True)
    return int(ticks[-1]) + hw.pim_device.tables.read_latency_ticks, session.engine.command_totals()


def _phase_ticks(hw: Hardware, shape: GemvShape, repeat: int) -> int:
    return _phase(hw, shape, repeat)[0]


class AttentionTime(float):
    """Seconds of a layer's decode attention on PIM; ``channel_seconds`` holds every channel's busy time,
    ``total_commands`` the commands all channels issued, by name (for energy, :mod:`sieve.system.energy`)."""

    channel_seconds: np.ndarray
    total_commands: dict

    def __new__(cls, seconds: float, channel_seconds: np.ndarray, total_commands: dict | None = None):
        obj = super().__new__(cls, seconds)
        obj.channel_seconds = channel_seconds
        obj.total_commands = total_commands or {}
        return obj


def attention_time(hw, model, layer: int, context_lengths) -> AttentionTime:
    """Seconds of decode attention in `layer` for one GPU's requests with `context_lengths` tokens."""
    hw, model = _hw(hw), _model(model)
    if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)) or not 0 <= layer < model.num_layers:
        raise LayoutError(f"layer {layer!r} is outside 0..{model.num_layers - 1} of {model.name}")
    lengths = np.asarray(context_lengths)
    if lengths.ndim != 1 or (lengths.size and lengths.dtype.kind not in "iu"):
        raise LayoutError(f"context_lengths must be a 1-d integer array, got {lengths.dtype} of shape {lengths.shape}")
    if lengths.size and lengths.min() < 0:
        raise LayoutError(f"context lengths must be >= 0, got {int(lengths.min())}")
    channels = hw.pim_channels_per_gpu
    busy = np.zeros(channels)
    found = attention_units(model, layer, lengths, channels)
    if found is None or len(found[0]) == 0:
        return AttentionTime(0.0, busy)
    units, gemvs, width, rows = found
    tick_s = hw.standard.tick_ns * 1e-9
    costs, totals = {}, np.zeros(len(hw.standard.command_names), dtype=np.int64)
    uniq, per_length = np.unique(units, return_counts=True)
    for t, n in zip(uniq.tolist(), per_length.tolist()):
        (s_ticks, s_cmds), (m_ticks, m_cmds) = (_phase(hw, GemvShape(t, width, "bf16"), gemvs),
                                                _phase(hw, GemvShape(rows, t, "bf16"), gemvs))
        costs[t] = (s_ticks, m_ticks)
        totals += n * (s_cmds + m_cmds)
    # longest first to the least-loaded channel (ties: lowest channel), deterministic
    order = np.argsort(-units, kind="stable")
    heap = [(0, c) for c in range(channels)]
    scores = np.zeros(channels, dtype=np.int64)
    mixes = np.zeros(channels, dtype=np.int64)
    for i in order:
        load, c = heapq.heappop(heap)
        s, m = costs[int(units[i])]
        scores[c] += s
        mixes[c] += m
        heapq.heappush(heap, (load + s + m, c))
    handoff = round(hw.pim.handoff_s * 1e9 / hw.standard.tick_ns)
    # every channel waits for the softmax over all partial scores before its weighted sums
    phase2_start = scores.max() + handoff
    busy_ticks = scores + mixes
    total = phase2_start + mixes.max()
    names = hw.standard.command_names
    return AttentionTime(float(total * tick_s), busy_ticks * tick_s,
                         {names[i]: int(v) for i, v in enumerate(totals) if v})
