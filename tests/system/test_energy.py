"""System energy: each component of a run's energy against a hand computation from the sourced values."""

from __future__ import annotations

import pytest

from sieve.hw import load
from sieve.model import load as load_model
from sieve.pim import expert_time
from sieve.system import SystemModelError
from sieve.system.energy import (COMPONENTS, RunTotals, expert_crossovers, expert_energy, memory_pj_per_byte,
                                 pim_expert_commands, run_energy)

# Sourced values (see sieve/conf/dram/energy/hbm3.yaml, pim/aim_hbm.yaml, hw/gpu/b200.yaml, hw/link/nvlink5.yaml)
ACT_PJ = 0.11 * 8192
READ_PJ = (0.44 + 1.01 + 1.23 + 0.5 + 0.3) * 256
MAC16_PJ = 24 * (0.44 * 256 + 0.32 * 16)        # 24 banks: cell read of a column, 16 bf16 MACs
REF_PJ = 1.2 * (250 - 55) / 2 * 400.0           # hbm3e_pim: tRFC 400 ns
PCS_PER_GPU = 32 * 8                            # pseudo-channels per stack x stacks


def test_memory_energy_per_byte_by_hand():
    assert memory_pj_per_byte("aim") == pytest.approx((READ_PJ + ACT_PJ / 32) / 32, rel=1e-13)


def test_run_energy_by_hand():
    totals = RunTotals(seconds=1e-3, num_gpus=2, tokens=64, gpu_flops=1e12, gpu_memory_bytes=1e9,
                       link_bytes=1e8, pim_commands={"MAC16": 1000, "ACT16": 10, "PREA": 10, "WRGB": 100})
    e = run_energy("aim", totals)
    wrgb_pj = (0.3 + 0.5 + 1.23) * 256
    assert e.gpu_compute_j == pytest.approx(1e12 * 0.16e-12)
    assert e.gpu_memory_j == pytest.approx(1e9 * (READ_PJ + ACT_PJ / 32) / 32 * 1e-12)
    assert e.nvlink_j == pytest.approx(1e8 * 8 * 1.3e-12)
    assert e.pim_compute_j == pytest.approx((1000 * MAC16_PJ + 100 * wrgb_pj) * 1e-12)
    assert e.pim_act_pre_j == pytest.approx(10 * 24 * ACT_PJ * 1e-12)
    assert e.refresh_j == pytest.approx(2 * PCS_PER_GPU * (1e-3 / 3900e-9) * REF_PJ * 1e-12)
    assert e.static_j == pytest.approx(2 * (200.0 + PCS_PER_GPU * 1.2 * 40 / 2 * 1e-3) * 1e-3)
    assert e.total_j == pytest.approx(sum(getattr(e, f"{c}_j") for c in COMPONENTS))
    d = e.as_dict()
    assert d["energy_j_per_token"] == pytest.approx(e.total_j / 64)
    assert d["tokens_per_joule"] == pytest.approx(64 / e.total_j)


def test_bad_totals_are_named():
    with pytest.raises(SystemModelError, match="PIM command 'MAC17' is not a command of hbm3e_aim; did you mean MAC16"):
        run_energy("aim", RunTotals(seconds=1.0, num_gpus=1, tokens=1, pim_commands={"MAC17": 1}))
    with pytest.raises(SystemModelError, match="tokens must be a positive integer, got 0"):
        run_energy("aim", RunTotals(seconds=1.0, num_gpus=1, tokens=0))
    with pytest.raises(SystemModelError, match="seconds must be a finite number >= 0"):
        run_energy("aim", RunTotals(seconds=-1.0, num_gpus=1, tokens=1))


def test_missing_energy_data_is_named():
    hw = load("aim", overrides=["hw.gpu.pj_per_flop=null"])
    with pytest.raises(SystemModelError, match="hw.gpu.pj_per_flop is not set for hardware 'aim'"):
        run_energy(hw, RunTotals(seconds=1.0, num_gpus=1, tokens=1))


def test_pim_expert_energy_is_bounded_by_its_weight_reads():
    """Every weight of a bf16 expert is read once per token from the cells of an opened row and meets 1/16
    of a 16-MAC column's arithmetic: N x bits x (0.11 + 0.44 + 0.32/16) pJ is the floor; global-buffer
    writes (one per MAC) and result reads stay below half of it again."""
    model = load_model("qwen3_30b_a3b")
    for n in (1, 8):
        e = expert_energy("aim", model, n)
        floor = n * model.expert_weight_bytes * 8 * (0.11 + 0.44 + 0.32 / 16) * 1e-12
        assert floor <= e.pim_j <= 1.5 * floor
        assert e.pim_s == expert_time("aim", model, n)


def test_crossovers_bracket_the_table():
    model = load_model("qwen3_30b_a3b")
    found = expert_crossovers("aim", model, max_tokens=64)
    for key, sides in (("energy", lambda e: (e.pim_j, e.gpu_j)), ("speed", lambda e: (e.pim_s, e.gpu_s))):
        n = found[key]
        (pim_before, gpu_before), (pim_at, gpu_at) = (sides(expert_energy("aim", model, k)) for k in (n - 1, n))
        assert pim_before <= gpu_before and gpu_at < pim_at


def test_pim_expert_commands_count_each_expert_run():
    model = load_model("qwen3_30b_a3b")
    one, three = (expert_time("aim", model, n, details=True).total_commands for n in (1, 3))
    got = pim_expert_commands("aim", model, [1, 3, 0, 1])
    assert got == {k: 2 * one.get(k, 0) + three.get(k, 0) for k in set(one) | set(three)}
