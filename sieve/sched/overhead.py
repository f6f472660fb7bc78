"""What a placement policy's own GPU kernel costs per layer, and when it can skip running it.

The Sieve paper measures its scheduler once: 20 µs "for a MoE layer of DeepSeek-R1 ... without kernel
optimization" on a B200, a sort of the layer's activated experts plus a linear scan. One GPU of that
measurement sorted a whole DeepSeek-R1 layer, :data:`CALIBRATION_EXPERTS` = 256 routed experts.

Cost models (``overhead``):

* ``scaled`` (default): the kernel's launch plus work proportional to the experts it sorts::

      cost(n) = kernel_launch + (overhead_s - kernel_launch) * n / CALIBRATION_EXPERTS

  with ``n`` the activated experts on this GPU in this layer and ``kernel_launch`` the GPU preset's launch
  cost (``hw.gpu.kernel_launch_s``); at ``n = 256`` it is the paper's ``overhead_s``.
* ``flat``: ``overhead_s`` whatever ``n`` (the paper's literal reading; 5, 10 or 20 µs for the README's
  sensitivity table).

``overhead_s = 0`` makes both free.

Skipping the kernel (beyond the paper):

* fast path (``fast_path``): the greedy's first step needs only the hottest expert's token count and the
  sum of the PIM costs over the activated experts, which the metadata step already has. When moving the
  hottest expert does not lower the objective, the greedy stops there: the answer is "all on PIM" and no
  scheduler kernel runs (cost 0). Otherwise the search runs at the modelled cost.
* adaptive (``adaptive``): remembers, per layer, the gain the last search estimated (objective with
  everything on PIM minus objective of the split it found) and skips the search (all on PIM, cost 0)
  while that gain was below the search's cost; it searches again at every ``adaptive_recheck``-th visit of
  the layer. It needs the layer index in the view (``LayerView.layer``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .base import SchedulerError, _seconds

__all__ = ["CALIBRATION_EXPERTS", "OVERHEAD_MODELS", "SchedulerCost", "AdaptiveSkip"]

CALIBRATION_EXPERTS = 256
"""Routed experts of one DeepSeek-R1 MoE layer (config.json ``n_routed_experts``): what the paper's 20 µs
measurement sorted."""

OVERHEAD_MODELS = ("scaled", "flat")


@dataclass(frozen=True)
class SchedulerCost:
    """``cost(n, launch)``: seconds of the scheduler kernel that sorts ``n`` activated experts."""

    model: str
    overhead_s: float
    kernel_launch_s: float | None = None
    """The launch cost to use; None: the one the view gives (the GPU preset's)."""

    def __post_init__(self):
        if self.model not in OVERHEAD_MODELS:
            raise SchedulerError(f"overhead must be one of {', '.join(OVERHEAD_MODELS)}; got {self.model!r}")
        object.__setattr__(self, "overhead_s", _seconds(self.overhead_s, "overhead_s"))
        if self.kernel_launch_s is not None:
            object.__setattr__(self, "kernel_launch_s", _seconds(self.kernel_launch_s, "kernel_launch_s"))

    def launch(self, view_launch_s: float | None) -> float:
        launch = self.kernel_launch_s if self.kernel_launch_s is not None else view_launch_s
        if launch is None:
            raise SchedulerError("overhead 'scaled' needs the GPU's kernel launch time: give the scheduler "
                                 "kernel_launch_s or a view with kernel_launch_s (the runtime passes "
                                 "hw.gpu.kernel_launch_s)")
        if launch > self.overhead_s and self.overhead_s > 0:
            raise SchedulerError(f"overhead 'scaled': kernel_launch_s={launch} exceeds overhead_s={self.overhead_s}, "
                                 "the cost of sorting a whole calibration layer")
        return launch

    def cost(self, n_experts: int, view_launch_s: float | None = None) -> float:
        """Seconds to place a layer with ``n_experts`` activated experts on this GPU."""
        if self.overhead_s == 0 or n_experts == 0:
            return 0.0
        if self.model == "flat":
            return self.overhead_s
        launch = self.launch(view_launch_s)
        return launch + (self.overhead_s - launch) * n_experts / CALIBRATION_EXPERTS


@dataclass
class AdaptiveSkip:
    """Per-layer memory of the adaptive variant: the last estimated gain and its cost, and the visits
    since the last search."""

    recheck: int
    _last: dict[int, tuple[float, float]] = field(default_factory=dict)
    _skipped: dict[int, int] = field(default_factory=dict)

    def skip(self, layer: int) -> bool:
        """Whether to skip the search at this visit of ``layer`` (and count the visit)."""
        last = self._last.get(layer)
        if last is None:
            return False
        gain, cost = last
        if gain >= cost or self._skipped.get(layer, 0) + 1 >= self.recheck:
            self._skipped[layer] = 0
            return False
        self._skipped[layer] = self._skipped.get(layer, 0) + 1
        return True

    def remember(self, layer: int, gain: float, cost: float) -> None:
        if not math.isfinite(gain):
            gain = math.inf
        self._last[layer] = (gain, cost)
