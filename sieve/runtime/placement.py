"""Placing a task graph (:mod:`sieve.runtime.graph`) on the resource timelines, and reading its critical path.

:func:`place` is the one routine that turns a declaration into start and end times: tasks are issued in the
graph's issue order and each starts when every task it waits for has ended *and* its lanes are free
(:meth:`sieve.runtime.timeline.Timeline.place`). It knows nothing of GPUs, PIM or models: the caller says
how long a task takes (``costs.duration``), whether it runs (``costs.runs``) and how many weight bytes a
GPU kernel streams (``costs.weight_bytes``); ``costs.placed`` hears of every placed task.

Every placed task becomes a :class:`PlacedTask` that remembers what bound its start: the dependency that
ended last, or the task that last held its lane (ties go to the dependency). Following those links back
from any task gives the chain that bounded it (:func:`chain`): the critical path. The chain has no gaps,
so its durations add up to the time between its first start and its last end.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter
from typing import Mapping, NamedTuple, Protocol, Sequence

from .graph import START, Graph, Task
from .timeline import Timeline

__all__ = ["PlacedTask", "Ref", "Lanes", "TaskCosts", "Placer", "place", "chain"]


class Ref(NamedTuple):
    """When something ended, and the placed task that ended it (-1: the start of the run)."""

    end_s: float
    task: int = -1


class PlacedTask(NamedTuple):
    """One task as placed. ``gpu`` is -1 for a collective (it ran on every GPU's link lanes);
    ``pred``: index of the placed task that bound its start (-1 if nothing did: the run's start)."""

    name: str
    label: str
    kind: str
    resource: str
    step: int
    layer: int
    sub_batch: int
    gpu: int
    ready_s: float
    start_s: float
    end_s: float
    pred: int

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


# Named tuples rather than dataclasses: a run places tens of thousands of tasks, and a tuple is built fastest.


class TaskCosts(Protocol):
    """What :func:`place` asks of the runtime for each (task, sub-batch, GPU); ``gpu`` is None for collectives.
    ``runs`` is asked only of tasks with a condition, ``weight_bytes`` only of kernels that stream weights,
    and ``placed`` only for the task names in ``notify``."""

    notify: frozenset[str]

    def runs(self, task: Task, k: int, g: int) -> bool: ...

    def duration(self, task: Task, k: int, g: int | None, ready_s: float, done: Mapping[str, Ref]) -> float:
        """Seconds the task takes; ``done``: the ends of the tasks already placed for this sub-batch and GPU
        (collectives: of GPU 0). Read it, never change it."""

    def weight_bytes(self, task: Task, k: int, g: int) -> float: ...

    def placed(self, task: Task, k: int, g: int | None, placed: "PlacedTask") -> None: ...


@dataclass(frozen=True)
class Lanes:
    """Lane names of each GPU's resources, and how fast weights stream to a GPU (for the memory lane)."""

    gpus: int
    stream_bytes_per_s: float

    def of(self, resource: str, g: int | None) -> tuple[str, ...]:
        if resource == "nvlink":
            return tuple(f"gpu{i}/{d}" for i in range(self.gpus) for d in ("nvlink_send", "nvlink_recv"))
        return (f"gpu{g}/{'compute' if resource == 'gpu' else resource}",)


class Placer:
    """A timeline plus the placed tasks and the busy time of each resource, over a whole run."""

    def __init__(self, timeline: Timeline, lanes: Lanes):
        self.timeline, self.lanes = timeline, lanes
        self.tasks: list[PlacedTask] = []
        self.busy = {"gpu": 0.0, "nvlink": 0.0, "sched": 0.0, "pim": 0.0}
        self._last: dict[str, int] = {}  # lane -> the placed task that holds it until it is free
        self._lanes: dict[tuple[str, int | None], tuple[str, ...]] = {}
        self._memory_lanes: dict[int, str] = {}

    def _holder(self, lanes: tuple[str, ...]) -> int:
        """The placed task holding the lane that frees last (the first such lane on a tie)."""
        free_at, best, holder = self.timeline.free_at, None, -1
        for lane in lanes:
            t = free_at(lane)
            if best is None or t > best:
                best, holder = t, self._last.get(lane, -1)
        return holder

    def put(self, task: Task, label: str, k: int, g: int | None, ready: Ref, duration_s: float,
            weight_bytes: float = 0.0) -> Ref:
        """Place one instance of ``task`` that may start at ``ready``; returns its end."""
        tl = self.timeline
        lanes = self._lanes.get((task.resource, g))
        if lanes is None:
            lanes = self._lanes[task.resource, g] = self.lanes.of(task.resource, g)
        ready_s = ready.end_s
        if len(lanes) == 1:
            holder = self._last.get(lanes[0], -1)
            start, end = tl.place_on(label, lanes[0], duration_s, ready_s)
        else:
            holder = self._holder(lanes)
            start, end = tl.place(label, lanes, duration_s, ready_s)
        self.busy[task.resource] += end - start
        index = len(self.tasks)
        self.tasks.append(PlacedTask(task.name, label, task.kind, task.resource, tl.step, tl.layer, k,
                                     -1 if g is None else g, ready_s, start, end,
                                     ready.task if start == ready_s else holder))
        if duration_s:  # as the timeline: a task of zero duration holds no lane
            for lane in lanes:
                self._last[lane] = index
            if weight_bytes:
                memory = self._memory_lanes.get(g)
                if memory is None:
                    memory = self._memory_lanes[g] = f"gpu{g}/memory"
                tl.place_on(label, memory, min(weight_bytes / self.lanes.stream_bytes_per_s, end - start), start)
        return Ref(end, index)


_END = itemgetter(0)


def _latest(refs) -> Ref:
    """The reference that ends last; ties: the first one (in declaration order)."""
    return max(refs, key=_END)


def place(graph: Graph, placer: Placer, costs: TaskCosts, start: Sequence[Sequence[Ref]],
          labels: dict[str, str] | None = None) -> list[list[Ref]]:
    """Place one instance of ``graph`` per sub-batch and GPU. ``start[k][g]``: when sub-batch ``k`` may start on
    GPU ``g`` (and what ended then); returns the same for the graph's end task.

    Per sub-batch and GPU, ``done`` maps each task placed so far to its end; a task that does not run ends when
    it could have started."""
    subs, gpus = len(start), len(start[0])
    shown = {t.name: (labels or {}).get(t.name, t.shown_as) for t in graph.tasks}
    notify, put = costs.notify, placer.put
    ends = [[{START: start[k][g]} for g in range(gpus)] for k in range(subs)]
    for local, collectives in graph.issue_groups:
        for k in range(subs):
            for g in range(gpus):
                done = ends[k][g]
                for task in local:
                    name, after = task.name, task.after
                    ready = done[after[0]] if len(after) == 1 else _latest([done[d] for d in after])
                    if task.when is not None and not costs.runs(task, k, g):
                        done[name] = ready
                        continue
                    end = done[name] = put(task, shown[name], k, g, ready,
                                           costs.duration(task, k, g, ready.end_s, done),
                                           costs.weight_bytes(task, k, g) if task.weights else 0.0)
                    if name in notify:
                        costs.placed(task, k, g, placer.tasks[end.task])
            for task in collectives:
                end = _place_collective(task, k, ends[k], placer, costs, shown[task.name])
                for done in ends[k]:
                    done[task.name] = end
    return [[ends[k][g][graph.end] for g in range(gpus)] for k in range(subs)]


def _place_collective(task: Task, k: int, ends: list[dict[str, Ref]], placer: Placer, costs: TaskCosts,
                      label: str) -> Ref:
    """A collective of sub-batch ``k``: it starts when what it waits for has ended on every GPU."""
    ready = _latest([e[d] for e in ends for d in task.after])
    end = placer.put(task, label, k, None, ready, costs.duration(task, k, None, ready.end_s, ends[0]))
    if task.name in costs.notify:
        costs.placed(task, k, None, placer.tasks[end.task])
    return end


def chain(tasks: Sequence[PlacedTask], last: int, stop=lambda t: False) -> list[int]:
    """Indices of the placed tasks that bounded task ``last``, first to last: follow what bound each start
    back until the run's start or a task for which ``stop`` is true (not included)."""
    out = []
    i = last
    while i >= 0 and not stop(tasks[i]):
        out.append(i)
        i = tasks[i].pred
    return out[::-1]
