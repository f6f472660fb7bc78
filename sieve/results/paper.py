"""The paper's results beside sieve's: the statistics of SPEC §6 from Figure 9 and Figure 11 sweeps.

:func:`compare` turns the fig9 tables of the paper's three models (and the fig11 table of Qwen3-30B-A3B)
into one long table, one row per (model, curve, statistic), each with the paper's number and the band
the project asks for; :func:`markdown` renders it. ``python -m sieve.reproduce paper`` runs the sweeps and
writes both. Throughput per GPU and per user give the same ratios between two schedulers at one batch
size (both are the batch's tokens over the same step time), so ratios are taken of ``tokens_per_s_per_gpu``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

import pandas as pd

__all__ = ["BASELINES", "PAPER", "Expectation", "compare", "markdown", "headline"]

BASELINES = ("noexp", "allexp", "pimoe", "gpu_only")


@dataclass(frozen=True)
class Expectation:
    """A statistic as the paper states it and the band sieve must land in (``low``/``high``; NaN: open)."""
    paper: str
    low: float = math.nan
    high: float = math.nan


# Sieve paper §7 (SPEC §6) and the project's bands (README, "Modelling decisions").
PAPER: dict[tuple[str, str], Expectation] = {
    ("qwen3_5_397b_a17b", "sieve_over_pimoe"): Expectation("1.26× at B=256", 1.1, 1.5),
    ("gpt_oss_120b", "sieve_over_pimoe"): Expectation("1.11–1.17× for B ≥ 32 (median)", 1.05, 1.35),
    ("qwen3_30b_a3b", "sieve_over_pimoe"): Expectation("1.6× (best, B ≥ 16)", 1.3, 2.0),
    ("*", "worst_vs_best_baseline_b16"): Expectation("never worse (B ≥ 16)", 0.99),
    ("*", "worst_vs_best_baseline_small_b"): Expectation("comparable (B < 16)", 0.90),
    ("*", "allexp_growth_32_256"): Expectation("nearly flat beyond B=32", high=1.5),
    ("*", "sieve_growth_32_256"): Expectation("inverted L: keeps growing", 2.0),
    ("qwen3_30b_a3b", "fig11_speedup_b16"): Expectation("2.4× over noexp"),
    ("qwen3_30b_a3b", "fig11_speedup_b32"): Expectation("2.3× over noexp"),
}

HEADLINE = {"qwen3_5_397b_a17b": "at", "gpt_oss_120b": "median", "qwen3_30b_a3b": "best"}


def _expect(model: str, stat: str) -> Expectation:
    return PAPER.get((model, stat)) or PAPER[("*", stat)]


def _throughput(table: pd.DataFrame, sched: str) -> pd.Series:
    return table[table["sched"] == sched].set_index("batch_size")["tokens_per_s_per_gpu"].sort_index()


def headline(model: str, ratio: pd.Series) -> tuple[float, str]:
    """The model's headline statistic of Sieve over pimoe (``ratio`` by batch size) and where it is taken."""
    kind = HEADLINE.get(model, "median")
    if kind == "at":
        b = int(ratio.index.max())
        return float(ratio[b]), f"B={b}"
    if kind == "best":
        r = ratio[ratio.index >= 16]
        return float(r.max()), f"B={int(r.idxmax())}"
    r = ratio[ratio.index >= 32]
    return float(r.median()), f"B≥32: {r.min():.2f}–{r.max():.2f}"


def _worst(sieve: pd.Series, baselines: Mapping[str, pd.Series], small: bool) -> tuple[float, str]:
    best = pd.concat(baselines, axis=1).loc[sieve.index]
    keep = best.index < 16 if small else best.index >= 16
    if not keep.any():
        return math.nan, ""
    ratio = sieve[keep] / best[keep].max(axis=1)
    b = int(ratio.idxmin())
    return float(ratio[b]), f"B={b} ({best.loc[b].idxmax()})"


def _row(model, curve, stat, value, where) -> dict:
    e = _expect(model, stat)
    holds = (math.isnan(e.low) or value >= e.low) and (math.isnan(e.high) or value <= e.high)
    return {"model": model, "curve": curve, "statistic": stat, "value": value, "where": where,
            "paper": e.paper, "low": e.low, "high": e.high,
            "holds": bool(holds) if not (math.isnan(e.low) and math.isnan(e.high)) else None}


def compare(fig9: Mapping[str, pd.DataFrame], fig11: pd.DataFrame | None = None) -> pd.DataFrame:
    """The comparison table from fig9 tables by model (their ``sched`` column: the five schedulers and any
    ``sieve[...]`` variants) and the fig11 table of Qwen3-30B-A3B."""
    rows = []
    for model, table in fig9.items():
        baselines = {b: _throughput(table, b) for b in BASELINES}
        pimoe = baselines["pimoe"]
        curves = [c for c in dict.fromkeys(table["sched"]) if c == "sieve" or c.startswith("sieve[")]
        for curve in curves:
            sieve = _throughput(table, curve)
            value, where = headline(model, sieve / pimoe)
            rows.append(_row(model, curve, "sieve_over_pimoe", value, where))
            for small, stat in ((False, "worst_vs_best_baseline_b16"), (True, "worst_vs_best_baseline_small_b")):
                value, where = _worst(sieve, baselines, small)
                if where:
                    rows.append(_row(model, curve, stat, value, where))
        for sched, stat in (("allexp", "allexp_growth_32_256"), ("sieve", "sieve_growth_32_256")):
            t = _throughput(table, sched)
            if {32, 256} <= set(t.index):
                rows.append(_row(model, sched, stat, float(t[256] / t[32]), "B=32→256"))
    if fig11 is not None and len(fig11):
        model = str(fig11["model"].iloc[0])
        speed = fig11[fig11["sched"] == "sieve"].set_index("batch_size")["speedup_over_noexp"]
        for b in (16, 32):
            if b in speed.index:
                rows.append(_row(model, "sieve", f"fig11_speedup_b{b}", float(speed[b]), f"B={b}, mixed batch"))
    return pd.DataFrame(rows)


def _fmt(value: float) -> str:
    return f"{value:.2f}×"


def _band(row) -> str:
    lo, hi = row["low"], row["high"]
    if math.isnan(lo) and math.isnan(hi):
        return ""
    if math.isnan(hi):
        return f"≥ {lo:.2f}"
    if math.isnan(lo):
        return f"< {hi:.2f}"
    return f"{lo:.2f}–{hi:.2f}"


def markdown(table: pd.DataFrame) -> str:
    """Two Markdown tables: the default Sieve's statistics beside the paper's, and every Sieve curve's
    headline and worst ratios (the sensitivity to the objective and the scheduler's cost)."""
    names = {"sieve_over_pimoe": "Sieve over pimoe", "worst_vs_best_baseline_b16": "worst Sieve / best baseline, B ≥ 16",
             "worst_vs_best_baseline_small_b": "worst Sieve / best baseline, B < 16",
             "allexp_growth_32_256": "allexp growth B=32→256", "sieve_growth_32_256": "Sieve growth B=32→256",
             "fig11_speedup_b16": "fig11: Sieve over noexp, B=16", "fig11_speedup_b32": "fig11: Sieve over noexp, B=32"}
    main = table[table["curve"].isin(["sieve", "allexp"])]
    lines = ["| model | statistic | sieve | where | paper | band | holds |", "|---|---|---|---|---|---|---|"]
    for _, r in main.iterrows():
        holds = "" if r["holds"] is None or (isinstance(r["holds"], float) and math.isnan(r["holds"])) \
            else ("yes" if r["holds"] else "**no**")
        lines.append(f"| {r['model']} | {names.get(r['statistic'], r['statistic'])} | {_fmt(r['value'])} | "
                     f"{r['where']} | {r['paper']} | {_band(r)} | {holds} |")
    curves = [c for c in dict.fromkeys(table["curve"]) if c.startswith("sieve")]
    models = list(dict.fromkeys(table["model"]))
    if len(curves) > 1:
        lines += ["", "| Sieve curve | " + " | ".join(f"{m}: over pimoe | {m}: worst vs best baseline" for m in models)
                  + " |", "|---|" + "---|---|" * len(models)]
        for c in curves:
            cells = []
            for m in models:
                sub = table[(table["curve"] == c) & (table["model"] == m)].set_index("statistic")
                head = _fmt(sub.loc["sieve_over_pimoe", "value"]) if "sieve_over_pimoe" in sub.index else ""
                worst = [(sub.loc[s, "value"], sub.loc[s, "where"]) for s in
                         ("worst_vs_best_baseline_b16", "worst_vs_best_baseline_small_b") if s in sub.index]
                w = min(worst) if worst else None
                cells += [head, f"{_fmt(w[0])} at {w[1]}" if w else ""]
            lines.append(f"| `{c}` | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
