"""Import a Hugging Face ``config.json`` into a :class:`ModelSpec`.

MoE families spell the same facts differently; this module is the one place that knows the
spellings:

==========================  =================================================================
fact                        spellings
==========================  =================================================================
routed experts              ``n_routed_experts`` (DeepSeek, Kimi), ``num_experts`` (Qwen),
                            ``num_local_experts`` (Mixtral, GPT-OSS)
experts per token           ``num_experts_per_tok``, ``experts_per_token`` (GPT-OSS)
expert FFN width            ``moe_intermediate_size``; else ``intermediate_size`` (Mixtral,
                            GPT-OSS), where ``intermediate_size`` is then not a dense width
shared experts              ``n_shared_experts`` (each ``moe_intermediate_size`` wide, DeepSeek),
                            ``shared_expert_intermediate_size`` (one gated expert, Qwen)
which layers are MoE        ``first_k_dense_replace`` + ``moe_layer_freq`` (DeepSeek);
                            ``mlp_only_layers`` + ``decoder_sparse_step`` (Qwen);
                            ``interleave_moe_layer_step`` (Llama 4); otherwise all layers
attention per layer         ``layer_types``; else ``full_attention_interval`` (DeltaNet hybrids);
                            else ``sliding_window`` with ``use_sliding_window``; else full
weight format               ``quantization_config.quant_method`` (``fp8`` everywhere, ``mxfp4``
                            experts only), else ``torch_dtype`` / ``dtype``
multimodal wrappers         the language model's fields live in ``text_config``
==========================  =================================================================
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sieve.model.spec import ModelSpec, ModelSpecError


class HFConfigError(ModelSpecError):
    """A ``config.json`` lacks a field sieve needs, or holds a value sieve cannot use."""


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_QUANT_METHODS = ("fp8", "mxfp4")
_LAYER_TYPE_ALIASES = {"attention": "full_attention"}


def _first(cfg: Mapping[str, Any], keys: tuple[str, ...], source: str, *, required: bool = True,
           default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    if required:
        raise HFConfigError(f"{source}: required field missing; expected one of {list(keys)}")
    return default


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a multimodal wrapper's ``text_config`` over its top level (text fields win)."""
    cfg = {k: v for k, v in raw.items() if k != "text_config"}
    text = raw.get("text_config")
    if text is not None:
        if not isinstance(text, Mapping):
            raise HFConfigError(f"text_config must be an object, got {type(text).__name__}")
        cfg.update(text)
    return cfg


def _moe_layers(cfg: Mapping[str, Any], num_layers: int, num_experts: int) -> list[int]:
    layers = range(num_layers)
    if cfg.get("first_k_dense_replace") is not None:
        first = int(cfg["first_k_dense_replace"])
        freq = int(cfg.get("moe_layer_freq") or 1)
        return [i for i in layers if i >= first and i % freq == 0]
    if "mlp_only_layers" in cfg or "decoder_sparse_step" in cfg:
        dense = set(cfg.get("mlp_only_layers") or [])
        step = int(cfg.get("decoder_sparse_step") or 1)
        return [i for i in layers if i not in dense and num_experts > 0 and (i + 1) % step == 0]
    if cfg.get("interleave_moe_layer_step") is not None:
        step = int(cfg["interleave_moe_layer_step"])
        return [i for i in layers if (i + 1) % step == 0]
    return list(layers)


def _layer_types(cfg: Mapping[str, Any], num_layers: int, source: str) -> list[str]:
    if cfg.get("layer_types") is not None:
        types = [_LAYER_TYPE_ALIASES.get(t, t) for t in cfg["layer_types"]]
        if len(types) != num_layers:
            raise HFConfigError(
                f"{source}: layer_types has {len(types)} entries but num_hidden_layers={num_layers}")
        return types
    if cfg.get("full_attention_interval") is not None:
        n = int(cfg["full_attention_interval"])
        if n < 1:
            raise HFConfigError(f"{source}: full_attention_interval={n} is invalid; allowed: >= 1")
        return ["full_attention" if (i + 1) % n == 0 else "linear_attention" for i in range(num_layers)]
    if cfg.get("sliding_window") and cfg.get("use_sliding_window", True):
        return ["sliding_attention"] * num_layers
    return ["full_attention"] * num_layers


def _formats(cfg: Mapping[str, Any], source: str) -> tuple[str, str]:
    """(weight_format, expert_weight_format)."""
    dtype_name = cfg.get("torch_dtype") or cfg.get("dtype") or "bfloat16"
    if dtype_name not in _DTYPES:
        raise HFConfigError(f"{source}: torch_dtype={dtype_name!r} is not supported; allowed: {sorted(_DTYPES)}")
    base = _DTYPES[dtype_name]
    quant = cfg.get("quantization_config")
    if not quant:
        return base, base
    method = quant.get("quant_method")
    if method == "fp8":
        return "fp8", "fp8"
    if method == "mxfp4":
        # GPT-OSS: attention, router, embeddings and LM head stay in the checkpoint dtype
        # (modules_to_not_convert); only the expert weights are MXFP4.
        return base, "mxfp4"
    raise HFConfigError(
        f"{source}: quantization_config.quant_method={method!r} is not supported; allowed: {list(_QUANT_METHODS)}")


@dataclass(frozen=True)
class _SharedExperts:
    """The always-active experts of an MoE layer, as :class:`ModelSpec` counts them."""

    count: int = 0
    width: int = 0
    gate: bool = False


def _shared_experts(cfg: Mapping[str, Any], expert_width: int) -> _SharedExperts:
    if cfg.get("n_shared_experts"):
        # DeepSeek, Kimi: n experts as wide as the routed ones, ungated.
        return _SharedExperts(count=int(cfg["n_shared_experts"]), width=expert_width, gate=False)
    if cfg.get("shared_expert_intermediate_size"):
        # Qwen: one expert of its own width behind a sigmoid gate.
        return _SharedExperts(count=1, width=int(cfg["shared_expert_intermediate_size"]), gate=True)
    return _SharedExperts()


def _attention_fields(cfg: Mapping[str, Any], layer_types: list[str], hidden: int, heads: int,
                      source: str) -> dict[str, Any]:
    """The :class:`ModelSpec` fields of the attention: MLA (a config with ``kv_lora_rank``) or GQA, plus
    the linear-attention sizes when some layer is a linear-attention (Gated DeltaNet) layer."""
    attention: dict[str, Any]
    if cfg.get("kv_lora_rank") is not None:
        attention = dict(
            attention="mla",
            head_dim=0,
            q_lora_rank=int(cfg.get("q_lora_rank") or 0),
            kv_lora_rank=int(cfg["kv_lora_rank"]),
            qk_rope_head_dim=int(_first(cfg, ("qk_rope_head_dim",), source)),
            qk_nope_head_dim=int(_first(cfg, ("qk_nope_head_dim",), source)),
            v_head_dim=int(_first(cfg, ("v_head_dim",), source)),
        )
    else:
        attention = dict(attention="gqa", head_dim=int(cfg.get("head_dim") or hidden // heads))
    if "linear_attention" in layer_types:
        attention.update(
            linear_num_key_heads=int(_first(cfg, ("linear_num_key_heads",), source)),
            linear_num_value_heads=int(_first(cfg, ("linear_num_value_heads",), source)),
            linear_key_head_dim=int(_first(cfg, ("linear_key_head_dim",), source)),
            linear_value_head_dim=int(_first(cfg, ("linear_value_head_dim",), source)),
            linear_conv_kernel_dim=int(_first(cfg, ("linear_conv_kernel_dim",), source)),
        )
    return attention


def from_hf_config(path: str | os.PathLike | Mapping[str, Any], *, name: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a Hugging Face ``config.json`` (a path or the parsed dict)."""
    if isinstance(path, Mapping):
        raw, source = dict(path), "config"
    else:
        p = Path(path)
        if p.is_dir():
            p = p / "config.json"
        try:
            raw = json.loads(p.read_text())
        except FileNotFoundError as exc:
            raise HFConfigError(f"config.json not found at {str(p)!r}") from exc
        except json.JSONDecodeError as exc:
            raise HFConfigError(f"{str(p)!r} is not valid JSON: {exc}") from exc
        source = str(p)
    if not isinstance(raw, Mapping):
        raise HFConfigError(f"{source}: expected a JSON object at the top level")
    cfg = _flatten(raw)

    hidden = int(_first(cfg, ("hidden_size",), source))
    num_layers = int(_first(cfg, ("num_hidden_layers",), source))
    vocab = int(_first(cfg, ("vocab_size",), source))
    heads = int(_first(cfg, ("num_attention_heads",), source))
    kv_heads = int(_first(cfg, ("num_key_value_heads",), source, required=False, default=heads))
    num_experts = int(_first(cfg, ("n_routed_experts", "num_experts", "num_local_experts"), source))
    top_k = int(_first(cfg, ("num_experts_per_tok", "experts_per_token"), source))
    if top_k > num_experts:
        raise HFConfigError(
            f"{source}: experts per token ({top_k}) exceeds the number of routed experts ({num_experts})")
    expert_width = int(_first(cfg, ("moe_intermediate_size", "intermediate_size"), source))

    moe_layers = _moe_layers(cfg, num_layers, num_experts)
    has_dense = len(moe_layers) < num_layers
    dense_width = int(_first(cfg, ("intermediate_size",), source)) if has_dense else 0

    shared = _shared_experts(cfg, expert_width)
    layer_types = _layer_types(cfg, num_layers, source)
    attention = _attention_fields(cfg, layer_types, hidden, heads, source)
    weight_format, expert_weight_format = _formats(cfg, source)
    model_type = str(cfg.get("model_type", ""))
    # Qwen3-Next always gates attention output (its config has no switch); Qwen3.5 spells it out.
    output_gate = bool(cfg.get("attn_output_gate", model_type == "qwen3_next"))

    return ModelSpec(
        name=name or model_type or Path(source).parent.name,
        source=str(cfg.get("_name_or_path") or source),
        num_layers=num_layers,
        hidden_size=hidden,
        vocab_size=vocab,
        # transformers' PretrainedConfig ties embeddings unless told otherwise.
        tie_word_embeddings=bool(cfg.get("tie_word_embeddings", True)),
        num_experts=num_experts,
        top_k=top_k,
        expert_intermediate_size=expert_width,
        num_shared_experts=shared.count,
        shared_expert_intermediate_size=shared.width,
        shared_expert_gate=shared.gate,
        dense_intermediate_size=dense_width,
        moe_layers=tuple(moe_layers),
        layer_types=tuple(layer_types),
        num_attention_heads=heads,
        num_key_value_heads=kv_heads,
        attn_output_gate=output_gate,
        sliding_window=int(cfg.get("sliding_window") or 0) if "sliding_attention" in layer_types else 0,
        weight_format=weight_format,
        expert_weight_format=expert_weight_format,
        max_position_embeddings=int(cfg.get("max_position_embeddings") or 0),
        **attention,
    )
