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

import numpy as np

from sieve.trace.gemv import LayoutError, PIMGeometry

from .expert import _channels, _hw, _model, expert_slices, expert_time

__all__ = ["placement", "rows_per_channel", "layer_channel_times"]


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
