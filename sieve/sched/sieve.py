"""``sieve``: the paper's runtime expert placement.

Per GPU and layer, with ``E`` the activated experts, ``S`` those on PIM and ``G = E - S`` those on the GPU,
Sieve minimises::

    f = max(T_comm, T_gpu(G), T_pim(S))      T_pim(S) = pim_attention_s + sum over S of cost[N_e]

Cost table. ``cost[N]`` is Sieve's belief of the PIM time of one expert with ``N`` tokens. A token count
never observed costs ``view.pim_roofline(N)`` (ops / PIM peak). :meth:`Sieve.observe` folds each measured
time in with an exponential moving average, ``cost[N] <- alpha * measured + (1 - alpha) * cost[N]``; the
first measurement of an ``N`` replaces the roofline outright (the roofline is a stand-in, not a sample).

Greedy. The activated experts are taken most tokens first (equal counts: lower expert index first).
All start on PIM. The next expert moves to the GPU when the move lowers ``f``; the first move that
does not ends the search (so does running out of experts). Moves are never undone, and later experts
are not tried once one move failed.

Tie rule (``on_comm_tie``). The objective is flat while T_comm is the largest term: a move can then
leave ``f = T_comm`` unchanged. The paper only says Sieve pushes PIM time below the communication time.

* ``"balance"`` (default): compare splits by ``f`` first and by ``max(T_gpu, T_pim)`` second, i.e. a move
  that leaves ``f`` unchanged is still made when it lowers ``max(T_gpu, T_pim)``. While T_comm dominates,
  Sieve keeps moving hot experts while T_pim is the larger compute term and the move brings the larger of
  the two down; the slack under T_comm then protects the layer from cost-table error on either side.
  When T_comm is not the maximum, equal ``f`` means equal ``max(T_gpu, T_pim)``, so this rule never acts.
* ``"stop"``: a move that leaves ``f`` unchanged ends the search (PIM time is already at or below T_comm).

Overhead. ``overhead_s`` (default 20 µs, the paper's measurement per layer on a B200) is reported on
every placement; the runtime runs it beside the dispatch (SPEC §3 step 5).

Objective (``objective``, beyond the paper). ``"paper"`` (default) is ``f`` above. ``"expert_phase"`` plans
with the runtime's :class:`~sieve.sched.base.ExpertPhase` instead: within one batch, decode attention and
the GPU work before the router have finished when the experts start, so it minimises::

    max(gpu_ready + T_gpu_experts(G),  pim_ready + pim_fixed + sum over S of cost[N_e])

(``pim_fixed`` only when S is not empty), with the same cost table, order and stopping rule. It shows what
the paper's objective loses by counting PIM attention against the experts in a runtime that does not
overlap them.

Ablations (beyond the paper): ``comm_aware=False`` plans without T_comm, ``attention_aware=False`` without
the PIM attention term (objective ``"paper"`` only), ``learned_costs=False`` with the roofline for every
token count (nothing learned). The ``oracle`` policy is the bound.
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .base import LayerView, Placement, Scheduler, SchedulerError, _seconds, _tokens, hottest_first

__all__ = ["Sieve", "TIE_RULES", "OBJECTIVES", "greedy_prefix"]

TIE_RULES = ("balance", "stop")
OBJECTIVES = ("paper", "expert_phase")
DEFAULT_ALPHA = 0.5
DEFAULT_OVERHEAD_S = 20e-6


def greedy_prefix(view: LayerView, order: np.ndarray, costs: np.ndarray, on_comm_tie: str,
                  objective: str = "paper"):
    """Sieve's greedy over ``order`` (experts, hottest first) with PIM costs ``costs`` (aligned with
    ``order``). Returns ``(k, f, t_gpu, t_pim)``: the first ``k`` experts of ``order`` go to the GPU."""
    # PIM expert time after moving the first k experts: the sum of the remaining costs (suffix sums).
    suffix = np.concatenate([np.cumsum(costs[::-1])[::-1], [0.0]])
    phase = view.expert_phase

    def terms(on_gpu: np.ndarray, k: int) -> tuple[float, float, float]:
        if objective == "paper":
            return view.comm_s, view.gpu_s(on_gpu), view.pim_attention_s + float(suffix[k])
        counts_on_gpu = np.where(on_gpu, view.counts, 0)
        pim = phase.pim_fixed_s + float(suffix[k]) if k < len(order) else 0.0
        gpu = _seconds(phase.gpu_expert_time(counts_on_gpu), "expert_phase.gpu_expert_time(...)")
        return 0.0, phase.gpu_ready_s + gpu, phase.pim_ready_s + pim

    on_gpu = np.zeros(view.num_experts, dtype=bool)
    k = 0
    comm, t_gpu, t_pim = terms(on_gpu, 0)
    f = max(comm, t_gpu, t_pim)
    while k < len(order):
        on_gpu[order[k]] = True
        comm, new_gpu, new_pim = terms(on_gpu, k + 1)
        new_f = max(comm, new_gpu, new_pim)
        better = new_f < f or (new_f == f and on_comm_tie == "balance" and objective == "paper"
                               and max(new_gpu, new_pim) < max(t_gpu, t_pim))
        if not better:
            on_gpu[order[k]] = False
            break
        k, f, t_gpu, t_pim = k + 1, new_f, new_gpu, new_pim
    return k, f, t_gpu, t_pim


class Sieve(Scheduler):
    """Greedy hottest-first split minimising max(T_comm, T_gpu, T_pim) with a learned PIM cost table.

    ``alpha``: weight of a new measurement in the moving average, in (0, 1] (1 keeps only the latest).
    ``on_comm_tie``: ``"balance"`` or ``"stop"``, see the module documentation.
    ``overhead_s``: the scheduler's own time per layer.
    ``objective``: ``"paper"`` or ``"expert_phase"``, see the module documentation.
    ``comm_aware``, ``attention_aware``, ``learned_costs``: ablations, see the module documentation.
    """

    name = "sieve"
    uses_pim_attention = True

    def __init__(self, *, alpha: float = DEFAULT_ALPHA, on_comm_tie: str = "balance",
                 overhead_s: float = DEFAULT_OVERHEAD_S, objective: str = "paper", comm_aware: bool = True,
                 attention_aware: bool = True, learned_costs: bool = True):
        super().__init__(overhead_s=overhead_s)
        for name, flag in (("comm_aware", comm_aware), ("attention_aware", attention_aware),
                           ("learned_costs", learned_costs)):
            if not isinstance(flag, bool):
                raise SchedulerError(f"{name} must be true or false, got {flag!r}")
        if not attention_aware and objective != "paper":
            raise SchedulerError("attention_aware=false applies to objective 'paper' only")
        self._aware = (comm_aware, attention_aware)
        self._use_table = learned_costs
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise SchedulerError(f"alpha must be a number in (0, 1], got {alpha!r}")
        if on_comm_tie not in TIE_RULES:
            raise SchedulerError(f"on_comm_tie must be one of {', '.join(TIE_RULES)}; got {on_comm_tie!r}")
        if objective not in OBJECTIVES:
            raise SchedulerError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
        self._alpha = float(alpha)
        self._on_comm_tie = on_comm_tie
        self._objective = objective
        self._cost: dict[int, float] = {}

    @property
    def alpha(self) -> float:
        return self._alpha

    @property
    def on_comm_tie(self) -> str:
        return self._on_comm_tie

    @property
    def objective(self) -> str:
        return self._objective

    @property
    def comm_aware(self) -> bool:
        return self._aware[0]

    @property
    def attention_aware(self) -> bool:
        return self._aware[1]

    @property
    def learned_costs(self) -> bool:
        return self._use_table

    @property
    def cost_table(self) -> Mapping[int, float]:
        """Observed PIM seconds of one expert, by token count (read-only view)."""
        return MappingProxyType(self._cost)

    def cost(self, view: LayerView, n_tokens: int) -> float:
        """Believed PIM seconds of one expert with ``n_tokens`` tokens: the table, else the roofline."""
        n = _tokens(n_tokens, "n_tokens")
        if self._use_table and n in self._cost:
            return self._cost[n]
        return _seconds(view.pim_roofline(n), f"pim_roofline({n})")

    def place(self, view: LayerView) -> Placement:
        order = hottest_first(view.counts)
        costs = np.array([self.cost(view, int(view.counts[e])) for e in order], dtype=float)
        if self._objective == "expert_phase" and view.expert_phase is None:
            raise SchedulerError("objective 'expert_phase' needs the view's expert_phase (the runtime gives it)")
        comm, attention = self._aware
        planned = view if comm and attention else replace(
            view, comm_s=view.comm_s if comm else 0.0, pim_attention_s=view.pim_attention_s if attention else 0.0)
        k, f, _, _ = greedy_prefix(planned, order, costs, self._on_comm_tie, self._objective)
        on_pim = view.activated.copy()
        on_pim[order[:k]] = False
        load = math.fsum(costs[k:])
        return Placement.of(view, on_pim, estimated_s=f, overhead_s=self.overhead_s,
                            channel_load_s=np.full(view.num_pim_channels, load))

    def observe(self, counts, placement: Placement, measured_pim_expert_s: Mapping[int, float]) -> None:
        """Fold the measured PIM time of each token count into the cost table (moving average)."""
        measured = self._check_observation(counts, placement, measured_pim_expert_s)
        for n in sorted(measured):
            old = self._cost.get(n)
            self._cost[n] = measured[n] if old is None else self._alpha * measured[n] + (1 - self._alpha) * old
