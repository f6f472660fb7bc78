"""The Sieve paper's evaluation figures, as sweeps of the runtime.

    python -m sieve.reproduce fig9  --model qwen3_30b_a3b --out results/
    python -m sieve.reproduce fig10 --out results/
    python -m sieve.reproduce fig11 --out results/
    python -m sieve.reproduce paper --out results/paper [--quick] [--readme README.md]

``fig9``: throughput per GPU against interactivity for the schedulers noexp, allexp, pimoe, sieve and
gpu_only at B = 1, 2, 4, ..., 256 on the paper's machine for the model, the preset
``conf/experiment/paper_<model>.yaml`` (Qwen3-30B-A3B on 1 GPU, GPT-OSS-120B on 4, Qwen3.5-397B-A17B on 8;
Qwen3.5 in bf16 exceeds 8 x 96 GB and runs with ``allow_over_capacity``, as in the paper); ``--gpus``
changes the GPU count, and any other model needs it. Writes ``fig9_<model>.csv`` (model, sched, batch_size,
num_gpus, tpot_s, tokens_per_s_per_gpu, tokens_per_s_per_user, tokens_per_joule) and ``fig9_<model>.png``;
``--metric energy`` plots tokens per joule instead of tokens/s per GPU against tokens/s per user
(``fig9_<model>_energy.png``).

``fig10``: per-channel PIM utilization of pimoe and sieve, GPT-OSS-120B on 4 GPUs (``--batch-size``,
default 64). Writes ``fig10_<model>.csv`` (model, sched, batch_size, gpu, channel, attention_busy_s,
expert_busy_s, busy_s, utilization) and ``fig10_<model>.png``.

``fig11``: mixed prefill + decode batches, Qwen3-30B-A3B on 1 GPU: 2 prefill requests per batch for
B <= 32 and 8 for B >= 64 (``workload=mixed``), schedulers noexp, allexp, pimoe, sieve. Writes
``fig11_<model>.csv`` (the fig9 columns plus prefill_requests and speedup_over_noexp) and a bar plot.

``energy``: tokens per joule of every fig9 scheduler for each paper model on its machine at ``--batch-sizes``
(default 1, 16, 64, 256): the fig9 points (shared with fig9's store), written as ``energy_paper_models.csv``
(model, num_gpus, sched, batch_size, tokens_per_joule, energy_j_per_token, tokens_per_s_per_user) and as the
Markdown table ``energy_paper_models.md`` (also printed), the README's table.

``sensitivity``: any config key swept over ``--values`` (``--param hw.link.bytes_per_s_per_direction --values
4.5e11,9e11,1.8e12``) for the fig9 schedulers (or ``--scheds``, ``--variant``) at ``--batch-sizes`` (default
1, 16, 64, 256). Writes ``sensitivity_<model>_<param>.csv`` (model, param, value, sched, batch_size,
num_gpus, tpot_s, tokens_per_s_per_gpu, tokens_per_s_per_user, sieve_gain: sieve's tokens/s per GPU over
the row's at the same value and batch size) and a plot of the gain against the value. A key that does not
exist names the close ones; a value that does not parse as the key's type names the type.

``paper``: everything the comparison with the paper needs: fig9 of the three models (the five schedulers and
the Sieve variants of :data:`PAPER_VARIANTS`: the literal objective and the scheduler-cost sensitivity) and
fig11 at B = 16 and 32; writes their CSVs, ``paper_comparison.csv`` (one row per model, curve and statistic,
beside the paper's number and the band; :mod:`sieve.results.paper`) and ``paper_comparison.md``.
``--quick``: a reduced grid (B = 2, 16, 32, 256; no variants) for the regression test of the headline
statistics. ``--readme FILE`` also puts the Markdown table between the file's ``<!-- paper_comparison -->``
markers.

Every point is one :func:`sieve.runtime.simulate` run with the default decode workload (override with
``--set key=value``, any main-config key, e.g. ``--set workload.decode_steps=4``). ``--variant
SCHED:KEY=VALUE[,KEY=VALUE]`` adds one more curve: that scheduler with those overrides, labelled
``SCHED[KEY=VALUE,...]`` (last key component) in the ``sched`` column, e.g.
``--variant sieve:sched.params.overhead_s=0``. Points run in
``--jobs`` worker processes. Each finished point is kept in ``DIR/.points/``; an interrupted sweep run
again with the same arguments resumes from there.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

__all__ = ["FIGURES", "METRICS", "PAPER_VARIANTS", "Variant", "paper_models", "parse_variant", "points",
           "run_energy_table", "run_figure", "run_paper", "run_sensitivity", "sweep_values", "main"]

FIG9_SCHEDS = ("noexp", "allexp", "pimoe", "sieve", "gpu_only")
FIG11_SCHEDS = ("noexp", "allexp", "pimoe", "sieve")
BATCH_SIZES = tuple(2 ** i for i in range(9))
FIGURES = ("fig9", "fig10", "fig11")
SENSITIVITY_BATCH_SIZES = (1, 16, 64, 256)
DEFAULT_MODEL = {"fig9": "qwen3_30b_a3b", "fig10": "gpt_oss_120b", "fig11": "qwen3_30b_a3b"}
PAPER_VARIANTS = (
    # the paper's definitions taken literally: attention + sum of costs, 20 µs every layer
    "sieve:sched.params.objective=attention_sum,sched.params.overhead=flat,sched.params.fast_path=false",
    "sieve:sched.params.objective=attention_sum",
    # sensitivity of the results to the scheduler's own cost: free, and flat 5, 10, 20 µs per layer
    "sieve:sched.params.overhead_s=0",
    "sieve:sched.params.overhead=flat,sched.params.fast_path=false,sched.params.overhead_s=5e-6",
    "sieve:sched.params.overhead=flat,sched.params.fast_path=false,sched.params.overhead_s=10e-6",
    "sieve:sched.params.overhead=flat,sched.params.fast_path=false,sched.params.overhead_s=20e-6",
    # beyond the paper: Sieve also places attention (the presets pin it on PIM, as the paper does)
    "sieve:sched.params.attention=auto",
)
"""The Sieve curves ``paper`` adds to every fig9 sweep beside the default Sieve."""
QUICK_BATCH_SIZES = (2, 16, 32, 256)
README_MARKERS = ("<!-- paper_comparison:begin -->", "<!-- paper_comparison:end -->")
METRICS = {"throughput": "tokens_per_s_per_gpu", "energy": "tokens_per_joule"}
"""What fig9 plots against tokens/s per user (``--metric``): the summary column of each."""


class ReproduceError(ValueError):
    """Bad arguments for a figure."""


@dataclass(frozen=True)
class Variant:
    """One more curve: ``sched`` with ``overrides``, shown as ``label``."""
    sched: str
    overrides: tuple[str, ...]

    @property
    def label(self) -> str:
        """``sched[key=value,...]`` with the last component of each key."""
        return f"{self.sched}[{','.join(map(_short_override, self.overrides))}]"


def _short_override(override: str) -> str:
    key, value = override.split("=", 1)
    return f"{key.rpartition('.')[2]}={value}"


def parse_variant(text: str) -> Variant:
    """``SCHED:KEY=VALUE[,KEY=VALUE...]`` as a :class:`Variant`."""
    from sieve.sched import SCHEDULERS

    sched, sep, rest = text.partition(":")
    overrides = tuple(o.strip() for o in rest.split(",") if o.strip())
    if not sep or not overrides or any("=" not in o or o.startswith("=") for o in overrides):
        raise ReproduceError(f"--variant {text!r}: expected SCHED:KEY=VALUE[,KEY=VALUE...], "
                             "e.g. sieve:sched.params.overhead_s=0")
    if sched not in SCHEDULERS:
        raise ReproduceError(f"--variant {text!r}: unknown scheduler {sched!r}; valid: {', '.join(SCHEDULERS)}")
    return Variant(sched, overrides)


def paper_models() -> list[str]:
    """The models the paper runs, each with its machine in ``conf/experiment/paper_<model>.yaml``."""
    from sieve.runtime import CONF_DIR

    return sorted(p.stem.removeprefix("paper_") for p in (CONF_DIR / "experiment").glob("paper_*.yaml"))


def _check_model(model: str) -> None:
    """An unknown model is named with the presets and the closest one, before any other complaint."""
    import difflib

    from sieve.model import available

    presets = available()
    if model not in presets:
        close = difflib.get_close_matches(model, presets, n=1, cutoff=0.5)
        raise ReproduceError(f"unknown model {model!r}; model presets: {', '.join(presets)}"
                             + (f" (did you mean '{close[0]}'?)" if close else ""))


def _base(model: str, num_gpus: int | None) -> list[str]:
    _check_model(model)
    if model in paper_models():
        return [f"+experiment=paper_{model}", *([f"num_gpus={num_gpus}"] if num_gpus is not None else [])]
    if num_gpus is None:
        raise ReproduceError(f"the paper gives no GPU count for {model!r} (it runs {', '.join(paper_models())}); "
                             "pass --gpus")
    return ["+hw=aim", f"+model={model}", f"num_gpus={num_gpus}"]


def points(figure: str, model: str, *, num_gpus: int | None = None, batch_sizes: Sequence[int] = BATCH_SIZES,
           extra: Sequence[str] = (), scheds: Sequence[str] | None = None,
           variants: Sequence[Variant] = ()) -> list[list[str]]:
    """The Hydra overrides of every run of ``figure`` (``scheds``: instead of the figure's schedulers;
    ``variants``: after them, one more scheduler each with its own overrides)."""
    return [run for _, run in _labelled_points(figure, model, num_gpus=num_gpus, batch_sizes=batch_sizes,
                                               extra=extra, scheds=scheds, variants=variants)]


def _labelled_points(figure, model, *, num_gpus, batch_sizes, extra, scheds, variants) -> list[tuple[str, list[str]]]:
    """(curve label, overrides) of every run: the label is the scheduler, or the variant's label."""
    if figure not in FIGURES:
        raise ReproduceError(f"unknown figure {figure!r}; available: {', '.join(FIGURES)}")
    if scheds is not None:
        from sieve.sched import SCHEDULERS

        unknown = [x for x in scheds if x not in SCHEDULERS]
        if unknown or not scheds:
            raise ReproduceError(f"unknown scheduler(s) {unknown}; valid: {', '.join(SCHEDULERS)}")
    base = [*_base(model, num_gpus), "progress=false", "output.timeline=false"]
    default = {"fig9": FIG9_SCHEDS, "fig10": ("pimoe", "sieve"), "fig11": FIG11_SCHEDS}[figure]
    curves = [(s, s, ()) for s in scheds or default] + [(v.label, v.sched, v.overrides) for v in variants]
    if figure == "fig11":
        runs = [(label, [*base, f"sched={s}", *more, "workload=mixed", f"workload.batch_size={b}",
                         f"workload.prefill.num_requests={2 if b <= 32 else 8}"])
                for label, s, more in curves for b in batch_sizes if b >= 8]
    else:
        runs = [(label, [*base, f"sched={s}", *more, f"workload.batch_size={b}"])
                for label, s, more in curves for b in batch_sizes]
    return [(label, [*r, *extra]) for label, r in runs]


def _run_point(overrides: list[str], store: str) -> dict:
    """One run; its summary (and per-channel table for fig10) is stored under ``store`` by override hash."""
    key = hashlib.sha256(json.dumps(overrides).encode()).hexdigest()[:20]
    path = Path(store) / f"{key}.json"
    if path.exists():
        record = json.loads(path.read_text())
        if "tokens_per_joule" in record["summary"]:  # points stored before runs counted energy run again
            return record
    import logging

    import sieve.runtime as rt

    # The checks before the sweep have shown its warnings (e.g. over capacity) once; every point would
    # repeat them.
    logger = logging.getLogger("sieve")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        result = rt.simulate(overrides)
    finally:
        logger.setLevel(level)
    record = {"overrides": overrides, "summary": result.summary,
              "channels": result.channels.to_dict(orient="list")}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)  # a point is stored whole or not at all
    return record


def _run_all(runs: list[list[str]], out: Path, jobs: int, desc: str, progress: bool) -> list[dict]:
    """Every run's record, in order: finished points come from ``out/.points``, the rest run in ``jobs``
    worker processes and are stored there as they finish."""
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    store = out / ".points"
    store.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(runs), desc=desc, disable=not progress)
    records = []
    with Parallel(n_jobs=jobs, return_as="generator") as parallel:
        for record in parallel(delayed(_run_point)(r, str(store)) for r in runs):
            records.append(record)
            bar.update()
    bar.close()
    return records


def _batch_size(overrides: list[str]) -> int:
    return max(int(o.split("=", 1)[1]) for o in overrides if o.startswith("workload.batch_size="))


def run_figure(figure: str, model: str | None = None, out: str | os.PathLike = ".", *, num_gpus: int | None = None,
               batch_sizes: Sequence[int] = BATCH_SIZES, jobs: int = 1, extra: Sequence[str] = (),
               plots: bool = True, progress: bool = True, scheds: Sequence[str] | None = None,
               variants: Sequence[Variant] = (), metric: str = "throughput") -> Path:
    """Run (or resume) the sweep of ``figure`` and write its CSV and plot into ``out``; returns the CSV path.
    ``metric`` (fig9, :data:`METRICS`): what the plot draws against tokens/s per user."""
    import pandas as pd

    if metric not in METRICS or (metric != "throughput" and figure != "fig9"):
        raise ReproduceError(f"--metric {metric!r}: allowed: {', '.join(METRICS)} for fig9, throughput otherwise")

    model = model or DEFAULT_MODEL.get(figure, "")
    labelled = _labelled_points(figure, model, num_gpus=num_gpus, batch_sizes=batch_sizes, extra=extra,
                                scheds=scheds, variants=variants)
    runs = [run for _, run in labelled]
    import sieve.runtime as rt
    from sieve.results.tables import write_table

    # a bad model, option, key, GPU count or capacity fails here, before anything is written or run: the
    # largest batch (the most KV cache) of the figure's schedulers and of each variant
    curves = {label: run for label, run in sorted(labelled, key=lambda lr: _batch_size(lr[1]))}
    for label in dict.fromkeys([labelled[0][0], *(v.label for v in variants)]):
        rt.simulation_from_config(rt.compose(curves[label]))
    out = Path(out)
    records = _run_all(runs, out, jobs, f"{figure} {model}", progress)
    summaries = pd.DataFrame([r["summary"] for r in records])
    summaries["sched"] = [label for label, _ in labelled]
    cols = ["model", "sched", "batch_size", "num_gpus", "tpot_s", "tokens_per_s_per_gpu", "tokens_per_s_per_user",
            "tokens_per_joule"]
    csv = out / f"{figure}_{model}.csv"
    if figure == "fig10":
        frames = []
        for (label, _), r in zip(labelled, records):
            ch = pd.DataFrame(r["channels"])
            s = r["summary"]
            ch.insert(0, "batch_size", s["batch_size"])
            ch.insert(0, "sched", label)
            ch.insert(0, "model", s["model"])
            frames.append(ch)
        table = pd.concat(frames, ignore_index=True)
    elif figure == "fig11":
        table = summaries[cols + ["prefill_requests"]].copy()
        base = table[table["sched"] == "noexp"].set_index("batch_size")["tokens_per_s_per_gpu"]
        table["speedup_over_noexp"] = table["tokens_per_s_per_gpu"] / table["batch_size"].map(base)  # NaN without noexp
    else:
        table = summaries[cols]
    table = table.sort_values([c for c in ("sched", "batch_size", "gpu", "channel") if c in table]).reset_index(drop=True)
    write_table(table, csv)
    if plots:
        _plot(figure, table, out / f"{figure}_{model}{'' if metric == 'throughput' else '_' + metric}.png", metric)
    return csv


def run_energy_table(out: str | os.PathLike = ".", *, models: Sequence[str] | None = None,
                     batch_sizes: Sequence[int] = SENSITIVITY_BATCH_SIZES, jobs: int = 1, extra: Sequence[str] = (),
                     progress: bool = True) -> Path:
    """Tokens per joule of the fig9 schedulers for each paper model (``models``) on its machine at
    ``batch_sizes``: ``energy_paper_models.csv`` and the Markdown table ``energy_paper_models.md`` (rows: model
    and scheduler, columns: batch size); returns the CSV path."""
    import pandas as pd

    from sieve.results.tables import write_table

    out = Path(out)
    frames = []
    for model in models or paper_models():
        labelled = _labelled_points("fig9", model, num_gpus=None, batch_sizes=batch_sizes, extra=extra, scheds=None,
                                    variants=())
        records = _run_all([run for _, run in labelled], out, jobs, f"energy {model}", progress)
        frame = pd.DataFrame([r["summary"] for r in records])
        frame["sched"] = [label for label, _ in labelled]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)[["model", "num_gpus", "sched", "batch_size", "tokens_per_joule",
                                                  "energy_j_per_token", "tokens_per_s_per_user"]]
    csv = out / "energy_paper_models.csv"
    write_table(table, csv)
    (out / "energy_paper_models.md").write_text(energy_markdown(table))
    return csv


def energy_markdown(table) -> str:
    """Tokens per joule as a Markdown table: one row per (model, GPUs, scheduler), one column per batch size."""
    sizes = sorted(table["batch_size"].unique().tolist())
    lines = ["| model | GPUs | policy | " + " | ".join(f"B={b}" for b in sizes) + " |",
             "|---|---:|---|" + "---:|" * len(sizes)]
    order = {s: i for i, s in enumerate(FIG9_SCHEDS)}
    keys = table[["model", "num_gpus", "sched"]].drop_duplicates()
    keys = keys.assign(o=keys["sched"].map(order)).sort_values(["model", "o"])
    for model, gpus, sched in keys[["model", "num_gpus", "sched"]].itertuples(index=False):
        rows = table[(table["model"] == model) & (table["sched"] == sched)].set_index("batch_size")["tokens_per_joule"]
        lines.append(f"| {model} | {gpus} | {sched} | " + " | ".join(f"{rows[b]:#.3g}" for b in sizes) + " |")
    return "\n".join(lines) + "\n"


# ---- sensitivity: one config key swept --------------------------------------------------------------

def _flat_keys(node, prefix: str = "") -> list[str]:
    from omegaconf import DictConfig

    keys = []
    for k in node:
        path = f"{prefix}{k}"
        child = node._get_node(k)
        keys += _flat_keys(node[k], f"{path}.") if isinstance(child, DictConfig) else [path]
    return keys


def _parse_as(text: str, default, param: str):
    """``text`` as a value of ``default``'s type, or an error naming the type."""
    kind = type(default)
    try:
        if kind is bool:
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if kind in (int, float):
            value = float(text) if kind is float else int(text)
            if value != value or value in (float("inf"), float("-inf")):
                raise ValueError
            return value
    except ValueError:
        raise ReproduceError(f"--values: {text!r} is not of type {kind.__name__}, the type of {param} "
                             f"(default {default!r})") from None
    return text


def sweep_values(base: Sequence[str], param: str, values: Sequence[str]) -> list:
    """``values`` parsed as ``param``'s type in the config composed from ``base``; an unknown key names the
    close ones, a group of keys names its keys, a scheduler parameter points to ``--variant``."""
    import difflib

    import sieve.runtime as rt
    from omegaconf import DictConfig, OmegaConf

    if param.startswith("sched"):
        raise ReproduceError(f"--param {param}: scheduler parameters differ by scheduler; compare them with "
                             f"--variant SCHED:{param}=VALUE")
    if not values:
        raise ReproduceError("--values: give at least one value")
    cfg = rt.compose(list(base))
    keys = [k for k in _flat_keys(cfg) if not k.startswith(("sched", "hydra"))]
    node = OmegaConf.select(cfg, param, default=None)
    if isinstance(node, DictConfig):
        raise ReproduceError(f"--param {param} is a group of keys; pick one of: "
                             f"{', '.join(k for k in keys if k.startswith(param + '.'))}")
    if param not in keys:
        last = param.rpartition(".")[2]
        close = difflib.get_close_matches(param, keys, n=5, cutoff=0.6)
        close += [k for k in keys if last and last in k and k not in close][: 5 - len(close)]
        raise ReproduceError(f"--param {param}: unknown config key; close keys: {', '.join(close) or 'none'}")
    return [_parse_as(str(v), node, param) for v in values]


def _override_value(value) -> str:
    return str(value).lower() if isinstance(value, bool) else repr(value) if isinstance(value, float) else str(value)


def run_sensitivity(model: str, param: str, values: Sequence, out: str | os.PathLike = ".", *,
                    num_gpus: int | None = None, batch_sizes: Sequence[int] = SENSITIVITY_BATCH_SIZES,
                    jobs: int = 1, extra: Sequence[str] = (), plots: bool = True, progress: bool = True,
                    scheds: Sequence[str] | None = None, variants: Sequence[Variant] = ()) -> Path:
    """Run (or resume) the fig9 schedulers at every value of ``param`` and write the tidy CSV of the runs
    with Sieve's gain over each other curve, and its plot; returns the CSV path."""
    import pandas as pd
    import sieve.runtime as rt
    from sieve.results.tables import write_table

    labels = [*(scheds or FIG9_SCHEDS), *(v.label for v in variants)]
    if "sieve" not in labels:
        raise ReproduceError("a sensitivity study compares sieve with the other curves: --scheds must include sieve")
    base = [*_base(model, num_gpus), *extra]
    typed = sweep_values(base, param, values)
    grid = []
    for value in typed:
        override = f"{param}={_override_value(value)}"
        labelled = _labelled_points("fig9", model, num_gpus=num_gpus, batch_sizes=batch_sizes,
                                    extra=[*extra, override], scheds=scheds, variants=variants)
        grid += [(value, label, run) for label, run in labelled]
    # every value must make a valid machine: fail before anything runs (largest batch: most KV cache)
    for value in typed:
        run = max((r for v, _, r in grid if v == value), key=_batch_size)
        rt.simulation_from_config(rt.compose(run))
    out = Path(out)
    records = _run_all([r for _, _, r in grid], out, jobs, f"sensitivity {model} {param}", progress)
    table = pd.DataFrame([r["summary"] for r in records])
    table.insert(1, "param", param)
    table.insert(2, "value", [v for v, _, _ in grid])
    table["sched"] = [label for _, label, _ in grid]
    cols = ["model", "param", "value", "sched", "batch_size", "num_gpus", "tpot_s", "tokens_per_s_per_gpu",
            "tokens_per_s_per_user"]
    table = table[cols]
    sieve_rate = table[table["sched"] == "sieve"].set_index(["value", "batch_size"])["tokens_per_s_per_gpu"]
    keys = pd.MultiIndex.from_frame(table[["value", "batch_size"]])
    table["sieve_gain"] = sieve_rate.reindex(keys).to_numpy() / table["tokens_per_s_per_gpu"].to_numpy()
    table = table.sort_values(["value", "sched", "batch_size"], kind="stable").reset_index(drop=True)
    stem = f"sensitivity_{model}_{param}"
    csv = out / f"{stem}.csv"
    write_table(table, csv)
    if plots:
        from sieve.results import plots as plot_functions

        fig = plot_functions.sensitivity(table, title=f"{model}: Sieve's gain against {param}")
        fig.savefig(out / f"{stem}.png", dpi=120, bbox_inches="tight")
    return csv


def run_paper(out: str | os.PathLike = ".", *, quick: bool = False, jobs: int = 1, progress: bool = True,
              readme: str | os.PathLike | None = None, plots: bool = True) -> Path:
    """Run (or resume) every sweep the comparison with the paper needs; write ``paper_comparison.csv`` and
    ``.md`` into ``out`` (and the table into ``readme``'s markers), and each sweep's figure unless
    ``plots`` is false or the run is ``quick``; returns the CSV path."""
    import pandas as pd

    from sieve.results.paper import compare, markdown
    from sieve.results.tables import write_table

    if readme is not None:
        text = Path(readme).read_text()
        if any(text.count(m) != 1 for m in README_MARKERS):
            raise ReproduceError(f"--readme {readme}: needs the lines {README_MARKERS[0]} and {README_MARKERS[1]} "
                                 "once each, around the table")
    out = Path(out)
    variants = [] if quick else [parse_variant(v) for v in PAPER_VARIANTS]
    sizes = QUICK_BATCH_SIZES if quick else BATCH_SIZES
    plots = plots and not quick
    fig9 = {m: pd.read_csv(run_figure("fig9", m, out, batch_sizes=sizes, jobs=jobs, plots=plots,
                                      progress=progress, variants=variants))
            for m in paper_models()}
    fig11 = pd.read_csv(run_figure("fig11", None, out, batch_sizes=(16, 32), jobs=jobs, plots=plots,
                                   progress=progress))
    table = compare(fig9, fig11)
    csv = out / "paper_comparison.csv"
    write_table(table, csv)
    md = markdown(table)
    tmp = out / "paper_comparison.md.tmp"
    tmp.write_text(md)
    os.replace(tmp, out / "paper_comparison.md")
    if readme is not None:
        head, rest = text.split(README_MARKERS[0])
        _, tail = rest.split(README_MARKERS[1])
        tmp = Path(f"{readme}.tmp")
        tmp.write_text(f"{head}{README_MARKERS[0]}\n{md}{README_MARKERS[1]}{tail}")
        os.replace(tmp, readme)
    return csv


def _model_title(model: str) -> str:
    """The model's published name (``Qwen3-30B-A3B`` for ``qwen3_30b_a3b``, from its preset's ``source``)."""
    from sieve.model import ModelSpecError, load

    try:
        return load(model).source.rsplit("/", 1)[-1] or model
    except (ModelSpecError, ValueError):
        return model


def _plot(figure: str, table, path: Path, metric: str = "throughput") -> None:
    """Save the figure; the plot functions build figures without pyplot, so no backend is touched."""
    from sieve.results import plots

    name = _model_title(str(table["model"].iloc[0]))
    if figure == "fig9":
        what = "throughput" if metric == "throughput" else "tokens per joule"
        fig = plots.pareto(table, title=f"{name}: {what} vs interactivity", y=METRICS[metric])
    elif figure == "fig10":
        b = int(table["batch_size"].max() if 64 not in set(table["batch_size"]) else 64)
        fig = plots.channel_utilization(table[table["batch_size"] == b],
                                        title=f"{name}, B={b}: PIM channel utilization")
    else:
        fig = plots.speedup_bars(table, value="speedup_over_noexp",
                                 title=f"{name} with prefill: speedup over noexp")
    fig.savefig(path, dpi=120, bbox_inches="tight")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m sieve.reproduce", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figure", choices=(*FIGURES, "sensitivity", "paper", "energy"))
    parser.add_argument("--model", help="model preset (default: the paper's model of the figure)")
    parser.add_argument("--out", default=".", help="output directory (default: .)")
    parser.add_argument("--gpus", type=int, help="GPU count (default: the paper's for the model)")
    parser.add_argument("--batch-sizes", help="comma-separated batch sizes (default: 1,2,4,...,256; "
                                              "sensitivity: 1,16,64,256)")
    parser.add_argument("--param", help="sensitivity: the config key to sweep (e.g. hw.link.bytes_per_s_per_direction)")
    parser.add_argument("--values", help="sensitivity: comma-separated values of --param")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (default: all cores)")
    parser.add_argument("--scheds", help="comma-separated schedulers instead of the figure's (e.g. add oracle)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra main-config override for every run (repeatable)")
    parser.add_argument("--variant", action="append", default=[], metavar="SCHED:KEY=VALUE[,KEY=VALUE]",
                        help="one more curve: a scheduler with its own overrides, labelled SCHED[KEY=VALUE,...] "
                             "(repeatable; e.g. sieve:sched.params.overhead_s=0)")
    parser.add_argument("--no-plot", action="store_true", help="write the CSV only")
    parser.add_argument("--metric", choices=list(METRICS), default="throughput",
                        help="fig9: plot tokens/s per GPU (throughput) or tokens per joule (energy) against "
                             "tokens/s per user")
    parser.add_argument("--quick", action="store_true", help="paper: the reduced grid of the regression test")
    parser.add_argument("--readme", help="paper: also write the table between this file's paper_comparison markers")
    return parser


def _options_problem(args) -> str | None:
    """What is wrong with the options for the chosen figure, or None."""
    study = args.figure == "sensitivity"
    if args.figure == "paper":
        fixed = [f"--{k.replace('_', '-')}" for k in ("model", "gpus", "scheds", "set", "variant", "batch_sizes",
                                                      "param", "values") if getattr(args, k)]
        if fixed:
            return f"paper runs the paper's fixed grid; {', '.join(fixed)} cannot change it"
    elif args.quick or args.readme:
        return "--quick and --readme belong to 'paper'"
    if study and not (args.param and args.values):
        return "sensitivity needs --param KEY and --values V1,V2,..."
    if study and not args.model:
        return "sensitivity needs --model"
    if not study and (args.param or args.values):
        return "--param and --values belong to the sensitivity study"
    if args.metric != "throughput" and args.figure != "fig9":
        return f"--metric {args.metric} belongs to fig9"
    if args.figure == "energy" and (args.model or args.gpus or args.scheds or args.variant):
        return ("energy runs the paper models on their machines with the fig9 schedulers; "
                "--model, --gpus, --scheds and --variant do not apply")
    return None


def _check_arguments(parser: argparse.ArgumentParser, args) -> list[int]:
    """Refuse options that do not belong to the chosen figure; returns the batch sizes."""
    problem = _options_problem(args)
    if problem:
        parser.error(problem)
    small = args.figure in ("sensitivity", "energy")
    text = args.batch_sizes or ",".join(map(str, SENSITIVITY_BATCH_SIZES if small else BATCH_SIZES))
    try:
        sizes = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        parser.error(f"--batch-sizes {text!r}: expected comma-separated integers")
    if not sizes or min(sizes) < 1:
        parser.error(f"--batch-sizes {text!r}: batch sizes must be positive integers")
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: must be at least 1")
    return sizes


def _run(args, sizes: list[int]) -> Path:
    """Run what the arguments ask for; returns the CSV written."""
    if args.figure == "paper":
        return run_paper(args.out, quick=args.quick, jobs=args.jobs, readme=args.readme, plots=not args.no_plot)
    scheds = [x.strip() for x in args.scheds.split(",") if x.strip()] if args.scheds else None
    common = dict(num_gpus=args.gpus, batch_sizes=sizes, jobs=args.jobs, extra=args.set, plots=not args.no_plot,
                  scheds=scheds, variants=[parse_variant(v) for v in args.variant])
    if args.figure == "sensitivity":
        values = [v.strip() for v in args.values.split(",") if v.strip()]
        return run_sensitivity(args.model, args.param, values, args.out, **common)
    if args.figure == "energy":
        csv = run_energy_table(args.out, batch_sizes=sizes, jobs=args.jobs, extra=args.set)
        print((Path(args.out) / "energy_paper_models.md").read_text(), end="")
        return csv
    return run_figure(args.figure, args.model, args.out, metric=args.metric, **common)


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    sizes = _check_arguments(parser, args)
    try:
        csv = _run(args, sizes)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(csv)
    if not args.no_plot and args.figure not in ("paper", "energy"):
        print(csv.with_suffix(".png"))
    return 0


if __name__ == "__main__":
    from sieve._cli import exit_with

    exit_with(main, "finished points are kept in <out>/.points and the same command resumes")
