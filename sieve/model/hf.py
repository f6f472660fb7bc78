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
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from sieve._cli import decode_text
from sieve.model.spec import ModelSpec, ModelSpecError

log = logging.getLogger(__name__)


class HFConfigError(ModelSpecError):
    """A ``config.json`` lacks a field sieve needs, or holds a value sieve cannot use."""


_DTYPES = {"bfloat16": "bf16", "float16": "fp16", "float32": "fp32"}
_QUANT_METHODS = ("fp8", "mxfp4")
_LAYER_TYPE_ALIASES = {"attention": "full_attention"}
# Families whose experts are ``intermediate_size`` wide (they have no ``moe_intermediate_size``).
_EXPERT_WIDTH_IS_INTERMEDIATE = ("mixtral", "gpt_oss", "llama4", "llama4_text", "phimoe")


def _first(cfg: Mapping[str, Any], keys: tuple[str, ...], source: str, *, required: bool = True,
           default: Any = None) -> Any:
    for key in keys:
        if cfg.get(key) is not None:
            return cfg[key]
    if required:
        raise HFConfigError(f"{source}: required field missing; expected one of {list(keys)}")
    return default


MAX_LAYERS = 10_000
"""Deepest model a config may describe; published MoE models have fewer than 100 layers."""


def _int(cfg: Mapping[str, Any], keys: tuple[str, ...], source: str, *, required: bool = True,
         default: Any = None) -> int:
    """The first of ``keys`` that is set, as an integer; names the file and the field when it is not one."""
    for key in keys:
        value = cfg.get(key)
        if value is None:
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or (isinstance(value, float) and not value.is_integer()) or value < 0):
            raise HFConfigError(f"{source}: {key}={value!r} is not a non-negative integer")
        return int(value)
    if required:
        raise HFConfigError(f"{source}: required field missing; expected one of {list(keys)}")
    return default


def _defaulted(source: str, key: str, value: Any, why: str) -> Any:
    """A value the config leaves out and sieve may assume; says which, so a reader can check it."""
    log.warning("%s: %s missing; using %s (%s)", source, key, value, why)
    return value


def _flatten(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Merge a multimodal wrapper's ``text_config`` over its top level (text fields win)."""
    cfg = {k: v for k, v in raw.items() if k != "text_config"}
    text = raw.get("text_config")
    if text is not None:
        if not isinstance(text, Mapping):
            raise HFConfigError(f"text_config must be an object, got {type(text).__name__}")
        cfg.update(text)
    return cfg


def _moe_layers(cfg: Mapping[str, Any], num_layers: int, num_experts: int, source: str) -> list[int]:
    layers = range(num_layers)
    if cfg.get("first_k_dense_replace") is not None:
        first = _int(cfg, ("first_k_dense_replace",), source)
        freq = _int(cfg, ("moe_layer_freq",), source, required=False) or 1
        return [i for i in layers if i >= first and i % freq == 0]
    if "mlp_only_layers" in cfg or "decoder_sparse_step" in cfg:
        dense = cfg.get("mlp_only_layers") or []
        if not isinstance(dense, list):
            raise HFConfigError(f"{source}: mlp_only_layers={dense!r} is not a list of layer indices")
        dense = set(dense)
        step = _int(cfg, ("decoder_sparse_step",), source, required=False) or 1
        return [i for i in layers if i not in dense and num_experts > 0 and (i + 1) % step == 0]
    if cfg.get("interleave_moe_layer_step") is not None:
        step = _int(cfg, ("interleave_moe_layer_step",), source) or 1
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
        n = _int(cfg, ("full_attention_interval",), source)
        if n < 1:
            raise HFConfigError(f"{source}: full_attention_interval={n} is invalid; allowed: >= 1")
        return ["full_attention" if (i + 1) % n == 0 else "linear_attention" for i in range(num_layers)]
    if cfg.get("sliding_window") and cfg.get("use_sliding_window", True):
        return ["sliding_attention"] * num_layers
    return ["full_attention"] * num_layers


def _formats(cfg: Mapping[str, Any], source: str) -> tuple[str, str]:
    """(weight_format, expert_weight_format)."""
    dtype_name = cfg.get("torch_dtype") or cfg.get("dtype") or _defaulted(source, "torch_dtype", "bfloat16",
                                                                          "transformers' usual checkpoint dtype")
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


def _shared_experts(cfg: Mapping[str, Any], expert_width: int, source: str) -> _SharedExperts:
    if cfg.get("n_shared_experts"):
        # DeepSeek, Kimi: n experts as wide as the routed ones, ungated.
        return _SharedExperts(count=_int(cfg, ("n_shared_experts",), source), width=expert_width, gate=False)
    if cfg.get("shared_expert_intermediate_size"):
        # Qwen: one expert of its own width behind a sigmoid gate.
        return _SharedExperts(count=1, width=_int(cfg, ("shared_expert_intermediate_size",), source), gate=True)
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
            q_lora_rank=_int(cfg, ("q_lora_rank",), source, required=False, default=0),
            kv_lora_rank=_int(cfg, ("kv_lora_rank",), source),
            qk_rope_head_dim=_int(cfg, ("qk_rope_head_dim",), source),
            qk_nope_head_dim=_int(cfg, ("qk_nope_head_dim",), source),
            v_head_dim=_int(cfg, ("v_head_dim",), source),
        )
    else:
        attention = dict(attention="gqa", head_dim=_gqa_head_dim(cfg, source, hidden, heads))
    if "linear_attention" in layer_types:
        attention.update({key: _int(cfg, (key,), source) for key in (
            "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim", "linear_value_head_dim",
            "linear_conv_kernel_dim")})
    return attention


def from_hf_config(path: str | os.PathLike | Mapping[str, Any], *, name: str | None = None) -> ModelSpec:
    """Build a :class:`ModelSpec` from a Hugging Face ``config.json`` (a path or the parsed dict)."""
    raw, source = _read(path)
    if not isinstance(raw, Mapping):
        raise HFConfigError(f"{source}: expected a JSON object at the top level")
    cfg = _flatten(raw)
    if name is None:
        name = _default_name(cfg, path, source)
    try:
        return _spec(cfg, source, name)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        if isinstance(exc, HFConfigError):
            raise
        raise HFConfigError(f"{source}: a field has a value of the wrong kind ({exc})") from None


def _read(path: str | os.PathLike | Mapping[str, Any]) -> tuple[Any, str]:
    """The parsed JSON and the name of its source."""
    if isinstance(path, Mapping):
        return dict(path), "config"
    p = Path(path)
    if p.is_dir():
        p = p / "config.json"
    try:
        return json.loads(decode_text(p.read_bytes(), p)), str(p)
    except FileNotFoundError:
        raise HFConfigError(f"config.json not found at {str(p)!r}") from None
    except OSError as exc:
        raise HFConfigError(f"cannot read {str(p)!r}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise HFConfigError(f"{str(p)!r} is not valid JSON: {exc}") from None
    except (ValueError, RecursionError) as exc:
        raise HFConfigError(f"{exc}; expected a config.json") from None


def _default_name(cfg: Mapping[str, Any], path: Any, source: str) -> str:
    """The file's name (its folder's for a ``config.json``), so runs of two configs differ in ``model``."""
    if isinstance(path, Mapping):
        return str(cfg.get("model_type") or "hf")
    p = Path(source)
    return p.stem if p.stem != "config" else (p.resolve().parent.name or str(cfg.get("model_type") or "hf"))


def _expert_width(cfg: Mapping[str, Any], source: str) -> int:
    if cfg.get("moe_intermediate_size") is not None:
        return _int(cfg, ("moe_intermediate_size",), source)
    model_type = cfg.get("model_type")
    if model_type in _EXPERT_WIDTH_IS_INTERMEDIATE:
        return _int(cfg, ("intermediate_size",), source)
    raise HFConfigError(
        f"{source}: required field 'moe_intermediate_size' (the expert FFN width) is missing; only "
        f"model_type {', '.join(_EXPERT_WIDTH_IS_INTERMEDIATE)} take it from intermediate_size, which is "
        f"the dense FFN width elsewhere (model_type here: {model_type!r})")


def _gqa_head_dim(cfg: Mapping[str, Any], source: str, hidden: int, heads: int) -> int:
    if cfg.get("head_dim") is not None:
        return _int(cfg, ("head_dim",), source)
    if not heads or hidden % heads:
        raise HFConfigError(f"{source}: head_dim is missing and hidden_size={hidden} is not a multiple of "
                            f"num_attention_heads={heads}")
    return _defaulted(source, "head_dim", hidden // heads, "hidden_size / num_attention_heads, as transformers")


def _spec(cfg: Mapping[str, Any], source: str, name: str) -> ModelSpec:
    """The :class:`ModelSpec` of a flattened config."""

    hidden = _int(cfg, ("hidden_size",), source)
    num_layers = _int(cfg, ("num_hidden_layers",), source)
    if num_layers > MAX_LAYERS:  # per-layer lists follow: a depth beyond this is a malformed config
        raise HFConfigError(f"{source}: num_hidden_layers={num_layers} is invalid; allowed: at most {MAX_LAYERS}")
    vocab = _int(cfg, ("vocab_size",), source)
    heads = _int(cfg, ("num_attention_heads",), source)
    kv_heads = _int(cfg, ("num_key_value_heads",), source, required=False)
    if kv_heads is None:
        kv_heads = _defaulted(source, "num_key_value_heads", heads, "num_attention_heads: multi-head attention")
    num_experts = _int(cfg, ("n_routed_experts", "num_experts", "num_local_experts"), source)
    top_k = _int(cfg, ("num_experts_per_tok", "experts_per_token"), source)
    if top_k > num_experts:
        raise HFConfigError(
            f"{source}: experts per token ({top_k}) exceeds the number of routed experts ({num_experts})")
    expert_width = _expert_width(cfg, source)

    moe_layers = _moe_layers(cfg, num_layers, num_experts, source)
    has_dense = len(moe_layers) < num_layers
    dense_width = _int(cfg, ("intermediate_size",), source) if has_dense else 0

    shared = _shared_experts(cfg, expert_width, source)
    layer_types = _layer_types(cfg, num_layers, source)
    attention = _attention_fields(cfg, layer_types, hidden, heads, source)
    weight_format, expert_weight_format = _formats(cfg, source)
    model_type = str(cfg.get("model_type", ""))
    # Qwen3-Next always gates attention output (its config has no switch); Qwen3.5 spells it out.
    output_gate = bool(cfg.get("attn_output_gate", model_type == "qwen3_next"))

    return ModelSpec(
        name=name,
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
        sliding_window=_int(cfg, ("sliding_window",), source, required=False, default=0) if "sliding_attention" in layer_types else 0,
        weight_format=weight_format,
        expert_weight_format=expert_weight_format,
        max_position_embeddings=_int(cfg, ("max_position_embeddings",), source, required=False, default=0),
        **attention,
    )
