"""Workload configs compose with their schema and reject bad values by name."""

import numpy as np
import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

from sieve.config import workload as wl


@pytest.fixture()
def hydra_conf():
    wl.register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="sieve.conf", version_base=None):
        yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("name", ["decode", "mixed"])
def test_compose_every_workload(hydra_conf, name):
    cfg = compose(overrides=[f"+workload={name}"])
    w = wl.workload_from_config(cfg.workload)
    assert isinstance(w, wl.WorkloadConfig) and w.name == name and w.batch_size == 64
    lengths = w.context_length.sample(1000, w.rng())
    assert lengths.min() >= w.context_length.low and lengths.max() <= w.context_length.high
    assert abs(np.median(lengths) - w.context_length.mean) < 0.1 * w.context_length.mean


def test_same_seed_same_lengths(hydra_conf):
    w = wl.workload_from_config(compose(overrides=["+workload=mixed"]).workload)
    a = w.prefill.prompt_length.sample(50, w.rng())
    b = w.prefill.prompt_length.sample(50, w.rng())
    assert np.array_equal(a, b)


@pytest.mark.parametrize("override, message", [
    ("workload.batch_size=0", "batch_size=0"),
    ("workload.batch_size=-4", "batch_size=-4"),
    ("workload.decode_steps=0", "decode_steps=0"),
    ("workload.context_length.distribution=gamma", "'gamma'.*allowed"),
    ("workload.prefill.num_requests=100", "num_requests=100 exceeds batch_size=64"),
    ("workload.routing.family=trace", "routing.trace"),
    ("workload.routing.drift=3", "drift=3"),
])
def test_bad_values_are_named(hydra_conf, override, message):
    cfg = compose(overrides=["+workload=mixed", override])
    with pytest.raises(wl.WorkloadError, match=message):
        wl.workload_from_config(cfg.workload)


def test_lengths_by_distribution():
    rng = np.random.default_rng(0)
    assert set(wl.LengthConfig(distribution="fixed", mean=77).sample(5, rng)) == {77}
    u = wl.LengthConfig(distribution="uniform", mean=5, low=3, high=7).sample(2000, rng)
    assert set(u) == {3, 4, 5, 6, 7}
