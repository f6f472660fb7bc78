"""The runtime's task graphs as data: what runs in a decode step, on which resource, after what.

This is the paper's Figure 8 (the Sieve runtime of one MoE layer) written as a declaration. Each
:class:`Task` names the resource it occupies and the tasks that must end before it may start; a
:class:`Graph` adds the order in which the tasks are issued. :func:`sieve.runtime.placement.place`
puts any such graph on the resource timelines; the runtime only says how long each task takes
(from the cycle-level PIM model and the GPU and NVLink models). To add an overlap or a task, edit
the declaration below, not the placement routine: e.g. ``after=("dispatch", "scheduler")`` on
``PIM experts`` is the edge that lets PIM experts start beside the shared expert.

Resources (one lane each per GPU; see :mod:`sieve.runtime.timeline`):

==========  ==========================================================================================
``gpu``     the GPU's compute stream: kernels run one at a time, in issue order
``pim``     the GPU's PIM channels (attention and expert phases; per-channel busy time kept beside)
``sched``   the placement policy's own stream, beside the dispatch (SPEC §3 step 5)
``nvlink``  a collective: one task on the send and receive lanes of *every* GPU, starting when the
            slowest GPU is ready
==========  ==========================================================================================

A GPU kernel that reads weights (``weights=``) also shows a *weight stream* span on the GPU's
``memory`` lane (weights streamed HBM-PIM -> GPU); its roofline already counts the bytes, so the span
is drawn, never waited for.

Conditions (``when=``) drop a task from a layer (attention runs on PIM *or* on the GPU; prefill
attention only where a sub-batch holds prefill requests; PIM experts only where some expert runs on
PIM). A dropped task takes no time: whatever waits for it waits for what it would have waited for.

Issue order: each group of :attr:`Graph.issue_order` is issued for every sub-batch before the next
group (NeuPIMs-style interleaving: every sub-batch's projections, then every sub-batch's attention,
...), and inside a group, per sub-batch, GPU by GPU, task by task, then the group's collectives.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

__all__ = ["RESOURCES", "KINDS", "START", "Task", "Graph", "MOE_LAYER", "DENSE_LAYER", "EMBEDDING", "LM_HEAD",
           "describe"]

RESOURCES = {"gpu": "GPU compute", "pim": "PIM channels", "sched": "scheduler stream",
             "nvlink": "NVLink (all GPUs)"}
"""Resource name -> what it is."""

KINDS = {
    "pim_attention": "PIM attention",
    "pim_experts": "PIM experts",
    "handoff": "hand-off (PIM -> GPU -> PIM)",
    "gpu_experts": "GPU experts",
    "gpu_other": "other GPU work",
    "nvlink": "NVLink",
    "sched": "scheduler",
}
"""What a task's time counts as on the critical path (the summary's ``critical_<kind>`` shares)."""

START = "start"
"""The pseudo-task every graph starts from: the end of the previous layer (or step) on this GPU."""


@dataclass(frozen=True)
class Task:
    """One task of a graph, instantiated per (sub-batch, GPU), or once per sub-batch for ``nvlink``.

    ``name``: unique in its graph, the key of its duration; ``label``: what timelines show (default:
    the name); ``after``: tasks (of the same sub-batch and GPU; for a collective, of every GPU) that
    must end first; ``kind``: what its time counts as on the critical path (:data:`KINDS`);
    ``when``: a condition the runtime evaluates per (sub-batch, GPU), None for always;
    ``weights``: the weight bytes this GPU kernel streams (a key the runtime resolves), or None."""

    name: str
    resource: str
    after: tuple[str, ...]
    kind: str
    when: str | None = None
    weights: str | None = None
    label: str | None = None

    def __post_init__(self):
        if self.resource not in RESOURCES:
            raise ValueError(f"task {self.name!r}: resource {self.resource!r}; allowed: {', '.join(RESOURCES)}")
        if self.kind not in KINDS:
            raise ValueError(f"task {self.name!r}: kind {self.kind!r}; allowed: {', '.join(KINDS)}")
        if self.weights is not None and self.resource != "gpu":
            raise ValueError(f"task {self.name!r}: only GPU kernels stream weights (resource {self.resource!r})")

    @property
    def shown_as(self) -> str:
        return self.label or self.name

    @property
    def collective(self) -> bool:
        return self.resource == "nvlink"


@dataclass(frozen=True)
class Graph:
    """Tasks, their issue order and the task whose end ends the graph on every GPU."""

    name: str
    tasks: tuple[Task, ...]
    issue_order: tuple[tuple[str, ...], ...]
    end: str

    def __post_init__(self):
        names = [t.name for t in self.tasks]
        if len(set(names)) != len(names):
            raise ValueError(f"graph {self.name!r}: task names repeat: {names}")
        known = set(names) | {START}
        for t in self.tasks:
            missing = [d for d in t.after if d not in known]
            if missing:
                raise ValueError(f"graph {self.name!r}: task {t.name!r} waits for unknown {missing}; "
                                 f"tasks: {names}")
        issued = [n for group in self.issue_order for n in group]
        if sorted(issued) != sorted(names):
            raise ValueError(f"graph {self.name!r}: issue_order must list every task once; "
                             f"it lists {issued}, the tasks are {names}")
        position = {n: i for i, n in enumerate(issued)}
        for t in self.tasks:
            late = [d for d in t.after if d != START and position[d] >= position[t.name]]
            if late:
                raise ValueError(f"graph {self.name!r}: task {t.name!r} is issued before {late}, which it waits for")
        if self.end not in names:
            raise ValueError(f"graph {self.name!r}: end {self.end!r} is not one of its tasks")

    @cached_property
    def issue_groups(self) -> tuple[tuple[tuple[Task, ...], tuple[Task, ...]], ...]:
        """:attr:`issue_order` resolved to tasks: per group, the per-GPU tasks and the collectives, each in
        issue order (worked out once per graph)."""
        groups = []
        for group in self.issue_order:
            tasks = [self.task(n) for n in group]
            groups.append((tuple(t for t in tasks if not t.collective), tuple(t for t in tasks if t.collective)))
        return tuple(groups)

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"graph {self.name!r} has no task {name!r}; tasks: {[t.name for t in self.tasks]}")


def _attention(after: str) -> tuple[Task, ...]:
    """Decode attention on PIM or on the GPU, then causal attention of prefill prompts on the GPU."""
    return (
        Task("PIM attention", "pim", (after,), "pim_attention", when="attention_on_pim", label="attention"),
        Task("GPU attention", "gpu", (after,), "gpu_other", when="attention_on_gpu", label="attention"),
        Task("prefill attention", "gpu", ("PIM attention", "GPU attention"), "gpu_other", when="has_prefill"),
    )


_ATTENTION_ORDER = (("attention projections",), ("PIM attention", "GPU attention", "prefill attention"))

MOE_LAYER = Graph(
    name="MoE layer",
    tasks=(
        Task("attention projections", "gpu", (START,), "gpu_other", weights="attention"),
        *_attention("attention projections"),
        Task("router", "gpu", ("prefill attention",), "gpu_other", weights="router"),
        Task("routing AllGather", "nvlink", ("router",), "nvlink"),
        Task("grouped-GEMM metadata", "gpu", ("routing AllGather",), "gpu_other"),
        Task("dispatch", "nvlink", ("grouped-GEMM metadata",), "nvlink"),
        Task("scheduler", "sched", ("grouped-GEMM metadata",), "sched"),
        Task("shared experts", "gpu", ("grouped-GEMM metadata",), "gpu_other", weights="shared_experts"),
        Task("GPU experts", "gpu", ("dispatch", "scheduler", "shared experts"), "gpu_experts",
             weights="gpu_experts"),
        Task("PIM experts", "pim", ("dispatch", "scheduler"), "pim_experts", when="experts_on_pim"),
        Task("combine", "nvlink", ("GPU experts", "PIM experts", "shared experts"), "nvlink"),
    ),
    issue_order=(*_ATTENTION_ORDER, ("router",), ("routing AllGather",), ("grouped-GEMM metadata",), ("dispatch",),
                 ("scheduler", "shared experts", "GPU experts", "PIM experts", "combine")),
    end="combine",
)
"""One MoE layer (SPEC §3): projections, attention, router, AllGather of the routing maps, metadata, then
dispatch beside the scheduler and the shared expert, GPU experts beside PIM experts, combine.

``PIM experts`` is one phase on the PIM channels: every expert's gate/up GEMVs, the hand-off of the
intermediate vectors to the GPU and back (``hw.pim.handoff_s``), every down GEMV, each stage ending when
its partial sums are read back (:func:`sieve.pim.layer.expert_phase` composes it; the stages are in its
record and in the critical-path shares)."""

DENSE_LAYER = Graph(
    name="dense layer",
    tasks=(
        Task("attention projections", "gpu", (START,), "gpu_other", weights="attention"),
        *_attention("attention projections"),
        Task("dense FFN", "gpu", ("prefill attention",), "gpu_other", weights="dense_ffn"),
    ),
    issue_order=(*_ATTENTION_ORDER, ("dense FFN",)),
    end="dense FFN",
)
"""A dense layer: projections, attention, the dense FFN; no collective."""

EMBEDDING = Graph("embedding", (Task("embedding", "gpu", (START,), "gpu_other"),), (("embedding",),), "embedding")
LM_HEAD = Graph("LM head", (Task("LM head", "gpu", (START,), "gpu_other", weights="lm_head"),), (("LM head",),),
                "LM head")
"""A decode step: :data:`EMBEDDING`, every layer (:data:`DENSE_LAYER` or :data:`MOE_LAYER`), :data:`LM_HEAD`."""


def describe(graph: Graph) -> str:
    """The graph as text: one line per task in issue order (resource, what it waits for, condition)."""
    width = max(len(t.name) for t in graph.tasks) + 2
    lines = [f"{graph.name}  (per sub-batch and GPU; ends at {graph.end!r})"]
    for i, group in enumerate(graph.issue_order, 1):
        for name in group:
            t = graph.task(name)
            extra = [f"when {t.when}"] if t.when else []
            if t.weights:
                extra.append("streams weights")
            after = ", ".join("layer start" if d == START else d for d in t.after)
            lines.append(f"  {i:>2}. {t.name:<{width}}{RESOURCES[t.resource]:<18} after {after}"
                         + (f"   [{'; '.join(extra)}]" if extra else ""))
    return "\n".join(lines)
