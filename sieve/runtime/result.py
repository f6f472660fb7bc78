"""What a run produces: a summary and tidy tables, and how they are written to a run directory.

Tables (pandas DataFrames, one row per observation; times in seconds):

``layers`` — one row per (step, layer, gpu, sub-batch):
    ``step, layer, gpu, sub_batch, kind`` (``dense`` | ``moe``), ``attention_on`` (``pim`` | ``gpu``), ``attention_s``
    (decode attention), ``pim_experts_s`` (the PIM expert phase: busiest channel, hand-off included),
    ``experts_active, experts_on_pim`` (this GPU's activated experts, and those run on PIM),
    ``tokens, tokens_on_pim`` (token-expert pairs), ``estimated_s`` (the policy's objective for its split;
    NaN when it estimates nothing), ``link_s`` (AllGather + dispatch + combine), ``start_s, end_s``
    (the layer on this GPU's timeline), ``time_s`` (``end_s - start_s``), ``ended_by`` (the task whose end
    ended the layer) and ``critical_path`` (the chain of tasks that bounded it, ``a > b > c``; a task of
    another GPU is marked ``(GPU n)``; see :mod:`sieve.runtime.critical`).
``channels`` — one row per (gpu, channel): ``attention_busy_s, expert_busy_s, busy_s`` summed over the run,
    ``utilization`` (``busy_s`` / run time).
``experts`` — one row per activated expert per (step, layer, gpu, sub-batch): ``step, layer, gpu, sub_batch,
    expert`` (global index), ``tokens``, ``where`` (``pim`` | ``gpu``).
``steps`` — one row per decode step: ``step, start_s, end_s, time_s, decode_tokens, prefill_tokens``.

``summary`` (a dict, ``summary.json``): ``model, hw, sched, batch_size, num_gpus, sub_batches, decode_steps,
prefill_requests, seed, routing, tpot_s, tokens_per_s_per_user, tokens_per_s_per_gpu, gpu_busy, pim_busy, nvlink_busy,
sched_busy, pim_expert_share, pim_token_share, pim_attention_share`` (the share of layer rows whose decode
attention ran on PIM), ``memory_per_gpu_gb, memory_capacity_gb``, and the critical path's
share of the run time per kind of task, ``critical_<kind>`` for each kind of :data:`sieve.runtime.graph.KINDS`
(``pim_attention, pim_experts, handoff, gpu_experts, gpu_other, nvlink, sched``; they add up to 1), and the
run's energy (:func:`sieve.system.run_energy` of the work its tasks did, :mod:`sieve.runtime.work`):
``energy_j_per_token``, ``tokens_per_joule`` and ``energy_<component>_j_per_token`` for each component of
:data:`sieve.system.energy.COMPONENTS` (``gpu_compute, gpu_memory, pim_compute, pim_act_pre, refresh, nvlink,
static``; they add up to ``energy_j_per_token``; NaN when the hardware preset lacks an energy value). Tokens
are the batch size times the decode steps, as in ``tokens_per_s_per_gpu``.
Busy fractions are of the run time, averaged over GPUs (and channels for PIM).

The placed tasks themselves are :attr:`RunResult.tasks` (not written out).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sieve.results.tables import TABLE_FORMATS, TABLES, write_table
from sieve.system.capacity import GB
from sieve.system import SystemModelError, run_energy
from sieve.system.energy import COMPONENTS

from .critical import critical_shares
from .graph import KINDS
from .records import LayerRow, StepRow, frame

__all__ = ["RunResult", "TABLES", "write_run", "write_table"]




@dataclass(repr=False)
class RunResult:
    """What one run of the main job produced (:func:`sieve.simulate`): its summary and tidy tables.

    ``summary``: the run's figures (a dict; ``summary.json``; fields in the module docstring above and the
    README's table). ``layers``, ``channels``, ``experts``, ``steps``: pandas DataFrames, one row per
    (step, layer, GPU, sub-batch), per (GPU, PIM channel), per activated expert and per decode step; times
    in seconds. ``describe()`` gives the lines ``python -m sieve.run`` prints; :func:`write_run` writes all of
    it to a run directory. A result read back from disk is ``sieve.results.collect(dir, tables=...)``."""

    summary: dict[str, Any]
    layers: pd.DataFrame
    channels: pd.DataFrame
    experts: pd.DataFrame
    steps: pd.DataFrame
    timeline: Any = None
    """The :class:`~sieve.runtime.timeline.Timeline` with its spans, when the run recorded them."""
    pim_phases: list = field(default_factory=list)
    """Every PIM phase (:class:`~sieve.runtime.records.PimPhase`), when the run recorded its timeline."""
    config: dict | None = None
    """The resolved configuration of the run, when it came from one."""
    simulation: Any = None
    """The :class:`~sieve.runtime.Simulation` that ran (hardware, model, layout); not written out."""
    placed: list = field(default_factory=list)
    """Every task as placed (:class:`~sieve.runtime.placement.PlacedTask`), in placement order."""
    step_ends: list = field(default_factory=list)
    """The task that ended each step (:class:`~sieve.runtime.placement.Ref`)."""

    @property
    def tasks(self) -> pd.DataFrame:
        """Every placed task as a table (:func:`sieve.runtime.critical.tasks_table`): step, layer, sub-batch,
        GPU (-1: a collective), task, label, kind, resource, ready/start/end and ``critical`` (on its step's
        critical path). Built on first use; not written to the run directory."""
        if getattr(self, "_tasks", None) is None:
            from .critical import tasks_table

            self._tasks = tasks_table(self.placed, self.step_ends)
        return self._tasks

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    @classmethod
    def build(cls, sim, run) -> "RunResult":
        """The tables and summary of ``run`` (a :class:`~sieve.runtime.steps.RunState` after its steps)."""
        layers = frame(run.layer_rows, LayerRow)
        layers.insert(layers.columns.get_loc("end_s") + 1, "time_s", layers["end_s"] - layers["start_s"])
        steps = frame(run.step_rows, StepRow)
        total = float(steps["end_s"].iloc[-1])
        channel_att, channel_exp = run.channel_att, run.channel_exp
        G, C = channel_att.shape
        channels = pd.DataFrame({
            "gpu": np.repeat(np.arange(G), C), "channel": np.tile(np.arange(C), G),
            "attention_busy_s": channel_att.ravel(), "expert_busy_s": channel_exp.ravel(),
        })
        channels["busy_s"] = channels["attention_busy_s"] + channels["expert_busy_s"]
        channels["utilization"] = channels["busy_s"] / total
        experts = _experts_table(run.expert_rows)
        busy, sub_batches, timeline = run.placer.busy, run.sub_batches, run.timeline
        moe = layers[layers["kind"] == "moe"]
        wl = sim.workload
        tpot = total / wl.decode_steps
        summary = {
            "model": sim.model.name,
            "hw": sim.hw.name,
            "sched": sim.sched_name,
            "batch_size": wl.batch_size,
            "num_gpus": sim.num_gpus,
            "sub_batches": sub_batches,
            "decode_steps": wl.decode_steps,
            "prefill_requests": wl.prefill.num_requests,
            "seed": wl.seed,
            "routing": sim.routing_family,
            "tpot_s": tpot,
            "tokens_per_s_per_user": 1.0 / tpot,
            "tokens_per_s_per_gpu": wl.batch_size / tpot / sim.num_gpus,
            "gpu_busy": busy["gpu"] / (G * total),
            "pim_busy": float(channels["busy_s"].sum()) / (G * C * total),
            "nvlink_busy": busy["nvlink"] / total if G > 1 else 0.0,
            "sched_busy": busy["sched"] / (G * total),
            "pim_expert_share": _share(moe["experts_on_pim"].sum(), moe["experts_active"].sum()),
            "pim_token_share": _share(moe["tokens_on_pim"].sum(), moe["tokens"].sum()),
            "pim_attention_share": _share((layers["attention_on"] == "pim").sum(), len(layers)),
            "memory_per_gpu_gb": sim.memory.total / GB,
            "memory_capacity_gb": sim.memory.capacity / GB,
        }
        on_path = critical_shares(run.placer.tasks, run.step_ends, run.handoff)
        summary.update({f"critical_{kind}": seconds / total for kind, seconds in on_path.items()})
        summary.update(energy_summary(sim.hw, run.work.totals(total, G, wl.batch_size * wl.decode_steps)))
        return cls(summary=summary, layers=layers, channels=channels, experts=experts, steps=steps,
                   timeline=timeline if timeline.record else None, pim_phases=run.pim_phases, simulation=sim,
                   placed=run.placer.tasks, step_ends=run.step_ends)

    def describe(self) -> str:
        """A few readable lines: time per token, rates, busy fractions, what ran on PIM and joules per token."""
        s = self.summary
        return "\n".join([
            f"{s['model']} on {s['num_gpus']} x {s['hw']}, sched={s['sched']}, B={s['batch_size']}, "
            f"{s['decode_steps']} decode step{'s' if s['decode_steps'] != 1 else ''}" + (f", {s['prefill_requests']} prefill requests per step"
                                                   if s["prefill_requests"] else ""),
            f"  time per output token {s['tpot_s'] * 1e3:.3f} ms   "
            f"{s['tokens_per_s_per_user']:.1f} tokens/s/user   {s['tokens_per_s_per_gpu']:.1f} tokens/s/GPU",
            f"  busy: GPU {s['gpu_busy']:.1%}   PIM {s['pim_busy']:.1%}   NVLink {s['nvlink_busy']:.1%}",
            "  critical path: " + critical_line(s),
            f"  on PIM: {s['pim_expert_share']:.1%} of activated experts, {s['pim_token_share']:.1%} of their tokens; "
            f"decode attention in {s['pim_attention_share']:.0%} of layers (the rest on the GPU)",
            f"  memory per GPU {s['memory_per_gpu_gb']:.1f} of {s['memory_capacity_gb']:.1f} GB",
            f"  routing {s['routing'] if s['routing'] != 'preset()' else 'preset (calibrated for this model)'}"
            + self._fallback_note(),
            "  energy " + energy_line(s),
        ])

    def _fallback_note(self) -> str:
        """Says so when the model had no calibrated routing preset and the fallback family stood in."""
        sim = self.simulation
        if sim is None or sim.workload.routing.family != "preset" or self.summary["routing"].startswith("preset"):
            return ""
        return (f" (fallback: no calibrated routing preset for {self.summary['model']}; "
                "choose one with workload.routing.family=...)")


    def __repr__(self) -> str:
        # what a notebook cell shows for a result: the summary and the tables' shapes, not every row
        shapes = ", ".join(f"{name} {t.shape[0]}x{t.shape[1]}" for name, t in self.tables.items())
        return f"<RunResult\n{self.describe()}\n  tables: {shapes}>"


def critical_line(summary: dict) -> str:
    """Where the time went: the critical path's share per kind of task, largest first (shares below 0.05%
    left out)."""
    shares = sorted(((summary.get(f"critical_{k}", 0.0), label) for k, label in KINDS.items()), reverse=True)
    return ", ".join(f"{label} {v:.1%}" for v, label in shares if v >= 5e-4)


def energy_summary(hw, totals) -> dict[str, float]:
    """``energy_j_per_token``, ``tokens_per_joule`` and ``energy_<component>_j_per_token`` of a run's totals
    (:func:`sieve.system.energy.run_energy`); NaN when the hardware lacks an energy value."""
    keys = ["energy_j_per_token", "tokens_per_joule", *(f"energy_{c}_j_per_token" for c in COMPONENTS)]
    try:
        e = run_energy(hw, totals)
    except SystemModelError:  # a preset without pJ/FLOP, static power or pJ/bit: no energy, said as NaN
        return dict.fromkeys(keys, math.nan)
    out = {"energy_j_per_token": e.energy_j_per_token, "tokens_per_joule": e.tokens_per_joule}
    out.update({f"energy_{c}_j_per_token": getattr(e, f"{c}_j") / e.tokens for c in COMPONENTS})
    return out


def energy_line(summary: dict) -> str:
    """Joules per token, tokens per joule and the three largest components' shares."""
    total = summary.get("energy_j_per_token")
    if total is None or math.isnan(total):
        return "n/a (the hardware preset lacks an energy value)"
    parts = sorted(((summary[f"energy_{c}_j_per_token"], c) for c in COMPONENTS), reverse=True)[:3]
    return (f"{total:.4g} J/token   {summary['tokens_per_joule']:.3g} tokens/J   "
            + ", ".join(f"{c.replace('_', ' ')} {v / total:.1%}" for v, c in parts))


def _experts_table(chunks) -> pd.DataFrame:
    cols = ("step", "layer", "gpu", "sub_batch")
    n = [len(c.expert) for c in chunks]
    data = {c: np.repeat(np.array([getattr(r, c) for r in chunks], dtype=np.int64), n) for c in cols}
    cat = (lambda name: np.concatenate([getattr(r, name) for r in chunks]).astype(np.int64)) if chunks \
        else (lambda name: np.zeros(0, dtype=np.int64))
    data.update(expert=cat("expert"), tokens=cat("tokens"))
    data["where"] = np.where(cat("on_pim") == 1, "pim", "gpu")
    return pd.DataFrame(data)


def _share(part, whole) -> float:
    return float(part) / float(whole) if whole else 0.0


def write_run(result: RunResult, run_dir: str | os.PathLike, *, tables: str = "csv", plots: bool = True,
              timeline: dict | None = None) -> Path:
    """Write ``summary.json``, the tables, ``config.yaml`` (when known), the plots and optionally
    ``timeline.json`` into ``run_dir``.

    Files appear whole or not at all: everything is written into a temporary directory beside
    ``run_dir`` and moved in at the end, ``summary.json`` last, so a run directory with a
    ``summary.json`` is complete (sweeps resume on that)."""
    if tables not in TABLE_FORMATS:
        raise ValueError(f"output.tables={tables!r} is not a table format; allowed: {', '.join(TABLE_FORMATS)}")
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    for stale in run_dir.glob(".partial-*"):  # left by a run killed while writing; this run replaces it
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=run_dir))
    try:
        for name, df in result.tables.items():
            write_table(df, tmp / f"{name}.{tables}")
        if result.config is not None:
            from omegaconf import OmegaConf

            (tmp / "config.yaml").write_text(OmegaConf.to_yaml(OmegaConf.create(result.config)))
        if plots:
            from .figures import save_run_figures

            save_run_figures(result, tmp)
        if timeline is not None:
            from .trace import write_trace

            write_trace(result, tmp / "timeline.json", **timeline)
        (tmp / "summary.json").write_text(json.dumps(result.summary, indent=2) + "\n")
        names = sorted(p.name for p in tmp.iterdir())
        names.remove("summary.json")
        for name in [*names, "summary.json"]:
            os.replace(tmp / name, run_dir / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return run_dir
