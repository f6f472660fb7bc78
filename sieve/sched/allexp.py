"""``allexp`` (Stratum / PAPI style): attention and every expert on PIM.

Rules: decode attention runs on PIM; every activated expert runs on PIM (each over all PIM channels of
its GPU, Sieve's layout). Nothing is estimated (``estimated_s`` is NaN).
"""

from __future__ import annotations

from .base import LayerView, Placement, Scheduler

__all__ = ["AllExp"]


class AllExp(Scheduler):
    """Attention and all activated experts on PIM."""

    name = "allexp"
    uses_pim_attention = True

    def place(self, view: LayerView) -> Placement:
        return Placement.of(view, view.activated, overhead_s=self.overhead_s)
