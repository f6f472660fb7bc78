"""The Chrome trace-event export of a run's timeline: valid JSON, named lanes, well-formed and non-overlapping
events, and PIM spans that carry exactly the simulated PIM times of the result tables."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections import Counter, defaultdict

import numpy as np
import pytest

import sieve.runtime as rt
from sieve.runtime.trace import TraceError, trace_events, write_trace

QWEN = ["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=4", "workload.decode_steps=2",
        "progress=false", "output.plots=false"]
GPT_OSS = ["+hw=aim", "+model=gpt_oss_120b", "num_gpus=4", "workload.batch_size=16", "workload.decode_steps=2",
           "progress=false", "output.plots=false"]
LANE_NAMES = {"compute", "memory", "scheduler", "nvlink send", "nvlink recv", "PIM", "PIM ch 0"}
DRAM_LANES = {"DRAM ch0 row", "DRAM ch0 mac", "DRAM ch0 data"}
US = 1e6  # trace times are microseconds, table times seconds
EPS_US = 1e-6


def _simulate(overrides, sched, timeline=True):
    # Sieve with decode attention on PIM, as the paper runs it, so every lane of the timeline is exercised
    pinned = ["sched.params.attention=pim"] if sched == "sieve" else []
    return rt.simulate([*overrides, f"sched={sched}", *pinned, f"output.timeline={str(timeline).lower()}"])


@pytest.fixture(scope="module")
def qwen():
    return _simulate(QWEN, "sieve")


@pytest.fixture(scope="module")
def qwen_sub2():
    """Two sub-batches whose layers interleave on the lanes: a layer has two phases of each kind per GPU."""
    result = _simulate([*QWEN, "sub_batches=2"], "sieve")
    assert result.summary["sub_batches"] == 2
    return result


@pytest.fixture(scope="module")
def sieve4():
    """GPT-OSS on 4 GPUs, every expert over all PIM channels: collectives on the NVLink lanes."""
    return _simulate(GPT_OSS, "sieve")


@pytest.fixture(scope="module")
def pimoe4():
    """GPT-OSS on 4 GPUs, experts on groups of channels: channels differ in busy time."""
    return _simulate(GPT_OSS, "pimoe")


@pytest.fixture(params=["qwen", "qwen_sub2", "sieve4", "pimoe4"])
def run(request):
    return request.getfixturevalue(request.param)


# ---- helpers ---------------------------------------------------------------------------------------

def _lane_names(events):
    """(pid, tid) -> thread name."""
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}


def _complete(events):
    return [e for e in events if e["ph"] == "X"]


def _assert_groups_close(got, expected, rtol):
    """Each key's (start, busy) pairs, sorted, agree: all keys compared in one array, the first key that
    differs named on failure."""
    keys = sorted(expected)
    sizes = [len(expected[k]) for k in keys]
    assert [len(got[k]) for k in keys] == sizes, next(k for k in keys if len(got[k]) != len(expected[k]))
    a = np.array([pair for k in keys for pair in sorted(got[k])], dtype=float)
    b = np.array([pair for k in keys for pair in sorted(expected[k])], dtype=float)
    close = np.isclose(a, b, rtol=rtol, atol=0).all(axis=1)
    if not close.all():
        key = keys[np.searchsorted(np.cumsum(sizes), np.flatnonzero(~close)[0], side="right")]
        np.testing.assert_allclose(np.array(sorted(got[key])), np.array(sorted(expected[key])), rtol=rtol,
                                   err_msg=str(key))


def _on_lane(events, name):
    """Complete events of every GPU's lane called ``name``."""
    names = _lane_names(events)
    return [e for e in _complete(events) if names[(e["pid"], e["tid"])] == name]


def _layer_rows(result, step, column, where=None):
    """(layer, gpu) -> sorted values of ``column`` > 0 in the layers table at ``step`` (several with sub-batches)."""
    rows = result.layers[result.layers["step"] == step]
    if where is not None:
        rows = rows[where(rows)]
    out = defaultdict(list)
    for layer, gpu, value in zip(rows["layer"], rows["gpu"], rows[column]):
        if value > 0:
            out[(int(layer), int(gpu))].append(float(value))
    return {k: sorted(v) for k, v in out.items()}


def _span_durations(events, name):
    """(layer, gpu) -> sorted durations (s) of the PIM lane's spans called ``name``."""
    out = defaultdict(list)
    for e in _on_lane(events, "PIM"):
        if e["name"] == name:
            out[(e["args"]["layer"], e["pid"])].append(e["dur"] / US)
    return {k: sorted(v) for k, v in out.items()}


def _assert_same(expected, got):
    assert expected.keys() == got.keys()
    for key in expected:
        assert got[key] == pytest.approx(expected[key], rel=1e-9, abs=1e-15), key


# ---- the file ----------------------------------------------------------------------------------------

def test_write_trace_writes_json_with_a_trace_event_list(sieve4, tmp_path):
    path = write_trace(sieve4, tmp_path / "timeline.json", dram=True)
    doc = json.loads(path.read_text())
    assert isinstance(doc["traceEvents"], list) and doc["traceEvents"]
    assert doc["traceEvents"] == json.loads(json.dumps(trace_events(sieve4, dram=True)))
    assert doc["otherData"]["model"] == "gpt_oss_120b" and doc["otherData"]["num_gpus"] == 4
    assert not list(tmp_path.glob("*.tmp"))


# ---- lanes and events ----------------------------------------------------------------------------------

def test_every_gpu_is_a_process_with_every_lane_named(run):
    events = trace_events(run)
    G = run.summary["num_gpus"]
    processes = {e["pid"]: e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert processes == {g: f"GPU {g}" for g in range(G)}
    names = _lane_names(events)
    for g in range(G):
        assert LANE_NAMES <= {n for (pid, _), n in names.items() if pid == g}


def test_channel_lanes_are_the_first_channels_asked_for(sieve4):
    C = sieve4.simulation.hw.pim_channels_per_gpu
    for asked, shown in ((2, 2), (8, 8), (0, 0), (-1, C), (10 * C, C)):
        events = trace_events(sieve4, channels=asked)
        names = list(_lane_names(events).values())
        assert Counter(n for n in names if n.startswith("PIM ch")) == Counter({f"PIM ch {c}": 4 for c in range(shown)})
        lanes = {n for n in map(_lane_names(events).get, ((e["pid"], e["tid"]) for e in _complete(events)))}
        assert {n for n in lanes if n.startswith("PIM ch")} == {f"PIM ch {c}" for c in range(shown)}


def test_complete_events_are_well_formed(run):
    events = trace_events(run, channels=-1, dram=True)
    names = _lane_names(events)
    complete = _complete(events)
    assert complete
    assert {e["ph"] for e in events} == {"M", "X"}
    for e in complete:
        assert isinstance(e["ts"], float) and math.isfinite(e["ts"]) and e["ts"] >= 0, e
        assert isinstance(e["dur"], float) and math.isfinite(e["dur"]) and e["dur"] > 0, e
        assert (e["pid"], e["tid"]) in names, e
        assert isinstance(e["name"], str) and e["name"], e


def test_lanes_are_sorted_and_never_overlap(run):
    lanes = defaultdict(list)
    for e in _complete(trace_events(run, channels=-1, dram=True)):
        lanes[(e["pid"], e["tid"])].append(e)
    for lane, events in lanes.items():
        ts = [e["ts"] for e in events]
        assert ts == sorted(ts), lane
        for a, b in zip(events, events[1:]):
            assert a["ts"] + a["dur"] <= b["ts"] + EPS_US, (lane, a, b)


def test_busy_lanes_have_spans(sieve4, qwen):
    """GPU work and PIM on every GPU; NVLink lanes only when there is another GPU to talk to."""
    for result, links in ((sieve4, True), (qwen, False)):
        events = trace_events(result)
        names = _lane_names(events)
        busy = {(e["pid"], names[(e["pid"], e["tid"])]) for e in _complete(events)}
        for g in range(result.summary["num_gpus"]):
            for lane in ("compute", "memory", "scheduler", "PIM", "PIM ch 0"):
                assert (g, lane) in busy, (g, lane)
            assert ((g, "nvlink send") in busy) == links and ((g, "nvlink recv") in busy) == links


def test_a_step_exports_its_own_spans_only(sieve4):
    steps = sieve4.steps
    for step in (0, 1):
        complete = _complete(trace_events(sieve4, step=step, channels=-1, dram=True))
        assert {e["args"]["step"] for e in complete} == {step}
        lo, hi = steps["start_s"].iloc[step] * US, steps["end_s"].iloc[step] * US
        assert all(lo - EPS_US <= e["ts"] and e["ts"] + e["dur"] <= hi + EPS_US for e in complete)
        recorded = [s for s in sieve4.timeline.spans if s.step == step]
        not_channels = [e for e in complete if e["cat"] not in ("pim_channel", "dram")]
        assert len(not_channels) == len(recorded)


# ---- PIM spans carry the simulated PIM times -----------------------------------------------------------

@pytest.mark.parametrize("step", [0, 1])
def test_pim_expert_spans_are_the_layers_pim_expert_times(run, step):
    events = trace_events(run, step=step)
    _assert_same(_layer_rows(run, step, "pim_experts_s"), _span_durations(events, "PIM experts"))


@pytest.mark.parametrize("step", [0, 1])
def test_pim_attention_spans_are_the_layers_attention_times(run, step):
    events = trace_events(run, step=step)
    expected = _layer_rows(run, step, "attention_s", where=lambda rows: rows["attention_on"] == "pim")
    assert expected, "no layer ran its attention on PIM"
    _assert_same(expected, _span_durations(events, "attention"))


@pytest.mark.parametrize("step", [0, 1])
def test_channel_spans_are_the_recorded_channel_busy_times(run, step):
    events = trace_events(run, step=step, channels=-1)
    names = _lane_names(events)
    got = defaultdict(list)
    busy_s, dur_us = [], []
    for e in _complete(events):
        if e["cat"] == "pim_channel":
            busy_s.append(e["args"]["busy_s"])
            dur_us.append(e["dur"])
            got[(e["pid"], names[(e["pid"], e["tid"])], e["name"], e["args"]["layer"])].append(
                (e["ts"], e["args"]["busy_s"]))
    np.testing.assert_allclose(np.array(busy_s), np.array(dur_us) / US, rtol=1e-12)
    expected = defaultdict(list)
    for p in run.pim_phases:
        s, layer, g, kind, start, busy = p.step, p.layer, p.gpu, p.kind, p.start_s, p.channel_busy_s
        if s == step:
            for c in np.flatnonzero(np.asarray(busy) > 0):
                expected[(g, f"PIM ch {c}", f"PIM {kind}", layer)].append((start * US, float(busy[c])))
    assert expected and got.keys() == expected.keys()
    _assert_groups_close(got, expected, rtol=1e-12)


def test_channel_spans_sit_inside_their_pim_phase(run):
    """Each channel starts with its phase and is busy no longer than it; the busiest channel of an expert
    phase plus the GPU's hand-off is the phase (a layer's experts end with their slowest channel)."""
    events = trace_events(run, channels=-1)
    phases = defaultdict(list)
    for e in _on_lane(events, "PIM"):
        phases[(e["pid"], e["args"]["layer"], e["name"])].append(e)
    busiest = {}
    for e in _complete(events):
        if e["cat"] != "pim_channel":
            continue
        kind = e["name"].removeprefix("PIM ")
        same = phases[(e["pid"], e["args"]["layer"], "PIM experts" if kind == "experts" else kind)]
        phase = next((p for p in same if abs(p["ts"] - e["ts"]) <= EPS_US), None)
        assert phase is not None, e
        assert e["dur"] <= phase["dur"] + EPS_US
        if kind == "experts":
            busiest[id(phase)] = (phase, max(busiest.get(id(phase), (phase, 0.0))[1], e["dur"]))
    assert busiest
    handoff = run.simulation.hw.pim.handoff_s * 1e6
    for phase, dur in busiest.values():  # the phase waits once for the GPU's hand-off
        assert dur + handoff == pytest.approx(phase["dur"], rel=1e-9)


def test_channel_spans_add_up_to_the_channels_table(pimoe4):
    C = pimoe4.simulation.hw.pim_channels_per_gpu
    total = np.zeros((pimoe4.summary["num_gpus"], C))
    for step in range(pimoe4.summary["decode_steps"]):
        events = trace_events(pimoe4, step=step, channels=-1)
        names = _lane_names(events)
        for e in _complete(events):
            if e["cat"] == "pim_channel":
                total[e["pid"], int(names[(e["pid"], e["tid"])].removeprefix("PIM ch "))] += e["args"]["busy_s"]
    table = pimoe4.channels.sort_values(["gpu", "channel"])["busy_s"].to_numpy().reshape(total.shape)
    assert np.allclose(total, table, rtol=1e-9, atol=0)
    assert table.std(axis=1).min() > 0  # channels of the ep layout differ: the check is not vacuous


# ---- DRAM command lanes --------------------------------------------------------------------------------

def test_dram_lanes_hold_channel_0_commands_inside_their_window(sieve4):
    std = sieve4.simulation.hw.pim_device.standard
    first = next(p for p in sieve4.pim_phases if p.step == 0 and p.gpu == 0 and p.kind == "experts")
    start = first.start_s * US
    for window in (0.5, 2.0):
        events = trace_events(sieve4, dram=True, dram_us=window)
        names = _lane_names(events)
        assert DRAM_LANES <= {n for (pid, _), n in names.items() if pid == 0}
        dram = [e for e in _complete(events) if e["cat"] == "dram"]
        assert dram and all(e["pid"] == 0 for e in dram)
        assert all(start - EPS_US <= e["ts"] < start + window + EPS_US for e in dram)
        assert {e["name"] for e in dram} <= set(std.command_names)
        by_lane = defaultdict(set)
        for e in dram:
            by_lane[names[(e["pid"], e["tid"])]].add(e["name"])
        assert by_lane["DRAM ch0 mac"] == {"MAC16"}
        assert by_lane["DRAM ch0 row"] <= {"ACT16", "PREA", "ACT", "PRE"} and by_lane["DRAM ch0 row"]
        assert "WRGB" in by_lane["DRAM ch0 data"]
    short = len([e for e in _complete(trace_events(sieve4, dram=True, dram_us=0.5)) if e["cat"] == "dram"])
    assert short < len(dram)


def test_without_dram_there_are_no_dram_lanes(sieve4):
    events = trace_events(sieve4)
    assert not DRAM_LANES & set(_lane_names(events).values())
    assert not [e for e in _complete(events) if e["cat"] == "dram"]


# ---- errors --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("step", [2, -1, 10, True, 0.5, "0"])
def test_a_step_outside_the_run_names_the_allowed_range(qwen, step):
    with pytest.raises(TraceError, match=r"allowed: 0\.\.1"):
        trace_events(qwen, step=step)


def test_a_run_without_a_recorded_timeline_says_how_to_record_one(tmp_path):
    result = _simulate(QWEN, "sieve", timeline=False)
    assert result.timeline is None
    with pytest.raises(TraceError, match="output.timeline=true"):
        trace_events(result)
    with pytest.raises(TraceError, match="output.timeline=true"):
        write_trace(result, tmp_path / "timeline.json")
    assert not list(tmp_path.iterdir())


# ---- the command -----------------------------------------------------------------------------------------

def test_command_writes_the_timeline_of_the_step_asked_for(tmp_path):
    out = tmp_path / "run"
    p = subprocess.run([sys.executable, "-m", "sieve.run", *QWEN, "output.timeline=true", "output.timeline_step=1",
                        "output.timeline_channels=2", "output.timeline_dram=true", f"hydra.run.dir={out}"],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads((out / "timeline.json").read_text())
    events = doc["traceEvents"]
    assert isinstance(events, list)
    names = set(_lane_names(events).values())
    assert LANE_NAMES | DRAM_LANES | {"PIM ch 1"} <= names and "PIM ch 2" not in names
    assert {e["args"]["step"] for e in _complete(events)} == {1}
