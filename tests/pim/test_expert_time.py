"""Expert GEMV command streams and simulated expert times."""

from __future__ import annotations

import numpy as np
import pytest

import sieve.hw as hwmod
import sieve.model as modelmod
from sieve.dram import check_log
from sieve.pim import expert_run, expert_time
from sieve.pim.expert import expert_slices
from sieve.trace.gemv import GemvShape, LayoutError, PIMGeometry, gemv_stream

MODELS = ("qwen3_30b_a3b", "gpt_oss_120b", "deepseek")


@pytest.fixture(scope="module")
def aim():
    return hwmod.load("aim")


def test_gemv_stream_shape(aim):
    geom = PIMGeometry.of(aim)
    names = aim.standard.command_names
    # 30 output rows (two passes over 24 banks), 1000 inputs (one buffer chunk), bf16: 63 columns per pass
    cmds, rows, cols = gemv_stream(geom, GemvShape(30, 1000, "bf16"))
    seq = [names[c] for c in cmds]
    assert seq == ["WRGB"] * 63 + (["MAC16"] * 63 + ["RDMAC16"] * 2) * 2
    mac_rows = rows[np.array(seq) == "MAC16"]
    mac_cols = cols[np.array(seq) == "MAC16"]
    # pass 1 starts at the next buffer-sized column block: 1024 inputs / 16 = 64 columns = 2 rows
    assert list(mac_rows[:2]) == [0, 0] and mac_rows[63] == 2 and mac_cols[63] == 0


@pytest.mark.parametrize("model", MODELS)
def test_expert_streams_obey_the_protocol(aim, model):
    ticks, session = expert_run(aim, model, 3, "tp", log=True)
    log = aim.pim_device.log_of(session.engine)
    assert len(log) > 100 and not check_log(aim.standard, log)


@pytest.mark.parametrize("model", MODELS)
def test_time_grows_with_tokens_but_not_proportionally(aim, model):
    t = [expert_time(aim, model, n) for n in range(1, 17)]
    print(model, " ".join(f"{x * 1e6:.2f}" for x in t), "us")
    assert all(b > a for a, b in zip(t, t[1:]))
    assert t[0] > t[1] / 2  # one token does not take half of two
    assert t[15] < 16 * t[0]


def test_tp_uses_every_channel_alike(aim):
    m = modelmod.load("deepseek")
    up, down = expert_slices(aim, m, aim.pim_channels_per_gpu)
    C = aim.pim_channels_per_gpu
    # every channel gets the same slice; together the slices cover the matrices
    assert up.out_rows * C / (2 * m.expert_intermediate_size) * (up.in_elems / m.hidden_size) >= 1
    assert down.out_rows * C / m.hidden_size * (down.in_elems / m.expert_intermediate_size) >= 1
    r = expert_time(aim, m, 1, "tp", details=True)
    assert r.channels == C and r.roofline_ratio > 1


def test_ep_is_slower_per_expert_than_tp(aim):
    tp = expert_time(aim, "deepseek", 2, "tp")
    ep = expert_time(aim, "deepseek", 2, "ep", channels_per_expert=8)
    assert ep > tp


def test_results_are_cached_and_deterministic(aim):
    a = expert_time(aim, "qwen3_30b_a3b", 5)
    b = expert_time("aim", "qwen3_30b_a3b", 5)
    assert a == b


@pytest.mark.parametrize("kwargs,message", [
    (dict(n_tokens=0), "n_tokens must be a positive integer, got 0"),
    (dict(layout="2d"), "layout '2d' is not one of tp, ep"),
    (dict(layout="ep", channels_per_expert=1000), "channels_per_expert must be an integer in 1..256, got 1000"),
    (dict(layout="tp", channels_per_expert=8), "layout 'tp' uses all 256 PIM channels"),
])
def test_bad_input(aim, kwargs, message):
    args = dict(hw=aim, model="qwen3_30b_a3b", n_tokens=1) | kwargs
    with pytest.raises(LayoutError) as e:
        expert_time(**args)
    assert message in str(e.value)


def test_matrix_that_does_not_fit(aim):
    geom = PIMGeometry.of(aim)
    with pytest.raises(LayoutError, match=r"needs \d+ rows per bank from row 0; a bank has 16384 rows"):
        gemv_stream(geom, GemvShape(24 * 600, 16384, "bf16"))


@pytest.mark.parametrize("hw_name", ["aim", "gddr6_aim"])
@pytest.mark.parametrize("shape", [(24, 512, "bf16"), (30, 1000, "bf16"), (7, 3000, "fp8"), (100, 64, "mxfp4")])
def test_generated_streams_obey_the_protocol(hw_name, shape):
    hw = hwmod.load(hw_name)
    geom = PIMGeometry.of(hw)
    cmds, rows, cols = gemv_stream(geom, GemvShape(*shape), repeat=2)
    session = hw.pim_device.session()
    session.run(cmds, np.zeros((len(cmds), len(hw.standard.levels)), dtype=np.int64), rows, cols, auto_prereq=True)
    log = hw.pim_device.log_of(session.engine)
    assert not check_log(hw.standard, log)


# ---- one compute rule for every weight format: bf16 MAC lanes per bank ------------------------------

@pytest.mark.parametrize("fmt, slots", [("bf16", 1), ("fp8", 2), ("mxfp4", 4)])
def test_a_column_of_a_narrower_format_takes_proportionally_more_mac_slots(aim, fmt, slots):
    # 16 bf16 lanes per bank; a 32-byte column holds 16 bf16, 32 fp8 or 64 MXFP4 weights.
    geom = PIMGeometry.of(aim)
    assert aim.pim.mac_lanes_per_bank == 16 and geom.column_bytes == 32
    names = aim.standard.command_names
    # 24 output rows (one pass over 24 banks), 1024 inputs: 64 / 32 / 16 columns per pass, `slots` MACs each
    cmds, rows, cols = gemv_stream(geom, GemvShape(24, 1024, fmt))
    seq = np.array([names[c] for c in cmds])
    columns = 1024 * 2 // 32 // slots
    assert (seq == "MAC16").sum() == columns * slots == 64
    mac_cols = cols[seq == "MAC16"]
    assert list(mac_cols[:2 * slots]) == [0] * slots + [1] * slots  # each column's MACs back to back


@pytest.mark.parametrize("fmt", ["bf16", "fp8", "mxfp4"])
def test_streams_peak_and_roofline_prior_agree_for_every_format(aim, fmt):
    """The MAC slots in the simulated stream, the PIM peak (hw) and Sieve's roofline prior all count
    2 FLOP per lane per MAC: for a slice that fills every bank and column, the stream's MAC count at the
    peak MAC rate is the roofline, and no expert simulates faster than its roofline."""
    import dataclasses

    from sieve.pim.expert import roofline_prior_s

    spec = dataclasses.replace(modelmod.load("qwen3_30b_a3b"), expert_weight_format=fmt)
    geom = PIMGeometry.of(aim)
    # one 24 x 2048 GEMV: 24 * 2048 weights = 24 * 2048 * 2 FLOP at 2 * 16 lanes * 24 banks FLOP per MAC
    cmds, _, _ = gemv_stream(geom, GemvShape(24, 2048, fmt))
    macs = int((cmds == geom.cmd_mac).sum())
    assert macs * 2 * aim.pim.mac_lanes_per_bank * geom.banks == 24 * 2048 * 2
    mac_s = aim.mac_interval_ticks * aim.standard.tick_ns * 1e-9
    per_channel_peak = 2 * aim.pim.mac_lanes_per_bank * geom.banks / mac_s
    assert aim.pim_peak_flops_per_gpu == pytest.approx(per_channel_peak * aim.pim_channels_per_gpu, rel=1e-12)
    r = expert_time(aim, spec, 8, details=True)
    prior = roofline_prior_s(aim, spec, 8)
    # the stream's roofline (its MAC slots at the peak rate) is the prior up to the padding of partial columns
    assert r.roofline_seconds == pytest.approx(prior, rel=0.03)
    assert r.busy_seconds >= prior * 0.97


def test_mxfp4_experts_are_not_faster_than_bf16_ones_on_pim(aim):
    """Compute-bound at equal MAC slots: an MXFP4 expert reads a quarter of the bytes but needs the same
    MACs, so it takes at most as long as the bf16 one and not much less (it opens a quarter of the rows)."""
    import dataclasses

    base = modelmod.load("gpt_oss_120b")
    t = {fmt: expert_time(aim, dataclasses.replace(base, expert_weight_format=fmt), 4) for fmt in ("bf16", "mxfp4")}
    assert 0.6 <= t["mxfp4"] / t["bf16"] <= 1.0
