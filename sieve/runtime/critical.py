"""The critical path of a run: which tasks bounded each layer and each step, and what their time counts as.

Every placed task remembers what bound its start (:class:`~sieve.runtime.placement.PlacedTask.pred`): the
dependency that ended last or the task that held its lane. Following those links back from the task that
ended a layer (or a step) gives the chain that bounded it. A chain has no gaps, so the durations of a step's
chain add up to the step's time; :func:`critical_shares` splits that time by what the tasks are
(:data:`sieve.runtime.graph.KINDS`). The PIM expert phase counts its hand-off as ``handoff`` and the rest as
``pim_experts``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from .graph import KINDS
from .placement import PlacedTask, Ref, chain

__all__ = ["layer_chain", "step_chain", "critical_shares", "tasks_table"]


def layer_chain(tasks: Sequence[PlacedTask], end: Ref, gpu: int) -> tuple[str, str]:
    """(the task that ended the layer, the chain that bounded it as ``a > b > c``), for the layer ``end`` ends;
    the chain stops where the layer's own tasks stop (at the previous layer, or another sub-batch's layer).
    A task of another GPU is named ``task (GPU n)``."""
    last = tasks[end.task]
    step, layer = last.step, last.layer
    names = []
    i = end.task
    while i >= 0:  # chain() with the stop rule written out: this runs for every layer row
        t = tasks[i]
        if t.layer != layer or t.step != step:
            break
        names.append(t.name if t.gpu == gpu or t.gpu == -1 else f"{t.name} (GPU {t.gpu})")
        i = t.pred
    names.reverse()
    return last.name, " > ".join(names)


def step_chain(tasks: Sequence[PlacedTask], end: Ref) -> list[int]:
    """Indices of the tasks on the critical path of the step that ``end`` ends."""
    step = tasks[end.task].step
    return chain(tasks, end.task, stop=lambda t: t.step != step)


def critical_shares(tasks: Sequence[PlacedTask], step_ends: Sequence[Ref], handoff_s: float) -> dict[str, float]:
    """Seconds on the critical path of all steps by kind (every key of :data:`KINDS`)."""
    out = dict.fromkeys(KINDS, 0.0)
    for end in step_ends:
        for i in step_chain(tasks, end):
            t = tasks[i]
            d = t.duration_s
            if t.kind == "pim_experts" and d > 0:
                out["handoff"] += min(handoff_s, d)
                d -= min(handoff_s, d)
            out[t.kind] += d
    return out


def tasks_table(tasks: Sequence[PlacedTask], step_ends: Sequence[Ref]) -> pd.DataFrame:
    """Every placed task (one row each: step, layer, sub-batch, GPU (-1: a collective), task, label, kind,
    resource, ready, start and end), with ``critical``: whether it is on its step's critical path."""
    on_path = np.zeros(len(tasks), dtype=bool)
    for end in step_ends:
        on_path[step_chain(tasks, end)] = True
    cols = ("step", "layer", "sub_batch", "gpu", "name", "label", "kind", "resource", "ready_s", "start_s", "end_s")
    df = pd.DataFrame({c: [getattr(t, c) for t in tasks] for c in cols})
    df = df.rename(columns={"name": "task"})
    df["critical"] = on_path
    return df
