"""``noexp`` (NeuPIMs / PAISE style): attention on PIM, experts on the GPU.

Rules: decode attention runs on PIM; every activated expert runs on the GPU. Nothing is estimated
(``estimated_s`` is NaN).
"""

from __future__ import annotations

import numpy as np

from .base import LayerView, Placement, Scheduler

__all__ = ["NoExp"]


class NoExp(Scheduler):
    """Attention on PIM, all experts on the GPU."""

    name = "noexp"
    uses_pim_attention = True

    def place(self, view: LayerView) -> Placement:
        return Placement.of(view, np.zeros(view.num_experts, dtype=bool), overhead_s=self.overhead_s)
