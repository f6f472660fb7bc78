"""Hand-made layer views: costs are simple closed forms, so every expected split can be worked out by hand."""

from __future__ import annotations

import numpy as np

from sieve.sched import ExpertPhase, LayerView


def per_expert_gpu(seconds_per_expert: float, base: float = 0.0):
    """T_gpu = base + a fixed cost per expert on the GPU (weight streaming dominates)."""
    return lambda on_gpu: base + seconds_per_expert * np.count_nonzero(on_gpu)


def per_token(seconds_per_token: float, fixed: float = 0.0):
    """PIM time of one expert: fixed + N serialized GEMVs."""
    return lambda n: fixed + seconds_per_token * n


def view(counts, *, gpu=per_expert_gpu(1.0), roofline=per_token(1.0), **kwargs) -> LayerView:
    """A view; unless given, its expert phase has GPU and PIM free at once and the GPU experts cost ``gpu``,
    and the GPU's kernel launch is 2 µs."""
    kwargs.setdefault("expert_phase", None if not callable(gpu) else ExpertPhase(gpu_ready_s=0.0, pim_ready_s=0.0, pim_fixed_s=0.0,
                                                  gpu_expert_time=gpu))
    kwargs.setdefault("kernel_launch_s", 2e-6)
    return LayerView(counts=np.asarray(counts), gpu_time=gpu, pim_roofline=roofline, **kwargs)


def ep_layout(num_experts: int, channels: int, per_expert: int = 1) -> np.ndarray:
    """Expert j in channels (j * S + k) mod C, k < S: the runtime's ep layout."""
    return (np.arange(num_experts)[:, None] * per_expert + np.arange(per_expert)[None, :]) % channels
