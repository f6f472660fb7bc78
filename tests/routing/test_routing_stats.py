"""Counts and statistics against plain NumPy and hand-worked values."""

import numpy as np
import pytest

import sieve.model as model
import sieve.routing as routing
from sieve.routing import RoutingError
from sieve.routing._reference import counts_numpy


def test_counts_equal_numpy_reference():
    r = routing.generate("gpt_oss_120b", 50, 3, family="zipf", s=1.0, seed=4)
    np.testing.assert_array_equal(routing.expert_counts(r, 128), counts_numpy(r, 128))
    assert routing.expert_counts(r, 128).sum() == r.size


def test_stats_by_hand():
    counts = np.array([[1, 2, 3, 5, 0, 0, 0, 0, 0, 0]])
    st = routing.stats(counts)
    assert st["frac_1"] == st["frac_2"] == st["frac_3_4"] == st["frac_gt4"] == 0.25
    assert st["frac_le4"] == 0.75
    assert st["active_fraction"] == 0.4
    assert st["top10_share"] == pytest.approx(5 / 11)  # busiest 1 of 10 experts
    x = counts[0]
    gini = np.abs(x[:, None] - x[None, :]).sum() / (2 * len(x) * x.sum())
    assert st["gini"] == pytest.approx(gini)
    assert st["act_ratio"] is None


def test_uniform_and_concentrated_extremes():
    assert routing.stats(np.full((2, 8), 3))["gini"] == pytest.approx(0.0)
    one_hot = routing.stats(np.array([[0, 0, 0, 12]]))
    assert one_hot["gini"] == pytest.approx(0.75) and one_hot["top10_share"] == 1.0


def test_act_ratio_from_counts():
    spec = model.load("mixtral_8x7b")
    r = routing.generate(spec, 1, 3, family="uniform", seed=0)
    st = routing.stats(routing.expert_counts(r, 8), model=spec)
    assert st["act_ratio"] == pytest.approx(spec.active_params_per_token / spec.total_params)
    with pytest.raises(RoutingError, match="act_ratio needs counts shaped"):
        routing.stats(np.ones((3, 8), dtype=int), model=spec)


def test_bad_counts_and_routing():
    with pytest.raises(RoutingError, match="expert id 128 is out of range; allowed: 0..127"):
        routing.expert_counts(np.full((1, 1, 2, 4), 128), 128)
    with pytest.raises(RoutingError, match="expert id -1"):
        routing.expert_counts(np.full((1, 1, 2, 4), -1), 128)
    with pytest.raises(RoutingError, match="got 3 dims"):
        routing.expert_counts(np.zeros((1, 2, 4), dtype=int), 128)
    with pytest.raises(RoutingError, match="dtype float64"):
        routing.expert_counts(np.zeros((1, 1, 2, 4)), 128)
    with pytest.raises(RoutingError, match="no expert received a token"):
        routing.stats(np.zeros((2, 4), dtype=int))
    with pytest.raises(RoutingError, match=">= 0"):
        routing.stats(np.array([[1, -1]]))
