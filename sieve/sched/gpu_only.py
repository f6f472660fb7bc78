"""``gpu_only``: no PIM at all.

Rules: decode attention runs on the GPU (:attr:`uses_pim_attention` is False, so the runtime charges it
to ``gpu_time`` and gives the view ``pim_attention_s = 0``), and every activated expert runs on the GPU.
Nothing is estimated (``estimated_s`` is NaN).
"""

from __future__ import annotations

import numpy as np

from .base import LayerView, Placement, Scheduler

__all__ = ["GpuOnly"]


class GpuOnly(Scheduler):
    """Attention and all experts on the GPU."""

    name = "gpu_only"
    uses_pim = False
    uses_pim_attention = False

    def place(self, view: LayerView) -> Placement:
        return Placement.of(view, np.zeros(view.num_experts, dtype=bool), overhead_s=self.overhead_s)
