"""Decode attention on PIM."""

from __future__ import annotations

import numpy as np
import pytest

import sieve.hw as hwmod
import sieve.model as modelmod
from sieve.pim.attention import attention_time, attention_units
from sieve.trace.gemv import LayoutError


@pytest.fixture(scope="module")
def aim():
    return hwmod.load("aim")


def test_cost_grows_with_context(aim):
    m = modelmod.load("qwen3_30b_a3b")
    t = [attention_time(aim, m, 0, np.full(64, c)) for c in (256, 1024, 4096)]
    assert t[0] < t[1] < t[2]
    assert t[2] / t[1] > 2  # long contexts are dominated by MACs over the cache


def test_units_gqa_and_mla(aim):
    q = modelmod.load("qwen3_30b_a3b")
    units, gemvs, width, rows = attention_units(q, 0, np.full(64, 1000), 256)
    assert len(units) == 64 * q.num_key_value_heads and gemvs == q.num_attention_heads // q.num_key_value_heads
    assert width == rows == q.head_dim
    d = modelmod.load("deepseek")
    units, gemvs, width, rows = attention_units(d, 5, np.full(8, 1000), 256)
    # 8 requests on 256 channels: each request's tokens split in 32 blocks
    assert len(units) == 256 and units.max() == 32 and gemvs == d.num_attention_heads
    assert width == d.kv_lora_rank + d.qk_rope_head_dim and rows == d.kv_lora_rank


def test_sliding_window_caps_the_cost(aim):
    m = modelmod.load("gpt_oss_120b")
    sliding = m.layer_types.index("sliding_attention")
    a = attention_time(aim, m, sliding, np.full(16, 1000))
    b = attention_time(aim, m, sliding, np.full(16, 8000))
    assert a == b


def test_linear_attention_is_not_on_pim(aim):
    m = modelmod.load("qwen3_next_80b_a3b")
    assert attention_time(aim, m, m.layer_types.index("linear_attention"), np.full(8, 1000)) == 0.0


def test_channels_are_balanced(aim):
    m = modelmod.load("qwen3_30b_a3b")
    t = attention_time(aim, m, 0, np.full(64, 2048))
    busy = t.channel_seconds
    assert busy.min() > 0 and busy.max() / busy.min() < 1.01


@pytest.mark.parametrize("layer,lengths,message", [
    (99, [10], "layer 99 is outside 0..47"),
    (0, [[10]], "context_lengths must be a 1-d integer array"),
    (0, [-1], "context lengths must be >= 0, got -1"),
])
def test_bad_input(aim, layer, lengths, message):
    with pytest.raises(LayoutError) as e:
        attention_time(aim, "qwen3_30b_a3b", layer, np.array(lengths))
    assert message in str(e.value)
