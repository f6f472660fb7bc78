"""Figures from tidy result tables (pandas, one row per observation).

Every function checks the columns it needs (a missing one raises ``ValueError`` naming it and the
columns the table has), draws on ``ax=`` when given or on a new :class:`~matplotlib.figure.Figure`,
and returns the figure. Figures are built without pyplot: nothing is registered, shown or changed
globally, so they work without a display and a sweep can draw hundreds of them. Save one with
``fig.savefig(path)``; a notebook displays a returned figure once ``%matplotlib inline`` has run
(figures made without pyplot reach the notebook only through the display hook it installs).

==================  ====================================================================================
function            columns
==================  ====================================================================================
``pareto``          ``sched``, ``batch_size``, ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu`` (or with
                    ``y="tokens_per_joule"``, that column); optional ``model``
``pareto_front``    ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu``; optional ``model``
``speedup_bars``    ``sched``, ``batch_size`` and the value column (e.g. ``speedup_over_noexp``)
``sensitivity``     ``value``, ``sched``, ``batch_size``, ``sieve_gain``; optional ``param``
``channel_          ``channel``, ``utilization``; optional ``gpu``, ``sched``
utilization``
``token_histogram`` ``model``, ``batch_size``, ``frac_1``, ``frac_2``, ``frac_3_4``, ``frac_gt4``
``act_ratio``       ``model``, ``batch_size``, ``act_ratio``
``bank_heatmap``    ``bin``, the bank address levels, and ``utilization`` or the command counts
``command_mix``     a mapping or Series: command name -> count
``layer_timeline``  ``layer``, ``start_s``, ``end_s``; optional ``attention_s``, ``gpu_busy_s``,
                    ``pim_busy_s``, ``pim_experts_s``, ``link_s``
``task_timeline``   ``step``, ``gpu``, ``resource``, ``kind``, ``start_s``, ``end_s``, ``critical``
                    (a run's ``tasks`` table)
==================  ====================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator, PercentFormatter

__all__ = [
    "SCHED_COLORS",
    "act_ratio",
    "bank_heatmap",
    "channel_utilization",
    "command_mix",
    "layer_timeline",
    "pareto",
    "pareto_front",
    "sensitivity",
    "speedup_bars",
    "task_timeline",
    "token_histogram",
]

#: One colour per known scheduler, so that every figure shows a scheduler the same way.
SCHED_COLORS: dict[str, str] = {
    "gpu_only": "tab:gray",
    "noexp": "tab:blue",
    "allexp": "tab:orange",
    "pimoe": "tab:green",
    "sieve": "tab:red",
    "oracle": "black",
}

INTERACTIVITY, THROUGHPUT = "tokens_per_s_per_user", "tokens_per_s_per_gpu"
PARETO_Y = {THROUGHPUT: "throughput (tokens/s/GPU)", "tokens_per_joule": "energy efficiency (tokens/J)"}
"""What :func:`pareto` may draw against interactivity, with its axis label."""
ANNOTATE_MAX_POINTS = 12
LABEL_EVERY_CHANNEL_UP_TO = 32

# The Sieve paper's token-count bins (Fig. 5): column of sieve.routing.stats -> label.
TOKEN_BINS = {"frac_1": "N=1", "frac_2": "N=2", "frac_3_4": "N=3–4", "frac_gt4": "N>4"}

# Command classes a bank heatmap can sum, by the command metadata of the standard.
COMMAND_CLASSES = {
    "data": lambda c: c.access != "none" or c.pim,
    "pim": lambda c: c.pim,
    "row": lambda c: c.opens_row or c.closes_row,
    "refresh": lambda c: c.refreshes,
}
_HEATMAP_NON_LEVELS = ("bin", "start_ck", "utilization")

TIMELINE_PARTS = {"attention_s": "attention", "gpu_busy_s": "GPU busy", "pim_busy_s": "PIM busy",
                  "pim_experts_s": "PIM experts", "link_s": "NVLink"}
_TIMELINE_COLORS = {"attention_s": "tab:purple", "gpu_busy_s": "tab:blue", "pim_busy_s": "tab:green",
                    "pim_experts_s": "tab:olive", "link_s": "tab:orange"}


# ---- shared checks and layout -------------------------------------------------------------------


def _require(table: Any, columns: Sequence[str], func: str) -> pd.DataFrame:
    if not isinstance(table, pd.DataFrame):
        raise ValueError(f"{func}: expected a pandas DataFrame, got {type(table).__name__}")
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{func}: table lacks column(s) {missing}; it has {list(table.columns)}")
    if table.empty:
        raise ValueError(f"{func}: table has no rows")
    return table


def _select(table: pd.DataFrame, where: Mapping[str, Any] | None, func: str) -> pd.DataFrame:
    """Rows whose columns equal every value in ``where``."""
    if not where:
        return table
    _require(table, list(where), func)
    mask = np.logical_and.reduce([table[col] == val for col, val in where.items()])
    if not mask.any():
        raise ValueError(f"{func}: no rows with {dict(where)}")
    return table[mask]


def _panels(ax: Axes | None, n: int, func: str, *, sharey: bool = False,
            size: tuple[float, float] = (5.0, 3.6)) -> tuple[Figure, list[Axes]]:
    """``ax`` alone when given (then only one panel is possible), else a new figure of ``n`` panels."""
    if ax is not None:
        if n != 1:
            raise ValueError(f"{func}: the table needs {n} panels but one ax was given; "
                             f"pass ax=None for a new figure, or one panel's rows")
        return ax.figure, [ax]
    fig = Figure(figsize=(size[0] * n, size[1]), layout="constrained")
    return fig, list(fig.subplots(1, n, sharey=sharey, squeeze=False)[0])


def _sched_order(names) -> list[str]:
    names = set(names)
    return [s for s in SCHED_COLORS if s in names] + sorted(names - set(SCHED_COLORS), key=str)


def _sched_colors(names) -> dict[str, str]:
    """Fixed colours for known schedulers, the unused colours of the default cycle for the others."""
    taken = {to_hex(c) for c in SCHED_COLORS.values()}
    spare = [c for c in mpl.rcParams["axes.prop_cycle"].by_key().get("color", []) if to_hex(c) not in taken]
    colors, i = {}, 0
    for name in _sched_order(names):
        if name in SCHED_COLORS:
            colors[name] = SCHED_COLORS[name]
        else:
            colors[name] = spare[i % len(spare)] if spare else f"C{i % 10}"
            i += 1
    return colors


def _models(table: pd.DataFrame) -> list:
    return list(pd.unique(table["model"])) if "model" in table.columns else [None]


def _of_model(table: pd.DataFrame, model) -> pd.DataFrame:
    return table if model is None else table[table["model"] == model]


# ---- serving: throughput against interactivity --------------------------------------------------


def pareto(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None,
           annotate: bool | None = None, log: bool = False, y: str = THROUGHPUT) -> Figure:
    """Throughput against interactivity, one line per scheduler, as serving papers draw it.

    Columns: ``sched``, ``batch_size``, ``tokens_per_s_per_user`` (x, interactivity) and
    ``tokens_per_s_per_gpu`` (y, throughput; or ``y="tokens_per_joule"``, energy efficiency, any key of
    :data:`PARETO_Y`); with several values in an optional ``model`` column,
    one panel per model. Each line runs through its points in batch-size order; repeated
    (model, sched, batch_size) rows are averaged. ``annotate`` labels each point with its batch size
    (default: when no line has more than 12 points); ``log`` puts both axes on log scales.
    """
    if y not in PARETO_Y:
        raise ValueError(f"pareto: y={y!r} is not drawn; allowed: {', '.join(PARETO_Y)}")
    table = _require(table, ["sched", "batch_size", INTERACTIVITY, y], "pareto")
    models = _models(table)
    fig, axes = _panels(ax, len(models), "pareto")
    colors = _sched_colors(table["sched"].unique())
    for model, a in zip(models, axes):
        rows = (_of_model(table, model).groupby(["sched", "batch_size"], sort=True)[[INTERACTIVITY, y]]
                .mean().reset_index())
        label_points = annotate
        if label_points is None:
            label_points = rows.groupby("sched").size().max() <= ANNOTATE_MAX_POINTS
        for sched in _sched_order(rows["sched"]):
            line = rows[rows["sched"] == sched]
            a.plot(line[INTERACTIVITY], line[y], marker="o", color=colors[sched], label=str(sched))
        if log:
            a.set_xscale("log")
            a.set_yscale("log")
        if label_points:
            _label_batch_sizes(a, rows, colors, y)
        a.set_xlabel("interactivity (tokens/s/user)")
        a.set_ylabel(PARETO_Y[y])
        if model is not None:
            a.set_title(str(model))
        a.grid(True, alpha=0.3)
    axes[0].legend(title="scheduler", fontsize=8)
    _title(fig, axes, title)
    return fig


# Where a batch-size label may sit around its point (offset points, tried in this order), and its size.
_LABEL_OFFSETS = ((4, 2), (4, -9), (-4, 2), (-4, -9), (5, -3), (-5, -3), (-3, 5), (-3, -13), (4, 8), (-4, 8))
_LABEL_FONT = 7
_MARKER_RADIUS_PT = 3.5  # matplotlib's default marker is 6 points across


def _label_batch_sizes(a: Axes, rows: pd.DataFrame, colors: Mapping[str, str], column: str = THROUGHPUT) -> None:
    """Label points with their batch size where the label overlaps no other label: each label tries a few
    places around its point, and one that equals a nearby label of the same batch size is left out
    (schedulers often meet at one B), so labels never print over each other ("64" and "64" as "6464").
    ``column``: the y column the points are drawn at."""
    a.autoscale_view()
    fig = a.figure
    width_in, height_in = fig.get_size_inches() * a.get_position().size
    to_axes = a.transScale + a.transLimits            # data -> axes fraction, without a renderer
    pt_x, pt_y = 1 / (72 * width_in), 1 / (72 * height_in)  # one point in axes fractions
    placed: list[tuple[float, float, float, float, str]] = []
    r = _MARKER_RADIUS_PT
    for fx, fy in to_axes.transform(rows[[INTERACTIVITY, column]].to_numpy(float)):
        if np.isfinite(fx) and np.isfinite(fy):  # a label covers no point of any line either
            placed.append((fx - r * pt_x, fy - r * pt_y, fx + r * pt_x, fy + r * pt_y, ""))
    for sched in _sched_order(rows["sched"]):
        line = rows[rows["sched"] == sched]
        for b, x, y in zip(line["batch_size"], line[INTERACTIVITY], line[column]):
            if not (np.isfinite(x) and np.isfinite(y)):
                continue
            text = f"{b}"
            fx, fy = to_axes.transform((x, y))
            if any(t == text and abs(fx - (x0 + x1) / 2) < 0.08 and abs(fy - (y0 + y1) / 2) < 0.08
                   for x0, y0, x1, y1, t in placed):
                continue  # the same batch size is labelled right there already
            w, h = len(text) * 0.6 * _LABEL_FONT * pt_x, _LABEL_FONT * pt_y
            for dx, dy in _LABEL_OFFSETS:
                x0 = fx + (dx * pt_x if dx >= 0 else dx * pt_x - w)
                y0 = fy + dy * pt_y
                box = (x0, y0, x0 + w, y0 + h)
                if not any(box[0] < p[2] and p[0] < box[2] and box[1] < p[3] and p[1] < box[3] for p in placed):
                    placed.append((*box, text))
                    a.annotate(text, (x, y), textcoords="offset points", xytext=(dx, dy), fontsize=_LABEL_FONT,
                               color=colors[sched], ha="left" if dx >= 0 else "right")
                    break


def speedup_bars(table: pd.DataFrame, *, value: str = "speedup_over_noexp", ax: Axes | None = None,
                 title: str | None = None) -> Figure:
    """Grouped bars: ``value`` per batch size (groups), one bar per scheduler, with a line at 1.

    Columns: ``sched``, ``batch_size`` and ``value``. Repeated (sched, batch_size) rows are averaged."""
    table = _require(table, ["sched", "batch_size", value], "speedup_bars")
    rows = table.groupby(["batch_size", "sched"], sort=True)[value].mean().unstack("sched")
    scheds = _sched_order(rows.columns)
    colors = _sched_colors(scheds)
    fig, (a,) = _panels(ax, 1, "speedup_bars", size=(6.0, 3.2))
    x = np.arange(len(rows.index), dtype=float)
    width = 0.8 / max(1, len(scheds))
    for i, sched in enumerate(scheds):
        a.bar(x - 0.4 + width * (i + 0.5), rows[sched].to_numpy(float), width=width * 0.95, color=colors[sched],
              label=str(sched))
    a.axhline(1.0, color="0.3", linewidth=0.8)
    a.set_xticks(x, [str(b) for b in rows.index])
    a.set_xlabel("batch size")
    a.set_ylabel(value.replace("_", " "))
    # beside the axes, never over a bar
    a.legend(fontsize=8, title="scheduler", loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
    _title(fig, [a], title)
    return fig


def sensitivity(table: pd.DataFrame, *, title: str | None = None) -> Figure:
    """Sieve's gain over each other scheduler (``sieve_gain``) against the swept ``value``: one panel per
    batch size, one line per scheduler, a line at 1 (log x when the values span more than 10x)."""
    table = _require(table, ["value", "sched", "batch_size", "sieve_gain"], "sensitivity")
    others = table[table["sched"] != "sieve"]
    sizes = sorted(pd.unique(others["batch_size"]))
    if not sizes:
        raise ValueError("sensitivity: the table has no scheduler besides sieve to compare with")
    fig, axes = _panels(None, len(sizes), "sensitivity", sharey=True, size=(3.6, 3.2))
    colors = _sched_colors(others["sched"])
    values = pd.to_numeric(others["value"], errors="coerce")
    log = bool(values.notna().all() and values.min() > 0 and values.max() / values.min() > 10)
    for a, b in zip(axes, sizes):
        rows = others[others["batch_size"] == b]
        for sched in _sched_order(rows["sched"]):
            r = rows[rows["sched"] == sched].sort_values("value")
            a.plot(r["value"], r["sieve_gain"], marker="o", color=colors[sched], label=str(sched))
        a.axhline(1.0, color="0.3", linewidth=0.8)
        if log:
            a.set_xscale("log")
        a.set_title(f"B = {b}", fontsize=9)
        a.set_xlabel(str(table["param"].iloc[0]) if "param" in table.columns else "value")
    axes[0].set_ylabel("Sieve's gain (tokens/s per GPU)")
    axes[-1].legend(fontsize=8)
    _title(fig, axes, title)
    return fig


def pareto_front(table: pd.DataFrame) -> pd.DataFrame:
    """The rows no other row of the same ``model`` beats in both interactivity and throughput.

    Columns: ``tokens_per_s_per_user``, ``tokens_per_s_per_gpu``, optional ``model`` (without it the
    whole table is one group). A row is dropped when another row is at least as good in both metrics
    and better in one; equal rows are kept together, rows with a missing metric never count as
    optimal. Returns those rows of ``table`` (index and order kept).
    """
    table = _require(table, [INTERACTIVITY, THROUGHPUT], "pareto_front")
    keep = np.zeros(len(table), dtype=bool)
    groups = table.groupby("model", sort=False).indices if "model" in table.columns else \
        {None: np.arange(len(table))}
    for positions in groups.values():
        x = table[INTERACTIVITY].to_numpy(float)[positions]
        y = table[THROUGHPUT].to_numpy(float)[positions]
        # dominated[i, j]: row j is at least as good as row i in both metrics and better in one
        dominated = ((x[None, :] >= x[:, None]) & (y[None, :] >= y[:, None])
                     & ((x[None, :] > x[:, None]) | (y[None, :] > y[:, None])))
        keep[positions] = ~dominated.any(axis=1) & np.isfinite(x) & np.isfinite(y)
    return table[keep]


# ---- PIM channels -------------------------------------------------------------------------------


def channel_utilization(table: pd.DataFrame, *, gpu: int = 0, ax: Axes | None = None,
                        title: str | None = None) -> Figure:
    """PIM utilization of each channel as bars; one panel per scheduler, sharing the y axis.

    Columns: ``channel``, ``utilization`` (0..1); optional ``sched`` (one panel each) and ``gpu``
    (only GPU ``gpu`` is drawn). Repeated rows of a channel (layers, steps) are averaged.
    """
    table = _require(table, ["channel", "utilization"], "channel_utilization")
    if "gpu" in table.columns:
        if gpu not in set(table["gpu"]):
            raise ValueError(f"channel_utilization: gpu={gpu!r} not in the table; it has "
                             f"{sorted(table['gpu'].unique().tolist())}")
        table = table[table["gpu"] == gpu]
    scheds = _sched_order(table["sched"].unique()) if "sched" in table.columns else [None]
    fig, axes = _panels(ax, len(scheds), "channel_utilization", sharey=True, size=(4.5, 3.2))
    colors = _sched_colors([s for s in scheds if s is not None])
    for sched, a in zip(scheds, axes):
        rows = table if sched is None else table[table["sched"] == sched]
        per_channel = rows.groupby("channel", sort=True)["utilization"].mean()
        color = colors.get(sched, "tab:blue")
        if len(per_channel) <= LABEL_EVERY_CHANNEL_UP_TO:
            a.bar(per_channel.index, per_channel.to_numpy(), color=color, width=0.8)
        else:  # hundreds of bars a pixel or two wide alias into moire: one filled step outline instead
            channels = per_channel.index.to_numpy(float)
            a.stairs(per_channel.to_numpy(), np.append(channels - 0.5, channels[-1] + 0.5), fill=True,
                     color=color, linewidth=0)
        if len(per_channel) <= LABEL_EVERY_CHANNEL_UP_TO:
            a.set_xticks(per_channel.index, [str(c) for c in per_channel.index])
        else:
            a.xaxis.set_major_locator(MaxNLocator(nbins=8, integer=True))
        a.set_xlabel("channel")
        if sched is not None:
            a.set_title(str(sched))
        a.tick_params(axis="x", labelsize=7)
        a.yaxis.set_major_formatter(PercentFormatter(1.0))
    axes[0].set_ylabel("PIM utilization" + (f" (GPU {gpu})" if "gpu" in table.columns else ""))
    _title(fig, axes, title)
    return fig


# ---- routing ------------------------------------------------------------------------------------


def token_histogram(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Share of activated experts that got 1, 2, 3–4 and more than 4 tokens, stacked per (model, B).

    Columns: ``model``, ``batch_size``, ``frac_1``, ``frac_2``, ``frac_3_4``, ``frac_gt4`` -- the keys
    :func:`sieve.routing.stats` returns. Bars are grouped by model (in table order), batch sizes
    ascending within a group; repeated (model, batch_size) rows are averaged.
    """
    table = _require(table, ["model", "batch_size", *TOKEN_BINS], "token_histogram")
    fig, (a,) = _panels(ax, 1, "token_histogram", size=(max(5.0, 0.45 * len(table) + 2), 3.6))
    models = list(pd.unique(table["model"]))
    rows = table.groupby(["model", "batch_size"], sort=True)[list(TOKEN_BINS)].mean().reset_index()
    rows["model"] = pd.Categorical(rows["model"], categories=models)
    rows = rows.sort_values(["model", "batch_size"]).reset_index(drop=True)
    group = rows["model"].cat.codes.to_numpy()
    x = np.arange(len(rows)) + group  # one bar's gap between models
    bottom = np.zeros(len(rows))
    shades = mpl.colormaps["viridis"](np.linspace(0.9, 0.15, len(TOKEN_BINS)))
    for (col, label), shade in zip(TOKEN_BINS.items(), shades):
        a.bar(x, rows[col], bottom=bottom, color=shade, label=label, width=0.85)
        bottom += rows[col].to_numpy()
    a.set_xticks(x, [f"B={b}" for b in rows["batch_size"]], fontsize=7)
    for g, model in enumerate(models):
        a.text(x[group == g].mean(), -0.1, str(model), transform=a.get_xaxis_transform(),
               ha="center", va="top", fontsize=8)
    a.set_ylim(0, 1)
    a.yaxis.set_major_formatter(PercentFormatter(1.0))
    a.set_ylabel("activated experts")
    a.legend(title="tokens", fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title(fig, [a], title)
    return fig


def act_ratio(table: pd.DataFrame, *, ax: Axes | None = None, title: str | None = None) -> Figure:
    """Activated over total parameters against batch size (log-2 axis), one line per model.

    Columns: ``model``, ``batch_size``, ``act_ratio`` (0..1, as :func:`sieve.routing.stats` returns
    it); repeated (model, batch_size) rows are averaged.
    """
    table = _require(table, ["model", "batch_size", "act_ratio"], "act_ratio")
    fig, (a,) = _panels(ax, 1, "act_ratio")
    rows = table.groupby(["model", "batch_size"], sort=True)["act_ratio"].mean().reset_index()
    for model in pd.unique(table["model"]):
        line = rows[rows["model"] == model]
        a.plot(line["batch_size"], line["act_ratio"], marker="o", label=str(model))
    a.set_xscale("log", base=2)
    a.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    a.set_ylim(0, 1.05)
    a.yaxis.set_major_formatter(PercentFormatter(1.0))
    a.set_xlabel("batch size")
    a.set_ylabel("act-ratio")
    a.grid(True, alpha=0.3)
    a.legend(fontsize=8)
    _title(fig, [a], title)
    return fig


# ---- DRAM banks ---------------------------------------------------------------------------------


def bank_heatmap(table: pd.DataFrame, *, value: str | Sequence[str] = "utilization", standard=None,
                 where: Mapping[str, Any] | None = None, ax: Axes | None = None,
                 title: str | None = None) -> Figure:
    """Banks (rows) by time bins (columns), coloured by ``value``.

    ``table`` is :func:`sieve.dram.stats.utilization_over_time`'s: ``bin``, ``start_ck``, one column
    per address level (``channel`` ... ``bank``), one count column per command of the standard
    (``ACT``, ``RD``, ``MAC``, ``REF``, ...) and ``utilization`` (share of the bin spent bursting data).

    ``value`` is ``"utilization"``; a command name (its count per bin); a list of command names
    (their counts summed); or a command class, which needs ``standard`` (a
    :class:`~sieve.dram.Standard` or its name) to know its commands: ``"data"`` (commands that move
    data or compute in PIM: the ones ``utilization`` counts), ``"pim"`` (PIM commands: MAC, WRGB,
    ...), ``"row"`` (commands that open or close rows: ACT, PRE, PREA, ACT16, ...) or
    ``"refresh"`` (REF). ``where`` keeps the rows matching every given column value, e.g.
    ``{"channel": 0}``. Banks are identified by ``standard``'s levels, or without it by the
    lower-case columns (standards name levels in lower case and commands in capitals).
    """
    table = _require(table, ["bin"], "bank_heatmap")
    std = _standard(standard)
    if isinstance(value, str) and value in COMMAND_CLASSES:
        if std is None:
            raise ValueError(f"bank_heatmap: value={value!r} is a command class; pass standard= to know "
                             f"its commands")
        columns = [c.name for c in std.commands if COMMAND_CLASSES[value](c)]
    else:
        columns = [value] if isinstance(value, str) else list(value)
    _require(table, columns, "bank_heatmap")
    table = _select(table, where, "bank_heatmap")
    levels = list(std.levels) if std is not None else [
        c for c in table.columns
        if isinstance(c, str) and c.islower() and c not in _HEATMAP_NON_LEVELS and c not in columns]
    if not levels:
        raise ValueError(f"bank_heatmap: no bank address columns found in {list(table.columns)}")
    _require(table, levels, "bank_heatmap")
    heat = table[levels + ["bin"]].assign(_value=table[columns].sum(axis=1)).pivot_table(
        index=levels, columns="bin", values="_value", aggfunc="sum", fill_value=0)
    first, last = int(heat.columns.min()), int(heat.columns.max())
    heat = heat.reindex(columns=range(first, last + 1), fill_value=0)
    fig, (a,) = _panels(ax, 1, "bank_heatmap", size=(8.0, 4.0))
    values = heat.to_numpy()
    top = values.max() if values.size and values.max() > 0 else 1.0  # an empty panel reads as zero, not mid-scale
    im = a.imshow(values, aspect="auto", cmap="viridis", vmin=0, vmax=top, interpolation="nearest",
                  extent=(first - 0.5, last + 0.5, len(heat) - 0.5, -0.5))
    bin_ck = _bin_ck(table)
    a.set_xlabel("time bin" + (f" ({bin_ck:g} CK)" if bin_ck else ""))
    a.set_ylabel(f"bank\n({', '.join(levels)})", fontsize=8)
    label = value if isinstance(value, str) else " + ".join(columns)
    fig.colorbar(im, ax=a, label=label if value == "utilization" else f"{label} commands per bin")
    _title(fig, [a], title)
    return fig


def _standard(standard):
    if standard is None or not isinstance(standard, str):
        return standard
    from sieve.dram import load_standard

    return load_standard(standard)


def _bin_ck(table: pd.DataFrame) -> float | None:
    if "start_ck" not in table.columns:
        return None
    starts = np.unique(table["start_ck"].to_numpy(float))
    return float(starts[1] - starts[0]) if len(starts) > 1 else None


def command_mix(counts: Mapping[str, float] | pd.Series, *, ax: Axes | None = None,
                title: str | None = None, log: bool = False) -> Figure:
    """Commands issued, by name, as horizontal bars (most frequent on top); zero counts are left out.

    ``counts`` maps command name to count: a dict (e.g. ``RequestResult.commands``) or a Series
    (e.g. a column sum of ``bank_table``). ``log`` puts counts on a log scale.
    """
    if not isinstance(counts, (Mapping, pd.Series)):
        raise ValueError(f"command_mix: expected a mapping or Series of counts, got {type(counts).__name__}")
    series = pd.Series(counts, dtype=float)
    if (series < 0).any() or series.isna().any():
        raise ValueError(f"command_mix: counts must be >= 0, got {series.to_dict()}")
    series = series[series > 0].sort_values()
    if series.empty:
        raise ValueError("command_mix: no command has a count above zero")
    fig, (a,) = _panels(ax, 1, "command_mix", size=(5.0, 0.3 * len(series) + 1.2))
    a.barh(series.index.astype(str), series.to_numpy(), color="tab:blue")
    if log:
        a.set_xscale("log")
    a.set_xlabel("commands")
    _title(fig, [a], title)
    return fig


# ---- runtime ------------------------------------------------------------------------------------


def layer_timeline(table: pd.DataFrame, *, where: Mapping[str, Any] | None = None, relative: bool = False,
                   ax: Axes | None = None, title: str | None = None) -> Figure:
    """One decode step, layer by layer: each layer's span, with the busy time of each resource.

    Columns: ``layer``, ``start_s``, ``end_s``, and whichever of ``attention_s``, ``gpu_busy_s``,
    ``pim_busy_s``, ``pim_experts_s`` and ``link_s`` are present. Each layer is a band (first layer on top): a grey bar
    from ``start_s`` to ``end_s`` and, stacked within the band, one bar per component starting at the
    layer's start, as long as the component kept its resource busy (the table holds durations, not
    start times, of the components). ``relative`` starts every layer at 0 instead, so layers that are
    short next to the whole step can be compared. A table with several steps or GPUs must be narrowed
    with ``where``, e.g. ``where={"step": 0, "gpu": 0}``: each layer may appear once.
    """
    table = _select(_require(table, ["layer", "start_s", "end_s"], "layer_timeline"), where, "layer_timeline")
    if table["layer"].duplicated().any():
        extra = [c for c in ("step", "gpu") if c in table.columns]
        raise ValueError(f"layer_timeline: several rows per layer; select one step (and GPU) with where=, "
                         f"by {extra or 'a column that tells them apart'}")
    table = table.sort_values("layer")
    parts = [c for c in TIMELINE_PARTS if c in table.columns]
    fig, (a,) = _panels(ax, 1, "layer_timeline", size=(8.0, min(12.0, 0.3 * len(table) + 1.5)))
    y = np.arange(len(table), dtype=float)
    start = table["start_s"].to_numpy(float)
    span = table["end_s"].to_numpy(float) - start
    if relative:
        start = np.zeros_like(start)
    a.barh(y, span, left=start, height=0.9, color="0.85", label="layer")
    slot = 0.8 / max(1, len(parts))
    for i, col in enumerate(parts):
        offset = -0.4 + slot * (i + 0.5)
        a.barh(y + offset, table[col].to_numpy(float), left=start, height=slot * 0.9,
               color=_TIMELINE_COLORS[col], label=TIMELINE_PARTS[col])
    a.set_yticks(y, [str(v) for v in table["layer"]], fontsize=7)
    a.invert_yaxis()
    a.set_ylabel("layer")
    a.set_xlabel("time since the layer started (s)" if relative else "time (s)")
    a.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    _title(fig, [a], title)
    return fig


#: Colour of each kind of task on a task timeline (the critical-path kinds of sieve.runtime.graph.KINDS).
TASK_KIND_COLORS = {"pim_attention": "tab:purple", "pim_experts": "tab:green", "handoff": "tab:olive",
                    "gpu_experts": "tab:blue", "gpu_other": "tab:cyan", "nvlink": "tab:orange", "sched": "tab:red"}
TASK_KIND_LABELS = {"pim_attention": "PIM attention", "pim_experts": "PIM experts", "handoff": "hand-off",
                    "gpu_experts": "GPU experts", "gpu_other": "other GPU work", "nvlink": "NVLink",
                    "sched": "scheduler"}
_TASK_LANES = {"gpu": "GPU compute", "pim": "PIM channels", "sched": "scheduler", "nvlink": "NVLink"}


def _time_unit(span_s: float) -> tuple[float, str]:
    """(scale, unit) that shows ``span_s`` seconds as a readable number: µs below 2 ms, else ms."""
    return (1e6, "µs") if span_s < 2e-3 else (1e3, "ms")


def task_timeline(tasks: pd.DataFrame, *, step: int = 0, gpu: int = 0, ax: Axes | None = None,
                  title: str | None = None) -> Figure:
    """The tasks of one decode step on one GPU's resources, coloured by kind, the critical path in full colour.

    Columns: ``step``, ``gpu`` (-1 for a collective), ``resource``, ``kind``, ``start_s``, ``end_s``,
    ``critical`` (the table of :attr:`sieve.runtime.RunResult.tasks`). One row per resource (GPU compute, PIM
    channels, scheduler, NVLink); tasks off the critical path are drawn pale. Time in µs or ms from the
    step's start."""
    table = _require(tasks, ["step", "gpu", "resource", "kind", "start_s", "end_s", "critical"], "task_timeline")
    table = table[(table["step"] == step) & table["gpu"].isin([gpu, -1]) & (table["end_s"] > table["start_s"])]
    if table.empty:
        raise ValueError(f"task_timeline: no task of step {step} on GPU {gpu} takes time")
    t0 = float(table["start_s"].min())
    scale, unit = _time_unit(float(table["end_s"].max()) - t0)
    lanes = [r for r in _TASK_LANES if (table["resource"] == r).any()]
    fig, (a,) = _panels(ax, 1, "task_timeline", size=(10.0, 0.55 * len(lanes) + 1.6))
    for y, resource in enumerate(lanes):
        rows = table[table["resource"] == resource]
        for critical, alpha in ((False, 0.3), (True, 1.0)):
            part = rows[rows["critical"] == critical]
            if part.empty:
                continue
            a.barh(np.full(len(part), y), (part["end_s"] - part["start_s"]).to_numpy(float) * scale,
                   left=(part["start_s"].to_numpy(float) - t0) * scale, height=0.7 if critical else 0.5,
                   color=[TASK_KIND_COLORS[k] for k in part["kind"]], alpha=alpha, linewidth=0)
    a.set_yticks(range(len(lanes)), [_TASK_LANES[r] for r in lanes])
    a.invert_yaxis()
    a.set_xlabel(f"time since the step started ({unit})")
    a.set_xlim(0, (float(table["end_s"].max()) - t0) * scale)
    from matplotlib.patches import Patch

    handles = [Patch(color=c, label=TASK_KIND_LABELS[k]) for k, c in TASK_KIND_COLORS.items()]
    handles += [Patch(color="0.3", label="on the critical path"), Patch(color="0.3", alpha=0.3, label="off it")]
    a.legend(handles=handles, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    _title(fig, [a], title)
    return fig


def _title(fig: Figure, axes: list[Axes], title: str | None) -> None:
    if title is None:
        return
    if len(axes) == 1:
        axes[0].set_title(title)
    else:
        fig.suptitle(title)
