"""Figures from small hand-made tables: what is drawn, in which order, and the errors on bad tables."""

import os
import subprocess
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.colors import to_hex  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from sieve.dram import load_standard  # noqa: E402
from sieve.results import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def serving_table(scheds=("noexp", "pimoe", "sieve"), batch_sizes=(64, 1, 16, 4), models=("m",)):
    """Rows in scrambled batch order; throughput grows and interactivity falls with B."""
    return pd.DataFrame([
        {"model": m, "sched": s, "batch_size": b,
         "tokens_per_s_per_user": 1000.0 / b * (i + 1), "tokens_per_s_per_gpu": 10.0 * b * (i + 1)}
        for m in models for i, s in enumerate(scheds) for b in batch_sizes])


# ---- pareto ---------------------------------------------------------------------------------------


def test_pareto_one_line_per_scheduler_through_points_in_batch_order():
    fig = plots.pareto(serving_table())
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    assert [line.get_label() for line in ax.lines] == ["noexp", "pimoe", "sieve"]
    for i, line in enumerate(ax.lines):
        np.testing.assert_allclose(line.get_xdata(), 1000.0 / np.array([1, 4, 16, 64]) * (i + 1))
        np.testing.assert_allclose(line.get_ydata(), 10.0 * np.array([1, 4, 16, 64]) * (i + 1))
    assert ax.get_xlabel().startswith("interactivity") and ax.get_ylabel().startswith("throughput")
    assert ax.get_xscale() == ax.get_yscale() == "linear"


def test_pareto_known_schedulers_keep_their_colours_others_take_free_ones():
    fig = plots.pareto(serving_table(scheds=("sieve", "mine", "oracle", "gpu_only")))
    colors = {line.get_label(): to_hex(line.get_color()) for line in fig.axes[0].lines}
    for name in ("sieve", "oracle", "gpu_only"):
        assert colors[name] == to_hex(plots.SCHED_COLORS[name])
    assert colors["mine"] not in {to_hex(c) for c in plots.SCHED_COLORS.values()}
    # the order of the known names is fixed, so legends read the same in every figure
    assert [line.get_label() for line in fig.axes[0].lines] == ["gpu_only", "sieve", "oracle", "mine"]


def _overlapping_labels(fig) -> list[tuple[str, str]]:
    """Pairs of point labels whose rendered extents overlap (measured by the Agg renderer)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    texts = [t for ax in fig.axes for t in ax.texts]
    boxes = [t.get_window_extent(renderer) for t in texts]
    return [(texts[i].get_text(), texts[j].get_text()) for i in range(len(boxes)) for j in range(i)
            if boxes[i].overlaps(boxes[j])]


def test_pareto_annotates_batch_sizes_only_for_short_lines():
    fig = plots.pareto(serving_table())
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert set(texts) == {"1", "4", "16", "64"} and len(texts) >= 4  # every batch size, at least once
    assert not _overlapping_labels(fig)
    assert not plots.pareto(serving_table(), annotate=False).axes[0].texts
    long = serving_table(batch_sizes=range(1, 14))
    assert not plots.pareto(long).axes[0].texts
    fig = plots.pareto(long, annotate=True)
    assert {t.get_text() for t in fig.axes[0].texts} <= {str(b) for b in range(1, 14)}
    assert not _overlapping_labels(fig)


def test_pareto_labels_a_batch_size_where_schedulers_meet_once():
    # two schedulers on the same points: "64" once, not "64" printed over "64" (or beside it as "6464")
    table = pd.concat([serving_table(scheds=("noexp",)), serving_table(scheds=("noexp",)).assign(sched="pimoe")])
    texts = sorted(t.get_text() for t in plots.pareto(table).axes[0].texts)
    assert texts == ["1", "16", "4", "64"]


def test_pareto_one_panel_per_model_and_log_axes():
    fig = plots.pareto(serving_table(models=("a", "b")), log=True, title="t")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    assert all(len(ax.lines) == 3 and ax.get_xscale() == ax.get_yscale() == "log" for ax in fig.axes)
    assert fig.get_suptitle() == "t"


def test_pareto_averages_repeated_points():
    table = pd.concat([serving_table(scheds=("sieve",)), serving_table(scheds=("sieve",)).assign(
        tokens_per_s_per_gpu=lambda t: t.tokens_per_s_per_gpu * 3)])
    line = plots.pareto(table).axes[0].lines[0]
    np.testing.assert_allclose(line.get_ydata(), 20.0 * np.array([1, 4, 16, 64]))


def test_pareto_draws_on_a_given_ax_and_refuses_several_models_on_one():
    fig, ax = plt.subplots()
    assert plots.pareto(serving_table(), ax=ax, title="x") is fig
    assert len(ax.lines) == 3 and ax.get_title() == "x"
    with pytest.raises(ValueError, match="needs 2 panels"):
        plots.pareto(serving_table(models=("a", "b")), ax=ax)


def test_pareto_front_by_hand():
    table = pd.DataFrame(
        [("a", 1.0, 10.0),   # front: best throughput, and beats the next row
         ("a", 0.5, 10.0),   # same throughput, less interactive: dominated by the row above
         ("a", 2.0, 9.0),    # front
         ("a", 2.0, 8.0),    # dominated by (2, 9)
         ("a", 3.0, 1.0),    # front: most interactive
         ("a", 3.0, 1.0),    # its equal: kept too
         ("a", np.nan, 99.0),  # incomplete: never optimal
         ("b", 1.0, 1.0)],   # alone in its model: optimal although model a beats it
        columns=["model", "tokens_per_s_per_user", "tokens_per_s_per_gpu"], index=list("pqrstuvw"))
    front = plots.pareto_front(table)
    pd.testing.assert_frame_equal(front, table.loc[["p", "r", "t", "u", "w"]])
    whole = plots.pareto_front(table.drop(columns="model"))
    assert list(whole.index) == ["p", "r", "t", "u"]


# ---- channels -------------------------------------------------------------------------------------


def channel_table():
    rows = []
    for gpu in (0, 1):
        for sched, level in (("pimoe", 0.2), ("sieve", 0.6)):
            for channel in range(4):
                for layer in (0, 1):  # two layers per channel: averaged
                    rows.append({"gpu": gpu, "sched": sched, "channel": channel, "layer": layer,
                                 "utilization": level + 0.1 * channel + 0.1 * layer + gpu})
    return pd.DataFrame(rows)


def test_channel_utilization_one_panel_per_scheduler_one_bar_per_channel():
    fig = plots.channel_utilization(channel_table())
    assert [ax.get_title() for ax in fig.axes] == ["pimoe", "sieve"]
    assert fig.axes[0].get_shared_y_axes().joined(fig.axes[0], fig.axes[1])
    for ax, level in zip(fig.axes, (0.2, 0.6)):
        heights = [p.get_height() for p in ax.patches]
        np.testing.assert_allclose(heights, level + 0.05 + 0.1 * np.arange(4))
        assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "3"]


def test_channel_utilization_labels_every_channel_only_when_few():
    many = pd.DataFrame({"channel": range(128), "utilization": 0.5})
    (ax,) = plots.channel_utilization(many).axes
    assert len(ax.get_xticks()) < 20
    # 128 bars a pixel wide alias into moire: one filled step outline of every channel's value instead
    (steps,) = ax.patches
    values, edges, _ = steps.get_data()
    assert list(values) == [0.5] * 128 and list(edges) == [c - 0.5 for c in range(129)]


def test_channel_utilization_picks_the_gpu_and_needs_no_sched():
    fig = plots.channel_utilization(channel_table(), gpu=1)
    assert fig.axes[0].patches[0].get_height() == pytest.approx(1.25)
    single = channel_table().query("sched == 'sieve'").drop(columns=["sched", "gpu"])
    fig = plots.channel_utilization(single)
    assert len(fig.axes) == 1 and len(fig.axes[0].patches) == 4
    with pytest.raises(ValueError, match=r"gpu=5 not in the table; it has \[0, 1\]"):
        plots.channel_utilization(channel_table(), gpu=5)


# ---- routing --------------------------------------------------------------------------------------


def routing_table():
    rows = []
    for model in ("z_model", "a_model"):  # table order, not alphabetical, orders the groups
        for b in (64, 4, 16):
            single = 64 / (b + 64)
            rows.append({"model": model, "batch_size": b, "frac_1": single, "frac_2": (1 - single) / 2,
                         "frac_3_4": (1 - single) / 4, "frac_gt4": (1 - single) / 4,
                         "act_ratio": min(1.0, b / 64)})
    return pd.DataFrame(rows)


def test_token_histogram_four_stacked_bins_per_model_and_batch():
    fig = plots.token_histogram(routing_table())
    (ax,) = fig.axes
    assert [c.get_label() for c in ax.containers] == ["N=1", "N=2", "N=3–4", "N>4"]
    assert all(len(c.patches) == 6 for c in ax.containers)
    tops = np.array([[p.get_y() + p.get_height() for p in c.patches] for c in ax.containers])
    np.testing.assert_allclose(tops[-1], 1.0)
    np.testing.assert_allclose([p.get_height() for p in ax.containers[0].patches],
                               [64 / (b + 64) for b in (4, 16, 64) * 2])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["B=4", "B=16", "B=64"] * 2
    assert [t.get_text() for t in ax.texts] == ["z_model", "a_model"]


def test_act_ratio_one_line_per_model_on_a_log2_axis():
    (ax,) = plots.act_ratio(routing_table()).axes
    assert [line.get_label() for line in ax.lines] == ["z_model", "a_model"]
    np.testing.assert_array_equal(ax.lines[0].get_xdata(), [4, 16, 64])
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1 / 16, 1 / 4, 1.0])
    assert ax.get_xscale() == "log" and ax.xaxis.get_transform().base == 2


# ---- banks and commands ---------------------------------------------------------------------------


def bank_table():
    """utilization_over_time's layout for 2 channels x 2 banks and 3 bins."""
    rows = []
    for channel in range(2):
        for bank in range(2):
            for b in range(3):
                rows.append({"bin": b, "start_ck": 100.0 * b, "channel": channel, "pseudochannel": 0,
                             "sid": 0, "bankgroup": 0, "bank": bank, "ACT": channel + b, "PRE": bank,
                             "RD": 10 * b, "REF": int(b == 2), "utilization": 0.1 * (2 * channel + bank) + b})
    return pd.DataFrame(rows)


def _image(fig):
    return fig.axes[0].images[0].get_array()


def test_bank_heatmap_banks_by_bins():
    fig = plots.bank_heatmap(bank_table())
    assert len(fig.axes) == 2  # the heatmap and its colour bar
    expected = np.array([[0.1 * k + b for b in range(3)] for k in range(4)])
    np.testing.assert_allclose(_image(fig), expected)
    assert "channel, pseudochannel, sid, bankgroup, bank" in fig.axes[0].get_ylabel()
    assert "100 CK" in fig.axes[0].get_xlabel()


def test_bank_heatmap_commands_by_name_list_and_class():
    table = bank_table()
    np.testing.assert_array_equal(_image(plots.bank_heatmap(table, value="ACT", where={"channel": 1})),
                                  [[1, 2, 3], [1, 2, 3]])
    np.testing.assert_array_equal(_image(plots.bank_heatmap(table, value=["ACT", "PRE"], where={"channel": 0})),
                                  [[0, 1, 2], [1, 2, 3]])
    # HBM3 row commands: ACT, PRE, PREA, RDA, WRA (a class needs all its columns, as the real table has)
    table = table.assign(PREA=0, WR=0, RDA=0, WRA=0)
    row = plots.bank_heatmap(table, value="row", standard="hbm3", where={"channel": 0})
    np.testing.assert_array_equal(_image(row), [[0, 1, 2], [1, 2, 3]])
    refresh = plots.bank_heatmap(table, value="refresh", standard=load_standard("hbm3"))
    np.testing.assert_array_equal(_image(refresh), [[0, 0, 1]] * 4)
    with pytest.raises(ValueError, match="command class; pass standard="):
        plots.bank_heatmap(table, value="data")
    with pytest.raises(ValueError, match=r"no rows with \{'channel': 7\}"):
        plots.bank_heatmap(table, where={"channel": 7})


def test_bank_heatmap_of_a_real_run():
    from sieve.dram import Device
    from sieve.dram.requests import run_requests
    from sieve.dram.stats import utilization_over_time
    from sieve.dram.tracegen import generate

    hbm3 = Device("hbm3")
    _, log = run_requests(hbm3, generate("seq", 2048, hbm3), refresh="allbank", log=True)
    util = utilization_over_time(log, bin_ck=100.0)
    fig = plots.bank_heatmap(util, value="data", standard=hbm3.standard, where={"channel": 0})
    image = _image(fig)
    assert image.shape == (64, util["bin"].max() + 1)
    assert image.sum() == util.loc[util.channel == 0, ["RD", "WR", "RDA", "WRA"]].to_numpy().sum()


def test_command_mix_bars_most_frequent_on_top_without_zeros():
    (ax,) = plots.command_mix({"ACT": 5, "RD": 40, "PRE": 0, "REF": 2}, log=True).axes
    assert [t.get_text() for t in ax.get_yticklabels()] == ["REF", "ACT", "RD"]  # bottom to top
    assert [p.get_width() for p in ax.patches] == [2, 5, 40]
    assert ax.get_xscale() == "log"
    (ax,) = plots.command_mix(pd.Series({"MAC": 3})).axes
    assert len(ax.patches) == 1
    with pytest.raises(ValueError, match="no command has a count above zero"):
        plots.command_mix({"ACT": 0})
    with pytest.raises(ValueError, match="must be >= 0"):
        plots.command_mix({"ACT": -1})


# ---- runtime --------------------------------------------------------------------------------------


def timeline_table():
    return pd.DataFrame({"step": [0] * 3 + [1] * 3, "layer": [2, 0, 1] * 2,
                         "start_s": [2.0, 0.0, 1.0, 3.0, 4.0, 5.0], "end_s": [2.9, 0.8, 1.7, 3.9, 4.8, 5.7],
                         "gpu_busy_s": [0.5, 0.4, 0.3] * 2, "link_s": [0.1, 0.2, 0.05] * 2})


def test_layer_timeline_a_band_per_layer_with_its_components():
    (ax,) = plots.layer_timeline(timeline_table(), where={"step": 0}).axes
    span, gpu, link = ax.containers
    assert [c.get_label() for c in ax.containers] == ["layer", "GPU busy", "NVLink"]
    np.testing.assert_allclose([p.get_x() for p in span.patches], [0.0, 1.0, 2.0])  # layers in order
    np.testing.assert_allclose([p.get_width() for p in span.patches], [0.8, 0.7, 0.9])
    np.testing.assert_allclose([p.get_width() for p in gpu.patches], [0.4, 0.3, 0.5])
    np.testing.assert_allclose([p.get_x() for p in link.patches], [0.0, 1.0, 2.0])
    assert [t.get_text() for t in ax.get_yticklabels()] == ["0", "1", "2"]
    (ax,) = plots.layer_timeline(timeline_table(), where={"step": 1}, relative=True).axes
    assert all(p.get_x() == 0.0 for p in ax.patches)
    np.testing.assert_allclose([p.get_width() for p in ax.containers[0].patches], [0.8, 0.7, 0.9])


def test_layer_timeline_needs_only_start_and_end_and_one_row_per_layer():
    table = timeline_table()[["step", "layer", "start_s", "end_s"]]
    (ax,) = plots.layer_timeline(table, where={"step": 1}).axes
    assert len(ax.containers) == 1 and len(ax.patches) == 3
    with pytest.raises(ValueError, match="several rows per layer.*where=.*step"):
        plots.layer_timeline(table)


# ---- bad tables -----------------------------------------------------------------------------------


@pytest.mark.parametrize("func, needs", [
    (plots.pareto, "tokens_per_s_per_gpu"),
    (plots.pareto_front, "tokens_per_s_per_gpu"),
    (plots.channel_utilization, "utilization"),
    (plots.token_histogram, "frac_gt4"),
    (plots.act_ratio, "act_ratio"),
    (plots.bank_heatmap, "bin"),
    (plots.layer_timeline, "end_s"),
])
def test_missing_columns_are_named_with_the_columns_present(func, needs):
    table = pd.DataFrame({"model": ["m"], "wrong": [1.0]})
    with pytest.raises(ValueError, match=rf"{func.__name__}: table lacks column\(s\) \[.*'{needs}'.*\]; "
                                         rf"it has \['model', 'wrong'\]"):
        func(table)


def test_empty_tables_and_non_tables_are_refused():
    with pytest.raises(ValueError, match="no rows"):
        plots.pareto(serving_table().iloc[:0])
    with pytest.raises(ValueError, match="expected a pandas DataFrame, got dict"):
        plots.act_ratio({"model": ["m"]})
    with pytest.raises(ValueError, match=r"lacks column\(s\) \['MAC'\]"):
        plots.bank_heatmap(bank_table(), value="MAC")


def test_importing_plots_needs_neither_pyplot_nor_a_display():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MPLBACKEND", "WAYLAND_DISPLAY")}
    code = ("import sys, pandas as pd, sieve.results.plots as p; "
            "fig = p.act_ratio(pd.DataFrame({'model': ['m'], 'batch_size': [1], 'act_ratio': [0.5]})); "
            "fig.savefig(sys.argv[1], format='png'); "
            "assert 'matplotlib.pyplot' not in sys.modules")
    out = subprocess.run([sys.executable, "-c", code, os.devnull], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_speedup_bars_one_bar_per_scheduler_and_batch():
    from sieve.results.plots import speedup_bars

    table = pd.DataFrame({"sched": ["noexp", "sieve", "noexp", "sieve"], "batch_size": [16, 16, 32, 32],
                          "speedup_over_noexp": [1.0, 2.4, 1.0, 2.3]})
    fig = speedup_bars(table)
    (ax,) = fig.axes
    assert len(ax.patches) == 4
    heights = sorted(round(p.get_height(), 3) for p in ax.patches)
    assert heights == [1.0, 1.0, 2.3, 2.4]
    with pytest.raises(ValueError, match="speedup_bars: table lacks"):
        speedup_bars(table.drop(columns="sched"))
