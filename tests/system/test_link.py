"""NVLink collectives and expert placement against hand-worked numbers."""

from __future__ import annotations

import numpy as np
import pytest

import sieve.hw as hwmod
from sieve.hw import Link
from sieve.model import ModelSpec
from sieve.system import (SystemModelError, collective_time, combine_time, dispatch_time, expert_owner,
                          routing_allgather_time)

LAT = 1e-6
LINK = Link(name="t", bytes_per_s_per_direction=1e11, latency_s=LAT)  # 100 GB/s per direction
VEC = 1024 * 2  # one bf16 token vector of the model below


@pytest.fixture(scope="module")
def model():
    return ModelSpec(name="tiny", num_layers=1, hidden_size=1024, vocab_size=4096, num_experts=8, top_k=2,
                     expert_intermediate_size=512, moe_layers=(0,), layer_types=("full_attention",),
                     attention="gqa", num_attention_heads=8, num_key_value_heads=2, head_dim=128)


def test_busiest_direction_of_busiest_gpu():
    # GPU 1 receives 3e9 B and sends 1e9; GPU 0 sends 2e9: the 3e9 receive sets the time.
    assert collective_time(LINK, [2e9, 1e9], [0.0, 3e9]) == pytest.approx(3e9 / 1e11 + LAT, rel=1e-12)


def test_one_gpu_costs_nothing(model):
    assert collective_time(LINK, [5e9], [5e9]) == 0.0
    assert routing_allgather_time(LINK, model, [64]) == 0.0
    assert dispatch_time(LINK, model, [[64]]) == 0.0
    assert combine_time(LINK, model, [[64]]) == 0.0


def test_local_tokens_pay_only_the_latency(model):
    assert dispatch_time(LINK, model, np.diag([5, 7, 9])) == pytest.approx(LAT, rel=1e-12)


def test_skewed_all_to_all_contends_on_the_hot_gpu(model):
    # every GPU sends 10 token vectors to GPU 0 and keeps 5: GPU 0 receives 30 vectors through one link
    skewed = np.array([[5, 0, 0, 0], [10, 5, 0, 0], [10, 0, 5, 0], [10, 0, 0, 5]])
    assert dispatch_time(LINK, model, skewed) == pytest.approx(30 * VEC / 1e11 + LAT, rel=1e-12)
    # combine reverses the flow: GPU 0 sends the 30 results back, same busiest direction
    assert combine_time(LINK, model, skewed) == pytest.approx(30 * VEC / 1e11 + LAT, rel=1e-12)
    # the same 30 vectors spread over all links (a ring shift of 10) take a third of the time
    balanced = np.array([[5, 10, 0, 0], [0, 5, 10, 0], [0, 0, 5, 10], [10, 0, 0, 5]])
    assert dispatch_time(LINK, model, balanced) == pytest.approx(10 * VEC / 1e11 + LAT, rel=1e-12)


def test_combine_transposes_dispatch(model):
    # GPU 0 sends 7 to GPU 1 and receives 2 from it; 1-byte (fp8) dispatch, bf16 combine
    tokens = np.array([[0, 7, 0], [2, 0, 0], [0, 0, 0]])
    assert dispatch_time(LINK, model, tokens, activation_bytes=1) == pytest.approx(7 * 1024 / 1e11 + LAT)
    assert combine_time(LINK, model, tokens) == pytest.approx(7 * VEC / 1e11 + LAT)


def test_routing_allgather(model):
    # top-2, int32 id + fp32 weight: 16 B per token. Tokens [1, 2, 3]: GPU g sends 2 * 16 * t_g
    # (32, 64, 96) and receives 16 * (6 - t_g) (80, 64, 48); GPU 2's 96 B sends set the time.
    assert routing_allgather_time(LINK, model, [1, 2, 3]) == pytest.approx(96 / 1e11 + LAT, rel=1e-12)
    assert routing_allgather_time(LINK, model, [4, 2], id_bytes=2, weight_bytes=2) == \
        pytest.approx(2 * 4 * 4 / 1e11 + LAT, rel=1e-12)


def test_paper_link_from_hardware():
    hw = hwmod.load("aim")
    assert collective_time(hw, [0, 9e11], [9e11, 0]) == pytest.approx(1.0 + 0.8e-6, rel=1e-12)


def test_expert_owner_contiguous_blocks():
    assert expert_owner(8, 4).tolist() == [0, 0, 1, 1, 2, 2, 3, 3]
    assert expert_owner(8, 8).tolist() == list(range(8))
    assert expert_owner(8, 1).tolist() == [0] * 8
    assert np.bincount(expert_owner(512, 8)).tolist() == [64] * 8


@pytest.mark.parametrize("call,message", [
    (lambda m: expert_owner(8, 16), "num_gpus=16 exceeds num_experts=8: more GPUs than experts allow"),
    (lambda m: expert_owner(10, 4), "num_gpus=4 does not divide num_experts=10"),
    (lambda m: expert_owner(10, 4), "valid num_gpus up to 64: 1, 2, 5, 10"),
    (lambda m: expert_owner(8, 0), "num_experts=8 and num_gpus=0 must both be at least 1"),
    (lambda m: expert_owner(8, -2), "num_gpus=-2 is negative"),
    (lambda m: dispatch_time(LINK, m, [[1, 2, 3]]),
     "tokens must be a square [src_gpu, dst_gpu] matrix, got shape (1, 3)"),
    (lambda m: dispatch_time(LINK, m, [1, 2]), "tokens must be a 2-d array"),
    (lambda m: combine_time(LINK, m, [[1, -2], [0, 0]]), "tokens holds a negative count (-2)"),
    (lambda m: dispatch_time(LINK, m, [[0.5, 0], [0, 0]]), "tokens must hold integers"),
    (lambda m: dispatch_time(LINK, m, [[0, 1], [1, 0]], activation_bytes=-2), "activation_bytes=-2 is invalid"),
    (lambda m: routing_allgather_time(LINK, m, []), "tokens_per_gpu must have one entry per GPU"),
    (lambda m: routing_allgather_time(LINK, m, [3, -1]), "tokens_per_gpu holds a negative count (-1)"),
    (lambda m: collective_time(LINK, [1, 2], [1]), "one entry per GPU, got shapes (2,) and (1,)"),
    (lambda m: collective_time(LINK, [1, -2], [1, 1]), "bytes_sent must be finite and >= 0"),
    (lambda m: collective_time(hwmod.load("aim").gpu, [1], [1]),
     "expected a sieve.hw.Hardware or sieve.hw.Link, got GPU"),
])
def test_bad_input(model, call, message):
    with pytest.raises(SystemModelError) as e:
        call(model)
    assert message in str(e.value)
