"""Trace files: round trips and clear errors for traces that do not fit the model."""

import json

import numpy as np
import pytest

import sieve.model as model
import sieve.routing as routing
from sieve.routing import RoutingError


@pytest.fixture()
def trace():
    return routing.generate("gpt_oss_120b", 6, 2, family="uniform", seed=3)


def test_npz_round_trip(tmp_path, trace):
    path = tmp_path / "t.npz"
    routing.save_trace(path, trace, "gpt_oss_120b")
    back = routing.load_trace(path, "gpt_oss_120b")
    assert back.dtype == np.int32 and np.array_equal(back, trace)
    with np.load(path) as data:
        assert str(data["format"]) == "sieve-routing-v1"
        assert list(data["moe_layers"]) == list(model.load("gpt_oss_120b").moe_layers)


def test_npz_shape_mismatch_is_named(tmp_path, trace):
    path = tmp_path / "t.npz"
    routing.save_trace(path, trace, "gpt_oss_120b")
    with pytest.raises(RoutingError, match=r"does not match qwen3_30b_a3b: expected \[steps, 48, tokens, 8\]"):
        routing.load_trace(path, "qwen3_30b_a3b")


def test_npz_expert_ids_beyond_model(tmp_path):
    bad = np.zeros((1, 36, 2, 4), dtype=np.int64)
    bad[..., :] = [0, 1, 2, 3]
    bad[0, 5, 1, 2] = 200
    path = tmp_path / "bad.npz"
    np.savez(path, routing=bad)
    with pytest.raises(RoutingError, match="expert id 200 is out of range; allowed: 0..127"):
        routing.load_trace(path, "gpt_oss_120b")


def test_npz_written_for_other_expert_count(tmp_path, trace):
    path = tmp_path / "t.npz"
    np.savez(path, routing=trace, num_experts=np.int64(64))
    with pytest.raises(RoutingError, match="num_experts=64"):
        routing.load_trace(path, "gpt_oss_120b")


def test_repeated_expert_in_a_token(tmp_path, trace):
    bad = trace.copy()
    bad[1, 0, 2, 1] = bad[1, 0, 2, 0]
    with pytest.raises(RoutingError, match="token 2 at step 1, MoE layer 0 picks an expert twice"):
        routing.save_trace(tmp_path / "x.npz", bad, "gpt_oss_120b")


def test_not_an_npz(tmp_path):
    path = tmp_path / "junk.npz"
    path.write_text("hello")
    with pytest.raises(RoutingError, match="not an npz routing trace"):
        routing.load_trace(path, "gpt_oss_120b")


def write_jsonl(path, trace, spec, skip=None):
    with open(path, "w") as fh:
        for s in range(trace.shape[0]):
            for i, layer in enumerate(spec.moe_layers):
                for t in range(trace.shape[2]):
                    if (s, layer, t) == skip:
                        continue
                    fh.write(json.dumps({"step": s, "layer": layer, "token": t,
                                         "experts": trace[s, i, t].tolist()}) + "\n")


def test_jsonl_round_trip(tmp_path, trace):
    spec = model.load("gpt_oss_120b")
    write_jsonl(tmp_path / "t.jsonl", trace, spec)
    assert np.array_equal(routing.read_jsonl(tmp_path / "t.jsonl", spec), trace)


def test_jsonl_errors(tmp_path, trace):
    spec = model.load("gpt_oss_120b")
    write_jsonl(tmp_path / "gap.jsonl", trace, spec, skip=(1, 7, 3))
    with pytest.raises(RoutingError, match="missing step 1, layer 7, token 3"):
        routing.read_jsonl(tmp_path / "gap.jsonl", spec)
    (tmp_path / "layer.jsonl").write_text(json.dumps({"step": 0, "layer": 99, "token": 0, "experts": [1, 2, 3, 4]}))
    with pytest.raises(RoutingError, match="layer 99 is not an MoE layer"):
        routing.read_jsonl(tmp_path / "layer.jsonl", spec)
    (tmp_path / "k.jsonl").write_text(json.dumps({"step": 0, "layer": 0, "token": 0, "experts": [1, 2]}))
    with pytest.raises(RoutingError, match="2 experts listed.*top_k=4"):
        routing.read_jsonl(tmp_path / "k.jsonl", spec)
    (tmp_path / "id.jsonl").write_text(
        "\n".join(json.dumps({"step": 0, "layer": layer, "token": 0, "experts": [1, 2, 3, 130]})
                  for layer in spec.moe_layers))
    with pytest.raises(RoutingError, match="expert 130 is out of range; gpt_oss_120b has experts 0 .. 127"):
        routing.read_jsonl(tmp_path / "id.jsonl", spec)
    (tmp_path / "broken.jsonl").write_text("{oops")
    with pytest.raises(RoutingError, match="broken.jsonl:1"):
        routing.read_jsonl(tmp_path / "broken.jsonl", spec)
