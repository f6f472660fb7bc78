"""Schema of the ``model`` config group (``conf/model/*.yaml``), derived from :class:`~sieve.model.ModelSpec`.

One list of fields serves both: every field of :class:`ModelSpec` is a config key with the same type and
default (``MISSING`` where the spec has none), in the same order, except two that the YAML gives in a
shorter form, close to ``config.json``: ``moe_layers`` becomes ``dense_layers`` (the non-MoE layers; every
other layer is MoE) and ``layer_types`` becomes ``attention_pattern`` (repeated over the stack, e.g.
``[sliding_attention, full_attention]`` for GPT-OSS). ``hf_config`` (after ``source``) instead points at a raw
``config.json`` whose values are read in place of the others.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import List, Optional

from omegaconf import MISSING

from .spec import ModelSpec

__all__ = ["ModelConfig", "SHORT_FORMS", "register"]

SHORT_FORMS = {
    "moe_layers": ("dense_layers", List[int], dataclasses.field(default_factory=list)),
    "layer_types": ("attention_pattern", List[str], dataclasses.field(default_factory=lambda: ["full_attention"])),
}
"""ModelSpec fields the config gives in a shorter form: field -> (config key, type, default)."""


def _config_fields() -> list[tuple]:
    hints = typing.get_type_hints(ModelSpec)
    out = []
    for f in dataclasses.fields(ModelSpec):
        if f.name in SHORT_FORMS:
            out.append(SHORT_FORMS[f.name])
            continue
        default = MISSING if f.default is dataclasses.MISSING else f.default
        out.append((f.name, hints[f.name], dataclasses.field(default=default)))
        if f.name == "source":
            out.append(("hf_config", Optional[str], dataclasses.field(default=None)))
    return out


ModelConfig = dataclasses.make_dataclass("ModelConfig", _config_fields())
ModelConfig.__module__ = __name__
ModelConfig.__doc__ = "The ``model`` config group's schema: :class:`ModelSpec`'s fields (see the module docstring)."


def register() -> None:
    """Store the schema in Hydra's ConfigStore as ``model/base_model`` (YAMLs list it in defaults)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="model", name="base_model", node=ModelConfig)
