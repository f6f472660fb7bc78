"""A run's energy: the work its tasks did, counted independently from the model's shapes, the routing and the
engine's PIM commands, priced by :func:`sieve.system.energy.run_energy`; components add up; same run, same joules."""

from __future__ import annotations

import numpy as np
import pytest

import sieve.runtime as rt
from sieve.pim.attention import attention_time
from sieve.system import RunTotals, run_energy
from sieve.system.energy import COMPONENTS, pim_command_energy, pim_expert_commands

BASE = ["+hw=aim", "+model=qwen3_30b_a3b", "workload.batch_size=4", "workload.decode_steps=1", "progress=false",
        "output.plots=false", "output.timeline=false"]


def _run(*extra):
    sim = rt.simulation_from_config(rt.compose([*BASE, *extra]))
    return sim, sim.run()


def _joules(summary, component=None):
    key = "energy_j_per_token" if component is None else f"energy_{component}_j_per_token"
    return summary[key] * summary["batch_size"] * summary["decode_steps"]


def _gpu_work_by_hand(sim, result):
    """FLOPs and bytes of one decode step of Qwen3-30B-A3B (GQA, every layer MoE, no shared expert) on one GPU,
    attention and experts on the GPU, bf16 weights and activations (2 bytes), from the model's shapes."""
    m = sim.model
    h, E, I, V = m.hidden_size, m.num_experts, m.expert_intermediate_size, m.vocab_size
    qd, kvd = m.num_attention_heads * m.head_dim, m.num_key_value_heads * m.head_dim
    B = sim.workload.batch_size
    ctx = [int(c) for c in sim.batch.context]  # step 0: each request's context as the workload drew it
    assert m.num_shared_experts == 0 and not m.dense_layers and m.attention == "gqa"
    att_params = h * (qd + 2 * kvd) + qd * h  # q, k, v and o
    flops = 2.0 * B * V * h                  # LM head
    nbytes = B * h * (2 + 2) + 2 * V * h + B * (h + V) * 2  # embedding gather, LM head
    for layer in range(m.num_layers):
        flops += 2 * B * att_params + 4 * m.num_attention_heads * m.head_dim * sum(ctx) + 2 * B * E * h
        nbytes += (2 * att_params + 2 * B * 2 * h * 2                  # projections: weights, 2 kernels in and out
                   + 2 * kvd * 2 * sum(ctx) + B * 2 * kvd * 2          # the KV cache read, the new token's written
                   + 2 * E * h + B * (h + E) * 2)                       # router
        tokens = result.experts[result.experts["layer"] == layer]["tokens"].to_numpy()
        T, A = int(tokens.sum()), len(tokens)
        flops += 2 * (2 * I * h + h * I) * T                            # gate+up, down
        nbytes += A * (2 * I * h + h * I) * 2 + T * ((h + 2 * I) + (I + h)) * 2
    return float(flops), float(nbytes)


def test_gpu_only_run_energy_is_its_hand_counted_work_priced():
    sim, result = _run("num_gpus=1", "sched=gpu_only")
    s = result.summary
    assert (result.experts["where"] == "gpu").all() and (result.layers["attention_on"] == "gpu").all()
    flops, nbytes = _gpu_work_by_hand(sim, result)
    seconds = float(result.steps["end_s"].iloc[-1])
    expected = run_energy(sim.hw, RunTotals(seconds=seconds, num_gpus=1, tokens=4, gpu_flops=flops,
                                            gpu_memory_bytes=nbytes))
    assert s["energy_j_per_token"] == pytest.approx(expected.energy_j_per_token, rel=1e-12)
    for c in COMPONENTS:
        assert _joules(s, c) == pytest.approx(getattr(expected, f"{c}_j"), rel=1e-12, abs=1e-18)
    assert _joules(s, "pim_compute") == _joules(s, "pim_act_pre") == _joules(s, "nvlink") == 0.0
    assert s["tokens_per_joule"] == pytest.approx(1 / s["energy_j_per_token"], rel=1e-12)


def test_pim_energy_is_the_engines_commands_of_its_experts_and_attention():
    sim, result = _run("num_gpus=1", "sched=allexp")
    hw, model, s = sim.hw, sim.model, result.summary
    on_pim = result.experts[result.experts["where"] == "pim"]["tokens"]
    assert len(on_pim) and (result.layers["attention_on"] == "pim").all()
    commands = pim_expert_commands(hw, model, on_pim, sim.pim_layout)
    ctx = np.sort(sim.batch.context)
    for layer in range(model.num_layers):
        for name, n in attention_time(hw, model, layer, ctx).total_commands.items():
            commands[name] = commands.get(name, 0) + n
    compute, act_pre, _ = pim_command_energy(hw, commands)
    assert _joules(s, "pim_compute") == pytest.approx(compute, rel=1e-12)
    assert _joules(s, "pim_act_pre") == pytest.approx(act_pre, rel=1e-12)
    assert compute > 0 and act_pre > 0


def test_nvlink_energy_is_the_routing_maps_and_token_vectors_sent():
    sim, result = _run("num_gpus=2", "sched=noexp")
    model, G, B = sim.model, 2, sim.workload.batch_size
    home, owner = sim.batch.home, sim.owner
    sent = 0
    for i in range(len(model.moe_layers)):
        sent += (G - 1) * model.top_k * (4 + 4) * B            # routing AllGather: int32 ids, fp32 weights
        routing = sim.batch.routing[0, i]                        # [token, top_k] experts
        remote = sum(len(set(owner[r].tolist()) - {home[t]}) for t, r in enumerate(routing))
        sent += 2 * remote * model.hidden_size * 2              # dispatch and combine, bf16 vectors
    expected = sent * 8 * sim.hw.link.pj_per_bit * 1e-12
    assert _joules(result.summary, "nvlink") == pytest.approx(expected, rel=1e-12)


def test_components_add_up_and_the_same_run_gives_the_same_joules():
    keys = ["energy_j_per_token", "tokens_per_joule", *(f"energy_{c}_j_per_token" for c in COMPONENTS)]
    a = _run("num_gpus=2", "sched=sieve")[1].summary
    b = _run("num_gpus=2", "sched=sieve")[1].summary
    assert [a[k] for k in keys] == [b[k] for k in keys]
    parts = sum(a[f"energy_{c}_j_per_token"] for c in COMPONENTS)
    assert parts == pytest.approx(a["energy_j_per_token"], rel=1e-12)
    assert all(a[f"energy_{c}_j_per_token"] >= 0 for c in COMPONENTS) and a["energy_static_j_per_token"] > 0


def test_energy_table_and_plot_read_the_summaries_tokens_per_joule():
    import pandas as pd

    from sieve import reproduce
    from sieve.results import plots

    table = pd.DataFrame({"model": ["m"] * 4, "num_gpus": [1] * 4, "sched": ["sieve", "noexp", "sieve", "noexp"],
                          "batch_size": [16, 1, 1, 16], "tokens_per_joule": [12.04, 1.5, 2.0, 0.25],
                          "tokens_per_s_per_user": [10.0, 40.0, 30.0, 20.0]})
    md = reproduce.energy_markdown(table).splitlines()
    assert md[0] == "| model | GPUs | policy | B=1 | B=16 |"
    assert md[2:] == ["| m | 1 | noexp | 1.50 | 0.250 |", "| m | 1 | sieve | 2.00 | 12.0 |"]  # fig9's order
    (ax,) = plots.pareto(table, y="tokens_per_joule").axes
    assert ax.get_ylabel() == "energy efficiency (tokens/J)"
    assert list(ax.lines[1].get_ydata()) == [2.0, 12.04]  # sieve, in batch order
    with pytest.raises(ValueError, match="y='tpot_s' is not drawn"):
        plots.pareto(table, y="tpot_s")
    with pytest.raises(reproduce.ReproduceError, match="--metric 'energy'"):
        reproduce.run_figure("fig10", metric="energy")


def test_hardware_without_an_energy_value_gives_nan_and_says_so():
    import dataclasses
    import math

    from sieve.hw import load
    from sieve.runtime.result import energy_line, energy_summary

    hw = load("aim")
    bare = dataclasses.replace(hw, gpu=dataclasses.replace(hw.gpu, pj_per_flop=None))
    totals = RunTotals(seconds=1e-3, num_gpus=1, tokens=4, gpu_flops=1e9)
    assert all(math.isnan(v) for v in energy_summary(bare, totals).values())
    assert energy_line(energy_summary(bare, totals)).startswith("n/a")
    line = energy_line(energy_summary(hw, totals))
    assert line.startswith(f"{run_energy(hw, totals).energy_j_per_token:.4g} J/token") and "static" in line
