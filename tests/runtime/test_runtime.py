"""The runtime: dependency graph on lanes, hand-checked critical path, tables, determinism, bad input."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

import sieve.runtime as rt
from sieve.pim.attention import attention_time
from sieve.pim.expert import expert_time
from sieve.runtime import ConfigError, Simulation, SimulationError, Timeline
from sieve.system import CapacityError, embedding_time, experts_time, lm_head_time, non_expert_time

TINY = ["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=4", "workload.decode_steps=2",
        "progress=false", "output.plots=false"]


def _key(override):
    return override.split("=", 1)[0].lstrip("+")


def config(*extra):
    """TINY with ``extra`` replacing the entries of the same key."""
    replaced = {_key(o) for o in extra}
    return [o for o in TINY if _key(o) not in replaced] + list(extra)


def run(*extra, record=False):
    cfg = rt.compose(config(*extra, f"output.timeline={str(record).lower()}"))
    sim = rt.simulation_from_config(cfg)
    return sim, sim.run()


# ---- timeline ------------------------------------------------------------------------------------

def test_timeline_places_tasks_in_program_order_when_inputs_and_lanes_are_free():
    tl = Timeline(record=True)
    assert tl.place("a", "x", 3.0) == (0.0, 3.0)
    assert tl.place("b", "y", 1.0, ready_s=1.0) == (1.0, 2.0)
    assert tl.place("c", "x", 1.0, ready_s=2.0) == (3.0, 4.0)        # waits for lane x
    assert tl.place("d", ("x", "y"), 2.0, ready_s=0.0) == (4.0, 6.0)  # a collective waits for the slowest lane
    assert tl.place("e", "y", 0.0, ready_s=9.0) == (9.0, 9.0)         # no time, no span, lane untouched
    assert tl.free_at("y") == 6.0
    assert [s.name for s in tl.spans] == ["a", "b", "c", "d", "d"]
    with pytest.raises(ValueError, match="duration"):
        tl.place("f", "x", -1.0)


# ---- GPU expert cost used by the schedulers ------------------------------------------------------

@pytest.mark.parametrize("model", ["qwen3_30b_a3b", "gpt_oss_120b", "deepseek"])
def test_expert_gemm_cost_is_experts_time(model):
    import sieve.hw
    import sieve.model

    hw, spec = sieve.hw.load("aim"), sieve.model.load(model)
    cost = rt.ExpertGemmCost(hw, spec)
    rng = np.random.default_rng(1)
    for _ in range(20):
        counts = rng.integers(0, 40, size=32) * (rng.random(32) < 0.5)
        assert cost(counts) == pytest.approx(experts_time(hw, spec, counts), rel=1e-12)
    assert cost(np.zeros(8, dtype=np.int64)) == 0.0


# ---- the critical path, by hand --------------------------------------------------------------------

def test_one_gpu_allexp_step_is_the_sum_of_its_chain():
    """1 GPU, allexp: no collective, no scheduler time, so a step is the plain sum of its chain."""
    sim, res = run("sched=allexp", "workload.context_length.distribution=fixed", "workload.context_length.mean=300",
                   "workload.decode_steps=1")
    hw, model = sim.hw, sim.model
    B = sim.workload.batch_size
    ctx = np.full(B, 300)
    expected = embedding_time(hw, model, B)
    for layer in range(model.num_layers):
        ne = non_expert_time(hw, model, layer, B)
        counts = np.bincount(sim.batch.routing[0, layer, :B].ravel(), minlength=model.num_experts)
        pim = sum(expert_time(hw, model, int(n), details=True).busy_seconds for n in counts[counts > 0])
        expected += (ne.attention_projections_s + float(attention_time(hw, model, layer, ctx)) + ne.router_s
                     + hw.gpu.kernel_launch_s + pim + hw.pim.handoff_s)
    expected += lm_head_time(hw, model, B)
    assert res.summary["tpot_s"] == pytest.approx(expected, rel=1e-12)
    assert res.layers["pim_experts_s"].gt(0).all()


def test_scheduler_time_is_on_the_path_of_one_gpu():
    _, free = run("sched=sieve", "sched.params.overhead_s=0")
    _, paid = run("sched=sieve", "sched.params.overhead_s=1e-5", "sched.params.overhead=flat",
                  "sched.params.fast_path=false")
    moe_layers = 48
    assert paid.summary["tpot_s"] - free.summary["tpot_s"] == pytest.approx(moe_layers * 1e-5, rel=1e-6)
    # scaled: each layer pays the B200's 2 µs launch + 18 µs x (activated experts) / 256, the same placements
    _, scaled = run("sched=sieve", "sched.params.fast_path=false")
    moe = scaled.layers[scaled.layers["kind"] == "moe"]
    assert (moe["experts_on_pim"].to_numpy() == free.layers[free.layers["kind"] == "moe"]["experts_on_pim"].to_numpy()).all()
    per_step = ((2e-6 + 18e-6 * moe["experts_active"] / 256).groupby(moe["step"]).sum()).mean()
    assert scaled.summary["tpot_s"] - free.summary["tpot_s"] == pytest.approx(per_step, rel=1e-6)


def _spans(res, name, step=0):
    return [s for s in res.timeline.spans if s.name == name and s.step == step and not s.lane.endswith("/memory")]


def test_dependency_graph_of_a_moe_layer_on_four_gpus():
    """GPT-OSS on 4 GPUs: every edge of the layer graph holds on the recorded timeline."""
    _, res = run("+model=gpt_oss_120b", "num_gpus=4", "workload.batch_size=16", "workload.decode_steps=1",
                 "sched=sieve", record=True)
    for layer in range(36):
        by = lambda name, g=None: [s for s in _spans(res, name) if s.layer == layer
                                   and (g is None or s.lane.startswith(f"gpu{g}/"))]
        routers = by("router")
        gather = by("routing AllGather")
        assert len(routers) == 4 and len(gather) == 8  # send and receive lane of every GPU
        assert gather[0].start_s == pytest.approx(max(s.end_s for s in routers))
        meta = by("grouped-GEMM metadata")
        assert all(m.start_s == pytest.approx(gather[0].end_s) for m in meta)
        dispatch = by("dispatch")
        assert dispatch[0].start_s == pytest.approx(max(m.end_s for m in meta))
        ends = []
        for g in range(4):
            sched = by("sieve placement", g)  # none when the fast path ran no scheduler kernel
            for s in sched:
                assert s.start_s == pytest.approx(by("grouped-GEMM metadata", g)[0].end_s)
            go = max([dispatch[0].end_s, *(s.end_s for s in sched)])
            for name in ("GPU experts", "PIM experts"):
                for s in by(name, g):
                    assert s.start_s >= go - 1e-15
                    ends.append(s.end_s)
        combine = by("combine")
        assert combine[0].start_s == pytest.approx(max(ends))
        nxt = [s for s in _spans(res, "attention projections") if s.layer == layer + 1]
        for s in nxt:
            assert s.start_s >= combine[0].end_s - 1e-15


def test_link_time_matches_the_nvlink_model():
    sim, res = run("+model=gpt_oss_120b", "num_gpus=4", "workload.batch_size=16", "workload.decode_steps=1",
                   "sched=allexp", record=True)
    span = _spans(res, "routing AllGather")[0]
    from sieve.system import routing_allgather_time

    assert span.duration_s == pytest.approx(routing_allgather_time(sim.hw, sim.model, [4, 4, 4, 4]))
    assert res.layers["link_s"].gt(0).all()


# ---- policies in the runtime -----------------------------------------------------------------------

def test_policies_put_work_where_they_say():
    _, gpu_only = run("sched=gpu_only")
    assert gpu_only.summary["pim_busy"] == 0 and gpu_only.summary["pim_expert_share"] == 0
    assert set(gpu_only.layers["attention_on"]) == {"gpu"}
    _, noexp = run("sched=noexp")
    assert noexp.summary["pim_expert_share"] == 0 and set(noexp.layers["attention_on"]) == {"pim"}
    _, allexp = run("sched=allexp")
    assert allexp.summary["pim_expert_share"] == 1.0 and (allexp.experts["where"] == "pim").all()


def test_sieve_sends_the_hot_experts_to_the_gpu_at_large_batch():
    _, res = run("sched=sieve", "workload.batch_size=256", "workload.decode_steps=1")
    ex = res.experts
    assert 0 < res.summary["pim_expert_share"] < 1
    assert ex[ex["where"] == "gpu"]["tokens"].mean() > 2 * ex[ex["where"] == "pim"]["tokens"].mean()


def test_pimoe_channels_differ_and_sieve_channels_do_not():
    _, pimoe = run("sched=pimoe", "workload.batch_size=16", "workload.decode_steps=1")
    _, sieve = run("sched=sieve", "workload.batch_size=16", "workload.decode_steps=1")
    spread = lambda r: r.channels["expert_busy_s"].max() / max(r.channels["expert_busy_s"].mean(), 1e-30)
    assert spread(pimoe) > 1.5
    assert spread(sieve) == pytest.approx(1.0)


def test_mixed_batches_carry_prompt_tokens_and_prefill_attention():
    _, res = run("workload=mixed", "workload.batch_size=8", "workload.prefill.num_requests=2",
                 "workload.decode_steps=1", "sched=sieve", record=True)
    step = res.steps.iloc[0]
    assert step["decode_tokens"] == 6 and step["prefill_tokens"] > 2
    assert res.layers["tokens"].sum() > 8 * 8 * 48  # every prompt token is routed to top-k experts too
    assert len(_spans(res, "prefill attention")) == 48


# ---- tables and determinism ----------------------------------------------------------------------

def test_tables_and_summary():
    _, res = run("sched=sieve")
    s = res.summary
    for key in ("model", "hw", "sched", "batch_size", "num_gpus", "tpot_s", "tokens_per_s_per_gpu",
                "tokens_per_s_per_user", "gpu_busy", "pim_busy", "nvlink_busy", "pim_expert_share", "pim_token_share"):
        assert key in s
    assert s["tokens_per_s_per_user"] == pytest.approx(1 / s["tpot_s"])
    assert s["tokens_per_s_per_gpu"] == pytest.approx(4 / s["tpot_s"])
    assert len(res.layers) == 2 * 48 and len(res.channels) == 256 and len(res.steps) == 2
    assert (res.layers["end_s"] >= res.layers["start_s"]).all()
    assert res.steps["time_s"].sum() == pytest.approx(s["tpot_s"] * 2)
    assert set(res.experts["where"]) <= {"pim", "gpu"}
    assert 0 <= s["pim_busy"] <= 1 and 0 <= s["gpu_busy"] <= 1


def test_repr_is_the_summary_not_the_tables():
    _, result = run("sched=sieve")
    text = repr(result)
    assert text.startswith("<RunResult") and "time per output token" in text and "layers 96x" in text
    assert len(text.splitlines()) < 14  # a dozen summary lines, never a table
    assert repr(result.simulation) == "<Simulation qwen3_30b_a3b on 1 x aim, sched=sieve, B=4, 2 decode steps>"


def test_same_seed_same_bits_other_seed_other_numbers():
    _, a = run("sched=sieve")
    _, b = run("sched=sieve")
    _, c = run("sched=sieve", "workload.seed=7")
    for name in rt.TABLES:
        pd.testing.assert_frame_equal(a.tables[name], b.tables[name], check_exact=True)
    assert a.summary == b.summary
    assert a.summary["tpot_s"] != c.summary["tpot_s"]


def test_deepseek_runs_with_its_fallback_routing():
    cfg = rt.compose(["+hw=aim", "+model=deepseek", "workload.batch_size=8", "workload.decode_steps=1",
                      "progress=false"])
    sim = rt.simulation_from_config(cfg)
    assert sim.num_gpus == 8  # the fewest GPUs that hold 671B parameters in FP8
    res = sim.run()
    assert res.summary["routing"] == "zipf(s=1.0)"
    assert (res.layers[res.layers["layer"] < 3]["kind"] == "dense").all()


# ---- bad input -----------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides,message", [
    (["sched=nope"], "sched=nope is not an option; sched options: allexp.*sieve"),
    (["+hw=nope"], "hw=nope is not an option; hw options: aim, gddr6_aim"),
    (["workload.batch_size=0"], "batch_size=0 is invalid; allowed: an integer >= 1"),
    (["num_gpus=3"], "num_gpus=3 does not divide num_experts=128.*valid num_gpus.*1, 2, 4, 8"),
    (["num_gpus=256"], "num_gpus=256 exceeds num_experts=128"),
    (["num_gpu=2"], "unknown config key 'num_gpu'; the top level has: .*num_gpus.*did you mean 'num_gpus'"),
    (["workload.batch_sise=2"], "unknown config key 'workload.batch_sise'.*did you mean 'workload.batch_size'"),
    # "+" adds keys anywhere in Hydra; only the maps whose owners check names may take new ones
    (["+workload.context=5"], "unknown config key 'workload.context'; 'workload' has: .*context_length"),
    (["+model.top_kk=2"], "unknown config key 'model.top_kk'.*did you mean 'model.top_k'"),
    (["+output.fmt=x"], "unknown config key 'output.fmt'; 'output' has: tables, plots"),
    (["+nun_gpus=2"], "unknown config key 'nun_gpus'.*did you mean 'num_gpus'"),
    (["sched.params.ema=2"], "unknown config key 'sched.params.ema'; 'sched.params' has: alpha"),
    (["+sched.params.ema=2"], "scheduler 'sieve' has no parameter 'ema'; it takes: alpha"),
    (["hw.gpu.peak=3"], "unknown config key 'hw.gpu.peak'; 'hw.gpu' has: name, bf16_flops"),
    (["workload.batch_size=abc"], "workload.batch_size=abc is invalid; allowed: an integer"),
    (["workload.context_length.sigma=wide"], "workload.context_length.sigma=wide is invalid; allowed: a number"),
    (["output.plots=maybe"], "output.plots='maybe' is invalid; allowed: true or false"),
    (["output.tables=xlsx"], "output.tables='xlsx' is invalid; allowed: csv, parquet"),
    (["workload=base_workload"], "workload config lacks 'name': pick a workload \\(decode, mixed\\)"),
    (["+experiment=paper_gpt_oss_120b"], "model is chosen twice .* write model=<option> without '\\+'"),
    (["num_gpus=lots"], "num_gpus='lots' is invalid"),
    (["workload.routing.family=trace", "workload.routing.trace=/nonexistent.npz"], "no such file"),
])
def test_bad_configs_name_the_value_and_the_choices(overrides, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        cfg = rt.compose(config(*overrides))
        rt.simulation_from_config(cfg)


def test_missing_model_lists_the_presets():
    with pytest.raises(ConfigError, match="no model chosen: add \\+model=<preset>.*qwen3_30b_a3b"):
        rt.compose(["+hw=aim"])


def test_a_model_that_does_not_fit_says_by_how_much():
    with pytest.raises(CapacityError, match=r"deepseek on 1 x aim does not fit: .* GB short per GPU"):
        rt.simulation_from_config(rt.compose(["+hw=aim", "+model=deepseek", "num_gpus=1"]))


def test_over_capacity_runs_with_a_warning(caplog):
    cfg = rt.compose(["+hw=aim", "+model=qwen3_5_397b_a17b", "num_gpus=8", "allow_over_capacity=true",
                      "workload.batch_size=8", "workload.decode_steps=1", "progress=false"])
    with caplog.at_level("WARNING"):
        sim = rt.simulation_from_config(cfg)
    assert "does not fit" in caplog.text and "running anyway" in caplog.text
    assert sim.memory.total > sim.memory.capacity


def test_short_routing_trace_is_refused(tmp_path):
    import sieve.model
    import sieve.routing

    path = tmp_path / "r.npz"
    sieve.routing.save_trace(path, sieve.routing.generate("qwen3_30b_a3b", 2, 1, seed=0), "qwen3_30b_a3b")
    with pytest.raises(SimulationError, match="has 1 steps x 2 tokens; this workload needs 2 steps x 4 tokens"):
        rt.simulation_from_config(rt.compose([*TINY, "workload.routing.family=trace",
                                              f"workload.routing.trace={path}"]))


# ---- the command -----------------------------------------------------------------------------------

def _cli(*args, cwd):
    return subprocess.run([sys.executable, "-m", "sieve.run", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=300)


def test_command_writes_the_run_directory(tmp_path):
    out = tmp_path / "run"
    p = _cli(*config("output.plots=true"), "output.timeline=true",
             "output.timeline_dram=true", f"hydra.run.dir={out}", cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    assert "time per output token" in p.stdout and "tokens/s/GPU" in p.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "qwen3_30b_a3b" and summary["num_gpus"] == 1
    for name in ("layers.csv", "channels.csv", "experts.csv", "steps.csv", "config.yaml", "channels.png",
                 "layers.png", "timeline.json"):
        assert (out / name).stat().st_size > 0, name
    assert pd.read_csv(out / "layers.csv").shape[0] == 2 * 48
    assert not list(out.glob(".partial-*"))


def test_cfg_checks_keys_too(tmp_path):
    p = _cli("+hw=aim", "+model=qwen3_30b_a3b", "workload.batch_sise=2", "--cfg", "job", cwd=tmp_path)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert "unknown config key 'workload.batch_sise'" in p.stderr
    p = _cli("+hw=aim", "+model=qwen3_30b_a3b", "--cfg", "job", cwd=tmp_path)
    assert p.returncode == 0 and "batch_size: 64" in p.stdout


def test_two_processes_write_the_same_bytes(tmp_path):
    """Determinism across processes: nothing may depend on hash order, dict order of sets or the clock."""
    import os

    outs = []
    for hash_seed in ("1", "2"):
        out = tmp_path / f"run{hash_seed}"
        p = subprocess.run([sys.executable, "-m", "sieve.run", *config("+model=gpt_oss_120b", "num_gpus=4",
                                                                          "workload.batch_size=16"),
                            f"hydra.run.dir={out}"], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                           env={**os.environ, "PYTHONHASHSEED": hash_seed})
        assert p.returncode == 0, p.stderr
        outs.append(out)
    for name in ("summary.json", "layers.csv", "channels.csv", "experts.csv", "steps.csv"):
        assert (outs[0] / name).read_bytes() == (outs[1] / name).read_bytes(), name


def test_command_errors_are_one_line_with_the_choices(tmp_path):
    p = _cli("+hw=aim", "+model=qwen3_30b_a3b", "sched=siv", cwd=tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    assert "sieve" in p.stderr and "pimoe" in p.stderr
    p = _cli("+hw=aim", "+model=qwen3_30b_a3b", "workload.batch_size=0", cwd=tmp_path)
    assert p.returncode == 2 and "batch_size=0" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "outputs").exists() or not list((tmp_path / "outputs").rglob("summary.json"))


def test_sub_batches_interleave_and_auto_keeps_the_faster():
    _, one = run("sched=sieve", "workload.batch_size=16")
    _, two = run("sched=sieve", "workload.batch_size=16", "sub_batches=2", record=True)
    _, auto = run("sched=sieve", "workload.batch_size=16", "sub_batches=auto")
    assert set(two.layers["sub_batch"]) == {0, 1} and len(two.layers) == 2 * len(one.layers)
    assert two.layers.groupby(["step", "layer"])["tokens"].sum().max() <= 16 * 8
    # the second sub-batch's projections are issued right after the first's, before the first one's attention ends
    proj = [s for s in _spans(two, "attention projections") if s.layer == 5]
    att = [s for s in _spans(two, "attention") if s.layer == 5]
    assert len(proj) == 2 and proj[1].start_s < att[0].end_s
    best = min(one.summary["tpot_s"], two.summary["tpot_s"])
    assert auto.summary["tpot_s"] == best
    assert auto.summary["sub_batches"] == (1 if one.summary["tpot_s"] <= two.summary["tpot_s"] else 2)
    with pytest.raises((ConfigError, SimulationError), match="sub_batches=0 is invalid"):
        run("sub_batches=0")


def test_a_bad_value_in_a_sweep_fails_before_any_job(tmp_path):
    p = _cli("--multirun", *config("workload.batch_size=2,0"), f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert p.returncode == 2 and "batch_size=0" in p.stderr and "Traceback" not in p.stderr
    assert not (tmp_path / "sweep").exists()


def test_a_job_that_fails_alone_reports_one_line(tmp_path):
    # every value is fine with the first value of the other key; only 1024 requests of 30000 tokens do not fit
    p = _cli("--multirun", *config("workload.batch_size=4,1024", "workload.context_length.distribution=fixed",
                                   "workload.context_length.mean=100,30000", "workload.decode_steps=1"),
             f"hydra.sweep.dir={tmp_path}/sweep", cwd=tmp_path)
    assert "Traceback" not in p.stderr
    assert p.returncode != 0 and "does not fit" in p.stderr and "GB short per GPU" in p.stderr


def test_timeline_step_outside_the_run_is_refused_before_simulating():
    with pytest.raises(ConfigError, match=r"output.timeline_step=5 is not a decode step of this run; allowed: 0..1"):
        rt.simulation_from_config(rt.compose(config("output.timeline=true", "output.timeline_step=5")))


def test_a_run_directory_of_another_configuration_is_not_taken_for_this_run(tmp_path):
    out = tmp_path / "run"
    assert _cli(*config("sched=allexp"), f"hydra.run.dir={out}", cwd=tmp_path).returncode == 0
    first = (out / "summary.json").read_bytes()
    same = _cli(*config("sched=allexp", "progress=true"), f"hydra.run.dir={out}", cwd=tmp_path)
    assert same.returncode == 0 and (out / "summary.json").read_bytes() == first  # same run: kept, not redone
    other = _cli(*config("sched=pimoe"), f"hydra.run.dir={out}", cwd=tmp_path)
    assert other.returncode != 0 and "holds a finished run of another configuration" in other.stderr
    assert "Traceback" not in other.stderr and (out / "summary.json").read_bytes() == first


def test_oracle_layers_are_never_slower_than_any_prefix_policy_on_one_gpu():
    """On one GPU a layer's time depends only on its own split, and the oracle tries every hottest-first
    prefix with the runtime's exact expert-phase time: no prefix policy can beat it on any layer (with
    attention where the oracle runs it, on PIM)."""
    _, oracle = run("sched=oracle", "workload.batch_size=64", "workload.decode_steps=1")
    for objective in ("attention_sum", "expert_phase"):
        _, sieve = run("sched=sieve", "sched.params.overhead_s=0", f"sched.params.objective={objective}",
                       "sched.params.attention=pim",
                       "workload.batch_size=64", "workload.decode_steps=1")
        moe = oracle.layers["kind"] == "moe"
        assert (oracle.layers["time_s"][moe].to_numpy() <= sieve.layers["time_s"][moe].to_numpy() + 1e-15).all()
    assert oracle.summary["tpot_s"] < sieve.summary["tpot_s"] * 1.05  # learned costs bring sieve close to it
