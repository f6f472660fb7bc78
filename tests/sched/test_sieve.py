"""Sieve's greedy, its tie rule, its cost table, and the oracle bound."""

from __future__ import annotations

import numpy as np
import pytest

from sieve.sched import Oracle, SchedulerError, Sieve, make, objective

from .helpers import per_expert_gpu, per_token, view


def literal(**params):
    """Sieve as the paper states it: attention + sum of costs, a flat 20 µs, no fast path."""
    return Sieve(**{"objective": "attention_sum", "overhead": "flat", "fast_path": False, **params})


def gpu_set(p):
    return np.flatnonzero(p.on_gpu).tolist()


def test_single_token_experts_stay_on_an_idle_pim_when_the_gpu_is_slower_for_them():
    # 8 one-token experts, 1 s each on PIM; each costs the GPU 10 s of weight streaming.
    p = literal().place(view([1] * 8, gpu=per_expert_gpu(10.0)))
    assert p.on_pim.all() and p.estimated_s == 8.0


def test_hottest_move_first_and_the_search_stops_when_the_objective_stops_falling():
    # PIM: N s per expert, 68 s in all; GPU: 3 s per expert.
    # k=0: 68; move expert 1 (30, lower index of the two 30s): max(3, 38) = 38;
    # move expert 3: max(6, 8) = 8; moving expert 4 (5 tokens) would give max(9, 3) = 9 > 8: stop.
    p = literal().place(view([1, 30, 2, 30, 5], gpu=per_expert_gpu(3.0)))
    assert gpu_set(p) == [1, 3]
    assert p.estimated_s == 8.0


def test_equal_ties_move_the_lower_index_first():
    # Only one of the two 6-token experts pays off: max(2, 6+1) = 7 < 13, then max(4, 1) = 4 < 7,
    # then the 1-token expert would give max(6, 0) = 6 > 4.
    p = literal().place(view([6, 1, 6], gpu=per_expert_gpu(2.0)))
    assert gpu_set(p) == [0, 2]
    p = literal().place(view([6, 1, 6], gpu=per_expert_gpu(4.0)))  # max(4, 7) = 7 < 13, max(8, 1) = 8 > 7
    assert gpu_set(p) == [0]


def test_a_move_that_leaves_the_objective_equal_is_not_made():
    # PIM 8 + 2 = 10; moving the 8-token expert gives max(GPU 10, PIM 2) = 10: not lower.
    for rule in ("balance", "stop"):
        assert literal(on_comm_tie=rule).place(view([8, 2], gpu=per_expert_gpu(10.0))).on_pim.all()


def test_pim_attention_load_pushes_experts_to_the_gpu():
    v = dict(gpu=per_expert_gpu(10.0))
    assert literal().place(view([1] * 8, **v)).on_pim.all()
    # With 20 s of attention on PIM, moving one-token experts costs the GPU 10 s each but relieves a PIM at 28 s.
    p = literal().place(view([1] * 8, pim_attention_s=20.0, **v))
    assert gpu_set(p) == [0, 1]  # max(10, 27) = 27, max(20, 26) = 26, max(30, 25) = 30: stop
    assert p.estimated_s == 26.0


def test_tie_rule_balance_keeps_moving_under_the_communication_time():
    # T_comm = 100 dominates every split. PIM: 13 s; GPU 2 s per expert.
    # balance: move 8 -> max(T_gpu, T_pim) = max(2, 5) = 5 < 13; move 4 -> max(4, 1) = 4 < 5;
    # move 1 -> max(6, 0) = 6 > 4: stop.
    v = view([8, 4, 1], comm_s=100.0, gpu=per_expert_gpu(2.0))
    p = literal(on_comm_tie="balance").place(v)
    assert gpu_set(p) == [0, 1] and p.estimated_s == 100.0
    assert literal(on_comm_tie="stop").place(v).on_pim.all()


def test_tie_rule_when_communication_takes_over_part_way():
    # T_comm = 6: moving the 8-token expert lowers the objective 13 -> 6 under both rules; then the
    # objective stays at 6, where only "balance" moves on (max(4, 1) = 4 < max(2, 5) = 5).
    v = view([8, 4, 1], comm_s=6.0, gpu=per_expert_gpu(2.0))
    assert gpu_set(literal(on_comm_tie="balance").place(v)) == [0, 1]
    assert gpu_set(literal(on_comm_tie="stop").place(v)) == [0]


def test_tie_rule_balance_never_acts_without_communication():
    # Without T_comm an equal objective means an equal max(T_gpu, T_pim): both rules agree on random views.
    rng = np.random.default_rng(7)
    for _ in range(200):
        counts = rng.integers(0, 6, size=10)
        v = view(counts, gpu=per_expert_gpu(float(rng.integers(1, 4))), pim_attention_s=float(rng.integers(0, 5)))
        assert literal(on_comm_tie="balance").place(v).on_gpu.tolist() == \
            literal(on_comm_tie="stop").place(v).on_gpu.tolist()


def test_all_experts_move_when_the_gpu_is_free():
    p = literal().place(view([3, 1, 2], gpu=lambda c: 0.0))
    assert gpu_set(p) == [0, 1, 2] and p.estimated_s == 0.0


def test_unseen_token_counts_cost_the_roofline():
    seen = []
    roofline = lambda n: seen.append(n) or 0.5 * n  # noqa: E731
    s = literal()
    assert s.cost(view([1], roofline=roofline), 7) == 3.5
    s.place(view([4, 0, 2, 4], roofline=roofline, gpu=per_expert_gpu(100.0)))
    assert sorted(seen) == [2, 4, 4, 7]


def test_cost_table_moving_average():
    s = literal(alpha=0.25)
    v = view([2, 2, 5], gpu=per_expert_gpu(100.0), roofline=per_token(1.0))
    p = s.place(v)
    assert p.on_pim.all()
    s.observe(v.counts, p, {2: 8.0})  # the first sample replaces the roofline
    assert dict(s.cost_table) == {2: 8.0}
    assert s.cost(v, 2) == 8.0 and s.cost(v, 5) == 5.0
    s.observe(v.counts, p, {2: 4.0, 5: 6.0})
    assert dict(s.cost_table) == {2: 0.25 * 4.0 + 0.75 * 8.0, 5: 6.0}
    with pytest.raises(TypeError):
        s.cost_table[3] = 1.0


def test_learned_costs_change_the_split():
    # One-token experts look cheap by the roofline (1 s) but run 50 s on PIM: after one iteration Sieve moves them.
    s = literal(alpha=1.0)
    v = view([1, 1, 1], gpu=per_expert_gpu(10.0))
    p = s.place(v)
    assert p.on_pim.all()
    s.observe(v.counts, p, {1: 50.0})
    assert gpu_set(s.place(v)) == [0, 1, 2]  # 150 -> 110 -> 70 -> 30


def test_observe_rejects_bad_measurements():
    s = literal()
    v = view([3, 1], gpu=per_expert_gpu(2.0))
    p = s.place(v)  # 3 -> GPU (max(2, 1) = 2 < 4), 1 stays on PIM
    with pytest.raises(SchedulerError, match="no expert with 3 tokens ran on PIM"):
        s.observe(v.counts, p, {3: 1.0})
    with pytest.raises(SchedulerError, match="finite and non-negative"):
        s.observe(v.counts, p, {1: -1.0})
    with pytest.raises(SchedulerError, match="positive integer"):
        s.observe(v.counts, p, {0: 1.0})
    with pytest.raises(SchedulerError, match="Placement over the 3 experts"):
        s.observe([3, 1, 0], p, {1: 1.0})
    assert dict(s.cost_table) == {}


@pytest.mark.parametrize("params, message", [
    ({"alpha": 0.0}, "alpha"), ({"alpha": 1.5}, "alpha"), ({"alpha": True}, "alpha"),
    ({"on_comm_tie": "lexicographic"}, "balance, stop"),
])
def test_bad_parameters(params, message):
    with pytest.raises(SchedulerError, match=message):
        make("sieve", **params)


def test_overhead_is_reported_on_every_placement():
    assert literal().place(view([1, 2])).overhead_s == 20e-6
    assert literal(overhead_s=5e-6).place(view([1, 2])).overhead_s == 5e-6


@pytest.mark.parametrize("params, message", [
    ({"overhead": "linear"}, "overhead must be one of scaled, flat; got 'linear'"),
    ({"fast_path": "yes"}, "fast_path must be true or false"),
    ({"adaptive_recheck": 0}, "adaptive_recheck must be a positive integer"),
    ({"kernel_launch_s": -1.0}, "kernel_launch_s must be finite and non-negative"),
])
def test_bad_cost_parameters(params, message):
    with pytest.raises(SchedulerError, match=message):
        make("sieve", **params)


def test_channel_load_is_the_pim_expert_time_in_every_channel():
    p = literal().place(view([1, 30, 2, 30, 5], gpu=per_expert_gpu(3.0), num_pim_channels=3))
    assert p.channel_load_s.tolist() == [8.0] * 3


def test_oracle_picks_the_best_prefix_with_true_costs():
    # True PIM cost 4 s per token, GPU 3 s per expert; hottest first: experts 0, 2, 1, 15.
    # k=0: 36, k=1: max(3, 16) = 16, k=2: max(6, 8) = 8, k=3: max(9, 4) = 9, k=4: 12.
    v = view([5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], gpu=per_expert_gpu(3.0), pim_expert_time=per_token(4.0))
    p = Oracle().place(v)
    assert gpu_set(p) == [0, 2] and p.estimated_s == 8.0


def test_oracle_ties_keep_the_most_experts_on_pim():
    v = view([2, 2], comm_s=50.0, pim_expert_time=per_token(1.0))
    assert Oracle().place(v).on_pim.all()


def test_oracle_and_sieve_agree_when_sieve_knows_the_true_costs():
    rng = np.random.default_rng(1)
    for _ in range(100):
        counts = rng.integers(0, 12, size=16)
        true = per_token(float(rng.uniform(0.5, 2.0)), float(rng.uniform(0, 3)))
        v = view(counts, gpu=per_expert_gpu(float(rng.uniform(1, 8)), float(rng.uniform(0, 5))),
                 roofline=true, pim_expert_time=true, pim_attention_s=float(rng.uniform(0, 10)))
        assert objective(v, literal().place(v).on_gpu, true) == pytest.approx(Oracle().place(v).estimated_s)


def test_oracle_is_never_worse_than_sieve():
    rng = np.random.default_rng(2)
    for _ in range(300):
        counts = rng.integers(0, 20, size=int(rng.integers(1, 24)))
        true = per_token(float(rng.uniform(0.2, 3.0)), float(rng.uniform(0, 4)))
        w, a, base = rng.uniform(0.5, 6), rng.uniform(0, 0.5), rng.uniform(0, 5)
        v = view(counts, gpu=lambda c, w=w, a=a, base=base: base + max(w * np.count_nonzero(c), a * c.sum()),
                 roofline=per_token(float(rng.uniform(0.2, 3.0))), pim_expert_time=true,
                 comm_s=float(rng.uniform(0, 30)), pim_attention_s=float(rng.uniform(0, 10)))
        s = literal(alpha=0.5)
        # a partly learned, partly wrong cost table
        p0 = s.place(v)
        if p0.on_pim.any():
            n = int(v.counts[p0.on_pim][0])
            s.observe(v.counts, p0, {n: true(n) * float(rng.uniform(0.3, 3))})
        o = Oracle().place(v)
        assert o.estimated_s == objective(v, o.on_gpu, true)
        assert o.estimated_s <= objective(v, s.place(v).on_gpu, true)


def test_oracle_judges_by_the_runtime_split_time_when_given():
    # The objective would keep everything on PIM (attention dominates T_pim either way); the runtime's
    # expert phase is shortest with the two hottest experts on the GPU.
    counts = np.array([9, 1, 7, 1])
    times = {(): 18.0, (0,): 12.0, (0, 2): 5.0, (0, 1, 2): 6.0, (0, 1, 2, 3): 7.0}
    seen = []

    def split_time(on_gpu):
        seen.append(tuple(np.flatnonzero(on_gpu)))
        return times[seen[-1]]

    v = view(counts, pim_expert_time=per_token(1.0), pim_attention_s=100.0, split_time=split_time)
    p = Oracle().place(v)
    assert gpu_set(p) == [0, 2] and p.estimated_s == 5.0
    assert seen == [(), (0,), (0, 2), (0, 1, 2), (0, 1, 2, 3)]  # every hottest-first prefix, in order


def test_expert_phase_objective_plans_with_when_each_side_can_start():
    from sieve.sched import ExpertPhase

    # PIM: 1 s per token, 0.5 s of hand-off once; GPU: 2 s per expert, ready 1 s later than PIM.
    # Paper objective with 100 s of attention on PIM: everything that helps moves to the GPU.
    # Expert phase: k=0: max(1, 0.5 + 17) = 17.5; k=1 (9 tokens): max(3, 8.5) = 8.5; k=2 (+5): max(5, 3.5) = 5;
    # k=3 (+2): max(7, 1.5) = 7 -> stop at k=2.
    phase = ExpertPhase(gpu_ready_s=1.0, pim_ready_s=0.0, pim_fixed_s=0.5,
                        gpu_expert_time=lambda c: 2.0 * np.count_nonzero(c))
    v = view([9, 2, 5, 1], gpu=per_expert_gpu(2.0), roofline=per_token(1.0), pim_attention_s=100.0,
             expert_phase=phase)
    p = Sieve(overhead_s=0).place(v)  # expert_phase is the default objective
    assert gpu_set(p) == [0, 2] and p.estimated_s == 5.0
    assert len(gpu_set(literal(overhead_s=0).place(v))) == 4  # the literal sum moves them all
    with pytest.raises(SchedulerError, match="objective must be one of expert_phase, attention_sum; got 'fast'"):
        Sieve(objective="fast")
    with pytest.raises(SchedulerError, match="objective 'paper' is now called 'attention_sum'"):
        Sieve(objective="paper")
    with pytest.raises(SchedulerError, match="needs the view's expert_phase"):
        Sieve().place(view([1, 2], expert_phase=None))


def test_ablation_without_attention_awareness_ignores_the_pim_attention_load():
    # The case above with 20 s of PIM attention: unaware, Sieve sees only 8 s of one-token experts against a
    # GPU at 10 s per expert, and keeps them all on PIM.
    p = literal(attention_aware=False).place(view([1] * 8, pim_attention_s=20.0, gpu=per_expert_gpu(10.0)))
    assert p.on_pim.all() and p.estimated_s == 8.0


def test_ablation_without_communication_awareness_balances_gpu_and_pim_only():
    # T_comm = 100 with the tie rule "stop": aware, no move lowers f = 100, all stay on PIM.
    # Unaware: PIM 13; move 8 -> max(2, 5) = 5; move 4 -> max(4, 1) = 4; move 1 -> max(6, 0) = 6: stop.
    v = view([8, 4, 1], comm_s=100.0, gpu=per_expert_gpu(2.0))
    assert literal(on_comm_tie="stop").place(v).on_pim.all()
    p = literal(on_comm_tie="stop", comm_aware=False).place(v)
    assert gpu_set(p) == [0, 1] and p.estimated_s == 4.0


def test_ablation_without_the_cost_table_plans_with_the_roofline():
    # The roofline says 1 s per token; the measured PIM time of a 4-token expert is 40 s.
    v = view([4, 1], gpu=per_expert_gpu(6.0))
    for learned, expected in ((True, [0]), (False, [])):
        s = literal(learned_costs=learned, alpha=1.0)
        first = s.place(v)  # roofline: PIM 5 s, a move gives max(6, 1) = 6 > 5: all on PIM
        assert first.on_pim.all()
        s.observe(v.counts, first, {4: 40.0, 1: 1.0})
        # learned: PIM 41 s; moving the 4-token expert gives max(6, 1) = 6
        assert gpu_set(s.place(v)) == expected


def test_ablation_flags_are_checked():
    with pytest.raises(SchedulerError, match="comm_aware must be true or false, got 'no'"):
        Sieve(comm_aware="no")
    with pytest.raises(SchedulerError, match="attention must be one of auto, pim; got 'gpu'"):
        Sieve(attention="gpu")


# ---- the scheduler's own cost (sieve/sched/overhead.py)

def phase_view(counts, gpu_per_expert, launch=2e-6, **kwargs):
    """An expert-phase view: PIM 1 s per token and free, GPU ``gpu_per_expert`` s per expert and free."""
    from sieve.sched import ExpertPhase

    phase = ExpertPhase(gpu_ready_s=0.0, pim_ready_s=0.0, pim_fixed_s=0.0,
                        gpu_expert_time=lambda c: gpu_per_expert * np.count_nonzero(c))
    return view(counts, roofline=per_token(1.0), expert_phase=phase, kernel_launch_s=launch, **kwargs)


def test_scaled_cost_is_the_launch_plus_the_calibrated_share_of_the_experts_sorted():
    # 2 µs launch, 20 µs for 256 experts: 2 + 18 * n / 256 µs. n = 3 activated (one expert idle):
    # 2 + 18 * 3 / 256 = 2.2109375 µs; the search runs: PIM 13 s; moving 9 -> max(1, 4) = 4,
    # moving 3 -> max(2, 1) = 2, moving 1 -> max(3, 0) = 3: stop.
    p = Sieve().place(phase_view([9, 0, 3, 1], gpu_per_expert=1.0))
    assert gpu_set(p) == [0, 2] and p.estimated_s == 2.0
    assert p.overhead_s == pytest.approx(2.2109375e-6, rel=1e-12)
    # a whole DeepSeek-R1 layer on one GPU costs the paper's 20 µs
    assert Sieve().cost_model.cost(256, 2e-6) == pytest.approx(20e-6, rel=1e-12)
    assert Sieve().cost_model.cost(128, 2e-6) == pytest.approx(11e-6, rel=1e-12)
    # the scheduler's own kernel_launch_s wins over the view's
    assert Sieve(kernel_launch_s=4e-6).place(phase_view([9, 0, 3, 1], 1.0)).overhead_s == \
        pytest.approx((4 + 16 * 3 / 256) * 1e-6, rel=1e-12)


def test_flat_cost_and_zero_cost():
    v = phase_view([9, 0, 3, 1], gpu_per_expert=1.0)
    for s in (5e-6, 10e-6, 20e-6):
        assert Sieve(overhead="flat", overhead_s=s).place(v).overhead_s == s
    assert Sieve(overhead_s=0).place(v).overhead_s == 0.0
    assert Sieve(overhead="flat", overhead_s=0).place(v).overhead_s == 0.0


def test_fast_path_no_kernel_when_moving_the_hottest_expert_does_not_help():
    # PIM 1 s per token: 4 s in all; the GPU takes 4 s per expert: moving the 2-token expert gives max(4, 2) = 4,
    # not lower: all on PIM, no kernel. Without the fast path the same answer costs the search.
    v = phase_view([2, 1, 1], gpu_per_expert=4.0)
    fast = Sieve().place(v)
    assert fast.on_pim.all() and fast.overhead_s == 0.0 and fast.estimated_s == 4.0
    slow = Sieve(fast_path=False).place(v)
    assert slow.on_pim.all() and slow.overhead_s == pytest.approx((2 + 18 * 3 / 256) * 1e-6, rel=1e-12)
    flat = Sieve(overhead="flat", fast_path=False).place(v)
    assert flat.overhead_s == 20e-6


def test_overhead_the_runtime_can_count_on_before_placing():
    assert Sieve().overhead_s == 0.0                        # fast path: possibly nothing
    assert Sieve(overhead="flat").overhead_s == 0.0
    assert Sieve(overhead="flat", fast_path=False).overhead_s == 20e-6
    assert Sieve(overhead="flat", fast_path=False).params["overhead_s"] == 20e-6
    assert Sieve().params["overhead_s"] == 20e-6


def test_scaled_cost_needs_the_launch_time():
    with pytest.raises(SchedulerError, match="needs the GPU's kernel launch time"):
        Sieve().place(phase_view([9, 3], 1.0, launch=None))
    assert Sieve(overhead="flat").place(phase_view([9, 3], 1.0, launch=None)).overhead_s == 20e-6
    with pytest.raises(SchedulerError, match="kernel_launch_s=3e-05 exceeds overhead_s=2e-05"):
        Sieve().place(phase_view([9, 3], 1.0, launch=30e-6))


def test_adaptive_skips_a_layer_whose_last_gain_was_below_the_search_cost():
    # Search cost 2 + 18 * 2 / 256 µs = 2.140625 µs. Layer 0: PIM 1 µs per token, GPU 0.5 µs per expert:
    # moving the 3-token expert saves 4 - max(0.5, 1) = 3 µs > cost: always searched.
    # Layer 1: tokens [2, 1], GPU 1.5 µs: max(1.5, 1) = 1.5 saves 1.5 µs < cost: searched once, then skipped
    # (all on PIM, no kernel) at visits 2 and 3, searched again at visit 4 (adaptive_recheck=3).
    s = Sieve(adaptive=True, adaptive_recheck=3)
    us = 1e-6
    gpu = lambda c, w: w * us * np.count_nonzero(c)  # noqa: E731
    from sieve.sched import ExpertPhase

    def v(layer, counts, w):
        phase = ExpertPhase(gpu_ready_s=0.0, pim_ready_s=0.0, pim_fixed_s=0.0,
                            gpu_expert_time=lambda c: gpu(c, w))
        return view(counts, roofline=per_token(us), expert_phase=phase, kernel_launch_s=2 * us, layer=layer)

    cost = (2 + 18 * 2 / 256) * us
    got = []
    for _ in range(4):
        a, b = s.place(v(0, [3, 1], 0.5)), s.place(v(1, [2, 1], 1.5))
        got.append((a.overhead_s, len(gpu_set(a)), b.overhead_s, len(gpu_set(b))))
    assert [g[:2] for g in got] == [(pytest.approx(cost), 1)] * 4
    assert [g[2:] for g in got] == [(pytest.approx(cost), 1), (0.0, 0), (0.0, 0), (pytest.approx(cost), 1)]
    assert s.place(v(1, [2, 1], 1.5)).estimated_s == pytest.approx(3 * us)  # skipped: all-PIM objective
    with pytest.raises(SchedulerError, match="adaptive=true needs the view's layer"):
        Sieve(adaptive=True).place(phase_view([2, 1], 1.0))
