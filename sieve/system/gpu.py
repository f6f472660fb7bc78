"""Seconds of GPU work on one GPU: explicit roofline models.

Every kernel is a roofline plus a fixed cost::

    t = max(F / (P(fmt) * e_c),  B / (W * e_s)) + n_kernels * t_launch

with ``F`` the kernel's FLOPs, ``B`` the bytes it moves between HBM(-PIM) and the GPU, ``P(fmt)`` the
dense peak for the weight format (below), ``e_c`` the compute efficiency of the kernel kind
(``hw.gpu.gemm_efficiency`` for dense GEMMs and attention, ``hw.gpu.grouped_gemm_efficiency`` for MoE
grouped GEMMs), ``W = hw.gpu.hbm_bytes_per_s``, ``e_s = hw.gpu.stream_efficiency`` and
``t_launch = hw.gpu.kernel_launch_s``. Work with no tokens launches no kernel and costs 0 s.

Peak by weight format: ``bf16`` and ``fp16`` use ``bf16_flops``; ``fp8`` uses ``fp8_flops``; ``mxfp4``
also uses ``fp8_flops``. The last is an assumption: MXFP4 weights are multiplied against activations
of at least 8 bits in serving (W4A8 or W4A16), so the tensor cores run no faster than the fp8 rate;
Blackwell's FP4 rate (2x fp8) would need FP4 activations too, and Hopper has no FP4 tensor cores.
``fp32`` weights have no tensor-core peak in the presets and are rejected.

Bytes counted: weights as stored (:func:`sieve.model.matrix_bytes`, block scales included), read once
per kernel, plus activations read and written at ``activation_bytes`` per element (2: bf16). Not
modelled: caches (a weight is never reused from L2 across kernels), tile padding of small token counts
(a 1-token group occupies a whole MMA tile; it stays memory-bound at decode sizes, so the time is
unchanged), overlap between consecutive kernels, and elementwise kernels (norms, rotary embedding,
residual adds, SiLU x up), which are taken as fused into their neighbours.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

from sieve.hw import GPU, Hardware
from sieve.model import WEIGHT_FORMATS, ModelSpec, matrix_bytes

from ._checks import SystemModelError, as_gpu, count, counts, positive

__all__ = [
    "KERNEL_KINDS",
    "KernelWork",
    "NO_WORK",
    "NonExpertTime",
    "NonExpertWork",
    "decode_attention_time",
    "decode_attention_work",
    "embedding_time",
    "embedding_work",
    "experts_time",
    "experts_work",
    "experts_work_of",
    "gemm_time",
    "gemm_work",
    "grouped_gemm_time",
    "grouped_gemm_work",
    "lm_head_time",
    "lm_head_work",
    "non_expert_time",
    "peak_flops",
    "prefill_attention_time",
    "prefill_attention_work",
    "roofline_time",
]

# Which preset factor scales the peak for each kind of kernel.
KERNEL_KINDS = {"gemm": "gemm_efficiency", "grouped_gemm": "grouped_gemm_efficiency"}

_PEAK_FIELD = {"bf16": "bf16_flops", "fp16": "bf16_flops", "fp8": "fp8_flops", "mxfp4": "fp8_flops"}

# Kernels of one attention block's projections: fused QKV and the output projection for GQA and
# Gated DeltaNet (in_proj_qkvz with in_proj_ba, out_proj); MLA decode runs the fused q_a/kv_a
# down-projection, q_b, the absorbed kv_b products and o_proj.
_PROJECTION_KERNELS = {"gqa": 2, "mla": 4, "linear_attention": 2}


class KernelWork(NamedTuple):
    """What a kernel (or several) does: FLOPs, and bytes moved between HBM(-PIM) and the GPU. Each ``*_time``
    function is the roofline of its ``*_work``; energy (:mod:`sieve.system.energy`) reads the same record."""

    flops: float
    bytes_moved: float

    def __add__(self, other):  # the work of two kernels (a tuple's + would concatenate)
        return KernelWork(self.flops + other.flops, self.bytes_moved + other.bytes_moved)


NO_WORK = KernelWork(0.0, 0.0)


def peak_flops(hw: Hardware | GPU, weight_format: str) -> float:
    """Dense peak FLOP/s of the GPU for GEMMs on weights stored in ``weight_format``."""
    gpu = as_gpu(hw)
    if weight_format not in _PEAK_FIELD:
        known = "known to sieve.model but without a GPU peak" if weight_format in WEIGHT_FORMATS else "unknown"
        raise SystemModelError(
            f"weight format {weight_format!r} is {known}; allowed: {', '.join(sorted(_PEAK_FIELD))}")
    return getattr(gpu, _PEAK_FIELD[weight_format])


def roofline_time(hw: Hardware | GPU, flops: float, bytes_moved: float, weight_format: str = "bf16",
                  kind: str = "gemm", kernels: int = 1) -> float:
    """``max(flops / (peak(weight_format) * e_kind), bytes_moved / (hbm * stream_eff)) + kernels * launch``.

    ``kind`` picks the compute efficiency (:data:`KERNEL_KINDS`). No FLOPs and no bytes cost 0 s."""
    gpu = as_gpu(hw)
    if kind not in KERNEL_KINDS:
        raise SystemModelError(f"kernel kind {kind!r} is unknown; allowed: {', '.join(KERNEL_KINDS)}")
    for name, value in (("flops", flops), ("bytes_moved", bytes_moved)):
        if not 0 <= value < float("inf"):
            raise SystemModelError(f"{name}={value!r} is invalid; allowed: a finite number >= 0")
    kernels = count("kernels", kernels)
    peak = peak_flops(gpu, weight_format)
    if flops == 0 and bytes_moved == 0:
        return 0.0
    compute = flops / (peak * getattr(gpu, KERNEL_KINDS[kind]))
    memory = bytes_moved / (gpu.hbm_bytes_per_s * gpu.stream_efficiency)
    return max(compute, memory) + kernels * gpu.kernel_launch_s


def gemm_work(m: int, n: int, k: int, weight_format: str = "bf16", activation_bytes: float = 2) -> KernelWork:
    """The work :func:`gemm_time` counts: ``F = 2 m n k``, ``B = matrix_bytes(n, k) + m (k + n) activation_bytes``;
    none when ``m``, ``n`` or ``k`` is 0."""
    m, n, k = count("m", m), count("n", n), count("k", k)
    act = positive("activation_bytes", activation_bytes)
    if m == 0 or n == 0 or k == 0:
        return NO_WORK
    return KernelWork(2.0 * m * n * k, matrix_bytes(n, k, weight_format) + m * (k + n) * act)


def gemm_time(hw: Hardware | GPU, m: int, n: int, k: int, weight_format: str = "bf16",
              activation_bytes: float = 2) -> float:
    """One dense GEMM ``Y[m x n] = X[m x k] W[n x k]^T`` with ``W`` stored in ``weight_format``.

    ``F = 2 m n k``; ``B = matrix_bytes(n, k) + m (k + n) activation_bytes`` (:func:`gemm_work`); one kernel,
    compute efficiency ``gemm_efficiency``. ``m = 0`` (no tokens) costs 0 s."""
    m, n, k = count("m", m), count("n", n), count("k", k)
    positive("activation_bytes", activation_bytes)
    peak_flops(hw, weight_format)  # unknown formats fail even for empty GEMMs
    work = gemm_work(m, n, k, weight_format, activation_bytes)
    return _gemm_seconds(hw, work, weight_format)


def _gemm_seconds(hw, work: KernelWork, weight_format: str) -> float:
    """One dense GEMM's roofline from its work (no work: 0 s, no launch)."""
    return roofline_time(hw, work.flops, work.bytes_moved, weight_format, "gemm")


def grouped_gemm_work(group_tokens: Sequence[int], n: int, k: int, weight_format: str = "bf16",
                      activation_bytes: float = 2) -> KernelWork:
    """(FLOPs, bytes moved) of one grouped GEMM, as :func:`grouped_gemm_time` counts them."""
    tokens = counts("group_tokens", group_tokens, ndim=1)
    n, k = count("n", n), count("k", k)
    act = positive("activation_bytes", activation_bytes)
    return _grouped_gemm_work(int(tokens.sum()), int((tokens > 0).sum()), n, k, weight_format, act)


def _grouped_gemm_work(total: int, active: int, n: int, k: int, weight_format: str, act: float) -> KernelWork:
    """:func:`grouped_gemm_work` of ``total`` tokens over ``active`` groups (all it depends on), checked inputs."""
    if total == 0 or n == 0 or k == 0:
        return NO_WORK
    return KernelWork(2.0 * n * k * total, active * matrix_bytes(n, k, weight_format) + total * (k + n) * act)


def grouped_gemm_time(hw: Hardware | GPU, group_tokens: Sequence[int], n: int, k: int,
                      weight_format: str = "bf16", activation_bytes: float = 2) -> float:
    """One grouped GEMM: group ``g`` multiplies its ``group_tokens[g]`` tokens by its own ``n x k`` weight.

    Every group has the same shape (one group per expert). Groups with no tokens are skipped and their
    weights are not read; every other group streams its weights from HBM(-PIM) exactly once::

        F = 2 n k sum(N_g)
        B = G_active matrix_bytes(n, k) + sum(N_g) (k + n) activation_bytes

    one kernel, compute efficiency ``grouped_gemm_efficiency``."""
    flops, nbytes = grouped_gemm_work(group_tokens, n, k, weight_format, activation_bytes)
    peak_flops(hw, weight_format)
    if flops == 0:
        return 0.0
    return roofline_time(hw, flops, nbytes, weight_format, "grouped_gemm")


def experts_work(model: ModelSpec, tokens_per_expert: Sequence[int], activation_bytes: float = 2) -> KernelWork:
    """(FLOPs, bytes moved) of the routed experts on the GPU, as :func:`experts_time` counts them."""
    tokens = counts("group_tokens", tokens_per_expert, ndim=1)
    return experts_work_of(model, int(tokens.sum()), int((tokens > 0).sum()), activation_bytes)


def experts_work_of(model: ModelSpec, tokens: int, activated: int, activation_bytes: float = 2) -> KernelWork:
    """:func:`experts_work` of ``tokens`` token-expert pairs over ``activated`` experts: all it depends on."""
    h, i, fmt = model.hidden_size, model.expert_intermediate_size, model.expert_weight_format
    tokens, activated = count("tokens", tokens), count("activated", activated)
    act = positive("activation_bytes", activation_bytes)
    return (_grouped_gemm_work(tokens, activated, 2 * i, h, fmt, act)
            + _grouped_gemm_work(tokens, activated, h, i, fmt, act))


def experts_time(hw: Hardware | GPU, model: ModelSpec, tokens_per_expert: Sequence[int],
                 activation_bytes: float = 2) -> float:
    """Routed experts run on the GPU as two grouped GEMMs in ``model.expert_weight_format``.

    ``tokens_per_expert[j]`` tokens go to expert ``j`` (0: not activated, weights not read):
    gate and up together (``n = 2 I``, ``k = hidden``), then down (``n = hidden``, ``k = I``), each a
    :func:`grouped_gemm_time`. With bf16 weights an activated expert streams exactly
    ``model.expert_weight_bytes``; block scales of fp8/mxfp4 can differ by a rounding when
    ``I`` is not a multiple of the block. The gate/up output is counted at its full width ``2 I``."""
    tokens = counts("tokens_per_expert", tokens_per_expert, ndim=1)
    h, i, fmt = model.hidden_size, model.expert_intermediate_size, model.expert_weight_format
    return (grouped_gemm_time(hw, tokens, 2 * i, h, fmt, activation_bytes)
            + grouped_gemm_time(hw, tokens, h, i, fmt, activation_bytes))


def _layer_type(model: ModelSpec, layer: int) -> str:
    count("layer", layer)
    if layer >= model.num_layers:
        raise SystemModelError(f"layer={layer} lies outside 0..{model.num_layers - 1} of model {model.name!r}")
    return model.layer_types[layer]


def _ffn(hw, tokens: int, hidden: int, intermediate: int, fmt: str, act: float) -> tuple[float, KernelWork]:
    """A gated FFN (gate and up fused, then down) as two dense GEMMs: (seconds, work)."""
    up, down = gemm_work(tokens, 2 * intermediate, hidden, fmt, act), gemm_work(tokens, hidden, intermediate, fmt, act)
    return _gemm_seconds(hw, up, fmt) + _gemm_seconds(hw, down, fmt), up + down


@dataclass(frozen=True)
class NonExpertWork:
    """The work (:class:`KernelWork`) of each part of :class:`NonExpertTime`."""

    attention_projections: KernelWork = NO_WORK
    router: KernelWork = NO_WORK
    shared_expert: KernelWork = NO_WORK
    dense_ffn: KernelWork = NO_WORK

    @property
    def total(self) -> KernelWork:
        return self.attention_projections + self.router + self.shared_expert + self.dense_ffn


@dataclass(frozen=True)
class NonExpertTime:
    """Seconds of the GPU work of one decode layer other than routed experts and attention mixing; ``work``:
    the FLOPs and bytes of each part, from which its seconds come."""

    attention_projections_s: float
    router_s: float
    shared_expert_s: float
    dense_ffn_s: float
    work: NonExpertWork = field(default=NonExpertWork(), compare=False)

    @property
    def total_s(self) -> float:
        return self.attention_projections_s + self.router_s + self.shared_expert_s + self.dense_ffn_s


def non_expert_time(hw: Hardware | GPU, model: ModelSpec, layer: int, tokens: int,
                    activation_bytes: float = 2) -> NonExpertTime:
    """The non-expert GPU work of decoder layer ``layer`` for ``tokens`` tokens on one GPU.

    * attention projections (QKV and output, or the DeltaNet projections): one roofline over
      ``F = tokens * attention_flops_per_token(layer, 0)["projection"]`` and
      ``B = attention_weight_bytes(layer) + kernels * tokens * 2 hidden * activation_bytes`` (each
      projection kernel's input and output taken as ``hidden`` wide), plus 2 kernel launches
      (4 for MLA);
    * router (MoE layers): :func:`gemm_time` of ``tokens x num_experts x hidden``;
    * shared experts (MoE layers that have them): one gated FFN of width
      ``num_shared_experts * shared_expert_intermediate_size``, two GEMMs;
    * dense FFN (dense layers): one gated FFN of width ``dense_intermediate_size``.

    All in ``model.weight_format``. With data-parallel attention ``tokens`` is the GPU's share of
    the batch."""
    tokens = count("tokens", tokens)
    act = positive("activation_bytes", activation_bytes)
    gpu = as_gpu(hw)
    layer_type = _layer_type(model, layer)
    fmt, h = model.weight_format, model.hidden_size
    peak_flops(gpu, fmt)
    if tokens == 0:
        return NonExpertTime(0.0, 0.0, 0.0, 0.0)
    kernels = _PROJECTION_KERNELS["linear_attention" if layer_type == "linear_attention" else model.attention]
    flops = tokens * model.attention_flops_per_token(layer, 0)["projection"]
    nbytes = model.attention_weight_bytes(layer) + kernels * tokens * 2 * h * act
    projections = roofline_time(gpu, flops, nbytes, fmt, "gemm", kernels)
    router = shared = dense = 0.0
    router_w = shared_w = dense_w = NO_WORK
    if layer in model.moe_layers:
        router_w = gemm_work(tokens, model.num_experts, h, fmt, act)
        router = _gemm_seconds(gpu, router_w, fmt)
        if model.num_shared_experts:
            width = model.num_shared_experts * model.shared_expert_intermediate_size
            shared, shared_w = _ffn(gpu, tokens, h, width, fmt, act)
    else:
        dense, dense_w = _ffn(gpu, tokens, h, model.dense_intermediate_size, fmt, act)
    return NonExpertTime(projections, router, shared, dense,
                         NonExpertWork(KernelWork(float(flops), float(nbytes)), router_w, shared_w, dense_w))


def embedding_work(model: ModelSpec, tokens: int, activation_bytes: float = 2) -> KernelWork:
    """The work :func:`embedding_time` counts: no FLOPs,
    ``B = tokens * hidden * (bytes per element of model.weight_format + activation_bytes)``."""
    tokens = count("tokens", tokens)
    act = positive("activation_bytes", activation_bytes)
    return KernelWork(0.0, tokens * model.hidden_size * (WEIGHT_FORMATS[model.weight_format] + act))


def embedding_time(hw: Hardware | GPU, model: ModelSpec, tokens: int, activation_bytes: float = 2) -> float:
    """Embedding lookup of ``tokens`` tokens: a gather with no FLOPs, one kernel.

    ``B = tokens * hidden * (bytes per element of model.weight_format + activation_bytes)``
    (one row read, one activation written per token; :func:`embedding_work`)."""
    work = embedding_work(model, tokens, activation_bytes)
    peak_flops(hw, model.weight_format)
    return roofline_time(hw, work.flops, work.bytes_moved, model.weight_format, "gemm")


def lm_head_work(model: ModelSpec, tokens: int, activation_bytes: float = 2) -> KernelWork:
    """The work :func:`lm_head_time` counts (:func:`gemm_work` of ``tokens x vocab_size x hidden``)."""
    return gemm_work(tokens, model.vocab_size, model.hidden_size, model.weight_format, activation_bytes)


def lm_head_time(hw: Hardware | GPU, model: ModelSpec, tokens: int, activation_bytes: float = 2) -> float:
    """LM head of ``tokens`` tokens: :func:`gemm_time` of ``tokens x vocab_size x hidden`` in
    ``model.weight_format`` (the whole vocabulary matrix is read, tied to the embedding or not)."""
    return gemm_time(hw, tokens, model.vocab_size, model.hidden_size, model.weight_format, activation_bytes)


_KV_FORMAT = {2: "bf16", 1: "fp8"}


def decode_attention_time(hw: Hardware | GPU, model: ModelSpec, layer: int, context_lengths: Sequence[int],
                          kv_dtype_bytes: int = 2, work: KernelWork | None = None) -> float:
    """Decode attention of ``layer`` on the GPU for requests with ``context_lengths`` earlier tokens.

    One fused kernel (FlashDecoding / FlashMLA style), roofline with ``gemm_efficiency`` at the
    peak of the cache's dtype (2 bytes: bf16, 1 byte: fp8)::

        F = sum_r attention_flops_per_token(layer, c_r)["mixing"]
        B = sum_r kv_cache_bytes(layer, c_r) + kv_cache_bytes_per_token(layer)      (attention)
        B = sum_r 2 * kv_cache_bytes(layer, c_r)                                    (DeltaNet)

    Attention layers read each request's cache once and append the new token's keys and values;
    DeltaNet layers read and rewrite their recurrent state. Queries and outputs (``hidden`` wide per
    token) are small against the cache and left out. No requests cost 0 s. ``work``: the
    :func:`decode_attention_work` of these same arguments, when the caller has it already."""
    if work is None:
        work = decode_attention_work(model, layer, context_lengths, kv_dtype_bytes)
    return roofline_time(hw, work.flops, work.bytes_moved, _KV_FORMAT[kv_dtype_bytes], "gemm")


def decode_attention_work(model: ModelSpec, layer: int, context_lengths: Sequence[int],
                          kv_dtype_bytes: int = 2) -> KernelWork:
    """The work :func:`decode_attention_time` counts (its ``F`` and ``B``); none without requests."""
    ctx = counts("context_lengths", context_lengths, ndim=1)
    layer_type = _layer_type(model, layer)
    _kv_format(kv_dtype_bytes)
    if ctx.size == 0:
        return NO_WORK
    flops = sum(model.attention_flops_per_token(layer, int(c))["mixing"] for c in ctx)
    if layer_type == "linear_attention":
        nbytes = 2 * sum(model.kv_cache_bytes(layer, int(c), kv_dtype_bytes) for c in ctx)
    else:
        nbytes = sum(model.kv_cache_bytes(layer, int(c), kv_dtype_bytes) for c in ctx) \
            + len(ctx) * model.kv_cache_bytes_per_token(layer, kv_dtype_bytes)
    return KernelWork(float(flops), float(nbytes))


def _kv_format(kv_dtype_bytes) -> str:
    if isinstance(kv_dtype_bytes, bool) or kv_dtype_bytes not in _KV_FORMAT:
        raise SystemModelError(f"kv_dtype_bytes={kv_dtype_bytes!r} is not supported; allowed: 1 (fp8), 2 (bf16)")
    return _KV_FORMAT[kv_dtype_bytes]


def prefill_attention_time(hw: Hardware | GPU, model: ModelSpec, layer: int, prompt_lengths: Sequence[int],
                           kv_dtype_bytes: int = 2) -> float:
    """Causal self-attention of whole prompts in ``layer`` on the GPU (prefill), one fused kernel.

    Token ``c`` of a prompt of ``L`` tokens attends to its ``c`` predecessors (``min(c, window)`` in
    sliding-window layers), so with ``f(c) = attention_flops_per_token(layer, c)["mixing"]``, affine in the
    tokens attended (DeltaNet: constant)::

        F = sum_r sum_{c < L_r} f(c)                   B = sum_r 2 L_r kv_cache_bytes_per_token(layer)

    (the new keys and values written, then read once; queries and outputs stay on chip). Roofline with
    ``gemm_efficiency`` at the peak of the cache's dtype. No prompts cost 0 s."""
    work = prefill_attention_work(model, layer, prompt_lengths, kv_dtype_bytes)
    return roofline_time(hw, work.flops, work.bytes_moved, _KV_FORMAT[kv_dtype_bytes], "gemm")


def prefill_attention_work(model: ModelSpec, layer: int, prompt_lengths: Sequence[int],
                           kv_dtype_bytes: int = 2) -> KernelWork:
    """The work :func:`prefill_attention_time` counts (its ``F`` and ``B``); none without prompts."""
    lengths = counts("prompt_lengths", prompt_lengths, ndim=1)
    layer_type = _layer_type(model, layer)
    _kv_format(kv_dtype_bytes)
    lengths = lengths[lengths > 0]
    if lengths.size == 0:
        return NO_WORK
    f0 = model.attention_flops_per_token(layer, 0)["mixing"]
    slope = model.attention_flops_per_token(layer, 1)["mixing"] - f0
    window = model.sliding_window if layer_type == "sliding_attention" else None
    attended = 0  # sum over prompts and positions of the tokens attended
    for n in lengths.tolist():
        last = n - 1
        if window is None or last <= window:
            attended += last * n // 2
        else:
            attended += window * (window + 1) // 2 + (last - window) * window
    flops = f0 * int(lengths.sum()) + slope * attended
    per_token = model.kv_cache_bytes_per_token(layer, kv_dtype_bytes) if layer_type != "linear_attention" else 0
    nbytes = 2 * int(lengths.sum()) * per_token
    return KernelWork(float(flops), float(nbytes))
