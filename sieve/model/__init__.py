"""MoE model specifications: presets, Hugging Face config import and derived quantities."""

from sieve.model.hf import HFConfigError, from_hf_config
from sieve.model.presets import available, from_config, load
from sieve.model.spec import LAYER_TYPES, WEIGHT_FORMATS, ModelSpec, ModelSpecError, matrix_bytes

__all__ = [
    "HFConfigError",
    "LAYER_TYPES",
    "ModelSpec",
    "ModelSpecError",
    "WEIGHT_FORMATS",
    "available",
    "from_config",
    "from_hf_config",
    "load",
    "matrix_bytes",
]
