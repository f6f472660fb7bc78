"""``sieve``: the paper's runtime expert placement.

Per GPU and layer, with ``E`` the activated experts, ``S`` those on PIM and ``G = E - S`` those on the GPU,
the paper's Sieve minimises (Eq. 1 as written; the default plans with the expert phase instead, see
*Objective* below)::

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

Objective (``objective``). ``"expert_phase"`` (default) plans with the expert phase as the runtime schedules
it (:class:`~sieve.sched.base.ExpertPhase`): the paper's Eq. 1 estimates the bottleneck of the expert phase,
and in the paper's runtime attention of one sub-batch occupies the PIM while the experts of another run,
so attention counts exactly where it still occupies the channels when the experts can start::

    max(gpu_ready + T_gpu_experts(G),  pim_ready + pim_fixed + sum over S of cost[N_e])

(``pim_fixed`` only when S is not empty), with the same cost table, order and stopping rule.
``"attention_sum"`` is the paper's formula taken literally, ``f`` above: all of the layer's PIM attention
is added to the PIM side, also when it has ended before the experts start. (Its earlier option name,
``"paper"``, is refused with the new one.)

Scheduling cost (``overhead``, ``overhead_s``, ``kernel_launch_s``, ``fast_path``, ``adaptive``,
``adaptive_recheck``): see :mod:`sieve.sched.overhead`. By default the kernel costs the launch plus a
share of the paper's 20 µs proportional to the activated experts it sorts, and does not run at all when
moving the hottest expert does not lower the objective. The runtime runs it beside the dispatch (SPEC §3
step 5).

Ablations (beyond the paper): ``comm_aware=False`` plans without T_comm, ``attention_aware=False`` as if decode
attention left the PIM channels free (no attention term in ``attention_sum``; PIM ready at once in
``expert_phase``), ``learned_costs=False`` with the roofline for every token count (nothing learned). The
``oracle`` policy is the bound.

Attention (``attention``, beyond the paper): ``"auto"`` (default) lets the runtime run each layer's decode
attention wherever it simulates faster, PIM or GPU, decided from the known context lengths before the router;
``"pim"`` keeps it on PIM, as the paper does for every method (the ``paper_*`` experiment presets pin it).
"""

from __future__ import annotations

import math
from dataclasses import replace
from types import MappingProxyType
from typing import Mapping

import numpy as np

from .base import LayerView, Placement, Scheduler, SchedulerError, _seconds, _tokens, config_defaults, hottest_first
from .overhead import AdaptiveSkip, SchedulerCost

__all__ = ["Sieve", "TIE_RULES", "OBJECTIVES", "ATTENTION_CHOICES", "greedy_prefix"]

TIE_RULES = ("balance", "stop")
OBJECTIVES = ("expert_phase", "attention_sum")
ATTENTION_CHOICES = ("auto", "pim")
RENAMED_OBJECTIVES = {"paper": "attention_sum"}
DEFAULTS = config_defaults("sieve")
"""Defaults of every parameter, from ``conf/sched/sieve.yaml`` (their one source)."""


def greedy_prefix(view: LayerView, order: np.ndarray, costs: np.ndarray, on_comm_tie: str,
                  objective: str = "attention_sum", max_moves: int | None = None):
    """Sieve's greedy over ``order`` (experts, hottest first) with PIM costs ``costs`` (aligned with
    ``order``). Returns ``(k, f, t_gpu, t_pim)``: the first ``k`` experts of ``order`` go to the GPU."""
    # PIM expert time after moving the first k experts: the sum of the remaining costs (suffix sums).
    suffix = np.concatenate([np.cumsum(costs[::-1])[::-1], [0.0]])
    phase = view.expert_phase

    def terms(on_gpu: np.ndarray, k: int) -> tuple[float, float, float]:
        if objective == "attention_sum":
            return view.comm_s, view.gpu_s(on_gpu), view.pim_attention_s + float(suffix[k])
        counts_on_gpu = np.where(on_gpu, view.counts, 0)
        pim = phase.pim_fixed_s + float(suffix[k]) if k < len(order) else 0.0
        gpu = _seconds(phase.gpu_expert_time(counts_on_gpu), "expert_phase.gpu_expert_time(...)")
        return 0.0, phase.gpu_ready_s + gpu, phase.pim_ready_s + pim

    on_gpu = np.zeros(view.num_experts, dtype=bool)
    k = 0
    comm, t_gpu, t_pim = terms(on_gpu, 0)
    f = f_all_pim = max(comm, t_gpu, t_pim)
    limit = len(order) if max_moves is None else min(max_moves, len(order))
    while k < limit:
        on_gpu[order[k]] = True
        comm, new_gpu, new_pim = terms(on_gpu, k + 1)
        new_f = max(comm, new_gpu, new_pim)
        better = new_f < f or (new_f == f and on_comm_tie == "balance" and objective == "attention_sum"
                               and max(new_gpu, new_pim) < max(t_gpu, t_pim))
        if not better:
            on_gpu[order[k]] = False
            break
        k, f, t_gpu, t_pim = k + 1, new_f, new_gpu, new_pim
    return k, f, f_all_pim


class Sieve(Scheduler):
    """Greedy hottest-first split minimising max(T_comm, T_gpu, T_pim) with a learned PIM cost table.

    ``alpha``: weight of a new measurement in the moving average, in (0, 1] (1 keeps only the latest).
    ``on_comm_tie``: ``"balance"`` or ``"stop"``, see the module documentation.
    ``objective``: ``"expert_phase"`` or ``"attention_sum"``, see the module documentation.
    ``overhead`` (``"scaled"`` or ``"flat"``), ``overhead_s``, ``kernel_launch_s`` (None: the view's),
    ``fast_path``, ``adaptive``, ``adaptive_recheck``: the scheduler's own cost, :mod:`sieve.sched.overhead`.
    Defaults: ``conf/sched/sieve.yaml``.
    ``comm_aware``, ``attention_aware``, ``learned_costs``: ablations, see the module documentation.
    ``attention``: ``"auto"`` or ``"pim"``, see the module documentation.
    """

    name = "sieve"
    uses_pim_attention = True

    def __init__(self, *, alpha: float = DEFAULTS["alpha"], on_comm_tie: str = DEFAULTS["on_comm_tie"],
                 objective: str = DEFAULTS["objective"], overhead: str = DEFAULTS["overhead"],
                 overhead_s: float = DEFAULTS["overhead_s"], kernel_launch_s: float | None = DEFAULTS["kernel_launch_s"],
                 fast_path: bool = DEFAULTS["fast_path"], adaptive: bool = DEFAULTS["adaptive"],
                 adaptive_recheck: int = DEFAULTS["adaptive_recheck"], comm_aware: bool = DEFAULTS["comm_aware"],
                 attention_aware: bool = DEFAULTS["attention_aware"], learned_costs: bool = DEFAULTS["learned_costs"],
                 attention: str = DEFAULTS["attention"]):
        self._cost_model = SchedulerCost(overhead, overhead_s, kernel_launch_s)
        fixed = overhead == "flat" and not fast_path and not adaptive
        super().__init__(overhead_s=self._cost_model.overhead_s if fixed else 0.0)
        for name, flag in (("comm_aware", comm_aware), ("attention_aware", attention_aware),
                           ("learned_costs", learned_costs)):
            if not isinstance(flag, (bool, np.bool_)):
                raise SchedulerError(f"{name} must be true or false, got {flag!r}")
        if attention not in ATTENTION_CHOICES:
            raise SchedulerError(f"attention must be one of {', '.join(ATTENTION_CHOICES)}; got {attention!r}")
        self._aware = (bool(comm_aware), bool(attention_aware))
        self._use_table = bool(learned_costs)
        self._attention = attention
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise SchedulerError(f"alpha must be a number in (0, 1], got {alpha!r}")
        if on_comm_tie not in TIE_RULES:
            raise SchedulerError(f"on_comm_tie must be one of {', '.join(TIE_RULES)}; got {on_comm_tie!r}")
        if objective in RENAMED_OBJECTIVES:
            raise SchedulerError(f"objective {objective!r} is now called {RENAMED_OBJECTIVES[objective]!r} "
                                 f"(allowed: {', '.join(OBJECTIVES)})")
        if objective not in OBJECTIVES:
            raise SchedulerError(f"objective must be one of {', '.join(OBJECTIVES)}; got {objective!r}")
        for name, flag in (("fast_path", fast_path), ("adaptive", adaptive)):
            if not isinstance(flag, (bool, np.bool_)):
                raise SchedulerError(f"{name} must be true or false, got {flag!r}")
        if isinstance(adaptive_recheck, bool) or not isinstance(adaptive_recheck, (int, np.integer)) \
                or adaptive_recheck < 1:
            raise SchedulerError(f"adaptive_recheck must be a positive integer (visits of a layer), "
                                 f"got {adaptive_recheck!r}")
        self._alpha = float(alpha)
        self._on_comm_tie = on_comm_tie
        self._objective = objective
        self._fast_path, self._adaptive = bool(fast_path), bool(adaptive)
        self._recheck = int(adaptive_recheck)
        self._skip = AdaptiveSkip(self._recheck)
        self._cost: dict[int, float] = {}

    # ---- parameters (read-only)
    @property
    def params(self) -> Mapping[str, object]:
        return {"alpha": self._alpha, "on_comm_tie": self._on_comm_tie, "objective": self._objective,
                "overhead": self._cost_model.model, "overhead_s": self._cost_model.overhead_s,
                "kernel_launch_s": self._cost_model.kernel_launch_s, "fast_path": self._fast_path,
                "adaptive": self._adaptive, "adaptive_recheck": self._recheck, "comm_aware": self._aware[0],
                "attention_aware": self._aware[1], "learned_costs": self._use_table, "attention": self._attention}

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
    def attention(self) -> str:
        return self._attention

    @property
    def cost_model(self) -> SchedulerCost:
        """What one run of the scheduler kernel costs (:mod:`sieve.sched.overhead`)."""
        return self._cost_model

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

    # ---- placement
    def _planned(self, view: LayerView) -> LayerView:
        """The view as the ablations see it: without T_comm, or with PIM free of decode attention."""
        comm, attention = self._aware
        if comm and attention:
            return view
        phase = view.expert_phase
        if not attention and phase is not None:
            phase = replace(phase, pim_ready_s=0.0)
        return replace(view, comm_s=view.comm_s if comm else 0.0,
                       pim_attention_s=view.pim_attention_s if attention else 0.0, expert_phase=phase)

    def place(self, view: LayerView) -> Placement:
        order = hottest_first(view.counts)
        costs = np.array([self.cost(view, n) for n in view.counts[order].tolist()], dtype=float)
        if self._objective == "expert_phase" and view.expert_phase is None:
            raise SchedulerError("objective 'expert_phase' needs the view's expert_phase (the runtime gives it)")
        view = self._planned(view)
        search_s = self._cost_model.cost(len(order), view.kernel_launch_s)
        if self._adaptive and view.layer is None:
            raise SchedulerError("adaptive=true needs the view's layer (the runtime gives it)")
        if self._adaptive and self._skip.skip(view.layer):
            k, f, _ = greedy_prefix(view, order, costs, self._on_comm_tie, self._objective, max_moves=0)
            overhead = 0.0
        else:
            k, f, f_all_pim = greedy_prefix(view, order, costs, self._on_comm_tie, self._objective)
            overhead = 0.0 if self._fast_path and k == 0 else search_s
            if self._adaptive:
                self._skip.remember(view.layer, f_all_pim - f, search_s)
        on_pim = view.activated.copy()
        on_pim[order[:k]] = False
        load = math.fsum(costs[k:])
        return Placement.of(view, on_pim, estimated_s=f, overhead_s=overhead,
                            channel_load_s=np.full(view.num_pim_channels, load))

    def observe(self, counts, placement: Placement, measured_pim_expert_s: Mapping[int, float]) -> None:
        """Fold the measured PIM time of each token count into the cost table (moving average)."""
        measured = self._check_observation(counts, placement, measured_pim_expert_s)
        for n in sorted(measured):
            old = self._cost.get(n)
            self._cost[n] = measured[n] if old is None else self._alpha * measured[n] + (1 - self._alpha) * old
