"""Every model option composes through Hydra with the registered schema."""

from pathlib import Path

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import sieve.model as model
from sieve.config import model as model_schema

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hf"


@pytest.fixture()
def hydra_conf():
    model_schema.register()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="sieve.conf", version_base=None):
        yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize("name", model.available())
def test_compose_every_preset(hydra_conf, name):
    cfg = compose(overrides=[f"+model={name}"])
    assert model.from_config(cfg.model) == model.load(name)


def test_compose_hf_option(hydra_conf):
    cfg = compose(overrides=["+model=hf", f"model.hf_config={FIXTURES / 'mixtral_8x7b.json'}"])
    spec = model.from_config(cfg.model)
    assert spec == model.from_hf_config(FIXTURES / "mixtral_8x7b.json")
    assert spec.name == "mixtral_8x7b"  # the file's name, so runs of two configs can be told apart


def test_hf_option_without_path_is_an_error(hydra_conf):
    cfg = compose(overrides=["+model=hf"])
    with pytest.raises(model.ModelSpecError, match="hf_config"):
        model.from_config(cfg.model)


def test_schema_rejects_a_typo(hydra_conf):
    with pytest.raises(Exception, match="top_kk"):
        compose(overrides=["+model=deepseek", "model.top_kk=3"])


def test_from_config_rejects_unknown_key():
    raw = {k: v for k, v in vars(model_schema.ModelConfig()).items()}
    raw.update(name="x", top_kk=3)
    with pytest.raises(model.ModelSpecError, match="top_kk"):
        model.from_config(raw)


def test_schema_rejects_wrong_type(hydra_conf):
    with pytest.raises(Exception, match="num_experts"):
        compose(overrides=["+model=deepseek", "model.num_experts=many"])
