"""Property-based fuzzing of every input parser: random bytes and mutations of valid files give either a
result or the parser's own one-line error, never another exception, a hang or a half-written output.

Each property runs a few hundred examples in the default suite (derandomized, so a failure reproduces) and
thousands with fresh random seeds under ``pytest -m slow``.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

FIXTURES = Path(__file__).resolve().parent / "fixtures"

SIZES = [pytest.param(200, id="200"), pytest.param(3000, id="3000", marks=pytest.mark.slow)]


def fuzz(n: int, *strategies):
    """``given(*strategies)`` with ``n`` examples; derandomized unless it is the slow (large) run."""
    def wrap(fn):
        return settings(max_examples=n, deadline=None, derandomize=n <= 200, database=None,
                        suppress_health_check=list(HealthCheck))(given(*strategies)(fn))
    return wrap


def one_line(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message, message


def mutations(valid: bytes) -> st.SearchStrategy[bytes]:
    """``valid`` with bytes replaced, inserted or deleted, lines dropped or duplicated, or cut short."""
    lines = valid.split(b"\n")

    @st.composite
    def mutate(draw):
        kind = draw(st.sampled_from(["replace", "insert", "delete", "lines", "truncate"]))
        data = bytearray(valid)
        if kind == "lines":
            picked = draw(st.lists(st.sampled_from(lines), max_size=2 * len(lines)))
            return b"\n".join(picked)
        if kind == "truncate":
            return bytes(data[: draw(st.integers(0, len(data)))])
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, max(len(data) - 1, 0)))
            byte = draw(st.sampled_from([*b"0123456789xX \t,#\n-+.", *range(256)]))
            if kind == "replace" and data:
                data[at] = byte
            elif kind == "insert":
                data.insert(at, byte)
            elif data:
                del data[at]
        return bytes(data)

    return mutate()


def inputs(valid: bytes) -> st.SearchStrategy[bytes]:
    return st.one_of(st.binary(max_size=300), mutations(valid))


# ---- DRAM request traces -----------------------------------------------------------------------------

DRAM_TRACE = b"LD 0x0\nST 0x40\n# a comment\nLD 4096\n\nST 0x1ffffffc0\nLD 0x1234  \n"


@pytest.mark.parametrize("n", SIZES)
def test_dram_request_traces(tmp_path_factory, n):
    from sieve.dram import Device
    from sieve.dram.requests import TraceError, read_trace, run_requests

    device = Device("hbm3")
    path = tmp_path_factory.mktemp("dram") / "t.trace"

    @fuzz(n, inputs(DRAM_TRACE))
    def prop(data):
        path.write_bytes(data)
        try:
            trace = read_trace(path)
            assert len(trace) > 0
            result = run_requests(device, trace)  # refuses addresses beyond the device
        except TraceError as e:
            one_line(str(e))
            return
        assert result.summary()["requests"] == len(trace)

    prop()


# ---- AiM instruction traces --------------------------------------------------------------------------

AIM_TRACE = b"""# a GEMV tile
AiM WR_GB 2 0 0x80000000
AiM ISR_MAC_ABK 2 2147483648 5
W CFR 2 1
AiM AF 0x80000000
AiM RD_AF 4 0x80000000
W MEM 0 2 8
R GPR 3
AiM EWADD 4 8 12
AiM SYNC
AiM EOC
"""


@pytest.mark.parametrize("n", SIZES)
def test_aim_instruction_traces(tmp_path_factory, n):
    from sieve.dram import Device
    from sieve.pim.aim_trace import AimTraceError, run_aim_trace

    device = Device("gddr6_aim")
    path = tmp_path_factory.mktemp("aim") / "t.trace"

    @fuzz(n, inputs(AIM_TRACE))
    def prop(data):
        path.write_bytes(data)
        try:
            result = run_aim_trace(path, device, log=False)
        except AimTraceError as e:
            one_line(str(e))
            return
        assert result.summary()["cycles"] >= 0

    prop()


# ---- routing traces ----------------------------------------------------------------------------------

def _jsonl(model) -> bytes:
    rows = [{"step": 0, "layer": layer, "token": t, "experts": [(t + i) % model.num_experts
                                                                 for i in range(model.top_k)]}
            for layer in model.moe_layers for t in range(2)]
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


@pytest.mark.parametrize("n", SIZES)
def test_routing_traces(tmp_path_factory, n):
    import numpy as np

    import sieve.model
    from sieve.routing import RoutingError, load_trace, read_jsonl, save_trace

    model = sieve.model.load("mixtral_8x7b")
    folder = tmp_path_factory.mktemp("routing")
    valid_npz = folder / "valid.npz"
    save_trace(valid_npz, np.zeros((1, model.num_moe_layers, 2, model.top_k), dtype=np.int64)
               + np.arange(model.top_k), model)

    @fuzz(n, st.sampled_from(["npz", "jsonl"]), st.data())
    def prop(kind, data):
        valid = valid_npz.read_bytes() if kind == "npz" else _jsonl(model)
        raw = data.draw(inputs(valid))
        path = folder / f"t.{kind}"
        path.write_bytes(raw)
        try:
            routing = (load_trace if kind == "npz" else read_jsonl)(path, model)
        except RoutingError as e:
            one_line(str(e))
            return
        assert routing.ndim == 4 and routing.shape[1] == model.num_moe_layers
        assert ((routing >= 0) & (routing < model.num_experts)).all()

    prop()


# ---- Hugging Face config.json ------------------------------------------------------------------------

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                                       max_size=3),
                           max_leaves=6)


@st.composite
def hf_configs(draw):
    name = draw(st.sampled_from(sorted(p.name for p in (FIXTURES / "hf").glob("*.json"))))
    raw = json.loads((FIXTURES / "hf" / name).read_text())
    target = raw.get("text_config", raw) if draw(st.booleans()) else raw
    keys = sorted(target)
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(keys))
        if draw(st.booleans()):
            target.pop(key, None)
        else:
            target[key] = draw(JSON_VALUES)
    return json.dumps(raw).encode()


@pytest.mark.parametrize("n", SIZES)
def test_hugging_face_configs(tmp_path_factory, n):
    from sieve.model import ModelSpecError, from_hf_config

    path = tmp_path_factory.mktemp("hf") / "config.json"

    @fuzz(n, st.one_of(hf_configs(), st.binary(max_size=200)))
    def prop(raw):
        path.write_bytes(raw)
        try:
            spec = from_hf_config(path)
        except ModelSpecError as e:  # HFConfigError, or the spec's own checks
            one_line(str(e))
            return
        assert spec.num_experts > 0 and spec.top_k <= spec.num_experts and spec.expert_intermediate_size > 0

    prop()


# ---- command-line arguments --------------------------------------------------------------------------

def _cli(main, argv) -> tuple[int, str]:
    """(exit status, stderr) of ``main(argv)`` run in-process; argparse's own usage errors exit with 2."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = main(argv)
        except SystemExit as e:
            code = e.code
    return code, err.getvalue()


TOKENS = ["t.trace", "missing.trace", "out/x.csv", "x.csv", "--json", "--standard", "hbm3", "hbm9", "gddr6_aim",
          "--refresh", "off", "allbank", "on", "--queue-size", "0", "-3", "32", "--generate", "seq", "random",
          "conflict", "zigzag", "5", "1e3", "--bank-csv", "--seed", "--hw", "aim", "--check", "--channel-csv", ".",
          "", "--mapping", "RoBaRaCoCh"]


@pytest.mark.parametrize("n", [pytest.param(200, id="200"), pytest.param(2000, id="2000", marks=pytest.mark.slow)])
@pytest.mark.parametrize("tool", ["sieve.dram", "sieve.pim"])
def test_trace_tool_arguments(tmp_path_factory, monkeypatch, tool, n):
    import importlib

    main = importlib.import_module(f"{tool}.__main__").main
    folder = tmp_path_factory.mktemp("cli")
    (folder / "t.trace").write_bytes(DRAM_TRACE if tool == "sieve.dram" else AIM_TRACE)
    monkeypatch.chdir(folder)

    @fuzz(n, st.lists(st.sampled_from(TOKENS), max_size=7))
    def prop(argv):
        before = {p.name for p in folder.iterdir()}
        code, err = _cli(main, argv)
        assert code in (0, 1, 2), (code, err)
        if code == 2 and err.startswith("error: "):
            one_line(err.strip())
        assert "Traceback" not in err
        leftovers = {p.name for p in folder.iterdir()} - before
        assert not [name for name in leftovers if name.startswith(".")], leftovers  # no half-written temp file

    prop()


OVERRIDES = ["+hw=aim", "+hw=gddr6_aim", "+hw=ai", "+model=qwen3_30b_a3b", "+model=mixtral_8x7b", "+model=x",
             "+model=hf", "model.hf_config=nothere.json", "sched=pimoe", "sched=seive", "workload=mixed",
             "workload.batch_size=0", "workload.batch_size=-1", "workload.batch_size=abc", "workload.batch_size=4",
             "num_gpus=3", "num_gpus=auto", "num_gpus=2", "sub_batches=0", "sub_batches=auto", "output.tables=xml",
             "+modle=x", "sched.params.alpha=2", "sched.params.nope=1", "workload.routing.family=zipf",
             "workload.routing.family=trace", "workload.decode_steps=0", "allow_over_capacity=maybe", "hw/gpu=h100",
             "hw/gpu=b20", "+experiment=paper_gpt_oss_120b", "=", "+", "a=b=c", "workload.context_length.mean=-5"]


@pytest.mark.parametrize("n", [pytest.param(60, id="60"), pytest.param(250, id="250", marks=pytest.mark.slow)])
def test_main_command_overrides(n):
    """Every combination is either a runnable simulation or a one-line ConfigError / ValueError."""
    from sieve.runtime import ConfigError, compose, simulation_from_config

    @fuzz(n, st.lists(st.sampled_from(OVERRIDES), max_size=5))
    def prop(overrides):
        try:
            simulation_from_config(compose(overrides))
        except (ConfigError, ValueError) as e:
            one_line(str(e))

    prop()
