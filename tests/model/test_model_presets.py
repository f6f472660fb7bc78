"""Model presets agree with the published config.json values and with the published sizes."""

import dataclasses
from pathlib import Path

import pytest

import sieve.model as model

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"
PRESETS = [
    "deepseek", "qwen3_30b_a3b", "qwen3_5_397b_a17b", "gpt_oss_120b", "qwen3_next_80b_a3b",
    "mixtral_8x7b", "mixtral_8x22b", "deepseek_v2_lite", "kimi_k2", "qwen3_235b_a22b",
]

# Total parameter counts the model cards announce (decoder only, MTP heads excluded).
PUBLISHED_TOTAL = {
    "deepseek": 671e9, "qwen3_30b_a3b": 30.5e9, "qwen3_5_397b_a17b": 397e9, "gpt_oss_120b": 116.8e9,
    "qwen3_next_80b_a3b": 80e9, "mixtral_8x7b": 46.7e9, "mixtral_8x22b": 141e9,
    "deepseek_v2_lite": 15.7e9, "kimi_k2": 1.04e12, "qwen3_235b_a22b": 235e9,
}


def test_every_required_preset_ships():
    assert set(PRESETS) <= set(model.available())


@pytest.mark.parametrize("name", PRESETS)
def test_preset_equals_import_of_published_config(name):
    preset = model.load(name)
    imported = model.from_hf_config(FIXTURES / f"{name}.json", name=name)
    differing = {f.name: (getattr(preset, f.name), getattr(imported, f.name))
                 for f in dataclasses.fields(preset) if getattr(preset, f.name) != getattr(imported, f.name)}
    assert not differing
    assert preset.source == imported.source


@pytest.mark.parametrize("name", PRESETS)
def test_total_params_match_model_card(name):
    total = model.load(name).total_params
    assert total == pytest.approx(PUBLISHED_TOTAL[name], rel=0.015)


def test_spec_table_values():
    ds = model.load("deepseek")
    assert (ds.num_layers, ds.hidden_size, ds.num_experts, ds.top_k) == (61, 7168, 256, 8)
    assert ds.moe_layers == tuple(range(3, 61)) and ds.dense_intermediate_size == 18432
    assert (ds.num_shared_experts, ds.shared_expert_intermediate_size) == (1, 2048)
    q30 = model.load("qwen3_30b_a3b")
    assert (q30.top_k, q30.num_shared_experts, q30.expert_intermediate_size) == (8, 0, 768)
    q35 = model.load("qwen3_5_397b_a17b")
    assert q35.layer_types.count("full_attention") == 15 and q35.layer_types[3] == "full_attention"
    oss = model.load("gpt_oss_120b")
    assert oss.layer_types[:2] == ("sliding_attention", "full_attention") and oss.sliding_window == 128
    assert oss.expert_weight_format == "mxfp4" and oss.weight_format == "bf16"
    nxt = model.load("qwen3_next_80b_a3b")
    assert (nxt.num_experts, nxt.top_k, nxt.expert_intermediate_size) == (512, 10, 512)


def test_expert_weight_bytes_by_format():
    # bf16: 2 bytes per weight, three hidden x I matrices.
    assert model.load("qwen3_30b_a3b").expert_weight_bytes == 3 * 2048 * 768 * 2
    # MXFP4: half a byte per weight plus one scale byte per 32 weights.
    assert model.load("gpt_oss_120b").expert_weight_bytes == 3 * 2880 * 2880 // 2 + 3 * 2880 * 2880 // 32
    # fp8 with one fp32 scale per 128 x 128 block.
    assert model.load("deepseek").expert_weight_bytes == 3 * 7168 * 2048 + 3 * 4 * (7168 // 128) * (2048 // 128)


def test_unknown_preset_names_the_choices():
    with pytest.raises(model.ModelSpecError, match="nope.*available"):
        model.load("nope")
