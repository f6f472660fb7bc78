"""A run's timeline as Chrome trace-event JSON (opens in https://ui.perfetto.dev and chrome://tracing).

One process per GPU (``GPU 0`` ...), one thread (lane) per resource, in this order::

    compute        GPU kernels (projections, attention on the GPU, router, shared and GPU experts, ...)
    memory         weights streamed HBM-PIM -> GPU by those kernels
    scheduler      the placement policy
    nvlink send    collectives (AllGather of routing maps, dispatch, combine)
    nvlink recv
    PIM            each PIM phase (decode attention, experts) from its start to its slowest channel
    PIM ch <c>     one lane per PIM channel: the channel's own simulated busy time in each phase
    DRAM ch0 <kind>  (optional) the DRAM/PIM commands of PIM channel 0 of GPU 0 over a short window

Events are complete events (``"ph": "X"``) with ``ts``/``dur`` in microseconds; ``args`` carry the step,
the layer and, for PIM channel lanes, the busy time in seconds. Only one decode step is exported (``step``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

__all__ = ["LANES", "trace_events", "write_trace"]

LANES = ("compute", "memory", "sched", "nvlink_send", "nvlink_recv", "pim")
_LABEL = {"compute": "compute", "memory": "memory", "sched": "scheduler", "nvlink_send": "nvlink send",
          "nvlink_recv": "nvlink recv", "pim": "PIM"}
_CHANNEL_TID = 100
_DRAM_TID = 10_000
_DRAM_KINDS = ("row", "mac", "data")


class TraceError(ValueError):
    """The run cannot be exported as asked."""


def _us(seconds: float) -> float:
    return seconds * 1e6


def _lane(pid: int, tid: int, name: str) -> list[dict]:
    """The metadata events that name a lane and keep lanes in tid order."""
    return [{"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": name}},
            {"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid, "args": {"sort_index": tid}}]


def trace_events(result, *, step: int = 0, channels: int = 8, dram: bool = False, dram_us: float = 2.0) -> list[dict]:
    """The trace events of decode step ``step`` of a run that recorded its timeline."""
    if result.timeline is None:
        raise TraceError("the run did not record its timeline; run it with output.timeline=true "
                         "(Simulation(..., record_timeline=True))")
    steps = result.summary["decode_steps"]
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 0 <= step < steps:
        raise TraceError(f"output.timeline_step={step!r} is not a step of this run; allowed: 0..{steps - 1}")
    sim = result.simulation
    G, C = sim.num_gpus, sim.hw.pim_channels_per_gpu
    shown = C if channels < 0 else min(int(channels), C)
    events: list[dict] = []
    for g in range(G):
        events.append({"ph": "M", "name": "process_name", "pid": g, "tid": 0, "args": {"name": f"GPU {g}"}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": g, "tid": 0, "args": {"sort_index": g}})
        for i, lane in enumerate(LANES):
            events += _lane(g, i, _LABEL[lane])
        for c in range(shown):
            events += _lane(g, _CHANNEL_TID + c, f"PIM ch {c}")
    tid_of = {lane: i for i, lane in enumerate(LANES)}
    spans = []
    for span in result.timeline.spans:
        if span.step != step:
            continue
        gpu, lane = span.lane.split("/", 1)
        spans.append({"ph": "X", "name": span.name, "cat": lane, "pid": int(gpu[3:]), "tid": tid_of[lane],
                      "ts": _us(span.start_s), "dur": _us(span.duration_s),
                      "args": {"step": span.step, "layer": span.layer}})
    for phase in result.pim_phases:
        s, layer, g, kind, start, busy = (phase.step, phase.layer, phase.gpu, phase.kind, phase.start_s,
                                          phase.channel_busy_s)
        if s != step:
            continue
        for c in range(shown):
            if busy[c] > 0:
                spans.append({"ph": "X", "name": f"PIM {kind}", "cat": "pim_channel", "pid": g,
                              "tid": _CHANNEL_TID + c, "ts": _us(start), "dur": _us(float(busy[c])),
                              "args": {"step": s, "layer": layer, "busy_s": float(busy[c])}})
    if dram:
        spans.extend(_dram_events(result, step, dram_us))
        for i, kind in enumerate(_DRAM_KINDS):
            events += _lane(0, _DRAM_TID + i, f"DRAM ch0 {kind}")
    spans.sort(key=lambda e: (e["pid"], e["tid"], e["ts"]))
    return events + spans


def _dram_events(result, step: int, window_us: float) -> list[dict]:
    """Commands of PIM channel 0 of GPU 0 in the first PIM expert phase of ``step`` that keeps that channel
    busy, composed as the runtime composes the phase (:func:`sieve.pim.layer.expert_phase_log`), cut at
    ``window_us`` after the phase start."""
    from sieve.pim.layer import expert_phase_log

    sim = result.simulation
    hw, model = sim.hw, sim.model
    phase = next((p for p in result.pim_phases
                  if p.step == step and p.gpu == 0 and p.kind == "experts" and p.channel_busy_s[0] > 0), None)
    if phase is None:
        return []
    ex = result.experts
    rows = ex[(ex["step"] == step) & (ex["layer"] == phase.layer) & (ex["gpu"] == 0) & (ex["where"] == "pim")]
    counts = np.zeros(sim.experts_per_gpu, dtype=np.int64)
    counts[rows["expert"].to_numpy() % sim.experts_per_gpu] = rows["tokens"].to_numpy()
    log = expert_phase_log(hw, model, counts, sim.pim_layout, sim.channels_per_expert, channel=0).log
    tick_s = hw.standard.tick_ns * 1e-9
    names = hw.standard.command_names
    kind_of = [_kind(cmd) for cmd in hw.standard.commands]
    dur = _us(hw.standard.tick_ns * hw.standard.ticks_per_ck * 1e-9)
    times = phase.start_s + log.tick * tick_s
    keep = times < phase.start_s + window_us * 1e-6
    return [{"ph": "X", "name": names[cmd], "cat": "dram", "pid": 0,
             "tid": _DRAM_TID + _DRAM_KINDS.index(kind_of[cmd]), "ts": _us(t), "dur": dur,
             "args": {"step": step, "layer": phase.layer}}
            for t, cmd in zip(times[keep].tolist(), log.cmd[keep].tolist())]


def _kind(cmd) -> str:
    """The DRAM lane of a command: ``row`` (opens or closes rows), ``mac`` (the MAC commands other than
    result reads) or ``data`` (everything else: global-buffer writes, result reads, reads and writes)."""
    if cmd.opens_row or cmd.closes_row:
        return "row"
    if "MAC" in cmd.name and not cmd.name.startswith("RD"):
        return "mac"
    return "data"


def write_trace(result, path: str | os.PathLike, **options) -> Path:
    """Write :func:`trace_events` as ``{"traceEvents": [...], "displayTimeUnit": "ns"}`` to ``path``."""
    path = Path(path)
    events = trace_events(result, **options)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps({"traceEvents": events, "displayTimeUnit": "ns",
                               "otherData": {k: result.summary[k] for k in ("model", "hw", "sched", "batch_size",
                                                                            "num_gpus")}}))
    os.replace(tmp, path)
    return path
