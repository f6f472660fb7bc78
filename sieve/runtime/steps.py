"""A run of a :class:`~sieve.runtime.Simulation`: decode steps, each the embedding, every layer and the LM head
placed as task graphs (:mod:`sieve.runtime.graph`) on the resource timelines, and the rows they produce."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np

from sieve.model import matrix_bytes
from sieve.pim.expert import expert_time
from sieve.pim.layer import placement as ep_placement
from sieve.system import embedding_time, embedding_work, lm_head_time, lm_head_work

from .costs import LayerCosts
from .critical import layer_chain
from .graph import DENSE_LAYER, EMBEDDING, LM_HEAD, MOE_LAYER, Graph, Task
from .placement import Lanes, PlacedTask, Placer, Ref, place
from .records import NO_EXPERTS, LayerRow, StepRow
from .timeline import Timeline
from .work import RunWork

if TYPE_CHECKING:
    from .simulator import Simulation

__all__ = ["SubBatch", "RunState", "run_steps"]


@dataclass(frozen=True)
class SubBatch:
    """One sub-batch of one decode step: its tokens and, per GPU, its token and request counts, the decode
    contexts (sorted) and the prompt lengths of its prefill requests."""

    tokens: np.ndarray
    home_onehot: np.ndarray
    tokens_g: np.ndarray
    requests_g: np.ndarray
    ctx: list
    prompts: list
    ctx_keys: list
    """Each GPU's ``ctx`` as bytes: the key of the attention costs memoized for it."""


class RunState:
    """What lives across the steps of one run: timelines, one policy per GPU, memoized costs and the rows."""

    def __init__(self, sim: "Simulation", sub_batches: int):
        from .simulator import ExpertGemmCost

        hw, model, G = sim.hw, sim.model, sim.num_gpus
        self.sim, self.sub_batches = sim, sub_batches
        self.scheds = [sim._new_scheduler() for _ in range(G)]
        self.layout = sim.pim_layout
        self.attention = self.scheds[0].attention
        """Where the policy runs decode attention: ``pim``, ``gpu`` or ``auto`` (per layer, GPU and sub-batch)."""
        self.pim_enabled = self.scheds[0].uses_pim
        self.gpu_experts = ExpertGemmCost(hw, model)
        self.record = sim.record_timeline
        self.timeline = Timeline(record=self.record)
        self.placer = Placer(self.timeline, Lanes(G, hw.gpu.hbm_bytes_per_s * hw.gpu.stream_efficiency))
        self.handoff = hw.pim.handoff_s
        self.roofline_per_token = 2 * model.expert_params / hw.pim_peak_flops_per_gpu
        self.router_bytes = matrix_bytes(model.num_experts, model.hidden_size, model.weight_format)
        self.lm_head_bytes = matrix_bytes(model.vocab_size, model.hidden_size, model.weight_format)
        self.weight_bytes = {"router": self.router_bytes, "shared_experts": model.shared_expert_weight_bytes,
                             "dense_ffn": model.dense_ffn_weight_bytes, "lm_head": self.lm_head_bytes}
        """Weight bytes a GPU kernel of each kind streams, where they do not depend on the layer."""
        self.ep_channels = (ep_placement(hw, model, sim.experts_per_gpu, "ep", sim.channels_per_expert)
                            if self.layout == "ep" else None)
        self.moe_index = {layer: i for i, layer in enumerate(model.moe_layers)}
        self.channels = C = hw.pim_channels_per_gpu
        self.channel_att, self.channel_exp = np.zeros((G, C)), np.zeros((G, C))
        self.layer_rows: list[LayerRow] = []
        self.expert_rows: list = []
        self.step_rows: list[StepRow] = []
        self.step_ends: list[Ref] = []
        """The task that ended each step (the last LM head), for its critical path."""
        self.pim_phases: list = []
        self.work = RunWork()
        """FLOPs, bytes and PIM commands of every placed task, for the run's energy."""
        self._memo: dict[Any, Any] = {}
        self.pim_expert_here = partial(self.pim_expert, layout=self.layout)
        """``pim_expert(n)`` in this policy's layout."""

    def memoized(self, key, fn, *args):
        """``fn(*args)``, computed once per run for ``key``."""
        memo = self._memo
        if key in memo:
            return memo[key]
        value = memo[key] = fn(*args)
        return value

    def pim_expert(self, n: int, layout: str):
        """The :class:`~sieve.pim.expert.ExpertTime` of one PIM expert with ``n`` tokens (cycle-level, cached)."""
        key = ("pim", n, layout)
        found = self._memo.get(key)
        if found is None:
            sim = self.sim
            found = self._memo[key] = expert_time(
                sim.hw, sim.model, n, layout, channels_per_expert=sim.channels_per_expert if layout == "ep" else None,
                details=True)
        return found

    def pim_busy(self, n: int, layout: str) -> float:
        """Channel-busy seconds of one PIM expert with ``n`` tokens."""
        return self.pim_expert(n, layout).busy_seconds


class _StepCosts:
    """Durations of the embedding and LM head graphs of one step."""

    notify = frozenset()

    def __init__(self, run: RunState, subs: list[SubBatch]):
        self.run, self.subs = run, subs

    def runs(self, task: Task, k: int, g: int) -> bool:
        return True

    def duration(self, task: Task, k: int, g: int | None, ready_s: float, done) -> float:
        sim, sub = self.run.sim, self.subs[k]
        if task.name == "embedding":
            self.run.work.gpu(embedding_work(sim.model, int(sub.tokens_g[g])))
            return embedding_time(sim.hw, sim.model, int(sub.tokens_g[g]))
        self.run.work.gpu(lm_head_work(sim.model, int(sub.requests_g[g])))
        return lm_head_time(sim.hw, sim.model, int(sub.requests_g[g]))

    def weight_bytes(self, task: Task, k: int, g: int) -> float:
        return self.run.lm_head_bytes if task.weights == "lm_head" else 0.0

    def placed(self, task: Task, k: int, g: int | None, placed: PlacedTask) -> None:
        pass


def _sub_batches(sim: "Simulation", step: int, sub_of: np.ndarray, count: int) -> list[SubBatch]:
    batch, G = sim.batch, sim.num_gpus
    prompts = batch.prompts[step]
    tokens_per_req = np.where(batch.prefill, prompts, 1)
    token_req = np.repeat(np.arange(len(batch.home)), tokens_per_req)
    subs = []
    for k in range(count):
        mask = sub_of[token_req] == k
        home = batch.home[token_req[mask]]
        mine = sub_of == k
        ctx = [np.sort(batch.context[mine & (batch.home == g) & ~batch.prefill] + step) for g in range(G)]
        subs.append(SubBatch(
            tokens=np.flatnonzero(mask),
            home_onehot=np.eye(G, dtype=np.int64)[home],
            tokens_g=np.bincount(home, minlength=G),
            requests_g=np.bincount(batch.home[mine], minlength=G),
            ctx=ctx,
            prompts=[prompts[mine & (batch.home == g) & batch.prefill] for g in range(G)],
            ctx_keys=[c.tobytes() for c in ctx],
        ))
    return subs


def _layer_rows(costs: LayerCosts, graph: Graph, start: list[list[Ref]], end: list[list[Ref]]) -> list[LayerRow]:
    rows = []
    tasks, dense = costs.run.placer.tasks, graph is DENSE_LAYER
    kind = "dense" if dense else "moe"
    for k, (starts, ends) in enumerate(zip(start, end)):
        for g, (first, last) in enumerate(zip(starts, ends)):
            ended_by, path = layer_chain(tasks, last, g)
            e = NO_EXPERTS if dense else costs.expert_columns[k][g]
            rows.append(LayerRow(
                step=costs.step, layer=costs.layer, gpu=g, sub_batch=k, kind=kind,
                attention_on="pim" if costs.attention_on_pim[k][g] else "gpu", attention_s=costs.attention_s[k][g],
                pim_experts_s=e.pim_experts_s, experts_active=e.experts_active, experts_on_pim=e.experts_on_pim,
                tokens=e.tokens, tokens_on_pim=e.tokens_on_pim, estimated_s=e.estimated_s, link_s=e.link_s,
                start_s=first.end_s, end_s=last.end_s, ended_by=ended_by, critical_path=path))
    return rows


def run_steps(sim: "Simulation", sub_batches: int, progress: bool) -> RunState:
    """Simulate every decode step of ``sim`` with ``sub_batches`` sub-batches; returns the run's state and rows."""
    from tqdm.auto import tqdm

    run = RunState(sim, sub_batches)
    model, G, SB, tl = sim.model, sim.num_gpus, sub_batches, run.timeline
    sub_of = sim._sub_batches(SB)
    labels = {"scheduler": f"{sim.sched_name} placement"}
    bar = tqdm(total=sim.workload.decode_steps * model.num_layers, disable=not progress, unit="layer",
               desc=f"{model.name} {sim.sched_name} B={sim.workload.batch_size}"
                    + (f" x{SB} sub-batches" if SB > 1 else ""), leave=False)
    now = Ref(0.0)
    for s in range(sim.workload.decode_steps):
        tl.step, tl.layer = s, -1
        subs = _sub_batches(sim, s, sub_of, SB)
        step_costs = _StepCosts(run, subs)
        ready = place(EMBEDDING, run.placer, step_costs, [[now] * G for _ in range(SB)])
        for layer in range(model.num_layers):
            tl.layer = layer
            graph = MOE_LAYER if layer in run.moe_index else DENSE_LAYER
            costs = LayerCosts(run, s, layer, subs)
            end = place(graph, run.placer, costs, ready, labels)
            run.layer_rows.extend(_layer_rows(costs, graph, ready, end))
            ready = end
            bar.update()
        tl.layer = -1
        ready = place(LM_HEAD, run.placer, step_costs, ready)
        last = max((r for row in ready for r in row), key=lambda r: r.end_s)
        run.step_rows.append(StepRow(s, now.end_s, last.end_s, last.end_s - now.end_s,
                                     int((~sim.batch.prefill).sum()), int(sim.batch.prompts[s].sum())))
        run.step_ends.append(last)
        now = last
    bar.close()
    return run
