"""``oracle`` (beyond the paper): the best hottest-first split, judged with the true PIM costs.

The activated experts are ordered as Sieve orders them (most tokens first; equal counts: lower expert
index first). For every ``k = 0 .. |E|`` the split "the first ``k`` on the GPU, the rest on PIM" is judged
by ``max(T_comm, T_gpu(G), T_pim(S))`` with each PIM expert costing ``view.pim_expert_time(N)`` (the
cycle-level time) instead of an estimate; the ``k`` with the smallest objective wins (equal objectives:
the smallest ``k``, i.e. the most experts on PIM). Sieve's split is one of these prefixes, so judged with
the same true costs the oracle is never worse; the gap is what Sieve's greedy stop and cost table lose.
It costs nothing to run (``overhead_s`` default 0): it is a bound, not a deployable policy.

When the runtime provides ``view.split_time`` (its exact time of the expert phase for a split), the prefixes
are judged by that instead of the objective: the oracle then finds the best hottest-first split for the
runtime as simulated, which also shows what the objective itself leaves on the table (e.g. counting PIM
attention against the experts although attention has finished before the experts start).
"""

from __future__ import annotations

import math

import numpy as np

from .base import LayerView, Placement, Scheduler, SchedulerError, _seconds, hottest_first

__all__ = ["Oracle"]


class Oracle(Scheduler):
    """Exhaustive search over the hottest-first prefixes with cycle-level PIM costs."""

    name = "oracle"
    uses_pim_attention = True

    def place(self, view: LayerView) -> Placement:
        if view.pim_expert_time is None:
            raise SchedulerError("oracle needs the view's pim_expert_time (cycle-level PIM time of one expert)")
        order = hottest_first(view.counts)
        costs = [_seconds(view.pim_expert_time(int(view.counts[e])), f"pim_expert_time({int(view.counts[e])})")
                 for e in order]
        on_gpu = np.zeros(view.num_experts, dtype=bool)
        best_k, best_f = 0, math.inf
        for k in range(len(order) + 1):
            if k:
                on_gpu[order[k - 1]] = True
            if view.split_time is not None:
                f = _seconds(view.split_time(on_gpu.copy()), "split_time(...)")
            else:
                t_pim = view.pim_attention_s + math.fsum(costs[k:])
                f = max(view.comm_s, view.gpu_s(on_gpu), t_pim)
            if f < best_f:
                best_k, best_f = k, f
        on_pim = view.activated.copy()
        on_pim[order[:best_k]] = False
        return Placement.of(view, on_pim, estimated_s=best_f, overhead_s=self.overhead_s,
                            channel_load_s=np.full(view.num_pim_channels, math.fsum(costs[best_k:])))
