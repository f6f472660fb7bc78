"""pimoe: busiest channel first, its most popular expert, until the GPU is the slower side."""

from __future__ import annotations

import numpy as np

from sieve.sched import PIMoE

from .helpers import ep_layout, per_expert_gpu, per_token, view


def pimoe_view(counts, channels=4, per_expert=1, gpu=per_expert_gpu(1.0), **kwargs):
    counts = np.asarray(counts)
    return view(counts, gpu=gpu, num_pim_channels=channels,
                expert_channels=ep_layout(len(counts), channels, per_expert),
                pim_channel_expert_time=per_token(1.0), **kwargs)


def gpu_set(p):
    return np.flatnonzero(p.on_gpu).tolist()


def test_moves_the_most_popular_expert_of_the_busiest_channel():
    # Channel c holds experts c and c + 4. Channel 0: 5 + 2 = 7; channels 1-3: 1.
    # GPU 0 <= 7: move expert 0 (channel 0's most popular); GPU 3 > max load 2: stop.
    p = PIMoE().place(pimoe_view([5, 1, 1, 1, 2, 0, 0, 0], gpu=per_expert_gpu(3.0)))
    assert gpu_set(p) == [0]
    assert p.channel_load_s.tolist() == [2.0, 1.0, 1.0, 1.0]
    assert p.estimated_s == 3.0


def test_busiest_channel_not_hottest_expert():
    # Channel 0: experts 0, 4, 8 with 3 tokens each (9); channel 1: expert 1 with 8 tokens.
    # Moves: expert 0 from channel 0 (9 > 8; equal counts -> lowest index), GPU 2 <= 8;
    # expert 1 from channel 1, GPU 4 <= 6; expert 4 from channel 0, GPU 6 > 3: stop.
    counts = [3, 8, 0, 0, 3, 0, 0, 0, 3]
    p = PIMoE().place(pimoe_view(counts, gpu=per_expert_gpu(2.0)))
    assert gpu_set(p) == [0, 1, 4]
    assert p.on_pim.tolist() == [False, False, False, False, False, False, False, False, True]


def test_equal_loads_take_the_lowest_channel():
    # Channels 0 and 1 both carry 4: channel 0 goes first; after that move GPU 5 > max load 4: stop.
    p = PIMoE().place(pimoe_view([4, 4, 0, 0], gpu=per_expert_gpu(5.0)))
    assert gpu_set(p) == [0]


def test_the_move_that_makes_the_gpu_slower_is_kept_and_equal_times_keep_moving():
    # Four 1-token experts, one per channel: PIM time 1. GPU 1 s per expert plus 0 base.
    # GPU 0 <= 1: move expert 0; GPU 1 <= 1 (equal): move expert 1; GPU 2 > 1: stop.
    p = PIMoE().place(pimoe_view([1, 1, 1, 1], gpu=per_expert_gpu(1.0)))
    assert gpu_set(p) == [0, 1]
    # A GPU already slower than the busiest channel takes nothing.
    assert PIMoE().place(pimoe_view([1, 1, 1, 1], gpu=per_expert_gpu(1.0, base=1.5))).on_pim.all()


def test_ignores_pim_attention_and_communication():
    counts = [3, 8, 0, 0, 3, 0, 0, 0, 3]
    plain = PIMoE().place(pimoe_view(counts, gpu=per_expert_gpu(2.0)))
    busy = PIMoE().place(pimoe_view(counts, gpu=per_expert_gpu(2.0), pim_attention_s=1e3, comm_s=1e3))
    assert plain.on_pim.tolist() == busy.on_pim.tolist()


def test_experts_over_several_channels():
    # 4 experts over 4 channels, 2 channels each: expert j in channels 2j, 2j+1 (mod 4).
    # Loads: ch0 = e0 + e2 = 6 + 1, ch1 = 7, ch2 = e1 + e3 = 2 + 2, ch3 = 4.
    # Move e0 (channel 0, lowest index of the tie); loads 1, 1, 4, 4; GPU 2 <= 4: channel 2's most popular,
    # experts 1 and 3 both have 2 tokens: e1; loads 1, 1, 2, 2; GPU 4 > 2: stop.
    p = PIMoE().place(pimoe_view([6, 2, 1, 2], per_expert=2, gpu=per_expert_gpu(2.0)))
    assert gpu_set(p) == [0, 1]
    assert p.channel_load_s.tolist() == [1.0, 1.0, 2.0, 2.0]


def test_everything_moves_when_the_gpu_is_free():
    p = PIMoE().place(pimoe_view([1, 2, 3, 0], gpu=lambda c: 0.0))
    assert gpu_set(p) == [0, 1, 2] and p.channel_load_s.tolist() == [0.0] * 4
