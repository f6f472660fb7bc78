"""Routing generators: shape, determinism, the sampling law, drift and bad input."""

import itertools

import numpy as np
import pytest

import sieve.model as model
import sieve.routing as routing
from sieve.routing import RoutingError
from sieve.routing._kernels import _route
from sieve.routing._reference import route_numpy
from sieve.routing.families import alias_tables, rank_probabilities


def tiny(num_experts=8, top_k=2, layers=3):
    return model.ModelSpec(
        name="tiny", num_layers=layers, hidden_size=16, vocab_size=32, num_experts=num_experts, top_k=top_k,
        expert_intermediate_size=8, moe_layers=tuple(range(layers)), layer_types=("full_attention",) * layers,
        attention="gqa", num_attention_heads=2, num_key_value_heads=1, head_dim=8)


FAMILY_CASES = [("uniform", {}), ("zipf", {"s": 1.2}), ("powerlaw", {"alpha": 1.5}),
                ("hotcold", {"hot_fraction": 0.1, "hot_mass": 0.7})]


@pytest.mark.parametrize("family, params", FAMILY_CASES)
def test_shape_range_and_distinct_picks(family, params):
    spec = model.load("qwen3_next_80b_a3b")
    r = routing.generate(spec, 33, 3, family=family, seed=5, drift=0.1, **params)
    assert r.shape == (3, spec.num_moe_layers, 33, spec.top_k) and r.dtype == np.int32
    assert r.min() >= 0 and r.max() < spec.num_experts
    ordered = np.sort(r, axis=-1)
    assert not (ordered[..., 1:] == ordered[..., :-1]).any()


@pytest.mark.parametrize("family, params", FAMILY_CASES)
def test_same_seed_same_bits_other_seed_differs(family, params):
    a = routing.generate("gpt_oss_120b", 64, 4, family=family, seed=11, drift=0.05, **params)
    b = routing.generate("gpt_oss_120b", 64, 4, family=family, seed=11, drift=0.05, **params)
    c = routing.generate("gpt_oss_120b", 64, 4, family=family, seed=12, drift=0.05, **params)
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


def test_generator_argument_advances_its_state():
    rng = np.random.default_rng(3)
    first = routing.generate(tiny(), 8, 2, family="uniform", seed=rng)
    second = routing.generate(tiny(), 8, 2, family="uniform", seed=rng)
    assert not np.array_equal(first, second)
    again = np.random.default_rng(3)
    assert np.array_equal(first, routing.generate(tiny(), 8, 2, family="uniform", seed=again))


def test_compiled_kernel_equals_python_execution():
    """The kernel run as plain Python (as under NUMBA_DISABLE_JIT=1) gives the same bits."""
    prob = rank_probabilities("zipf", {"s": 2.5}, 12, 2, np.random.default_rng(0))
    ap, ai = alias_tables(prob)
    outs = []
    for fn in (_route, getattr(_route, "py_func", _route)):
        out = np.empty((3, 2, 20, 6), dtype=np.int32)
        perm = np.tile(np.arange(12), (2, 1))
        fn(np.random.default_rng(9), ap, ai, prob, perm, 0.3, out)
        outs.append(out)
    assert np.array_equal(*outs)


def test_alias_tables_reproduce_the_distribution():
    prob = rank_probabilities("powerlaw", {"alpha": 0.7}, 37, 4, np.random.default_rng(1))
    ap, ai = alias_tables(prob)
    n = prob.shape[1]
    for layer in range(prob.shape[0]):
        implied = ap[layer].copy()
        np.add.at(implied, ai[layer], 1.0 - ap[layer])
        np.testing.assert_allclose(implied / n, prob[layer], rtol=1e-12, atol=1e-15)


def exact_inclusion(p, k):
    """P(rank r among the k picks) under successive sampling, by enumerating ordered draws."""
    incl = np.zeros(len(p))
    for seq in itertools.permutations(range(len(p)), k):
        prob, left = 1.0, 1.0
        for r in seq:
            prob *= p[r] / left
            left -= p[r]
        incl[list(seq)] += prob
    return incl


@pytest.mark.parametrize("s", [0.8, 4.0])  # s=4 exercises the exact-scan fallback
def test_kernel_follows_successive_sampling_law(s):
    num_experts, k, tokens = 6, 3, 40_000
    prob = rank_probabilities("zipf", {"s": s}, num_experts, 1, np.random.default_rng(0))
    ap, ai = alias_tables(prob)
    out = np.empty((1, 1, tokens, k), dtype=np.int32)
    _route(np.random.default_rng(2), ap, ai, prob, np.arange(num_experts)[None, :].copy(), 0.0, out)
    freq = np.bincount(out.ravel(), minlength=num_experts) / tokens
    exact = exact_inclusion(prob[0], k)
    sigma = np.sqrt(exact * (1 - exact) / tokens)
    assert np.all(np.abs(freq - exact) <= 5 * sigma + 1e-12)
    # The independent NumPy implementation (Gumbel-top-k) obeys the same law.
    ref = route_numpy(prob, np.arange(num_experts)[None, :], tokens, 1, k, 0.0, np.random.default_rng(4))
    ref_freq = np.bincount(ref.ravel(), minlength=num_experts) / tokens
    assert np.all(np.abs(ref_freq - exact) <= 5 * sigma + 1e-12)


@pytest.mark.parametrize("name, batch", [("qwen3_next_80b_a3b", 64), ("gpt_oss_120b", 16), ("mixtral_8x7b", 2)])
def test_uniform_matches_closed_form(name, batch):
    """Under uniform routing a token includes each expert with probability k/E independently of
    the other tokens, so an expert's count is Binomial(B, k/E)."""
    spec = model.load(name)
    steps = max(4, 200_000 // (spec.num_moe_layers * spec.num_experts))
    counts = routing.expert_counts(routing.generate(spec, batch, steps, family="uniform", seed=1),
                                   spec.num_experts)
    st = routing.stats(counts)
    q = spec.top_k / spec.num_experts
    pmf = [np.exp(np.log(1.0) if n == 0 else 0) for n in range(3)]
    from math import comb
    pmf = [comb(batch, n) * q ** n * (1 - q) ** (batch - n) for n in range(3)]
    active = 1 - pmf[0]
    le2 = (pmf[1] + pmf[2]) / active
    print(f"{name} B={batch}: active {st['active_fraction']:.4f} vs {active:.4f}, "
          f"<=2 tokens {st['frac_1'] + st['frac_2']:.4f} vs {le2:.4f}")
    assert st["active_fraction"] == pytest.approx(active, rel=0.01)
    assert st["frac_1"] + st["frac_2"] == pytest.approx(le2, rel=0.01)


def hot_sets(counts, n_hot):
    return [frozenset(np.argsort(-c, kind="stable")[:n_hot].tolist()) for c in counts]


def test_hot_experts_persist_without_drift_and_differ_per_layer():
    spec = tiny(num_experts=64, top_k=4, layers=4)
    params = {"hot_fraction": 0.0625, "hot_mass": 0.9}  # 4 hot experts
    counts = routing.expert_counts(routing.generate(spec, 256, 12, family="hotcold", seed=2, drift=0.0,
                                                    **params), 64)
    layer0 = hot_sets(counts[:, 0], 4)
    assert all(h == layer0[0] for h in layer0)
    assert len({hot_sets(counts[:1, layer], 4)[0] for layer in range(4)}) > 1


def test_drift_moves_hot_experts():
    spec = tiny(num_experts=64, top_k=4, layers=4)
    params = {"hot_fraction": 0.0625, "hot_mass": 0.9}
    counts = routing.expert_counts(routing.generate(spec, 256, 12, family="hotcold", seed=2, drift=0.5,
                                                    **params), 64)
    sets = hot_sets(counts[:, 0], 4)
    assert sets[-1] != sets[0]


@pytest.mark.parametrize("batch", [0, -3, 2.5, True, "8"])
def test_bad_batch_size_is_named(batch):
    with pytest.raises(RoutingError, match="batch_size"):
        routing.generate(tiny(), batch, 2, family="uniform", seed=0)


def test_other_bad_input():
    with pytest.raises(RoutingError, match="steps=0"):
        routing.generate(tiny(), 4, 0, family="uniform", seed=0)
    with pytest.raises(RoutingError, match="'gauss'.*allowed"):
        routing.generate(tiny(), 4, 1, family="gauss", seed=0)
    with pytest.raises(RoutingError, match=r"expected exactly \['s'\]"):
        routing.generate(tiny(), 4, 1, family="zipf", seed=0, alpha=1.0)
    with pytest.raises(RoutingError, match="hot_mass=1.0"):
        routing.generate(tiny(), 4, 1, family="hotcold", seed=0, hot_fraction=0.2, hot_mass=1.0)
    with pytest.raises(RoutingError, match="drift=1.5"):
        routing.generate(tiny(), 4, 1, family="uniform", seed=0, drift=1.5)
    with pytest.raises(RoutingError, match="seed=-1"):
        routing.generate(tiny(), 4, 1, family="uniform", seed=-1)
    with pytest.raises(RoutingError, match="no calibrated routing preset for model 'tiny'"):
        routing.generate(tiny(), 4, 1, seed=0)
    with pytest.raises(model.ModelSpecError, match="top_k=9 exceeds num_experts=8"):
        routing.generate(tiny(num_experts=8, top_k=9), 4, 1, family="uniform", seed=0)


def test_lognormalidle_never_chooses_its_idle_ranks():
    import sieve.model as model
    from sieve.routing.families import rank_probabilities

    # sigma 0: the live ranks share the mass evenly; round(0.25 * 8) = 2 idle ranks
    p = rank_probabilities("lognormalidle", {"sigma": 0.0, "idle_fraction": 0.25}, 8, 1, np.random.default_rng(0))
    assert p.tolist() == [[1 / 6] * 6 + [0.0, 0.0]]
    spec = model.load("gpt_oss_120b")  # 128 experts, top-4: 64 idle experts per layer, never picked
    r = routing.generate(spec, 256, 3, family="lognormalidle", sigma=0.0, idle_fraction=0.5, seed=1, drift=0.0)
    counts = routing.expert_counts(r, spec.num_experts)
    assert ((counts.sum(axis=0) > 0).sum(axis=-1) == 64).all()
    with pytest.raises(routing.RoutingError, match="leaves 1 experts that can be chosen; gpt_oss_120b routes each token to 4"):
        routing.generate(spec, 4, 1, family="lognormalidle", sigma=1.0, idle_fraction=0.99, seed=1)
