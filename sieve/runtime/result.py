"""What a run produces: a summary and tidy tables, and how they are written to a run directory.

Tables (pandas DataFrames, one row per observation; times in seconds):

``layers`` — one row per (step, layer, gpu, sub-batch):
    ``step, layer, gpu, sub_batch, kind`` (``dense`` | ``moe``), ``attention_on`` (``pim`` | ``gpu``), ``attention_s``
    (decode attention), ``pim_experts_s`` (the PIM expert phase: busiest channel, hand-off included),
    ``experts_active, experts_on_pim`` (this GPU's activated experts, and those run on PIM),
    ``tokens, tokens_on_pim`` (token-expert pairs), ``estimated_s`` (the policy's objective for its split;
    NaN when it estimates nothing), ``link_s`` (AllGather + dispatch + combine), ``start_s, end_s``
    (the layer on this GPU's timeline), ``time_s`` (``end_s - start_s``).
``channels`` — one row per (gpu, channel): ``attention_busy_s, expert_busy_s, busy_s`` summed over the run,
    ``utilization`` (``busy_s`` / run time).
``experts`` — one row per activated expert per (step, layer, gpu, sub-batch): ``step, layer, gpu, sub_batch,
    expert`` (global index), ``tokens``, ``where`` (``pim`` | ``gpu``).
``steps`` — one row per decode step: ``step, start_s, end_s, time_s, decode_tokens, prefill_tokens``.

``summary`` (a dict, ``summary.json``): ``model, hw, sched, batch_size, num_gpus, sub_batches, decode_steps,
prefill_requests, seed, routing, tpot_s, tokens_per_s_per_user, tokens_per_s_per_gpu, gpu_busy, pim_busy, nvlink_busy,
sched_busy, pim_expert_share, pim_token_share, memory_per_gpu_gb, memory_capacity_gb, seed``.
Busy fractions are of the run time, averaged over GPUs (and channels for PIM).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from sieve.system.capacity import GB

__all__ = ["RunResult", "TABLES", "write_run", "write_table"]

TABLES = ("layers", "channels", "experts", "steps")
TABLE_FORMATS = ("csv", "parquet")

_LAYER_COLUMNS = ["step", "layer", "gpu", "sub_batch", "kind", "attention_on", "attention_s", "pim_experts_s", "experts_active",
                  "experts_on_pim", "tokens", "tokens_on_pim", "estimated_s", "link_s", "start_s", "end_s"]


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
    """(step, layer, gpu, kind, start_s, per-channel busy seconds) of every PIM phase, when recorded."""
    config: dict | None = None
    """The resolved configuration of the run, when it came from one."""
    simulation: Any = None
    """The :class:`~sieve.runtime.Simulation` that ran (hardware, model, layout); not written out."""

    @property
    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    @classmethod
    def build(cls, sim, *, layer_rows, expert_rows, step_rows, channel_att, channel_exp, busy, timeline,
              pim_phases, sub_batches=1) -> "RunResult":
        layers = pd.DataFrame(layer_rows, columns=_LAYER_COLUMNS)
        layers["time_s"] = layers["end_s"] - layers["start_s"]
        steps = pd.DataFrame(step_rows, columns=["step", "start_s", "end_s", "time_s", "decode_tokens",
                                                 "prefill_tokens"])
        total = float(steps["end_s"].iloc[-1])
        G, C = channel_att.shape
        channels = pd.DataFrame({
            "gpu": np.repeat(np.arange(G), C), "channel": np.tile(np.arange(C), G),
            "attention_busy_s": channel_att.ravel(), "expert_busy_s": channel_exp.ravel(),
        })
        channels["busy_s"] = channels["attention_busy_s"] + channels["expert_busy_s"]
        channels["utilization"] = channels["busy_s"] / total
        rows = np.concatenate(expert_rows) if expert_rows else np.zeros((0, 7), dtype=np.int64)
        experts = pd.DataFrame(rows, columns=["step", "layer", "gpu", "sub_batch", "expert", "tokens", "where"])
        experts["where"] = np.where(experts["where"].to_numpy() == 1, "pim", "gpu")
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
            "nvlink_busy": busy["link"] / total if G > 1 else 0.0,
            "sched_busy": busy["sched"] / (G * total),
            "pim_expert_share": _share(moe["experts_on_pim"].sum(), moe["experts_active"].sum()),
            "pim_token_share": _share(moe["tokens_on_pim"].sum(), moe["tokens"].sum()),
            "memory_per_gpu_gb": sim.memory.total / GB,
            "memory_capacity_gb": sim.memory.capacity / GB,
        }
        return cls(summary=summary, layers=layers, channels=channels, experts=experts, steps=steps,
                   timeline=timeline if timeline.record else None, pim_phases=pim_phases, simulation=sim)

    def describe(self) -> str:
        """A few readable lines: time per token, rates, busy fractions and what ran on PIM."""
        s = self.summary
        return "\n".join([
            f"{s['model']} on {s['num_gpus']} x {s['hw']}, sched={s['sched']}, B={s['batch_size']}, "
            f"{s['decode_steps']} decode step{'s' if s['decode_steps'] != 1 else ''}" + (f", {s['prefill_requests']} prefill requests per step"
                                                   if s["prefill_requests"] else ""),
            f"  time per output token {s['tpot_s'] * 1e3:.3f} ms   "
            f"{s['tokens_per_s_per_user']:.1f} tokens/s/user   {s['tokens_per_s_per_gpu']:.1f} tokens/s/GPU",
            f"  busy: GPU {s['gpu_busy']:.1%}   PIM {s['pim_busy']:.1%}   NVLink {s['nvlink_busy']:.1%}",
            f"  on PIM: {s['pim_expert_share']:.1%} of activated experts, {s['pim_token_share']:.1%} of their tokens",
            f"  memory per GPU {s['memory_per_gpu_gb']:.1f} of {s['memory_capacity_gb']:.1f} GB",
            f"  routing {s['routing'] if s['routing'] != 'preset()' else 'preset (calibrated for this model)'}"
            + self._fallback_note(),
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


def _share(part, whole) -> float:
    return float(part) / float(whole) if whole else 0.0


def write_table(df: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``df`` as CSV or Parquet, by the suffix of ``path``; the file appears whole or not at all."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    if fmt not in TABLE_FORMATS:
        raise ValueError(f"{path}: unknown table format {path.suffix or '(none)'!r}; allowed: "
                         f"{', '.join('.' + f for f in TABLE_FORMATS)}")
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        if fmt == "parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


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
