"""Derived quantities, checked against hand-computed values for each attention kind."""

import pytest

import sieve.model as model


def test_kv_cache_per_layer_kind():
    ds = model.load("deepseek")
    # MLA caches the compressed latent plus the shared rope key.
    assert ds.kv_cache_bytes_per_token(5) == (512 + 64) * 2
    q30 = model.load("qwen3_30b_a3b")
    assert q30.kv_cache_bytes_per_token(0) == 2 * 4 * 128 * 2
    assert q30.kv_cache_bytes(0, 1000) == 1000 * 2 * 4 * 128 * 2
    oss = model.load("gpt_oss_120b")
    per_token = 2 * 8 * 64 * 2
    assert oss.kv_cache_bytes(0, 1000) == 128 * per_token  # sliding layer keeps the window only
    assert oss.kv_cache_bytes(1, 1000) == 1000 * per_token
    nxt = model.load("qwen3_next_80b_a3b")
    assert nxt.layer_types[0] == "linear_attention" and nxt.kv_cache_bytes_per_token(0) == 0
    state = (32 * 128 * 128 + (2 * 16 * 128 + 32 * 128) * 3) * 2
    assert nxt.kv_cache_bytes(0, 10) == nxt.kv_cache_bytes(0, 100_000) == state


def test_attention_flops():
    q30 = model.load("qwen3_30b_a3b")
    f = q30.attention_flops_per_token(0, 1000)
    assert f["mixing"] == 4 * 32 * 128 * 1000
    assert f["projection"] == 2 * 2048 * (32 * 128 + 2 * 4 * 128 + 32 * 128)
    oss = model.load("gpt_oss_120b")
    assert oss.attention_flops_per_token(0, 1000)["mixing"] == 4 * 64 * 64 * 128
    ds = model.load("deepseek")
    assert ds.attention_flops_per_token(3, 10)["mixing"] == 2 * 128 * (512 + 64) * 10 + 2 * 128 * 512 * 10
    nxt = model.load("qwen3_next_80b_a3b")
    assert nxt.attention_flops_per_token(0, 5)["mixing"] == nxt.attention_flops_per_token(0, 5000)["mixing"]


def test_expert_and_shared_work():
    nxt = model.load("qwen3_next_80b_a3b")
    assert nxt.expert_flops_per_token() == {"gate": 2 * 2048 * 512, "up": 2 * 2048 * 512, "down": 2 * 2048 * 512}
    assert nxt.shared_expert_flops_per_token() == 6 * 2048 * 512
    assert nxt.shared_expert_params == 3 * 2048 * 512 + 2048
    ds = model.load("deepseek")
    assert ds.dense_ffn_flops_per_token() == 6 * 7168 * 18432
    assert model.load("mixtral_8x7b").dense_ffn_params == 0


def test_act_ratio_limits_and_batch():
    mx = model.load("mixtral_8x22b")
    one = mx.act_ratio(mx.top_k)
    assert one == pytest.approx(mx.active_params_per_token / mx.total_params)
    assert mx.act_ratio(mx.num_experts) == pytest.approx(1.0)
    assert mx.act_ratio(mx.expected_active_experts(16)) > 0.99
    assert mx.expected_active_experts(1) == pytest.approx(mx.top_k)
    with pytest.raises(model.ModelSpecError, match="active_experts"):
        mx.act_ratio(9)
    with pytest.raises(model.ModelSpecError, match="batch_size=0"):
        mx.expected_active_experts(0)


def test_bad_layer_index():
    with pytest.raises(model.ModelSpecError, match="layer=99"):
        model.load("qwen3_30b_a3b").kv_cache_bytes(99, 10)
