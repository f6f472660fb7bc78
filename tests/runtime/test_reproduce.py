"""python -m sieve.reproduce: sweeps of the paper's figures, their files, resuming and bad arguments."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd
import pytest

from sieve import reproduce

FAST = ["--batch-sizes", "1,8", "--set", "workload.decode_steps=1", "--jobs", "1"]


def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sieve.reproduce", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def test_points_follow_the_paper():
    import sieve.runtime as rt

    runs = reproduce.points("fig9", "gpt_oss_120b")
    assert len(runs) == 5 * 9
    assert {r[-1] for r in runs} == {f"workload.batch_size={2 ** i}" for i in range(9)}
    for model, gpus, over in (("gpt_oss_120b", 4, False), ("qwen3_5_397b_a17b", 8, True), ("qwen3_30b_a3b", 1, False)):
        cfg = rt.compose(reproduce.points("fig9", model)[0])
        assert (cfg.model.name, cfg.num_gpus, cfg.allow_over_capacity) == (model, gpus, over)
    assert rt.compose(reproduce.points("fig9", "gpt_oss_120b", num_gpus=8)[0]).num_gpus == 8
    assert {r[-2] for r in reproduce.points("fig9", "qwen3_30b_a3b", scheds=["oracle"])} == {"sched=oracle"}
    mixed = reproduce.points("fig11", "qwen3_30b_a3b")
    assert {"workload.prefill.num_requests=2", "workload.prefill.num_requests=8"} <= {r[-1] for r in mixed}


@pytest.mark.slow
def test_fig9_csv_plot_and_resume(tmp_path):
    p = _cli("fig9", "--model", "qwen3_30b_a3b", "--out", str(tmp_path), *FAST, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == [str(tmp_path / f"fig9_qwen3_30b_a3b.{ext}") for ext in ("csv", "png")]
    table = pd.read_csv(tmp_path / "fig9_qwen3_30b_a3b.csv")
    assert list(table.columns[:3]) == ["model", "sched", "batch_size"]
    assert {"tokens_per_s_per_gpu", "tokens_per_s_per_user", "tokens_per_joule"} <= set(table.columns)
    assert set(table["sched"]) == set(reproduce.FIG9_SCHEDS) and len(table) == 10
    assert (table["tokens_per_joule"] > 0).all()
    assert (tmp_path / "fig9_qwen3_30b_a3b.png").stat().st_size > 0
    points = sorted((tmp_path / ".points").glob("*.json"))
    assert len(points) == 10
    # an interrupted sweep: one point is missing; the rerun computes only that one
    kept = {q: q.stat().st_mtime_ns for q in points[1:]}
    points[0].unlink()
    p = _cli("fig9", "--model", "qwen3_30b_a3b", "--out", str(tmp_path), *FAST, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert points[0].exists()
    assert all(q.stat().st_mtime_ns == t for q, t in kept.items())
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "fig9_qwen3_30b_a3b.csv"), table)


@pytest.mark.slow
def test_fig10_and_fig11_tables(tmp_path):
    csv = reproduce.run_figure("fig10", "gpt_oss_120b", tmp_path, batch_sizes=[4], extra=["workload.decode_steps=1"],
                               progress=False)
    t = pd.read_csv(csv)
    assert set(t["sched"]) == {"pimoe", "sieve"} and t.groupby("sched").size().tolist() == [4 * 256, 4 * 256]
    assert {"gpu", "channel", "utilization"} <= set(t.columns)
    csv = reproduce.run_figure("fig11", "qwen3_30b_a3b", tmp_path, batch_sizes=[16], extra=["workload.decode_steps=1"],
                               progress=False)
    t = pd.read_csv(csv)
    assert set(t["prefill_requests"]) == {2}
    assert t.loc[t["sched"] == "noexp", "speedup_over_noexp"].tolist() == [1.0]


@pytest.mark.parametrize("args,message", [
    (["fig9", "--model", "deepseek"], "the paper gives no GPU count for 'deepseek'"),
    (["fig9", "--model", "nope", "--gpus", "1"], "nope"),
    (["fig9", "--batch-sizes", "0,2"], "batch sizes must be positive"),
    (["fig12"], "invalid choice: 'fig12'"),
    (["fig9", "--scheds", "sieve,best"], "unknown scheduler(s) ['best']"),
    (["fig9", "--gpus", "3"], "num_gpus=3 does not divide num_experts=128"),
    (["fig9", "--variant", "sieve"], "--variant 'sieve': expected SCHED:KEY=VALUE"),
    (["fig9", "--variant", "siv:sched.params.alpha=0.3"], "unknown scheduler 'siv'"),
    (["fig9", "--variant", "sieve:sched.params.ema=0.3"], "unknown config key 'sched.params.ema'"),
    (["fig9", "--model", "deepseek", "--gpus", "1"], "GB short per GPU"),
    (["paper", "--model", "qwen3_30b_a3b"], "paper runs the paper's fixed grid; --model cannot change it"),
    (["fig9", "--quick"], "--quick and --readme belong to 'paper'"),
])
def test_bad_arguments(tmp_path, args, message):
    p = _cli(*args, "--out", str(tmp_path), cwd=tmp_path)
    assert p.returncode == 2
    assert message in p.stderr and "Traceback" not in p.stderr
    assert "it/s" not in p.stderr and not list(tmp_path.glob("fig*.csv"))  # refused before the sweep starts


def test_a_variant_is_one_more_labelled_curve(tmp_path):
    p = _cli("fig9", "--model", "qwen3_30b_a3b", "--out", str(tmp_path), "--scheds", "sieve",
             "--variant", "sieve:sched.params.overhead=flat,sched.params.fast_path=false,sched.params.alpha=0.3",
             *FAST, "--no-plot", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    t = pd.read_csv(tmp_path / "fig9_qwen3_30b_a3b.csv").set_index(["sched", "batch_size"])["tpot_s"]
    label = "sieve[overhead=flat,fast_path=false,alpha=0.3]"
    assert set(t.index.get_level_values(0)) == {"sieve", label}
    # 48 MoE layers pay a flat 20 us each instead of at most 2 + 18 * 8 / 256 us (8 experts at B = 1, 64 at 8)
    for b, n in ((1, 8), (8, 64)):
        assert t[label, b] > t["sieve", b] + 47 * (20e-6 - (2e-6 + 18e-6 * n / 256))
    assert reproduce.parse_variant("pimoe:sched.params.overhead_s=2e-5").label == "pimoe[overhead_s=2e-5]"


@pytest.mark.parametrize("flags, plots", [([], True), (["--no-plot"], False)])
def test_paper_draws_its_figures_unless_told_not_to(tmp_path, monkeypatch, flags, plots):
    """`paper --no-plot` writes the CSVs only, as for one figure: each sweep is asked for no figure."""
    asked = []

    class Stop(Exception):
        pass

    def run_figure(*args, plots=True, **kwargs):
        asked.append(plots)
        raise Stop  # the sweep itself is not what is tested

    monkeypatch.setattr(reproduce, "run_figure", run_figure)
    with pytest.raises(Stop):
        reproduce.main(["paper", "--out", str(tmp_path), *flags])
    assert asked == [plots]
