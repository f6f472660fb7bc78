"""The runtime's task graph and its placement, on layers derived by hand.

Durations are whole numbers of seconds given per task (not from sieve's models), so every start and end
below is exact and was worked out on paper from the rules of :mod:`sieve.runtime.placement`: a task
starts when the tasks it waits for have ended and its lane is free; a skipped task passes on its ready time.
"""

from dataclasses import replace

import numpy as np
import pytest

from sieve.runtime.graph import DENSE_LAYER, MOE_LAYER, START, Graph, Task, describe
from sieve.runtime.placement import Lanes, Placer, Ref, place
from sieve.runtime.critical import layer_chain
from sieve.runtime.timeline import Timeline


class TableCosts:
    """Durations from a table: ``{task: d}`` for every GPU, or ``{task: [d_gpu0, d_gpu1, ...]}``."""

    notify = frozenset()

    def __init__(self, table, skip=("GPU attention", "prefill attention")):
        self.table, self.skip = table, set(skip)

    def runs(self, task, k, g):
        return task.name not in self.skip

    def duration(self, task, k, g, ready_s, done):
        d = self.table[task.name]
        return float(d[g] if isinstance(d, list) else d)

    def weight_bytes(self, task, k, g):
        return 0.0

    def placed(self, task, k, g, placed):
        pass


ONE_GPU = {"attention projections": 2, "PIM attention": 5, "router": 1, "routing AllGather": 0,
           "grouped-GEMM metadata": 1, "dispatch": 0, "scheduler": 3, "shared experts": 4, "GPU experts": 6,
           "PIM experts": 10, "combine": 0}

TWO_GPUS = {"attention projections": [2, 3], "PIM attention": [5, 2], "router": [1, 1], "routing AllGather": 1,
            "grouped-GEMM metadata": [1, 1], "dispatch": 2, "scheduler": [3, 1], "shared experts": [4, 0],
            "GPU experts": [6, 2], "PIM experts": [10, 20], "combine": 2}


def _place(graph, table, gpus):
    placer = Placer(Timeline(), Lanes(gpus, 1.0))
    end = place(graph, placer, TableCosts(table), [[Ref(0.0)] * gpus])
    spans = {(t.name, t.gpu): (t.start_s, t.end_s) for t in placer.tasks}
    return placer, end, spans


def test_one_gpu_moe_layer_by_hand():
    placer, end, spans = _place(MOE_LAYER, ONE_GPU, 1)
    assert spans == {
        ("attention projections", 0): (0, 2), ("PIM attention", 0): (2, 7), ("router", 0): (7, 8),
        ("routing AllGather", -1): (8, 8), ("grouped-GEMM metadata", 0): (8, 9), ("dispatch", -1): (9, 9),
        ("scheduler", 0): (9, 12), ("shared experts", 0): (9, 13),
        ("GPU experts", 0): (13, 19),   # after the shared expert on the same stream
        ("PIM experts", 0): (12, 22),   # after dispatch and scheduler
        ("combine", -1): (22, 22),
    }
    assert end[0][0].end_s == 22
    ended_by, path = layer_chain(placer.tasks, end[0][0], gpu=0)
    assert ended_by == "combine"
    assert path == ("attention projections > PIM attention > router > routing AllGather > grouped-GEMM metadata"
                    " > scheduler > PIM experts > combine")


def test_an_added_edge_moves_the_placement():
    """PIM experts that also wait for the shared expert start at 13 instead of 12, and the layer ends at 23."""
    tasks = tuple(replace(t, after=(*t.after, "shared experts")) if t.name == "PIM experts" else t
                  for t in MOE_LAYER.tasks)
    graph = replace(MOE_LAYER, tasks=tasks)
    placer, end, spans = _place(graph, ONE_GPU, 1)
    assert spans[("PIM experts", 0)] == (13, 23)
    assert spans[("GPU experts", 0)] == (13, 19)
    assert end[0][0].end_s == 23
    assert layer_chain(placer.tasks, end[0][0], gpu=0)[1].endswith("shared experts > PIM experts > combine")


def test_two_gpu_moe_layer_by_hand():
    placer, end, spans = _place(MOE_LAYER, TWO_GPUS, 2)
    assert spans == {
        ("attention projections", 0): (0, 2), ("attention projections", 1): (0, 3),
        ("PIM attention", 0): (2, 7), ("PIM attention", 1): (3, 5),
        ("router", 0): (7, 8), ("router", 1): (5, 6),
        ("routing AllGather", -1): (8, 9),  # waits for the slower GPU's router
        ("grouped-GEMM metadata", 0): (9, 10), ("grouped-GEMM metadata", 1): (9, 10),
        ("dispatch", -1): (10, 12),
        ("scheduler", 0): (10, 13), ("shared experts", 0): (10, 14), ("GPU experts", 0): (14, 20),
        ("PIM experts", 0): (13, 23),
        ("scheduler", 1): (10, 11), ("shared experts", 1): (10, 10), ("GPU experts", 1): (12, 14),
        ("PIM experts", 1): (12, 32),
        ("combine", -1): (32, 34),          # waits for GPU 1's PIM experts
    }
    assert [r.end_s for r in end[0]] == [34, 34]
    # GPU 0's layer was bounded by GPU 1's PIM experts; the tie between the two metadata kernels goes to GPU 0
    assert layer_chain(placer.tasks, end[0][0], gpu=0) == (
        "combine", "attention projections > PIM attention > router > routing AllGather > grouped-GEMM metadata"
                   " > dispatch > PIM experts (GPU 1) > combine")


def test_a_lane_bound_task_names_the_lane_holder_as_what_bound_it():
    """Two sub-batches on one GPU: the second sub-batch's projections wait for the first's on the GPU stream."""
    placer = Placer(Timeline(), Lanes(1, 1.0))
    place(DENSE_LAYER, placer, TableCosts({"attention projections": 2, "PIM attention": 5, "dense FFN": 3}),
          [[Ref(0.0)], [Ref(0.0)]])
    proj = [t for t in placer.tasks if t.name == "attention projections"]
    assert [(t.start_s, t.end_s) for t in proj] == [(0, 2), (2, 4)]
    assert placer.tasks[proj[1].pred] is proj[0]


def test_declarations_are_checked():
    with pytest.raises(ValueError, match="unknown"):
        Graph("g", (Task("a", "gpu", ("b",), "gpu_other"),), (("a",),), "a")
    with pytest.raises(ValueError, match="issued before"):
        Graph("g", (Task("a", "gpu", (START,), "gpu_other"), Task("b", "gpu", ("a",), "gpu_other")),
              (("b",), ("a",)), "b")
    with pytest.raises(ValueError, match="resource"):
        Task("a", "tpu", (START,), "gpu_other")
    with pytest.raises(ValueError, match="every task once"):
        Graph("g", (Task("a", "gpu", (START,), "gpu_other"),), (), "a")


def test_the_declaration_prints_as_the_papers_figure():
    text = describe(MOE_LAYER)
    for name in ("attention projections", "routing AllGather", "dispatch", "scheduler", "PIM experts", "combine"):
        assert name in text
    assert "after dispatch, scheduler" in text


# ---- the critical path of real runs -------------------------------------------------------------------

@pytest.fixture(scope="module", params=[("qwen3_30b_a3b", 1, 1), ("gpt_oss_120b", 4, 2)], ids=["1gpu", "4gpu-sb2"])
def run(request):
    import sieve.runtime as rt

    model, gpus, subs = request.param
    return rt.simulate([f"+hw=aim", f"+model={model}", f"num_gpus={gpus}", f"sub_batches={subs}",
                        "workload.batch_size=16", "workload.decode_steps=2", "progress=false"])


def test_critical_shares_add_up_to_the_run(run):
    shares = {k: v for k, v in run.summary.items() if k.startswith("critical_")}
    assert len(shares) == 7 and min(shares.values()) >= 0
    assert sum(shares.values()) == pytest.approx(1.0, rel=1e-9)


def test_each_steps_chain_is_gapless_and_spans_the_step(run):
    tasks = run.tasks
    for step in run.steps.itertuples():
        path = tasks[(tasks["step"] == step.step) & tasks["critical"]].sort_values("start_s")
        assert path["start_s"].iloc[0] == pytest.approx(step.start_s, abs=1e-15)
        assert path["end_s"].iloc[-1] == pytest.approx(step.end_s, abs=1e-15)
        gaps = path["start_s"].to_numpy()[1:] - path["end_s"].to_numpy()[:-1]
        assert np.allclose(gaps, 0, atol=1e-15)
        assert (path["end_s"] - path["start_s"]).sum() == pytest.approx(step.time_s, rel=1e-9)


def test_every_layer_names_what_ended_it_and_its_chain(run):
    layers = run.layers
    moe, dense = layers[layers["kind"] == "moe"], layers[layers["kind"] == "dense"]
    assert (moe["ended_by"] == "combine").all()
    assert (dense["ended_by"] == "dense FFN").all()
    assert moe["critical_path"].str.endswith("combine").all()
    assert moe["critical_path"].str.contains("PIM experts|GPU experts|scheduler|dispatch").all()
