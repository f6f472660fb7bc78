"""Schema of the ``model`` config group (``conf/model/*.yaml``).

Field names follow :class:`sieve.model.ModelSpec`. Two conveniences keep the YAML short and close to
``config.json``: ``dense_layers`` lists the non-MoE layers (every other layer is MoE), and
``attention_pattern`` is repeated over the stack (``[sliding_attention, full_attention]`` for
GPT-OSS). The ``hf`` option instead sets ``hf_config`` to the path of a raw ``config.json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from omegaconf import MISSING


@dataclass
class ModelConfig:
    name: str = MISSING
    source: str = ""
    # Path to a Hugging Face config.json; when set, the fields below are read from it instead.
    hf_config: Optional[str] = None
    num_layers: int = MISSING
    hidden_size: int = MISSING
    vocab_size: int = MISSING
    tie_word_embeddings: bool = False
    num_experts: int = MISSING
    top_k: int = MISSING
    expert_intermediate_size: int = MISSING
    num_shared_experts: int = 0
    shared_expert_intermediate_size: int = 0
    shared_expert_gate: bool = False
    dense_intermediate_size: int = 0
    dense_layers: List[int] = field(default_factory=list)
    attention: str = "gqa"
    attention_pattern: List[str] = field(default_factory=lambda: ["full_attention"])
    num_attention_heads: int = MISSING
    num_key_value_heads: int = MISSING
    head_dim: int = 0
    attn_output_gate: bool = False
    sliding_window: int = 0
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 0
    weight_format: str = "bf16"
    expert_weight_format: str = "bf16"
    max_position_embeddings: int = 0
    notes: str = ""


def register() -> None:
    """Store the schema in Hydra's ConfigStore as ``model/base_model`` (YAMLs list it in defaults)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="model", name="base_model", node=ModelConfig)
