"""The registry, the view and placement types, the static policies and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sieve.sched import (SCHEDULERS, Placement, SchedulerError, UnknownSchedulerError, hottest_first,
                         make, objective, objective_terms)

from .helpers import ep_layout, per_token, view

ALL = ["gpu_only", "noexp", "allexp", "pimoe", "sieve", "oracle"]


def full_view(counts, **kwargs):
    """A view every policy can place."""
    counts = np.asarray(counts)
    return view(counts, pim_expert_time=per_token(1.0), num_pim_channels=4,
                expert_channels=ep_layout(len(counts), 4), pim_channel_expert_time=per_token(1.0), **kwargs)


def test_registry_is_keyed_by_each_policy_name():
    assert list(SCHEDULERS) == ALL
    for name, cls in SCHEDULERS.items():
        assert cls.name == name
        assert make(name).name == name


def test_unknown_scheduler_lists_the_valid_ones():
    with pytest.raises(UnknownSchedulerError) as err:
        make("seive")
    assert isinstance(err.value, ValueError)
    for name in ALL:
        assert name in str(err.value)
    with pytest.raises(UnknownSchedulerError):
        make(None)


def test_unknown_parameter_lists_the_accepted_ones():
    with pytest.raises(SchedulerError, match="alpha, on_comm_tie, objective, overhead, overhead_s"):
        make("sieve", alfa=0.3)


def test_only_gpu_only_keeps_attention_off_pim():
    assert {n: cls.uses_pim_attention for n, cls in SCHEDULERS.items()} == {
        "gpu_only": False, "noexp": True, "allexp": True, "pimoe": True, "sieve": True, "oracle": True}


def test_static_policies():
    v = full_view([3, 0, 1, 7])
    active = np.array([True, False, True, True])
    for name, expect_pim in (("gpu_only", False), ("noexp", False), ("allexp", True)):
        p = make(name).place(v)
        assert p.on_pim.tolist() == (active if expect_pim else np.zeros(4, bool)).tolist()
        assert p.on_gpu.tolist() == (np.zeros(4, bool) if expect_pim else active).tolist()
        assert math.isnan(p.estimated_s) and p.overhead_s == 0.0 and p.channel_load_s is None


@pytest.mark.parametrize("name", ALL)
def test_every_activated_expert_goes_exactly_one_way(name):
    v = full_view([3, 0, 1, 7, 0, 2], comm_s=2.0, pim_attention_s=1.0)
    p = make(name).place(v)
    assert isinstance(p, Placement)
    assert (p.on_pim ^ p.on_gpu).tolist() == v.activated.tolist()
    assert not p.on_pim.flags.writeable and not p.on_gpu.flags.writeable


@pytest.mark.parametrize("name", ALL)
def test_no_activated_expert(name):
    p = make(name).place(full_view([0, 0, 0]))
    assert not p.on_pim.any() and not p.on_gpu.any()


@pytest.mark.parametrize("name", ALL)
def test_deterministic_and_config_unchanged(name):
    sched = make(name)
    before = dict(sched.params)
    v = full_view([5, 1, 1, 9, 2, 2, 0, 4], comm_s=3.0, pim_attention_s=2.0)
    first, second = sched.place(v), sched.place(v)
    assert first.on_pim.tolist() == second.on_pim.tolist()
    sched.observe(v.counts, first, {int(n): 1.5 for n in set(v.counts[first.on_pim].tolist())})
    assert dict(sched.params) == before


def test_hottest_first_breaks_ties_by_lower_index():
    assert hottest_first(np.array([2, 0, 5, 2, 5, 1])).tolist() == [2, 4, 0, 3, 5]


def test_objective_terms():
    v = view([4, 0, 2, 1], comm_s=3.0, pim_attention_s=0.5)
    on_gpu = np.array([True, False, False, False])
    assert objective_terms(v, on_gpu, per_token(2.0)) == (3.0, 1.0, 0.5 + 2 * 2 + 2 * 1)
    assert objective(v, on_gpu, per_token(2.0)) == 6.5


def test_view_is_a_read_only_copy():
    counts = np.array([1, 2, 3])
    v = view(counts)
    counts[0] = 99
    assert v.counts.tolist() == [1, 2, 3]
    with pytest.raises(ValueError):
        v.counts[0] = 5


def test_gpu_time_sees_zeros_for_experts_not_on_the_gpu():
    seen = []
    v = view([4, 0, 2], gpu=lambda c: seen.append(c.tolist()) or 0.0)
    v.gpu_s(np.array([True, True, False]))
    assert seen == [[4, 0, 0]]


@pytest.mark.parametrize("counts, message", [
    ([], "empty"),
    ([1, -2, 3], "expert 1 has -2 tokens"),
    ([[1, 2]], "1-d"),
    ([1.0, 2.0], "integers"),
    ([True, False], "integers"),
])
def test_bad_counts(counts, message):
    with pytest.raises(SchedulerError, match=message):
        view(np.asarray(counts))


@pytest.mark.parametrize("kwargs, message", [
    ({"comm_s": -1.0}, "comm_s"),
    ({"pim_attention_s": math.nan}, "pim_attention_s"),
    ({"gpu": 3.0}, "gpu_time must be callable"),
    ({"num_pim_channels": 0}, "num_pim_channels"),
    ({"expert_channels": np.zeros((2, 1), int)}, "shape"),
    ({"num_pim_channels": 2, "expert_channels": np.full((3, 1), 2)}, "channels 0..1"),
])
def test_bad_view(kwargs, message):
    with pytest.raises(SchedulerError, match=message):
        view([1, 2, 3], **kwargs)


def test_bad_cost_function_results_are_caught():
    with pytest.raises(SchedulerError, match="gpu_time"):
        make("sieve", objective="attention_sum").place(view([1, 2], gpu=lambda c: -1.0))
    with pytest.raises(SchedulerError, match="gpu_expert_time"):
        make("sieve").place(view([1, 2], gpu=lambda c: -1.0))
    with pytest.raises(SchedulerError, match="pim_roofline"):
        make("sieve").place(view([1, 2], roofline=lambda n: math.inf))


def test_policies_say_what_their_view_lacks():
    with pytest.raises(SchedulerError, match="expert_channels"):
        make("pimoe").place(view([1, 2]))
    with pytest.raises(SchedulerError, match="pim_expert_time"):
        make("oracle").place(view([1, 2]))


def test_bad_placement():
    with pytest.raises(SchedulerError, match="both"):
        Placement(on_pim=[True, False], on_gpu=[True, True])
    with pytest.raises(SchedulerError, match="shape"):
        Placement.of(view([1, 2]), [True])


def test_placement_of_drops_experts_without_tokens():
    p = Placement.of(view([1, 0, 2]), [True, True, False])
    assert p.on_pim.tolist() == [True, False, False] and p.on_gpu.tolist() == [False, False, True]


def test_bad_overhead():
    with pytest.raises(SchedulerError, match="overhead_s"):
        make("noexp", overhead_s=-1e-6)
