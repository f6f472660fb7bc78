"""``pimoe``: experts spread over PIM channels (expert parallel inside the GPU), balanced against the GPU.

Layout. Each expert lives in ``S`` of the GPU's PIM channels (``view.expert_channels``, one row per expert;
``sieve.pim.layer.placement(..., layout="ep")`` gives the runtime's layout), and each of those channels is
busy ``view.pim_channel_expert_time(N)`` when the expert runs ``N`` tokens. A channel's load is the sum over
the PIM experts it holds; the PIM time pimoe sees is the load of the busiest channel. It ignores the PIM
attention load and the inter-GPU traffic.

Rules. All activated experts start on PIM. Then, repeatedly:

1. if ``T_gpu(G) > max channel load`` (GPU time exceeds PIM time), stop;
2. if no activated expert is left on PIM, stop;
3. the busiest channel is the one with the largest load (equal loads: the lowest channel index);
4. its most popular PIM expert is the one with the most tokens among the activated PIM experts it holds
   (equal counts: the lowest expert index); that expert moves to the GPU.

The check comes before each move, so the move that makes GPU time exceed PIM time is kept (the policy as
published moves "until GPU time exceeds PIM time"); equal times keep moving.
``estimated_s`` is ``max(T_gpu, max channel load)`` of the final split, pimoe's own view of the layer;
``channel_load_s`` holds the final loads.
"""

from __future__ import annotations

import numpy as np

from .base import LayerView, Placement, Scheduler, SchedulerError, _seconds

__all__ = ["PIMoE", "channel_loads"]


def channel_loads(view: LayerView, on_pim: np.ndarray, per_expert: np.ndarray) -> np.ndarray:
    """[channels] PIM expert load of each channel when the experts of ``on_pim`` run there, expert ``e``
    keeping each of its channels busy ``per_expert[e]`` seconds (twice if it holds two slices there)."""
    return _contributions(view, per_expert)[on_pim].sum(axis=0)


def _contributions(view: LayerView, per_expert: np.ndarray) -> np.ndarray:
    """[experts, channels] seconds expert ``e`` keeps channel ``c`` busy."""
    rows = np.repeat(np.arange(view.num_experts), view.expert_channels.shape[1])
    slices = np.zeros((view.num_experts, view.num_pim_channels))
    np.add.at(slices, (rows, view.expert_channels.ravel()), 1.0)
    return slices * per_expert[:, None]


class PIMoE(Scheduler):
    """Move the most popular expert of the busiest PIM channel to the GPU until the GPU is the slower side."""

    name = "pimoe"
    uses_pim_attention = True
    pim_layout = "ep"

    def place(self, view: LayerView) -> Placement:
        if view.expert_channels is None or view.pim_channel_expert_time is None:
            raise SchedulerError("pimoe needs the view's expert_channels (its layout over PIM channels) and "
                                 "pim_channel_expert_time (a channel's time for an expert with N tokens)")
        counts = view.counts
        per_expert = np.zeros(view.num_experts)
        for e in np.flatnonzero(counts):
            n = int(counts[e])
            per_expert[e] = _seconds(view.pim_channel_expert_time(n), f"pim_channel_expert_time({n})")
        on_pim = view.activated.copy()
        busy = _contributions(view, per_expert)
        # Loads are recomputed as one column sum over the PIM experts after every move, never kept as running
        # differences, so rounding residue cannot break a tie between channels or leave a phantom load.
        load = busy[on_pim].sum(axis=0)
        t_gpu = view.gpu_s(view.activated & ~on_pim)
        while on_pim.any() and not t_gpu > load.max():
            busiest = int(np.argmax(load))  # the lowest channel index among equal loads
            held = np.flatnonzero(on_pim & (view.expert_channels == busiest).any(axis=1))
            if held.size == 0:  # every PIM expert costs nothing on its channels: take the hottest anywhere
                held = np.flatnonzero(on_pim)
            expert = int(held[np.argmax(counts[held])])  # the lowest expert index among equal counts
            on_pim[expert] = False
            load = busy[on_pim].sum(axis=0)
            t_gpu = view.gpu_s(view.activated & ~on_pim)
        return Placement.of(view, on_pim, estimated_s=max(t_gpu, float(load.max())),
                            overhead_s=self.overhead_s, channel_load_s=load)
