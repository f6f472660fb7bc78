"""PIM time of the routed experts of one MoE layer on one GPU, per PIM channel.

Experts are placed in the GPU's PIM channels by layout:

* ``tp``: every expert in every channel (same rows in all), so every channel runs every expert's
  stream in turn and all channels are equally busy;
* ``ep``: expert ``j`` of the GPU lives in channels ``(j * S + k) mod C`` for ``k < S``
  (``S = channels_per_expert``); a channel runs the streams of its own experts only, so channels differ.

Weight placement must fit: the rows one channel's experts need per bank may not exceed the bank's rows.
Each expert's stream is simulated once per token count (cached), and a channel's busy time is the sum
of its experts' times: experts run back to back on a channel.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sieve.trace.gemv import LayoutError, PIMGeometry

from .expert import _channels, _hw, _model, expert_phases, expert_slices, expert_time

__all__ = ["placement", "rows_per_channel", "layer_channel_times", "ExpertPhaseTime", "expert_phase",
           "ExpertPhaseLog", "expert_phase_log"]


def placement(hw, model, experts_on_gpu: int, layout: str = "tp", channels_per_expert: int | None = None):
    """[experts_on_gpu, S] PIM channels holding each of the GPU's experts."""
    hw, model = _hw(hw), _model(model)
    S = _channels(hw, model, layout, channels_per_expert)
    C = hw.pim_channels_per_gpu
    if layout == "tp":
        return np.tile(np.arange(C), (experts_on_gpu, 1))
    return (np.arange(experts_on_gpu)[:, None] * S + np.arange(S)[None, :]) % C


def rows_per_channel(hw, model, experts_on_gpu: int, layout: str = "tp", channels_per_expert: int | None = None):
    """[C] DRAM rows per bank the placed experts occupy in each channel."""
    hw, model = _hw(hw), _model(model)
    S = _channels(hw, model, layout, channels_per_expert)
    geom = PIMGeometry.of(hw)
    per_expert = sum(s.rows_used(geom) for s in expert_slices(hw, model, S))
    where = placement(hw, model, experts_on_gpu, layout, channels_per_expert)
    return np.bincount(where.ravel(), minlength=hw.pim_channels_per_gpu) * per_expert


def layer_channel_times(hw, model, counts, layout: str = "tp", channels_per_expert: int | None = None,
                        reserved_rows: int = 0) -> np.ndarray:
    """[C] seconds each PIM channel of one GPU is busy with the layer's experts.

    ``counts[j]`` is the number of tokens routed to the GPU's expert ``j`` (0: not activated).
    ``reserved_rows`` per bank are kept for other data (e.g. the KV cache)."""
    hw, model = _hw(hw), _model(model)
    counts = np.asarray(counts)
    if counts.ndim != 1 or (counts.size and (counts.dtype.kind not in "iu" or counts.min() < 0)):
        raise LayoutError(f"counts must be a 1-d array of non-negative token counts, got {counts!r}")
    rows = rows_per_channel(hw, model, len(counts), layout, channels_per_expert)
    free = hw.standard.rows - reserved_rows
    if rows.max(initial=0) > free:
        c = int(np.argmax(rows))
        raise LayoutError(
            f"{len(counts)} {model.name} experts in layout {layout!r} need {int(rows[c])} rows per bank in PIM "
            f"channel {c}; {free} rows are free ({hw.standard.rows} minus {reserved_rows} reserved)")
    where = placement(hw, model, len(counts), layout, channels_per_expert)
    busy = np.zeros(hw.pim_channels_per_gpu)
    for j in np.flatnonzero(counts):
        busy[where[j]] += expert_time(hw, model, int(counts[j]), layout, channels_per_expert=channels_per_expert)
    return busy


@dataclass(frozen=True)
class ExpertPhaseTime:
    """The PIM expert phase of one MoE layer on one GPU: every PIM expert's gate/up GEMVs, one hand-off of the
    intermediate vectors to the GPU and back, every down GEMV.

    ``busy_s[c]``: seconds channel ``c`` computes (its experts' gate/up and down streams, results read back);
    ``handoff_s``: the hand-off, during which the channels wait (it is phase time, not busy time);
    ``duration_s``: the phase, as long as its busiest channel plus the hand-off (0 without PIM experts);
    ``experts``: how many experts run in it; ``gate_up_s[c]``: the gate/up part of ``busy_s[c]``, worked out
    when asked for (the runtime never needs it) from each expert's gate/up seconds and, in the ``ep`` layout,
    the slices each channel holds."""

    busy_s: np.ndarray
    handoff_s: float
    experts: int
    expert_gate_up_s: np.ndarray
    channel_slices: np.ndarray | None = None

    @property
    def duration_s(self) -> float:
        return float(self.busy_s.max()) + self.handoff_s if self.experts else 0.0

    @property
    def gate_up_s(self) -> np.ndarray:
        if self.channel_slices is not None:
            return (self.channel_slices * self.expert_gate_up_s[:, None]).sum(axis=0)
        return np.full(len(self.busy_s), math.fsum(self.expert_gate_up_s))


@lru_cache(maxsize=64)
def _slices(hw, model, experts_on_gpu: int, layout: str, channels_per_expert) -> np.ndarray:
    """[experts, C] how many slices of each expert each channel holds."""
    where = placement(hw, model, experts_on_gpu, layout, channels_per_expert)
    out = np.zeros((experts_on_gpu, hw.pim_channels_per_gpu))
    np.add.at(out, (np.repeat(np.arange(experts_on_gpu), where.shape[1]), where.ravel()), 1.0)
    out.setflags(write=False)
    return out


def expert_phase(hw, model, counts, layout: str = "tp", channels_per_expert: int | None = None,
                 expert_times=None) -> ExpertPhaseTime:
    """The PIM expert phase of one GPU's layer; ``counts[j]``: tokens of the GPU's expert ``j`` if it runs on PIM,
    else 0. Each expert's streams are simulated on the cycle-level engine (cached per token count); in the
    ``tp`` layout every channel runs every expert, in ``ep`` a channel runs the experts it holds.
    ``expert_times(n)``: the :class:`~sieve.pim.expert.ExpertTime` of an expert with ``n`` tokens in this layout
    (default :func:`~sieve.pim.expert.expert_time`; a caller with its own cache passes it)."""
    hw, model = _hw(hw), _model(model)
    counts = np.asarray(counts)
    on_pim = counts > 0
    C = hw.pim_channels_per_gpu
    if not on_pim.any():
        return ExpertPhaseTime(np.zeros(C), hw.pim.handoff_s, 0, np.zeros(0))
    if expert_times is None:
        def expert_times(n):
            return expert_time(hw, model, n, layout, channels_per_expert=channels_per_expert, details=True)
    times = [expert_times(int(n)) for n in counts[on_pim].tolist()]
    busy = np.array([t.busy_seconds for t in times])
    gate_up = np.array([t.gate_up_seconds for t in times])
    slices = _slices(hw, model, len(counts), layout, channels_per_expert)[on_pim] if layout == "ep" else None
    busy_c = (slices * busy[:, None]).sum(axis=0) if slices is not None else np.full(C, math.fsum(busy))
    return ExpertPhaseTime(busy_c, hw.pim.handoff_s, len(times), gate_up, slices)


@dataclass(frozen=True)
class ExpertPhaseLog:
    """One channel's commands in a PIM expert phase: ``log`` (a :class:`~sieve.dram.CommandLog`), the tick the
    gate/up stages end, the tick the down stages start (after the hand-off) and the last tick."""

    log: object
    gate_up_end_tick: int
    down_start_tick: int
    end_tick: int


def expert_phase_log(hw, model, counts, layout: str = "tp", channels_per_expert: int | None = None,
                     channel: int = 0) -> ExpertPhaseLog:
    """The commands PIM channel ``channel`` issues in :func:`expert_phase`, composed as the runtime composes
    the phase: the gate/up streams of its experts back to back, the hand-off, the down streams back to back.
    Ticks count from the phase start; each expert is simulated again with its command log kept."""
    from sieve.dram.device import CommandLog

    hw, model = _hw(hw), _model(model)
    counts = np.asarray(counts)
    where = placement(hw, model, len(counts), layout, channels_per_expert)
    mine = [int(n) for j, n in enumerate(counts) if n > 0 and channel in where[j]]
    handoff = round(hw.pim.handoff_s * 1e9 / hw.standard.tick_ns)
    runs = []
    for n in mine:
        done, done_up, down_start, session = expert_phases(hw, model, n, layout,
                                                           channels_per_expert=channels_per_expert, log=True)
        runs.append((hw.pim_device.log_of(session.engine), done, done_up, down_start))
    pieces, now = [], 0
    for log, _, done_up, _ in runs:  # gate/up stages back to back
        pieces.append((log, log.tick < done_up, now))
        now += done_up
    gate_up_end = now
    now += handoff if runs else 0
    phase_down_start = now
    for log, done, _, down_start in runs:  # then the down stages
        pieces.append((log, log.tick >= down_start, now - down_start))
        now += done - down_start
    field = lambda name: np.concatenate([getattr(log, name)[keep] for log, keep, _ in pieces]) if pieces \
        else np.zeros((0, len(hw.standard.levels)) if name == "addr" else 0, dtype=np.int64)
    tick = np.concatenate([log.tick[keep] + shift for log, keep, shift in pieces]) if pieces \
        else np.zeros(0, dtype=np.int64)
    log = CommandLog(tick=tick, cmd=field("cmd"), addr=field("addr"), row=field("row"), col=field("col"),
                     standard=hw.pim_device.standard)
    return ExpertPhaseLog(log, gate_up_end, phase_down_start, now)
