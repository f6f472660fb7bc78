"""Every scheduler option composes from its config file, with its documented defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import sieve
from sieve.sched import SCHEDULERS, SchedulerError, UnknownSchedulerError, from_config

CONF = Path(sieve.__file__).parent / "conf"


@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_every_option_composes(name):
    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        cfg = compose(overrides=[f"+sched={name}"]).sched
    sched = from_config(cfg)
    assert sched.name == name
    assert set(sched.params) == set(cfg.params)


def test_config_options_match_the_registry():
    assert sorted(p.stem for p in (CONF / "sched").glob("*.yaml")) == sorted(SCHEDULERS)


def test_sieve_defaults():
    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        sched = from_config(compose(overrides=["+sched=sieve"]).sched)
    assert sched.params == {"alpha": 0.5, "on_comm_tie": "balance", "objective": "expert_phase", "overhead": "scaled",
                            "overhead_s": 20e-6, "kernel_launch_s": None, "fast_path": True, "adaptive": False,
                            "adaptive_recheck": 8,
                            "comm_aware": True, "attention_aware": True, "learned_costs": True, "attention": "auto"}


def test_python_defaults_are_the_config_file():
    """One source for each default: the constructor's defaults are read from conf/sched/sieve.yaml, and the
    launch cost comes from the GPU preset in a composed config."""
    from sieve.sched import Sieve, make

    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        cfg = compose(overrides=["+sched=sieve", "+hw=aim"])
    assert make("sieve").params == {**from_config(cfg.sched).params, "kernel_launch_s": None}
    assert from_config(cfg.sched).params["kernel_launch_s"] == cfg.hw.gpu.kernel_launch_s
    import inspect
    defaults = {k: p.default for k, p in inspect.signature(Sieve.__init__).parameters.items() if k != "self"}
    assert defaults == make("sieve").params


def test_bad_configs():
    with pytest.raises(UnknownSchedulerError, match="unknown scheduler 'seive'; valid schedulers: gpu_only"):
        from_config({"name": "seive"})
    with pytest.raises(SchedulerError, match="scheduler 'sieve' has no parameter 'alfa'"):
        from_config({"name": "sieve", "params": {"alfa": 0.3}})
    with pytest.raises(SchedulerError, match="unknown key"):
        from_config({"name": "sieve", "param": {}})
