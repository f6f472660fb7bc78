"""The shape of an MoE model, and the work and bytes that follow from it.

A :class:`ModelSpec` holds only what the published ``config.json`` of a model says (normalised to one
set of names); everything else -- parameter counts, weight bytes, FLOPs, KV-cache bytes, act-ratio --
is derived from it on demand, so a preset can never disagree with its own derived quantities.

Conventions for the derived quantities:

- A matrix-vector product with an ``m x n`` weight costs ``2 m n`` FLOPs per token.
- Bias vectors, normalisation weights and routers are counted in parameters but are too small to
  matter for bytes moved; they are stored in :attr:`ModelSpec.weight_format`.
- Attention FLOPs are those of one *decode* token attending to ``context_length`` earlier tokens.
  MLA uses the weight-absorbed decode form (attention over the compressed latent), as serving
  systems do; Gated DeltaNet layers carry a fixed-size recurrent state instead of a KV cache.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable

import numpy as np


class ModelSpecError(ValueError):
    """A model description is inconsistent or names something sieve does not know."""


ATTENTION_KINDS = ("gqa", "mla")
LAYER_TYPES = ("full_attention", "sliding_attention", "linear_attention")

# Bytes per parameter of each weight format, before per-block scale factors (added per matrix in
# matrix_bytes, because their count depends on the matrix shape).
WEIGHT_FORMATS = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0, "fp8": 1.0, "mxfp4": 0.5}

# fp8 checkpoints (DeepSeek-V3, Kimi K2) carry one fp32 scale per 128 x 128 block
# (quantization_config.weight_block_size); MXFP4 carries one 8-bit exponent per 32 elements
# along the input dimension (OCP Microscaling spec).
_FP8_BLOCK = 128
_MXFP4_GROUP = 32


def matrix_bytes(rows: int, cols: int, fmt: str) -> int:
    """Bytes of one ``rows x cols`` weight matrix stored in ``fmt``, scale factors included."""
    if fmt not in WEIGHT_FORMATS:
        raise ModelSpecError(f"weight format {fmt!r} is not known; allowed: {sorted(WEIGHT_FORMATS)}")
    if fmt == "fp8":
        scales = math.ceil(rows / _FP8_BLOCK) * math.ceil(cols / _FP8_BLOCK)
        return rows * cols + 4 * scales
    if fmt == "mxfp4":
        groups = rows * math.ceil(cols / _MXFP4_GROUP)
        return (rows * cols + 1) // 2 + groups
    return int(rows * cols * WEIGHT_FORMATS[fmt])


def _positive(name: str, value, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ModelSpecError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        allowed = ">= 0" if allow_zero else ">= 1"
        raise ModelSpecError(f"{name}={value} is invalid; allowed: {allowed}")


# Sizes every model has, and sizes that are 0 where they do not apply (see ModelSpec).
_REQUIRED_SIZES = ("num_layers", "hidden_size", "vocab_size", "num_experts", "top_k",
                   "expert_intermediate_size", "num_attention_heads", "num_key_value_heads")
_OPTIONAL_SIZES = ("num_shared_experts", "shared_expert_intermediate_size", "dense_intermediate_size",
                   "sliding_window", "q_lora_rank", "kv_lora_rank", "qk_rope_head_dim",
                   "qk_nope_head_dim", "v_head_dim", "linear_num_key_heads", "linear_num_value_heads",
                   "linear_key_head_dim", "linear_value_head_dim", "linear_conv_kernel_dim",
                   "max_position_embeddings", "head_dim")
_MLA_SIZES = ("kv_lora_rank", "qk_rope_head_dim", "qk_nope_head_dim", "v_head_dim")
_LINEAR_ATTENTION_SIZES = ("linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                           "linear_value_head_dim", "linear_conv_kernel_dim")


@dataclass(frozen=True, kw_only=True)
class ModelSpec:
    """One MoE language model, as its ``config.json`` describes it.

    Layer indices are 0-based positions in the decoder stack. ``moe_layers`` lists the layers
    whose FFN is a routed MoE block; the others are dense FFN layers of width
    ``dense_intermediate_size``. Sizes that do not apply to a model are 0 (e.g. ``q_lora_rank``
    for a model that projects queries directly). The fields are the ``model`` config group's too
    (:mod:`sieve.model.schema` derives that schema from them), in the order a resolved config lists them.
    """

    name: str
    source: str = ""
    num_layers: int
    hidden_size: int
    vocab_size: int
    tie_word_embeddings: bool = False
    num_experts: int
    top_k: int
    expert_intermediate_size: int
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False
    dense_intermediate_size: int = 0
    moe_layers: tuple[int, ...]
    attention: str
    layer_types: tuple[str, ...]
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int = 0
    attn_output_gate: bool = False
    sliding_window: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 0
    weight_format: str = "bf16"
    expert_weight_format: str = "bf16"
    max_position_embeddings: int = 0
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "moe_layers", tuple(int(i) for i in self.moe_layers))
        object.__setattr__(self, "layer_types", tuple(str(t) for t in self.layer_types))
        # Checked in this order so that a derived check never trips over a bad size or name first.
        self._check_sizes()
        self._check_names()
        self._check_layers()
        self._check_ffn()
        self._check_attention()

    def _check_sizes(self) -> None:
        for name in _REQUIRED_SIZES:
            _positive(name, getattr(self, name))
        for name in _OPTIONAL_SIZES:
            _positive(name, getattr(self, name), allow_zero=True)
        if self.top_k > self.num_experts:
            raise ModelSpecError(
                f"top_k={self.top_k} exceeds num_experts={self.num_experts}; "
                f"allowed: 1 <= top_k <= num_experts")

    def _check_names(self) -> None:
        if self.attention not in ATTENTION_KINDS:
            raise ModelSpecError(f"attention={self.attention!r} is not known; allowed: {ATTENTION_KINDS}")
        for fmt_name in ("weight_format", "expert_weight_format"):
            fmt = getattr(self, fmt_name)
            if fmt not in WEIGHT_FORMATS:
                raise ModelSpecError(f"{fmt_name}={fmt!r} is not known; allowed: {sorted(WEIGHT_FORMATS)}")

    def _check_layers(self) -> None:
        """``layer_types`` covers every layer with a known type; ``moe_layers`` are distinct layers."""
        if len(self.layer_types) != self.num_layers:
            raise ModelSpecError(
                f"layer_types has {len(self.layer_types)} entries but num_layers={self.num_layers}")
        bad = sorted({t for t in self.layer_types if t not in LAYER_TYPES})
        if bad:
            raise ModelSpecError(f"layer types {bad} are not known; allowed: {LAYER_TYPES}")
        if not self.moe_layers:
            raise ModelSpecError(f"model {self.name!r} has no MoE layers; sieve simulates MoE models only")
        if list(self.moe_layers) != sorted(set(self.moe_layers)):
            raise ModelSpecError(f"moe_layers must be strictly increasing, got {list(self.moe_layers)}")
        out_of_range = [i for i in self.moe_layers if not 0 <= i < self.num_layers]
        if out_of_range:
            raise ModelSpecError(
                f"moe_layers {out_of_range} lie outside 0..{self.num_layers - 1} (num_layers={self.num_layers})")

    def _check_ffn(self) -> None:
        """Dense layers need a dense FFN width; a shared expert needs both a count and a width."""
        if self.dense_layers and self.dense_intermediate_size == 0:
            raise ModelSpecError(
                f"layers {list(self.dense_layers)} are dense but dense_intermediate_size is 0")
        if (self.num_shared_experts == 0) != (self.shared_expert_intermediate_size == 0):
            raise ModelSpecError(
                f"num_shared_experts={self.num_shared_experts} and shared_expert_intermediate_size="
                f"{self.shared_expert_intermediate_size} must both be 0 or both be positive")

    def _check_attention(self) -> None:
        """Each attention kind and layer type present needs its own sizes."""
        if self.attention == "mla":
            for name in _MLA_SIZES:
                if getattr(self, name) == 0:
                    raise ModelSpecError(f"MLA attention needs {name} > 0")
        elif self.head_dim == 0:
            raise ModelSpecError("GQA attention needs head_dim > 0")
        if self.attention == "gqa" and self.num_attention_heads % self.num_key_value_heads:
            raise ModelSpecError(
                f"num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_key_value_heads={self.num_key_value_heads}")
        if "sliding_attention" in self.layer_types and self.sliding_window == 0:
            raise ModelSpecError("sliding_attention layers need sliding_window > 0")
        if "linear_attention" in self.layer_types:
            for name in _LINEAR_ATTENTION_SIZES:
                if getattr(self, name) == 0:
                    raise ModelSpecError(f"linear_attention layers need {name} > 0")

    # ---- layer structure -------------------------------------------------------------------

    @property
    def num_moe_layers(self) -> int:
        return len(self.moe_layers)

    @property
    def dense_layers(self) -> tuple[int, ...]:
        moe = set(self.moe_layers)
        return tuple(i for i in range(self.num_layers) if i not in moe)

    # ---- parameters ------------------------------------------------------------------------

    @property
    def expert_params(self) -> int:
        """Parameters of one routed expert: gate, up (hidden -> I) and down (I -> hidden)."""
        return 3 * self.hidden_size * self.expert_intermediate_size

    @property
    def expert_weight_bytes(self) -> int:
        """Bytes of one routed expert's weights in ``expert_weight_format``."""
        h, i, fmt = self.hidden_size, self.expert_intermediate_size, self.expert_weight_format
        return 2 * matrix_bytes(i, h, fmt) + matrix_bytes(h, i, fmt)

    def expert_flops_per_token(self) -> dict[str, int]:
        """FLOPs one token spends in one routed expert, per projection."""
        per = 2 * self.hidden_size * self.expert_intermediate_size
        return {"gate": per, "up": per, "down": per}

    @property
    def shared_expert_params(self) -> int:
        """Parameters of all shared experts of one MoE layer (plus their sigmoid gate, if any)."""
        p = self.num_shared_experts * 3 * self.hidden_size * self.shared_expert_intermediate_size
        return p + (self.hidden_size if self.shared_expert_gate else 0)

    @property
    def shared_expert_weight_bytes(self) -> int:
        h, i, fmt = self.hidden_size, self.shared_expert_intermediate_size, self.weight_format
        if self.num_shared_experts == 0:
            return 0
        return self.num_shared_experts * (2 * matrix_bytes(i, h, fmt) + matrix_bytes(h, i, fmt))

    def shared_expert_flops_per_token(self) -> int:
        return 2 * self.num_shared_experts * 3 * self.hidden_size * self.shared_expert_intermediate_size

    @property
    def dense_ffn_params(self) -> int:
        """Parameters of one dense FFN layer (0 if the model has none)."""
        return 3 * self.hidden_size * self.dense_intermediate_size if self.dense_layers else 0

    @property
    def dense_ffn_weight_bytes(self) -> int:
        h, i, fmt = self.hidden_size, self.dense_intermediate_size, self.weight_format
        return (2 * matrix_bytes(i, h, fmt) + matrix_bytes(h, i, fmt)) if self.dense_layers else 0

    def dense_ffn_flops_per_token(self) -> int:
        return 2 * 3 * self.hidden_size * self.dense_intermediate_size if self.dense_layers else 0

    @property
    def router_params(self) -> int:
        return self.hidden_size * self.num_experts

    def _attention_matrices(self, layer_type: str) -> list[tuple[int, int]]:
        """(rows, cols) of every projection of one attention layer of ``layer_type``."""
        h = self.hidden_size
        if layer_type == "linear_attention":
            nk, nv = self.linear_num_key_heads, self.linear_num_value_heads
            dk, dv = self.linear_key_head_dim, self.linear_value_head_dim
            return [
                (2 * nk * dk + 2 * nv * dv, h),  # in_proj_qkvz
                (2 * nv, h),                     # in_proj_ba (beta, alpha gates)
                (nv * dv, h),                    # out_proj, stored transposed
            ]
        if self.attention == "mla":
            nh, rope, nope, v = (self.num_attention_heads, self.qk_rope_head_dim,
                                 self.qk_nope_head_dim, self.v_head_dim)
            q_dim = nh * (nope + rope)
            q = ([(self.q_lora_rank, h), (q_dim, self.q_lora_rank)] if self.q_lora_rank
                 else [(q_dim, h)])
            return q + [
                (self.kv_lora_rank + rope, h),                # kv_a_proj_with_mqa
                (nh * (nope + v), self.kv_lora_rank),         # kv_b_proj
                (h, nh * v),                                  # o_proj
            ]
        nq, nkv, d = self.num_attention_heads, self.num_key_value_heads, self.head_dim
        q_rows = nq * d * (2 if self.attn_output_gate else 1)
        return [(q_rows, h), (nkv * d, h), (nkv * d, h), (h, nq * d)]

    def attention_params(self, layer: int) -> int:
        """Parameters of the attention (or DeltaNet) block of ``layer``."""
        layer_type = self.layer_types[self._check_layer(layer)]
        p = sum(r * c for r, c in self._attention_matrices(layer_type))
        if layer_type == "linear_attention":
            conv_dim = 2 * self.linear_num_key_heads * self.linear_key_head_dim + \
                self.linear_num_value_heads * self.linear_value_head_dim
            p += conv_dim * self.linear_conv_kernel_dim + 2 * self.linear_num_value_heads
        return p

    def attention_weight_bytes(self, layer: int) -> int:
        layer_type = self.layer_types[self._check_layer(layer)]
        return sum(matrix_bytes(r, c, self.weight_format) for r, c in self._attention_matrices(layer_type))

    @property
    def embedding_params(self) -> int:
        """Input embedding plus the LM head (once if tied)."""
        return self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)

    @property
    def routed_expert_params_total(self) -> int:
        return self.num_moe_layers * self.num_experts * self.expert_params

    @property
    def total_params(self) -> int:
        """All parameters of the decoder (multi-token-prediction heads excluded)."""
        norms = (2 * self.num_layers + 1) * self.hidden_size
        attention = sum(self.attention_params(i) for i in range(self.num_layers))
        moe = self.num_moe_layers * (self.router_params + self.shared_expert_params)
        dense = len(self.dense_layers) * self.dense_ffn_params
        return self.embedding_params + norms + attention + moe + dense + self.routed_expert_params_total

    @property
    def non_expert_params(self) -> int:
        """Everything except routed experts; all of it is active for every token."""
        return self.total_params - self.routed_expert_params_total

    @property
    def active_params_per_token(self) -> int:
        return self.non_expert_params + self.num_moe_layers * self.top_k * self.expert_params

    def expected_active_experts(self, batch_size: int) -> float:
        """Mean number of distinct experts a layer activates for ``batch_size`` tokens under
        uniform routing: each expert is missed by a token with probability 1 - k/E."""
        _positive("batch_size", batch_size)
        return self.num_experts * (1.0 - (1.0 - self.top_k / self.num_experts) ** batch_size)

    def act_ratio(self, active_experts: float | Iterable[float]) -> float:
        """Activated parameters / total parameters, non-expert parameters counting as active.

        ``active_experts`` is the number of distinct routed experts activated per MoE layer:
        one number (same for all layers) or one per MoE layer.
        """
        active = np.broadcast_to(np.asarray(active_experts, dtype=float), (self.num_moe_layers,))
        if np.any(active < 0) or np.any(active > self.num_experts):
            raise ModelSpecError(
                f"active_experts must lie in 0..num_experts={self.num_experts}, got {active_experts!r}")
        return (self.non_expert_params + float(active.sum()) * self.expert_params) / self.total_params

    # ---- attention work and KV cache -------------------------------------------------------

    def _check_layer(self, layer: int) -> int:
        if not 0 <= layer < self.num_layers:
            raise ModelSpecError(f"layer={layer} lies outside 0..{self.num_layers - 1}")
        return layer

    def kv_cache_bytes_per_token(self, layer: int, dtype_bytes: int = 2) -> int:
        """KV-cache bytes one token adds to ``layer`` (0 for DeltaNet layers, whose state is fixed)."""
        layer_type = self.layer_types[self._check_layer(layer)]
        if layer_type == "linear_attention":
            return 0
        if self.attention == "mla":
            return (self.kv_lora_rank + self.qk_rope_head_dim) * dtype_bytes
        return 2 * self.num_key_value_heads * self.head_dim * dtype_bytes

    def kv_cache_bytes(self, layer: int, context_length: int, dtype_bytes: int = 2) -> int:
        """Bytes of ``layer``'s cache for one request holding ``context_length`` tokens.

        Sliding-window layers keep at most ``sliding_window`` tokens; DeltaNet layers keep a
        recurrent state (one dk x dv matrix per value head) and a convolution tail, whatever the
        context length.
        """
        _positive("context_length", context_length, allow_zero=True)
        layer_type = self.layer_types[self._check_layer(layer)]
        if layer_type == "linear_attention":
            state = self.linear_num_value_heads * self.linear_key_head_dim * self.linear_value_head_dim
            conv_dim = 2 * self.linear_num_key_heads * self.linear_key_head_dim + \
                self.linear_num_value_heads * self.linear_value_head_dim
            return (state + conv_dim * (self.linear_conv_kernel_dim - 1)) * dtype_bytes
        tokens = min(context_length, self.sliding_window) if layer_type == "sliding_attention" \
            else context_length
        return tokens * self.kv_cache_bytes_per_token(layer, dtype_bytes)

    def attention_flops_per_token(self, layer: int, context_length: int) -> dict[str, int]:
        """FLOPs of one decode token in ``layer``: ``projection`` (weights) and ``mixing``
        (scores and weighted sum over the cache, or the DeltaNet state update)."""
        _positive("context_length", context_length, allow_zero=True)
        layer_type = self.layer_types[self._check_layer(layer)]
        projection = 2 * sum(r * c for r, c in self._attention_matrices(layer_type))
        if layer_type == "linear_attention":
            # Gated delta rule per value head: decay S (dk*dv), S^T k and the rank-1 update
            # (2*dk*dv each), and the read-out S^T q (2*dk*dv).
            dk, dv = self.linear_key_head_dim, self.linear_value_head_dim
            mixing = self.linear_num_value_heads * 7 * dk * dv
        elif self.attention == "mla":
            nh, r, rope = self.num_attention_heads, self.kv_lora_rank, self.qk_rope_head_dim
            mixing = 2 * nh * (r + rope) * context_length + 2 * nh * r * context_length
        else:
            tokens = min(context_length, self.sliding_window) if layer_type == "sliding_attention" \
                else context_length
            mixing = 4 * self.num_attention_heads * self.head_dim * tokens
        return {"projection": projection, "mixing": mixing}

    def summary(self) -> dict[str, float]:
        """Headline figures, for logs and tables."""
        return {
            "total_params": self.total_params,
            "active_params_per_token": self.active_params_per_token,
            "expert_weight_bytes": self.expert_weight_bytes,
            "num_moe_layers": self.num_moe_layers,
            "num_experts": self.num_experts,
            "top_k": self.top_k,
        }
