"""Routing traces on disk.

**npz** (written by :func:`save_trace`, read by :func:`load_trace`)

=================  ==========================================================================
array              contents
=================  ==========================================================================
``routing``        int [steps, moe_layers, tokens, k]: expert id of each pick
``num_experts``    int scalar: the expert-id range is 0 .. num_experts - 1
``moe_layers``     int [moe_layers]: model layer index of each second-axis entry
``format``         str scalar ``"sieve-routing-v1"``
=================  ==========================================================================

**JSONL** (read by :func:`read_jsonl`; e.g. routing logged from a real serving run): one JSON
object per line, ``{"step": s, "layer": l, "token": t, "experts": [e0, e1, ...]}`` where ``layer``
is the model layer index (one of the model's MoE layers), ``token`` the position in the batch,
and ``experts`` the token's top-k expert ids. Every (step, MoE layer, token) must appear exactly
once; steps and tokens are numbered from 0 without gaps. Blank lines are ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sieve._cli import decode_text
from sieve.model import ModelSpec
from sieve.routing.families import RoutingError
from sieve.routing.generate import ROUTING_DTYPE, resolve_model
from sieve.routing.stats import check_routing

FORMAT = "sieve-routing-v1"


def _check_against_model(routing: np.ndarray, spec: ModelSpec, where: str) -> np.ndarray:
    if routing.ndim != 4:
        raise RoutingError(f"{where}: routing must have shape [steps, layers, tokens, k], got {routing.shape}")
    _, layers, _, k = routing.shape
    if layers != spec.num_moe_layers or k != spec.top_k:
        raise RoutingError(
            f"{where}: routing shape {routing.shape} does not match {spec.name}: expected "
            f"[steps, {spec.num_moe_layers}, tokens, {spec.top_k}] (MoE layers, top_k)")
    routing = check_routing(routing, spec.num_experts)
    ordered = np.sort(routing, axis=-1)
    repeats = np.argwhere((ordered[..., 1:] == ordered[..., :-1]).any(axis=-1))
    if len(repeats):
        s, layer, t = (int(x) for x in repeats[0])
        raise RoutingError(f"{where}: token {t} at step {s}, MoE layer {layer} picks an expert twice: "
                           f"{routing[s, layer, t].tolist()}")
    return routing


def save_trace(path: str | os.PathLike, routing: np.ndarray, model: ModelSpec | str) -> None:
    """Write ``routing`` for ``model`` as a compressed npz trace."""
    spec = resolve_model(model)
    routing = _check_against_model(np.asarray(routing), spec, "save_trace")
    np.savez_compressed(path, routing=routing.astype(ROUTING_DTYPE), num_experts=np.int64(spec.num_experts),
                        moe_layers=np.asarray(spec.moe_layers, dtype=np.int64), format=np.str_(FORMAT))


def load_trace(path: str | os.PathLike, model: ModelSpec | str) -> np.ndarray:
    """Read an npz trace and check it against ``model``; returns int32 [steps, layers, tokens, k]."""
    spec = resolve_model(model)
    where = str(path)
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
        if magic != b"PK":  # an .npz is a zip archive; np.load would take anything else for a pickle
            raise RoutingError(f"{where}: not an npz routing trace (no zip archive; "
                               f"{'the file is empty' if not magic else 'it starts with ' + repr(magic)}); "
                               "write one with sieve.routing.save_trace, or give a .jsonl file")
        with np.load(path, allow_pickle=False) as data:
            if "routing" not in data:
                raise RoutingError(f"{where}: no 'routing' array; found {sorted(data.files)}")
            routing = data["routing"]
            stored_experts = int(data["num_experts"]) if "num_experts" in data else None
    except RoutingError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in zipfile, zlib, struct or numpy
        reason = str(exc) or type(exc).__name__
        raise RoutingError(f"{where}: not a readable npz routing trace ({reason}); write one with "
                           "sieve.routing.save_trace, or give a .jsonl file") from None
    if stored_experts is not None and stored_experts != spec.num_experts:
        raise RoutingError(f"{where}: trace was written for num_experts={stored_experts}, "
                           f"but {spec.name} has {spec.num_experts}")
    return _check_against_model(routing, spec, where).astype(ROUTING_DTYPE, copy=False)


def _jsonl_record(line: str, where: str, spec: ModelSpec, layers: dict[int, int]) -> tuple[tuple[int, int, int], list[int]]:
    """((step, layer, token), experts) of one JSONL line, checked against the model; ``where`` is file:line."""
    try:
        rec = json.loads(line)
        key = (int(rec["step"]), int(rec["layer"]), int(rec["token"]))
        experts = [int(e) for e in rec["experts"]]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, OverflowError) as exc:
        raise RoutingError(f"{where}: expected an object with integer step, layer, token "
                           f"and a list of experts ({exc})") from exc
    step, layer, token = key
    if layer not in layers:
        raise RoutingError(f"{where}: layer {layer} is not an MoE layer of {spec.name}; "
                           f"allowed: {list(spec.moe_layers)}")
    if step < 0 or token < 0:
        raise RoutingError(f"{where}: step={step} and token={token} must be >= 0")
    if len(experts) != spec.top_k:
        raise RoutingError(f"{where}: {len(experts)} experts listed; {spec.name} routes "
                           f"each token to top_k={spec.top_k}")
    bad = [e for e in experts if not 0 <= e < spec.num_experts]
    if bad:
        raise RoutingError(f"{where}: expert {bad[0]} is out of range; {spec.name} has experts "
                           f"0 .. {spec.num_experts - 1}")
    return key, experts


def _check_complete(records: dict, spec: ModelSpec, where: str) -> tuple[int, int]:
    """(steps, tokens) of records that must cover every (step, MoE layer, token) once."""
    if not records:
        raise RoutingError(f"{where}: no routing records")
    steps = 1 + max(k[0] for k in records)
    tokens = 1 + max(k[2] for k in records)
    if len(records) != steps * spec.num_moe_layers * tokens:
        for s in range(steps):
            for layer in spec.moe_layers:
                for t in range(tokens):
                    if (s, layer, t) not in records:
                        raise RoutingError(f"{where}: missing step {s}, layer {layer}, token {t} "
                                           f"(expected {steps} steps x {spec.num_moe_layers} MoE layers x "
                                           f"{tokens} tokens)")
    return steps, tokens


def read_jsonl(path: str | os.PathLike, model: ModelSpec | str) -> np.ndarray:
    """Read per-token expert lists (format above) into int32 [steps, moe_layers, tokens, k]."""
    spec = resolve_model(model)
    where = str(path)
    layer_slot = {layer: i for i, layer in enumerate(spec.moe_layers)}
    records: dict[tuple[int, int, int], list[int]] = {}
    try:
        text = decode_text(Path(path).read_bytes(), path)
    except (OSError, ValueError) as exc:
        raise RoutingError(f"{where}: not a readable JSONL routing trace ({exc})") from None
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, experts = _jsonl_record(line, f"{where}:{lineno}", spec, layer_slot)
        if key in records:
            raise RoutingError(f"{where}:{lineno}: step {key[0]}, layer {key[1]}, token {key[2]} appears twice")
        records[key] = experts
    steps, tokens = _check_complete(records, spec, where)
    # allocated once every record is known to be there, so a stray huge step or token cannot allocate
    routing = np.empty((steps, spec.num_moe_layers, tokens, spec.top_k), dtype=np.int64)
    for (s, layer, t), experts in records.items():
        routing[s, layer_slot[layer], t] = experts
    return _check_against_model(routing, spec, where).astype(ROUTING_DTYPE)
