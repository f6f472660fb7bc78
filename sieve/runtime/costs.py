"""How long each task of a layer's graph takes (:mod:`sieve.runtime.graph`), from sieve's models.

:class:`LayerCosts` answers :func:`sieve.runtime.placement.place` for one layer of one decode step: durations
of GPU kernels (:mod:`sieve.system`), PIM attention and the PIM expert phase (cycle-level, :mod:`sieve.pim`),
collectives (:mod:`sieve.system` link model), and the placement policy's decision, taken when its task is
placed (it sees the timeline as it is then). Everything a task produces besides its time (channel busy
times, the policy's placement, rows of the experts table) is kept here for the runtime to collect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from sieve.model import matrix_bytes
from sieve.pim.attention import attention_time
from sieve.pim.expert import expert_time
from sieve.pim.layer import ExpertPhaseTime, expert_phase
from sieve.sched import ExpertPhase, LayerView, Placement, SchedulerError
from sieve.system import (combine_traffic, decode_attention_time, decode_attention_work, dispatch_traffic,
                          non_expert_time, prefill_attention_time, routing_allgather_traffic)

from .graph import Task
from .placement import PlacedTask
from .records import ExpertRows, LayerExperts, PimPhase
from .work import TASK_WORK

if TYPE_CHECKING:
    from .steps import RunState, SubBatch

__all__ = ["LayerCosts", "Collectives"]


@dataclass(frozen=True)
class Collectives:
    """A sub-batch's routing of one MoE layer: tokens per expert, the three collectives' times and the bytes
    all GPUs send in each."""

    counts: np.ndarray
    allgather_s: float
    dispatch_s: float
    combine_s: float
    allgather_bytes: float = 0.0
    dispatch_bytes: float = 0.0
    combine_bytes: float = 0.0

    @property
    def link_s(self) -> float:
        return self.allgather_s + self.dispatch_s + self.combine_s


class LayerCosts:
    """Durations, conditions and side results of one layer's tasks, per (sub-batch ``k``, GPU ``g``)."""

    notify = frozenset({"PIM attention", "GPU attention", "PIM experts"})
    """The tasks whose placement :meth:`placed` records (channel busy times, PIM phases, attention time)."""

    def __init__(self, run: "RunState", step: int, layer: int, subs: "list[SubBatch]"):
        self.run, self.step, self.layer, self.subs = run, step, layer, subs
        sim = run.sim
        self.layer_type = sim.model.layer_types[layer]
        self.moe_index = run.moe_index.get(layer)
        G, SB = sim.num_gpus, len(subs)
        self.attention_on_pim = [[self._attention_goes_to_pim(k, g) for g in range(G)] for k in range(SB)]
        self.ne = [[run.memoized(("ne", layer, n), non_expert_time, sim.hw, sim.model, layer, n)
                    for n in sub.tokens_g.tolist()] for sub in subs]
        self.attention_s = [[0.0] * G for _ in range(SB)]
        self.collectives: list[Collectives | None] = [None] * SB
        self.placements: list[list[Placement | None]] = [[None] * G for _ in range(SB)]
        self.phases: list[list[ExpertPhaseTime | None]] = [[None] * G for _ in range(SB)]
        self.gpu_counts: list[list[np.ndarray | None]] = [[None] * G for _ in range(SB)]
        self.gpu_split: list[list[tuple[int, int] | None]] = [[None] * G for _ in range(SB)]
        """(tokens, activated experts) of the GPU experts (:meth:`ExpertGemmCost.split`)."""
        self.pim_tokens: list[list[list[int] | None]] = [[None] * G for _ in range(SB)]
        """Tokens of each expert placed on PIM, in expert order."""
        self.expert_columns: list[list[LayerExperts | None]] = [[None] * G for _ in range(SB)]

    def _attention_goes_to_pim(self, k: int, g: int) -> bool:
        """Where decode attention of sub-batch ``k`` runs on GPU ``g``: the policy's choice (``pim``, ``gpu``, or
        ``auto``: wherever it simulates faster, decided from the known context lengths before the router).
        Linear attention (DeltaNet) always runs on the GPU, and so does everything of a policy without PIM."""
        run = self.run
        if not run.pim_enabled or self.layer_type == "linear_attention":
            return False
        if run.attention != "auto":
            return run.attention == "pim"
        if not len(self.subs[k].ctx[g]):
            return True
        return float(self._pim_attention(k, g)) <= self._gpu_attention(k, g, None, None)

    # ------------------------------------------------------------------------------ what place() asks
    def runs(self, task: Task, k: int, g: int) -> bool:
        when = task.when
        if when is None:
            return True
        if when == "attention_on_pim":
            return self.attention_on_pim[k][g]
        if when == "attention_on_gpu":
            return not self.attention_on_pim[k][g]
        if when == "has_prefill":
            return len(self.subs[k].prompts[g]) > 0
        if when == "experts_on_pim":
            return self.phases[k][g].experts > 0
        raise ValueError(f"task {task.name!r}: unknown condition {when!r}")

    def duration(self, task: Task, k: int, g: int | None, ready_s: float, done) -> float:
        seconds = self._DURATIONS[task.name](self, k, g, ready_s, done)
        TASK_WORK[task.name](self, k, g)  # its FLOPs, bytes and PIM commands, for the run's energy
        return seconds

    def weight_bytes(self, task: Task, k: int, g: int) -> float:
        key = task.weights
        if key is None:
            return 0.0
        if key == "attention":
            return self.run.memoized(("attention bytes", self.layer), self.run.sim.model.attention_weight_bytes,
                                     self.layer)
        if key == "gpu_experts":
            return self.run.gpu_experts.weight_bytes(self.gpu_split[k][g][1])
        return self.run.weight_bytes[key]

    def placed(self, task: Task, k: int, g: int | None, placed: PlacedTask) -> None:
        run = self.run
        if task.name == "PIM attention":
            att = self._pim_attention(k, g)
            self.attention_s[k][g] = float(att)  # the attention's own time, as the layer table has it
            run.channel_att[g] += att.channel_seconds
            if run.record and float(att):
                run.pim_phases.append(PimPhase(self.step, self.layer, g, "attention", placed.start_s,
                                               att.channel_seconds))
        elif task.name == "GPU attention":  # as the layer table has it: from ready to end, waits included
            self.attention_s[k][g] = placed.end_s - placed.ready_s
        elif task.name == "PIM experts":
            busy = self.phases[k][g].busy_s
            run.channel_exp[g] += busy
            if run.record:
                run.pim_phases.append(PimPhase(self.step, self.layer, g, "experts", placed.start_s, busy))

    # ------------------------------------------------------------------------------ durations
    def _projections(self, k, g, ready_s, done):
        return self.ne[k][g].attention_projections_s

    def _pim_attention(self, k, g, ready_s=None, done=None):
        sim, key = self.run.sim, ("att", self.layer_type, self.subs[k].ctx_keys[g])
        return self.run.memoized(key, attention_time, sim.hw, sim.model, self.layer, self.subs[k].ctx[g])

    def _gpu_attention(self, k, g, ready_s, done):
        sim, key = self.run.sim, ("gatt", self.layer_type, self.subs[k].ctx_keys[g])
        return self.run.memoized(key, decode_attention_time, sim.hw, sim.model, self.layer, self.subs[k].ctx[g], 2,
                                 self.gpu_attention_work(k, g))

    def gpu_attention_work(self, k: int, g: int):
        """The FLOPs and bytes of sub-batch ``k``'s decode attention on GPU ``g`` (for its time and energy)."""
        key = ("gatt work", self.layer_type, self.subs[k].ctx_keys[g])
        return self.run.memoized(key, decode_attention_work, self.run.sim.model, self.layer, self.subs[k].ctx[g])

    def _prefill_attention(self, k, g, ready_s, done):
        sim = self.run.sim
        return prefill_attention_time(sim.hw, sim.model, self.layer, self.subs[k].prompts[g])

    def _router(self, k, g, ready_s, done):
        return self.ne[k][g].router_s

    def _dense_ffn(self, k, g, ready_s, done):
        return self.ne[k][g].dense_ffn_s

    def _metadata(self, k, g, ready_s, done):
        return self.run.sim.hw.gpu.kernel_launch_s

    def _allgather(self, k, g, ready_s, done):
        return self._collectives(k).allgather_s

    def _dispatch(self, k, g, ready_s, done):
        return self._collectives(k).dispatch_s

    def _combine(self, k, g, ready_s, done):
        return self._collectives(k).combine_s

    def _shared_experts(self, k, g, ready_s, done):
        return self.ne[k][g].shared_expert_s

    def _gpu_experts(self, k, g, ready_s, done):
        return self.run.gpu_experts.seconds(*self.gpu_split[k][g])

    def _pim_experts(self, k, g, ready_s, done):
        return self.phases[k][g].duration_s

    def _scheduler(self, k, g, ready_s, done):
        place = self._decide(k, g, done["dispatch"].end_s, done["grouped-GEMM metadata"].end_s)
        return place.overhead_s

    _DURATIONS = {
        "attention projections": _projections, "PIM attention": _pim_attention, "GPU attention": _gpu_attention,
        "prefill attention": _prefill_attention, "router": _router, "dense FFN": _dense_ffn,
        "routing AllGather": _allgather, "grouped-GEMM metadata": _metadata, "dispatch": _dispatch,
        "scheduler": _scheduler, "shared experts": _shared_experts, "GPU experts": _gpu_experts,
        "PIM experts": _pim_experts, "combine": _combine,
    }

    # ------------------------------------------------------------------------------ MoE pieces
    def local_counts(self, k: int, g: int) -> np.ndarray:
        Eg = self.run.sim.experts_per_gpu
        return self._collectives(k).counts[g * Eg:(g + 1) * Eg]

    def _gpu_counts(self, k: int, g: int) -> np.ndarray:
        return self.gpu_counts[k][g]

    def _collectives(self, k: int) -> Collectives:
        if self.collectives[k] is None:
            sim, sub = self.run.sim, self.subs[k]
            hw, model, G = sim.hw, sim.model, sim.num_gpus
            r = sim.batch.routing[self.step, self.moe_index, sub.tokens]
            counts = np.bincount(r.ravel(), minlength=model.num_experts)
            present = np.zeros(len(r) * G, dtype=np.int64)  # [token, dst]: some expert of the token is on dst
            present[(np.arange(len(r)) * G)[:, None] + sim.owner[r]] = 1  # flat indices: a fraction of the time
            traffic = sub.home_onehot.T @ present.reshape(len(r), G)  # [src, dst] tokens sent once per destination
            links = (routing_allgather_traffic(model, sub.tokens_g), dispatch_traffic(model, traffic),
                     combine_traffic(model, traffic))
            self.collectives[k] = Collectives(counts, *(x.seconds(hw) for x in links),
                                              *(x.bytes_sent for x in links))
        return self.collectives[k]

    def _view(self, k: int, g: int, dispatched: float, meta_end: float) -> LayerView:
        """What the policy of GPU ``g`` may know of this layer (its counts, costs and the expert phase)."""
        run, sim = self.run, self.run.sim
        tl, sched, ne, local = run.timeline, run.scheds[g], self.ne[k][g], self.local_counts(k, g)
        coll = self._collectives(k)
        att_s, on_gpu_att = self.attention_s[k][g], not self.attention_on_pim[k][g]
        base_gpu = (ne.attention_projections_s + ne.router_s + ne.shared_expert_s + sim.hw.gpu.kernel_launch_s
                    + (att_s if on_gpu_att else 0.0))
        go_pre = max(dispatched, meta_end + sched.overhead_s)
        compute_free = tl.free_at(f"gpu{g}/compute")
        gpu_free = max(meta_end, compute_free) + ne.shared_expert_s if ne.shared_expert_s else compute_free
        gpu_go, pim_go = max(go_pre, gpu_free), max(go_pre, tl.free_at(f"gpu{g}/pim"))
        tp = run.layout == "tp"

        def split_time(on_gpu):
            on_pim = (local > 0) & ~on_gpu
            pim = (math.fsum(run.pim_busy(int(n), "tp") for n in local[on_pim]) + run.handoff
                   if on_pim.any() else 0.0)
            return max(gpu_go + run.gpu_experts(np.where(on_gpu, local, 0)), pim_go + pim) - go_pre

        return LayerView(
            split_time=split_time if tp else None,
            expert_phase=ExpertPhase(gpu_ready_s=gpu_go - go_pre, pim_ready_s=pim_go - go_pre,
                                     pim_fixed_s=run.handoff, gpu_expert_time=run.gpu_experts),
            counts=local,
            gpu_time=lambda c: base_gpu + run.gpu_experts(c),
            pim_roofline=lambda n: n * run.roofline_per_token,
            comm_s=coll.link_s,
            pim_attention_s=0.0 if on_gpu_att else att_s,
            pim_expert_time=lambda n: run.pim_busy(n, "tp"),
            num_pim_channels=run.channels,
            expert_channels=run.ep_channels,
            pim_channel_expert_time=None if tp else (lambda n: run.pim_busy(n, "ep")),
            kernel_launch_s=sim.hw.gpu.kernel_launch_s,
            layer=self.layer,
        )

    def _decide(self, k: int, g: int, dispatched: float, meta_end: float) -> Placement:
        """Ask GPU ``g``'s policy where this layer's experts run; it learns from the PIM times at once (the
        runtime's later tasks of the layer do not read the policy)."""
        run, sim = self.run, self.run.sim
        place = run.scheds[g].place(self._view(k, g, dispatched, meta_end))
        if not run.pim_enabled and place.on_pim.any():
            raise SchedulerError(f"{sim.sched_name} placed experts on PIM, which it does not use")
        local = self.local_counts(k, g)
        self.placements[k][g] = place
        on_gpu = self.gpu_counts[k][g] = np.where(place.on_gpu, local, 0)
        self.gpu_split[k][g] = run.gpu_experts.split(on_gpu)
        self.phases[k][g] = expert_phase(sim.hw, sim.model, np.where(place.on_pim, local, 0), run.layout,
                                         sim.channels_per_expert, run.pim_expert_here)
        pim_tokens = self.pim_tokens[k][g] = local[place.on_pim].tolist()
        measured = {n: run.pim_busy(n, "tp") for n in sorted(set(pim_tokens))}
        run.scheds[g].observe(local, place, measured)
        idx = np.flatnonzero(local)
        run.expert_rows.append(ExpertRows(self.step, self.layer, g, k, idx + g * sim.experts_per_gpu, local[idx],
                                          place.on_pim[idx]))
        self.expert_columns[k][g] = LayerExperts(
            pim_experts_s=self.phases[k][g].duration_s, experts_active=len(idx), experts_on_pim=len(pim_tokens),
            tokens=int(local.sum()), tokens_on_pim=sum(pim_tokens), estimated_s=float(place.estimated_s),
            link_s=self._collectives(k).link_s)
        return place
