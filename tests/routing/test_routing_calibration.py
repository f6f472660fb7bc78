"""Calibrated presets reproduce the Sieve paper's routing statistics within 3 percentage points.

Run with ``-s`` to see measured vs target for every statistic.
"""

import pytest

import sieve.model as model
import sieve.routing as routing
from tests import scripts

TOLERANCE_PP = 3.0

calib = scripts.load("calibrate_routing")


def measure(name, batch_sizes):
    spec = model.load(name)
    p = routing.preset(name)
    return calib.measure(spec, p.family, p.params, batch_sizes, calib.steps_for(spec))


@pytest.mark.parametrize("name", sorted(calib.TARGETS))
def test_preset_meets_paper_statistics(name):
    targets = calib.TARGETS[name]
    measured = measure(name, sorted({b for t in targets.values() for b in t}))
    p = routing.preset(name)
    print(f"\n{name}: {p.family} {p.params}")
    misses = []
    for stat, by_batch in targets.items():
        for b, target in by_batch.items():
            got = measured[b][stat]
            misses.append(abs(got - target) * 100)
            print(f"  B={b:<4} {stat:<9} measured {got * 100:5.1f}%  paper {target * 100:5.1f}%  "
                  f"miss {misses[-1]:.2f} pp")
    assert max(misses) <= TOLERANCE_PP


@pytest.mark.parametrize("name", sorted(calib.TARGETS))
def test_stored_figures_are_reproducible(name):
    """The achieved figures stored beside the fitted parameters come out again from the same seed."""
    p = routing.preset(name)
    batch_sizes = sorted(int(k[1:]) for k in p.achieved)
    measured = measure(name, batch_sizes)
    for b in batch_sizes:
        for stat, stored in p.achieved[f"B{b}"].items():
            assert round(float(measured[b][stat]), 4) == pytest.approx(stored, abs=1e-12), (b, stat)


def test_borrowed_presets_share_their_donor_geometry():
    for name, donor in calib.BORROWED.items():
        a, b = routing.preset(name), routing.preset(donor)
        assert (a.family, a.params) == (b.family, b.params)
        sa, sb = model.load(name), model.load(donor)
        assert (sa.num_experts, sa.top_k) == (sb.num_experts, sb.top_k)
        assert donor in a.basis


def test_activated_fraction_targets():
    """Beside the token-count bins, the presets reproduce the fraction of a layer's experts that are
    activated (median over layers): GPT-OSS 46-50% at B=256 (the paper's act-ratio of 47.9% less its ~2% of
    non-expert parameters), Mixtral-8x22B all experts by B=16 (within the 3 pp tolerance)."""
    oss = measure("gpt_oss_120b", [256])[256]["layer_active_fraction"]
    assert 0.46 <= oss <= 0.50
    mixtral = measure("mixtral_8x22b", [1, 16])
    assert mixtral[16]["layer_active_fraction"] >= 1.0 - TOLERANCE_PP / 100
    assert mixtral[1]["layer_active_fraction"] == 2 / 8  # top-2 of 8 with one token
    # Qwen3-Next "behaves like GPT-OSS" in the paper's words; its bins fix the preset, which activates more
    nxt = measure("qwen3_next_80b_a3b", [256])[256]["layer_active_fraction"]
    print(f"\nlayer_active_fraction at B=256: gpt_oss_120b {oss:.3f}, qwen3_next_80b_a3b {nxt:.3f}; "
          f"mixtral_8x22b at B=16 {mixtral[16]['layer_active_fraction']:.3f}")
    assert nxt > 0.5


def test_qwen3_next_single_token_share_at_small_batch():
    """A figure the fit does not target: single-token (GEMV) experts at B=4, paper 92.5%."""
    nxt = measure("qwen3_next_80b_a3b", [4])[4]
    assert abs(nxt["frac_1"] - 0.925) * 100 <= TOLERANCE_PP
