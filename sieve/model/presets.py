"""Model presets: ``conf/model/<name>.yaml`` validated by :class:`sieve.config.model.ModelConfig`."""

from __future__ import annotations

import logging
from dataclasses import fields
from importlib import resources
from typing import Any, Mapping

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from sieve.model.schema import SHORT_FORMS, ModelConfig
from sieve.model.spec import ModelSpec, ModelSpecError

log = logging.getLogger(__name__)

_CONF_PACKAGE = "sieve.conf"
# Schema-only or pointer options of the config group; not models in their own right.
_NOT_PRESETS = {"hf"}


def _model_dir():
    return resources.files(_CONF_PACKAGE).joinpath("model")


def available() -> list[str]:
    """Names of the model presets shipped in ``conf/model``."""
    return sorted(p.name[:-5] for p in _model_dir().iterdir()
                  if p.name.endswith(".yaml") and p.name[:-5] not in _NOT_PRESETS)


def _read_preset(name: str) -> DictConfig:
    names = available()
    if name not in names:
        raise ModelSpecError(f"model preset {name!r} does not exist; available: {names}")
    raw = OmegaConf.create(_model_dir().joinpath(f"{name}.yaml").read_text())
    # The defaults list is for Hydra composition; here the schema is applied directly.
    if "defaults" in raw:
        raw.pop("defaults")
    return raw


def from_config(cfg: ModelConfig | DictConfig | Mapping[str, Any]) -> ModelSpec:
    """Build a :class:`ModelSpec` from a composed ``model`` config (or a plain mapping)."""
    if isinstance(cfg, ModelConfig):
        cfg = OmegaConf.structured(cfg)
    elif not isinstance(cfg, DictConfig):
        cfg = OmegaConf.create(dict(cfg))
    hf_path = cfg.get("hf_config") if "hf_config" in cfg.keys() else None
    if hf_path is not None:
        from sieve.model.hf import from_hf_config

        name = None if OmegaConf.is_missing(cfg, "name") else cfg.get("name")
        return from_hf_config(hf_path, name=name)
    try:
        merged = OmegaConf.merge(OmegaConf.structured(ModelConfig), cfg)
        typed: ModelConfig = OmegaConf.to_object(merged)
    except MissingMandatoryValue as exc:
        raise ModelSpecError(
            f"model config lacks {exc.full_key!r}: pick a preset ({available()}) or set "
            f"model.hf_config to the path of a config.json") from exc
    except OmegaConfBaseException as exc:
        raise ModelSpecError(f"invalid model config: {exc}") from exc
    return _spec_from_typed(typed)


def _spec_from_typed(c: ModelConfig) -> ModelSpec:
    if not c.attention_pattern:
        raise ModelSpecError("attention_pattern must list at least one layer type")
    if c.num_layers <= 0:
        raise ModelSpecError(f"num_layers={c.num_layers} is invalid; allowed: >= 1")
    bad_dense = [i for i in c.dense_layers if not 0 <= i < c.num_layers]
    if bad_dense:
        raise ModelSpecError(f"dense_layers {bad_dense} lie outside 0..{c.num_layers - 1}")
    pattern = list(c.attention_pattern)
    layer_types = [pattern[i % len(pattern)] for i in range(c.num_layers)]
    dense = set(c.dense_layers)
    values = {f.name: getattr(c, f.name) for f in fields(ModelSpec) if f.name not in SHORT_FORMS}
    values.update(
        moe_layers=tuple(i for i in range(c.num_layers) if i not in dense),
        layer_types=tuple(layer_types),
    )
    return ModelSpec(**values)


def load(name: str) -> ModelSpec:
    """The model preset ``name`` (see :func:`available`)."""
    spec = from_config(_read_preset(name))
    log.debug("loaded model preset %s: %s", name, spec.summary())
    return spec
