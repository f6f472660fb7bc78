"""Simulated PIM time of one routed expert with N tokens.

An expert on PIM runs its tokens as serialized GEMVs (the units are built for GEMV): the gate and up
projections of every token (one fused ``2F x H`` matrix sharing the token's input), then the
intermediate vectors go through the GPU (activation and product, ``hw.pim.handoff_s``), then the down
projection (``H x F``) of every token. Each PIM channel that holds a slice of the expert runs the
stream of :mod:`sieve.trace.gemv` on the cycle-level engine; the expert's time is that of its slowest
channel, from the first command to the last result read back.

Layouts:

* ``tp`` (Sieve): every expert is split over *all* PIM channels of its GPU at the same rows and columns,
  so every channel runs the same stream; one channel is simulated and stands for all.
  A matrix is cut into ``C / g`` groups of output rows times ``g`` groups of inputs (the GPU adds the
  ``g`` partial sums); the global buffer broadcasts one input slice to all banks of a channel, so only
  output rows spread over banks, and cutting the inputs too keeps the banks busy when a matrix has few
  rows per channel. For each matrix the ``g`` (a power of two) whose one-token stream is fastest on the
  cycle-level engine is used.
* ``ep`` (PIMoE): every expert lives in ``channels_per_expert`` channels; its slice per channel is
  larger, and channels hold different experts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from sieve.hw import Hardware
from sieve.hw import load as load_hw
from sieve.model import ModelSpec
from sieve.model import load as load_model
from sieve.trace.gemv import GemvShape, LayoutError, PIMGeometry, gemv_stream

__all__ = ["LAYOUTS", "ExpertTime", "expert_time", "expert_run", "expert_phases", "expert_slices", "roofline_prior_s"]

LAYOUTS = ("tp", "ep")


@dataclass(frozen=True)
class ExpertTime:
    seconds: float
    commands: dict
    """Commands one channel issued, by name (ACT16/PREA included)."""
    channels: int
    """Channels holding a slice of the expert."""
    roofline_seconds: float
    """The MAC slots of one channel's slices at its peak MAC rate (every bank's lanes busy at every all-bank
    MAC interval): the time if every cycle were a MAC."""
    gate_up_seconds: float = 0.0
    """The gate/up phase alone: first command to its last partial sums read back."""
    down_seconds: float = 0.0
    """The down phase alone: from the GPU's hand-off to its last partial sums read back."""

    @property
    def busy_seconds(self) -> float:
        """``gate_up_seconds + down_seconds``: the channel time the expert adds to a layer whose PIM
        experts share one hand-off (all gate/up phases, one hand-off, all down phases)."""
        return self.gate_up_seconds + self.down_seconds

    @property
    def total_commands(self) -> dict:
        """Commands all channels holding the expert issued, by name (``commands`` x ``channels``)."""
        return {name: n * self.channels for name, n in self.commands.items()}

    @property
    def roofline_ratio(self) -> float:
        return self.seconds / self.roofline_seconds


def roofline_prior_s(hw, model, n_tokens: int) -> float:
    """Sieve's estimate for a token count it has not measured: the expert's FLOPs over the GPU's PIM peak
    (:attr:`sieve.hw.Hardware.pim_peak_flops_per_gpu`, from the unit's bf16 MAC lanes), every expert over
    all channels. The simulated streams reach it only when every cycle is a MAC, for every weight format."""
    hw, model = _hw(hw), _model(model)
    return n_tokens * 2 * model.expert_params / hw.pim_peak_flops_per_gpu


def _hw(hw) -> Hardware:
    return hw if isinstance(hw, Hardware) else load_hw(hw)


def _model(model) -> ModelSpec:
    return model if isinstance(model, ModelSpec) else load_model(model)


def _split(rows: int, inputs: int, channels: int, g: int, fmt: str) -> GemvShape:
    return GemvShape(math.ceil(rows / (channels // g)), math.ceil(inputs / g), fmt)


def _splits(channels: int, inputs: int) -> list[int]:
    """Input-group counts g that divide the channels evenly and leave at least one column of inputs."""
    out, g = [], 1
    while g <= channels and inputs / g >= 16:
        if channels % g == 0:
            out.append(g)
        g *= 2
    return out


def _gemv_ticks(hw: Hardware, geom: PIMGeometry, shape: GemvShape) -> int:
    session = hw.pim_device.session(log=False)
    cmds, rows, cols = gemv_stream(geom, shape)
    addr = np.zeros((len(cmds), len(hw.standard.levels)), dtype=np.int64)
    return int(session.run(cmds, addr, rows, cols, auto_prereq=True)[-1])


@lru_cache(maxsize=1024)
def expert_slices(hw: Hardware, model: ModelSpec, channels: int) -> tuple[GemvShape, GemvShape]:
    """Per-channel slices (gate+up, down) of one expert over `channels` channels, each cut the fastest way."""
    h, f, fmt = model.hidden_size, model.expert_intermediate_size, model.expert_weight_format
    geom = PIMGeometry.of(hw)
    best = []
    for rows, inputs in ((2 * f, h), (h, f)):
        shapes = [_split(rows, inputs, channels, g, fmt) for g in _splits(channels, inputs)]
        best.append(min(shapes, key=lambda s: (_gemv_ticks(hw, geom, s), s.in_elems)))
    return best[0], best[1]


def _channels(hw: Hardware, model: ModelSpec, layout: str, channels_per_expert: int | None) -> int:
    if layout not in LAYOUTS:
        raise LayoutError(f"layout {layout!r} is not one of {', '.join(LAYOUTS)}")
    total = hw.pim_channels_per_gpu
    if layout == "tp":
        if channels_per_expert not in (None, total):
            raise LayoutError(f"layout 'tp' uses all {total} PIM channels; channels_per_expert={channels_per_expert}")
        return total
    if channels_per_expert is None:
        channels_per_expert = max(1, total // model.num_experts)
    if isinstance(channels_per_expert, bool) or not isinstance(channels_per_expert, int) \
            or not 1 <= channels_per_expert <= total:
        raise LayoutError(f"channels_per_expert must be an integer in 1..{total}, got {channels_per_expert!r}")
    return channels_per_expert


def expert_run(hw, model, n_tokens: int, layout: str = "tp", *, channels_per_expert: int | None = None,
               log: bool = False):
    """Simulate one expert with `n_tokens` tokens on one of its channels; returns (ticks, session)."""
    done, _, _, session = expert_phases(hw, model, n_tokens, layout, channels_per_expert=channels_per_expert,
                                        log=log)
    return done, session


def expert_phases(hw, model, n_tokens: int, layout: str = "tp", *, channels_per_expert: int | None = None,
                  log: bool = False):
    """:func:`expert_run` with its phases: ``(end tick, end tick of the gate/up phase, start tick of the down
    phase (after the GPU's hand-off), session)``."""
    hw, model = _hw(hw), _model(model)
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, (int, np.integer)) or n_tokens < 1:
        raise LayoutError(f"n_tokens must be a positive integer, got {n_tokens!r}")
    channels = _channels(hw, model, layout, channels_per_expert)
    geom = PIMGeometry.of(hw)
    up, down = expert_slices(hw, model, channels)
    rows_up = up.rows_used(geom)
    if rows_up + down.rows_used(geom) > geom.rows:
        raise LayoutError(
            f"one {model.name} expert split over {channels} channels needs {rows_up + down.rows_used(geom)} rows "
            f"per bank; a bank of {hw.standard.name} has {geom.rows}")
    dev = hw.pim_device
    session = dev.session(log=log)
    addr_of = np.zeros((1, len(dev.standard.levels)), dtype=np.int64)
    tables = dev.tables
    read_ticks = tables.read_latency_ticks
    handoff_ticks = round(hw.pim.handoff_s * 1e9 / hw.standard.tick_ns)

    def run(shape: GemvShape, base_row: int) -> int:
        cmds, rows, cols = gemv_stream(geom, shape, repeat=int(n_tokens), base_row=base_row)
        addr = np.broadcast_to(addr_of, (len(cmds), addr_of.shape[1])).copy()
        ticks = session.run(cmds, addr, rows, cols, auto_prereq=True)
        return int(ticks[-1]) + read_ticks  # the last partial sums reach the GPU

    done_up = run(up, 0)
    down_start = done_up + handoff_ticks
    session.barrier(down_start)
    done = run(down, rows_up)
    return done, done_up, down_start, session


SIMULATED_UP_TO = 64
"""Token counts up to this are simulated whole; beyond it the stream is periodic (see :func:`_cached`)."""


@lru_cache(maxsize=4096)
def _simulated(hw: Hardware, model: ModelSpec, n_tokens: int, layout: str, channels_per_expert):
    """(end tick, ticks of gate/up, ticks of down, commands by index) of one expert simulated on the engine."""
    ticks, done_up, down_start, session = expert_phases(hw, model, n_tokens, layout,
                                                        channels_per_expert=channels_per_expert)
    return ticks, done_up, ticks - down_start, session.engine.command_totals().astype(np.int64)


@lru_cache(maxsize=4096)
def _cached(hw: Hardware, model: ModelSpec, n_tokens: int, layout: str, channels_per_expert) -> ExpertTime:
    """One expert's time. Up to :data:`SIMULATED_UP_TO` tokens the whole stream is simulated. A longer stream
    repeats the same per-token commands, and once the engine's state at a token boundary repeats, every
    further token adds the same ticks and commands: the time of ``N`` tokens is that of ``M`` tokens plus
    ``(N - M)`` times the increment from ``M`` to ``M + 1``, in whole ticks (``M = SIMULATED_UP_TO``).
    The tests check this against whole simulations of longer streams, tick for tick."""
    if isinstance(n_tokens, int) and not isinstance(n_tokens, bool) and n_tokens > SIMULATED_UP_TO:
        m = SIMULATED_UP_TO
        first, second = (_simulated(hw, model, k, layout, channels_per_expert) for k in (m, m + 1))
        ticks, up, down, totals = (a + (n_tokens - m) * (b - a) for a, b in zip(first, second))
    else:
        ticks, up, down, totals = _simulated(hw, model, n_tokens, layout, channels_per_expert)
    channels = _channels(hw, model, layout, channels_per_expert)
    names = hw.standard.command_names
    geom = PIMGeometry.of(hw)
    macs = sum(s.out_rows * math.ceil(s.in_elems / s.weights_per_col(geom)) * s.macs_per_col(geom)
               for s in expert_slices(hw, model, channels))
    mac_s = hw.mac_interval_ticks * hw.standard.tick_ns * 1e-9
    roofline = n_tokens * macs / geom.banks * mac_s
    tick_s = hw.standard.tick_ns * 1e-9
    return ExpertTime(seconds=ticks * tick_s,
                      commands={names[i]: int(totals[i]) for i in range(len(names)) if totals[i]},
                      channels=channels, roofline_seconds=roofline, gate_up_seconds=up * tick_s,
                      down_seconds=down * tick_s)


def expert_time(hw="aim", model="deepseek", n_tokens: int = 1, layout: str = "tp", *,
                channels_per_expert: int | None = None, details: bool = False):
    """Simulated seconds for one routed expert of `model` with `n_tokens` tokens on PIM.

    ``hw``: a preset name or a :class:`~sieve.hw.Hardware`; ``model``: a preset name or a
    :class:`~sieve.model.ModelSpec`; ``layout``: ``tp`` or ``ep``. Results are cached per
    (hardware, model, tokens, layout) for the life of the process. With ``details`` an
    :class:`ExpertTime` is returned (commands, channels, roofline ratio).
    """
    result = _cached(_hw(hw), _model(model), int(n_tokens) if isinstance(n_tokens, (int, np.integer))
                     and not isinstance(n_tokens, bool) else n_tokens, layout, channels_per_expert)
    return result if details else result.seconds
