"""config.json import: every field-name variant, and clear errors for bad files."""

import json
import re
from pathlib import Path

import pytest

import sieve.model as model
from sieve.model import HFConfigError, from_hf_config

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"

BASE = {"hidden_size": 64, "num_hidden_layers": 4, "vocab_size": 100, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "torch_dtype": "bfloat16"}


def cfg(**extra):
    out = dict(BASE)
    out.update(extra)
    return out


@pytest.mark.parametrize("experts_key", ["n_routed_experts", "num_experts", "num_local_experts"])
@pytest.mark.parametrize("topk_key", ["num_experts_per_tok", "experts_per_token"])
def test_expert_count_and_topk_spellings(experts_key, topk_key):
    spec = from_hf_config(cfg(**{experts_key: 16, topk_key: 3, "moe_intermediate_size": 32}))
    assert (spec.num_experts, spec.top_k, spec.expert_intermediate_size) == (16, 3, 32)


def test_moe_width_wins_over_dense_width():
    spec = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                              intermediate_size=96, first_k_dense_replace=1))
    assert spec.expert_intermediate_size == 24 and spec.dense_intermediate_size == 96
    assert spec.moe_layers == (1, 2, 3) and spec.dense_layers == (0,)


def test_shared_expert_spellings():
    ds = from_hf_config(cfg(n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                            n_shared_experts=2))
    assert (ds.num_shared_experts, ds.shared_expert_intermediate_size, ds.shared_expert_gate) == (2, 24, False)
    qw = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                            shared_expert_intermediate_size=40))
    assert (qw.num_shared_experts, qw.shared_expert_intermediate_size, qw.shared_expert_gate) == (1, 40, True)


@pytest.mark.parametrize("extra, moe", [
    ({"first_k_dense_replace": 2, "moe_layer_freq": 1}, (2, 3)),
    ({"first_k_dense_replace": 0, "moe_layer_freq": 2}, (0, 2)),
    ({"mlp_only_layers": [1], "decoder_sparse_step": 1}, (0, 2, 3)),
    ({"mlp_only_layers": [], "decoder_sparse_step": 2}, (1, 3)),
    ({"interleave_moe_layer_step": 2}, (1, 3)),
    ({}, (0, 1, 2, 3)),
])
def test_moe_layer_rules(extra, moe):
    spec = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                              intermediate_size=96, **extra))
    assert spec.moe_layers == moe


def test_layer_types_interval_and_sliding():
    explicit = from_hf_config(cfg(model_type="gpt_oss", num_local_experts=8, experts_per_token=2, intermediate_size=24,
                                  sliding_window=8,
                                  layer_types=["sliding_attention", "full_attention"] * 2))
    assert explicit.layer_types[0] == "sliding_attention" and explicit.sliding_window == 8
    interval = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                                  full_attention_interval=2, linear_num_key_heads=2,
                                  linear_num_value_heads=4, linear_key_head_dim=8,
                                  linear_value_head_dim=8, linear_conv_kernel_dim=4))
    assert interval.layer_types == ("linear_attention", "full_attention") * 2
    off = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                             sliding_window=4096, use_sliding_window=False))
    assert set(off.layer_types) == {"full_attention"} and off.sliding_window == 0


def test_nested_text_config_and_quantization():
    raw = {"model_type": "wrapper", "quantization_config": {"quant_method": "mxfp4"},
           "text_config": cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24)}
    spec = from_hf_config(raw)
    assert spec.num_experts == 8 and spec.expert_weight_format == "mxfp4" and spec.weight_format == "bf16"
    fp8 = from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                             quantization_config={"quant_method": "fp8"}))
    assert (fp8.weight_format, fp8.expert_weight_format) == ("fp8", "fp8")


def test_mla_fields():
    spec = from_hf_config(cfg(n_routed_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                              kv_lora_rank=32, q_lora_rank=None, qk_rope_head_dim=8,
                              qk_nope_head_dim=16, v_head_dim=16))
    assert spec.attention == "mla" and spec.q_lora_rank == 0 and spec.kv_lora_rank == 32


@pytest.mark.parametrize("missing", ["hidden_size", "num_hidden_layers", "vocab_size", "num_attention_heads"])
def test_missing_required_field_is_named(missing):
    raw = cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24)
    del raw[missing]
    with pytest.raises(HFConfigError, match=missing):
        from_hf_config(raw)


def test_missing_expert_count_names_every_spelling():
    with pytest.raises(HFConfigError, match="n_routed_experts.*num_experts.*num_local_experts"):
        from_hf_config(cfg(num_experts_per_tok=2, moe_intermediate_size=24))


def test_topk_larger_than_expert_count():
    with pytest.raises(HFConfigError, match=r"\(9\).*\(8\)"):
        from_hf_config(cfg(num_experts=8, num_experts_per_tok=9, moe_intermediate_size=24))
    with pytest.raises(model.ModelSpecError, match="top_k=9 exceeds num_experts=8"):
        model.ModelSpec(name="x", num_layers=1, hidden_size=8, vocab_size=8, num_experts=8, top_k=9,
                        expert_intermediate_size=8, moe_layers=(0,), layer_types=("full_attention",),
                        attention="gqa", num_attention_heads=1, num_key_value_heads=1, head_dim=8)


def test_unsupported_quantization_is_named():
    with pytest.raises(HFConfigError, match="gptq"):
        from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                           quantization_config={"quant_method": "gptq"}))


def test_layer_types_length_mismatch():
    with pytest.raises(HFConfigError, match="layer_types has 3"):
        from_hf_config(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                           layer_types=["full_attention"] * 3))


def test_file_errors(tmp_path):
    with pytest.raises(HFConfigError, match="not found"):
        from_hf_config(tmp_path / "absent.json")
    bad = tmp_path / "config.json"
    bad.write_text("{not json")
    with pytest.raises(HFConfigError, match="not valid JSON"):
        from_hf_config(tmp_path)  # a folder resolves to its config.json
    bad.write_text(json.dumps(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24)))
    assert from_hf_config(tmp_path).num_experts == 8


# ---- fields left out: refused when no value is safe, defaulted with a warning when one is ----------

def test_missing_expert_width_is_refused_with_the_field_name():
    # Qwen3-30B-A3B's intermediate_size (6144) is the dense width, 8x its experts' 768: never a default.
    raw = json.loads(open(FIXTURES / "qwen3_30b_a3b.json").read())
    del raw["moe_intermediate_size"]
    with pytest.raises(HFConfigError, match=r"required field 'moe_intermediate_size'.*model_type here: 'qwen3_moe'"):
        from_hf_config(raw)


def test_families_whose_experts_are_intermediate_size_wide_need_no_moe_field():
    # Mixtral-8x7B's config.json has no moe_intermediate_size: its experts are intermediate_size = 14336 wide.
    spec = from_hf_config(FIXTURES / "mixtral_8x7b.json")
    assert spec.expert_intermediate_size == 14336


def test_missing_head_dim_is_warned_with_the_value_used(caplog):
    raw = json.loads(open(FIXTURES / "qwen3_30b_a3b.json").read())
    del raw["head_dim"]
    with caplog.at_level("WARNING", logger="sieve.model.hf"):
        spec = from_hf_config(raw)
    # hidden_size 2048 / 32 heads = 64, not the released model's 128: the user must see which was used
    assert spec.head_dim == 64
    assert "head_dim missing; using 64" in caplog.text


def test_missing_kv_heads_and_dtype_are_warned(caplog):
    raw = cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24)
    del raw["num_key_value_heads"], raw["torch_dtype"]
    with caplog.at_level("WARNING", logger="sieve.model.hf"):
        spec = from_hf_config(raw)
    assert spec.num_key_value_heads == 4 and spec.weight_format == "bf16"
    assert "num_key_value_heads missing; using 4" in caplog.text
    assert "torch_dtype missing; using bfloat16" in caplog.text


@pytest.mark.parametrize("field, value", [("num_experts", "many"), ("hidden_size", 1.5), ("num_hidden_layers", -2),
                                          ("num_experts_per_tok", True), ("moe_intermediate_size", [8])])
def test_non_integer_fields_name_file_and_field(tmp_path, field, value):
    path = tmp_path / "config.json"
    raw = cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24)
    raw[field] = value
    path.write_text(json.dumps(raw))
    with pytest.raises(HFConfigError, match=re.escape(f"config.json: {field}={value!r} is not a non-negative integer")):
        from_hf_config(path)


def test_an_absurd_depth_is_refused_before_anything_is_built_per_layer(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg(num_experts=8, num_experts_per_tok=2, moe_intermediate_size=24,
                                   num_hidden_layers=10 ** 12)))
    with pytest.raises(HFConfigError, match="num_hidden_layers=1000000000000 is invalid; allowed: at most 10000"):
        from_hf_config(path)


def test_a_run_is_named_after_its_config_file(tmp_path):
    for stem in ("small", "large"):
        (tmp_path / f"{stem}.json").write_text(json.dumps(cfg(num_experts=8, num_experts_per_tok=2,
                                                              moe_intermediate_size=24)))
    (tmp_path / "Qwen3-Tiny").mkdir()
    (tmp_path / "Qwen3-Tiny" / "config.json").write_text((tmp_path / "small.json").read_text())
    assert from_hf_config(tmp_path / "small.json").name == "small"
    assert from_hf_config(tmp_path / "large.json").name == "large"
    assert from_hf_config(tmp_path / "Qwen3-Tiny").name == "Qwen3-Tiny"
    assert from_hf_config(tmp_path / "large.json", name="mine").name == "mine"
