"""GPU roofline models against hand-worked numbers on a round-number GPU."""

from __future__ import annotations

import pytest

import sieve.hw as hwmod
from sieve.hw import GPU
from sieve.model import ModelSpec, matrix_bytes
from sieve.system import (SystemModelError, decode_attention_time, embedding_time, experts_time, gemm_time,
                          grouped_gemm_time, lm_head_time, non_expert_time, peak_flops, roofline_time)

LAUNCH = 1e-6
# 1 PFLOP/s bf16, 2 PFLOP/s fp8, 1 TB/s; GEMMs reach half the peak, grouped GEMMs a quarter, streams 80 %.
GPU_T = GPU(name="t", bf16_flops=1e15, fp8_flops=2e15, hbm_bytes_per_s=1e12, gemm_efficiency=0.5,
            grouped_gemm_efficiency=0.25, stream_efficiency=0.8, kernel_launch_s=LAUNCH)
BW = 1e12 * 0.8


def tiny(**kw) -> ModelSpec:
    args = dict(name="tiny", num_layers=2, hidden_size=1024, vocab_size=4096, num_experts=8, top_k=2,
                expert_intermediate_size=512, moe_layers=(1,), layer_types=("full_attention", "full_attention"),
                attention="gqa", num_attention_heads=8, num_key_value_heads=2, head_dim=128,
                dense_intermediate_size=2048, num_shared_experts=1, shared_expert_intermediate_size=256)
    args.update(kw)
    return ModelSpec(**args)


def test_gemm_compute_bound():
    # 4096^3: F = 2 * 4096^3 over 0.5 PFLOP/s = 274.9 us; 32 MiB of weights and 64 MiB of activations
    # over 0.8 TB/s = 125.8 us.
    f = 2 * 4096**3
    b = 4096 * 4096 * 2 + 4096 * 8192 * 2
    assert f / 0.5e15 > b / BW
    assert gemm_time(GPU_T, 4096, 4096, 4096) == pytest.approx(f / 0.5e15 + LAUNCH, rel=1e-12)


def test_gemm_memory_bound():
    # one token: the 32 MiB weight stream dominates; FLOPs would take 67 ns.
    b = 4096 * 4096 * 2 + 1 * (4096 + 4096) * 2
    assert gemm_time(GPU_T, 1, 4096, 4096) == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_fp8_runs_at_the_fp8_rate():
    bf16 = gemm_time(GPU_T, 4096, 4096, 4096, "bf16") - LAUNCH
    fp8 = gemm_time(GPU_T, 4096, 4096, 4096, "fp8") - LAUNCH
    assert fp8 == pytest.approx(bf16 / 2, rel=1e-12)
    # memory-bound fp8 reads half the weight bytes plus one fp32 scale per 128 x 128 block
    b = 4096 * 4096 + 32 * 32 * 4 + 8192 * 2
    assert gemm_time(GPU_T, 1, 4096, 4096, "fp8") == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_peak_by_format():
    assert peak_flops(GPU_T, "bf16") == peak_flops(GPU_T, "fp16") == 1e15
    assert peak_flops(GPU_T, "fp8") == peak_flops(GPU_T, "mxfp4") == 2e15


def test_activation_bytes_count():
    b = 4096 * 4096 * 2 + 1 * (4096 + 4096) * 1
    assert gemm_time(GPU_T, 1, 4096, 4096, activation_bytes=1) == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_no_tokens_cost_nothing():
    assert gemm_time(GPU_T, 0, 4096, 4096) == 0.0
    assert grouped_gemm_time(GPU_T, [0, 0, 0], 1024, 1024) == 0.0
    assert grouped_gemm_time(GPU_T, [], 1024, 1024) == 0.0
    assert roofline_time(GPU_T, 0, 0) == 0.0
    model = tiny()
    assert non_expert_time(GPU_T, model, 1, 0).total_s == 0.0
    assert decode_attention_time(GPU_T, model, 0, []) == 0.0
    assert lm_head_time(GPU_T, model, 0) == 0.0


def test_grouped_gemm_of_single_tokens_is_memory_bound():
    # 8 experts with one token each: 8 weight streams of 2 MiB; the 16 MFLOP take 67 ns at a quarter peak.
    n = k = 1024
    f = 2 * n * k * 8
    b = 8 * n * k * 2 + 8 * (n + k) * 2
    assert b / BW > f / 0.25e15
    assert grouped_gemm_time(GPU_T, [1] * 8, n, k) == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_grouped_gemm_reads_only_activated_experts():
    b = 2 * 1024 * 1024 * 2 + 5 * 2048 * 2
    assert grouped_gemm_time(GPU_T, [1, 0, 4, 0], 1024, 1024) == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_grouped_gemm_compute_bound_uses_grouped_efficiency():
    f = 2 * 4096 * 4096 * 4096
    assert grouped_gemm_time(GPU_T, [4096], 4096, 4096) == pytest.approx(f / 0.25e15 + LAUNCH, rel=1e-12)
    # one big group is slower as a grouped GEMM than as a dense one, by the efficiency ratio
    assert grouped_gemm_time(GPU_T, [4096], 4096, 4096) > gemm_time(GPU_T, 4096, 4096, 4096)


def test_experts_stream_each_activated_expert_once():
    model = tiny()
    counts = [1, 0, 2, 0, 0, 0, 0, 1]  # 3 experts, 4 tokens
    h, i = model.hidden_size, model.expert_intermediate_size
    weights = 3 * model.expert_weight_bytes
    acts = 4 * ((h + 2 * i) + (i + h)) * 2
    assert weights == 3 * 3 * h * i * 2
    # both grouped GEMMs are memory-bound; their times add, with one launch each
    assert experts_time(GPU_T, model, counts) == pytest.approx((weights + acts) / BW + 2 * LAUNCH, rel=1e-12)


def test_non_expert_work_of_moe_and_dense_layers():
    model = tiny()
    h, t = model.hidden_size, 16
    moe = non_expert_time(GPU_T, model, 1, t)
    assert moe.dense_ffn_s == 0.0
    assert moe.router_s == pytest.approx((8 * h * 2 + t * (h + 8) * 2) / BW + LAUNCH, rel=1e-12)
    shared = (matrix_bytes(512, h, "bf16") + t * (h + 512) * 2 + matrix_bytes(h, 256, "bf16")
              + t * (256 + h) * 2) / BW + 2 * LAUNCH
    assert moe.shared_expert_s == pytest.approx(shared, rel=1e-12)
    # QKV (1024 + 256 + 256 rows) and output (1024 x 1024): 2.5 Mi params, 2 kernels
    weights = model.attention_weight_bytes(1)
    assert weights == (1536 * h + h * h) * 2
    proj = (weights + 2 * t * 2 * h * 2) / BW + 2 * LAUNCH
    assert moe.attention_projections_s == pytest.approx(proj, rel=1e-12)
    assert moe.total_s == pytest.approx(proj + moe.router_s + shared, rel=1e-12)
    dense = non_expert_time(GPU_T, model, 0, t)
    assert dense.router_s == dense.shared_expert_s == 0.0
    ffn = (3 * 2048 * h * 2 + t * (h + 4096) * 2 + t * (2048 + h) * 2) / BW + 2 * LAUNCH
    assert dense.dense_ffn_s == pytest.approx(ffn, rel=1e-12)


def test_projections_turn_compute_bound_with_many_tokens():
    model = tiny()
    t = 100_000
    flops = t * model.attention_flops_per_token(1, 0)["projection"]
    got = non_expert_time(GPU_T, model, 1, t).attention_projections_s
    assert got == pytest.approx(flops / 0.5e15 + 2 * LAUNCH, rel=1e-12)


def test_embedding_and_lm_head():
    model = tiny()
    assert embedding_time(GPU_T, model, 10) == pytest.approx(10 * 1024 * (2 + 2) / BW + LAUNCH, rel=1e-12)
    b = 4096 * 1024 * 2 + 10 * (1024 + 4096) * 2
    assert lm_head_time(GPU_T, model, 10) == pytest.approx(b / BW + LAUNCH, rel=1e-12)


def test_decode_attention_streams_the_kv_cache():
    model = tiny()
    per_token = 2 * 2 * 128 * 2  # K and V, 2 KV heads, head 128, bf16
    ctx = [1000, 3000]
    b = (1000 + 3000) * per_token + 2 * per_token
    assert decode_attention_time(GPU_T, model, 0, ctx) == pytest.approx(b / BW + LAUNCH, rel=1e-12)
    # an fp8 cache halves the stream
    assert decode_attention_time(GPU_T, model, 0, ctx, kv_dtype_bytes=1) == pytest.approx(b / 2 / BW + LAUNCH)


def test_decode_attention_of_sliding_and_deltanet_layers():
    model = tiny(layer_types=("sliding_attention", "linear_attention"), sliding_window=128,
                 linear_num_key_heads=2, linear_num_value_heads=4, linear_key_head_dim=64,
                 linear_value_head_dim=64, linear_conv_kernel_dim=4)
    per_token = 2 * 2 * 128 * 2
    assert decode_attention_time(GPU_T, model, 0, [5000]) == pytest.approx(129 * per_token / BW + LAUNCH)
    state = model.kv_cache_bytes(1, 0)
    assert state == (4 * 64 * 64 + (2 * 2 * 64 + 4 * 64) * 3) * 2
    assert decode_attention_time(GPU_T, model, 1, [7, 9000]) == pytest.approx(2 * 2 * state / BW + LAUNCH)


def test_hardware_and_gpu_are_interchangeable():
    hw = hwmod.load("aim")
    assert gemm_time(hw, 8, 4096, 4096) == gemm_time(hw.gpu, 8, 4096, 4096)


@pytest.mark.parametrize("call,message", [
    (lambda: gemm_time(GPU_T, -1, 4, 4), "m=-1 is negative"),
    (lambda: gemm_time(GPU_T, 1, 4.0, 4), "n must be a non-negative integer, got 4.0"),
    (lambda: gemm_time(GPU_T, True, 4, 4), "m must be a non-negative integer, got True"),
    (lambda: gemm_time(GPU_T, 1, 4, 4, "int4"), "weight format 'int4' is unknown; allowed: bf16, fp16, fp8, mxfp4"),
    (lambda: gemm_time(GPU_T, 0, 4, 4, "fp32"), "weight format 'fp32' is known to sieve.model but without a GPU peak"),
    (lambda: gemm_time(GPU_T, 1, 4, 4, activation_bytes=0), "activation_bytes=0 is invalid"),
    (lambda: gemm_time("b200", 1, 4, 4), "expected a sieve.hw.Hardware or sieve.hw.GPU, got str"),
    (lambda: grouped_gemm_time(GPU_T, [1, -2], 4, 4), "group_tokens holds a negative count (-2)"),
    (lambda: grouped_gemm_time(GPU_T, [[1]], 4, 4), "group_tokens must be a 1-d array"),
    (lambda: grouped_gemm_time(GPU_T, [1.5], 4, 4), "group_tokens must hold integers, got dtype float64"),
    (lambda: roofline_time(GPU_T, 1, 1, kind="gemv"), "kernel kind 'gemv' is unknown; allowed: gemm, grouped_gemm"),
    (lambda: roofline_time(GPU_T, -1, 1), "flops=-1 is invalid"),
    (lambda: non_expert_time(GPU_T, tiny(), 2, 1), "layer=2 lies outside 0..1 of model 'tiny'"),
    (lambda: non_expert_time(GPU_T, tiny(), 0, -3), "tokens=-3 is negative"),
    (lambda: decode_attention_time(GPU_T, tiny(), 0, [-1]), "context_lengths holds a negative count (-1)"),
    (lambda: decode_attention_time(GPU_T, tiny(), 0, [1], kv_dtype_bytes=4),
     "kv_dtype_bytes=4 is not supported; allowed: 1 (fp8), 2 (bf16)"),
    (lambda: experts_time(GPU_T, tiny(), [1, -1]), "tokens_per_expert holds a negative count (-1)"),
])
def test_bad_input(call, message):
    with pytest.raises(SystemModelError) as e:
        call()
    assert message in str(e.value)
