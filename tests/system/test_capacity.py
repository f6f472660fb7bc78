"""Model weights and KV cache against the memory of the GPUs."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import sieve.hw as hwmod
import sieve.model as modelmod
from sieve.system.capacity import CapacityError, check_capacity, memory_use
from sieve.system import SystemModelError


@pytest.fixture(scope="module")
def aim():
    return hwmod.load("aim")


def test_weights_add_up_to_the_model(aim):
    m = modelmod.load("qwen3_30b_a3b")  # bf16 throughout
    use = memory_use(aim, m, 1, [])
    assert use.kv_cache == 0
    # every parameter is stored once on one GPU (norm weights aside)
    assert use.replicated_weights + use.expert_weights == pytest.approx(2 * m.total_params, rel=0.001)


def test_experts_split_over_gpus(aim):
    m = modelmod.load("gpt_oss_120b")
    one, four = memory_use(aim, m, 1, []), memory_use(aim, m, 4, [])
    assert four.expert_weights * 4 == one.expert_weights
    assert four.replicated_weights == one.replicated_weights


def test_kv_cache_of_the_busiest_gpu(aim):
    m = modelmod.load("qwen3_30b_a3b")
    use = memory_use(aim, m, 2, [1000, 1000, 1000])
    assert use.kv_cache == 2 * 1000 * sum(m.kv_cache_bytes_per_token(layer) for layer in range(m.num_layers))


def test_paper_qwen35_run_is_over_capacity(aim, caplog):
    m = modelmod.load("qwen3_5_397b_a17b")
    with pytest.raises(CapacityError) as e:
        check_capacity(aim, m, 8, np.full(256, 2048))
    assert "does not fit" in str(e.value) and "GB short per GPU" in str(e.value)
    assert "allow_over_capacity=True" in str(e.value)
    with caplog.at_level(logging.WARNING):
        use = check_capacity(aim, m, 8, np.full(256, 2048), allow_over_capacity=True)
    assert not use.fits and "running anyway" in caplog.text


def test_fits(aim):
    assert check_capacity(aim, modelmod.load("gpt_oss_120b"), 4, np.full(64, 2048)).fits


@pytest.mark.parametrize("gpus,lengths,message", [
    (0, [1], "num_gpus must be a positive integer, got 0"),
    (3, [1], "num_gpus=3 does not divide num_experts=128"),
    (1, [-5], "context lengths must be >= 0, got -5"),
])
def test_bad_input(aim, gpus, lengths, message):
    with pytest.raises(SystemModelError, match=message):
        memory_use(aim, modelmod.load("gpt_oss_120b"), gpus, lengths)
