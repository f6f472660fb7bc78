"""Per-channel PIM time of a layer's experts under the tp and ep layouts."""

from __future__ import annotations

import numpy as np
import pytest

import sieve.hw as hwmod
from sieve.pim import expert_time
from sieve.pim.layer import expert_phase, expert_phase_log, layer_channel_times, placement, rows_per_channel
from sieve.trace.gemv import LayoutError


@pytest.fixture(scope="module")
def aim():
    return hwmod.load("aim")


def test_tp_loads_every_channel_alike(aim):
    counts = np.array([1, 0, 5, 2, 1, 0, 9, 1])
    busy = layer_channel_times(aim, "gpt_oss_120b", counts, "tp")
    expected = sum(expert_time(aim, "gpt_oss_120b", int(n)) for n in counts if n)
    assert np.allclose(busy, expected)


def test_ep_channels_differ(aim):
    counts = np.array([1, 0, 5, 2, 1, 0, 9, 1])
    busy = layer_channel_times(aim, "gpt_oss_120b", counts, "ep", channels_per_expert=4)
    where = placement(aim, "gpt_oss_120b", len(counts), "ep", 4)
    assert busy[where[6]].min() == busy.max()  # the 9-token expert's channels are the busiest
    assert busy[where[1]].max() == 0  # an expert with no tokens leaves its channels idle
    assert np.allclose(busy[where[6]], expert_time(aim, "gpt_oss_120b", 9, "ep", channels_per_expert=4))


def test_capacity_is_checked(aim):
    rows = rows_per_channel(aim, "gpt_oss_120b", 32, "ep", 1)
    assert rows.max() > 0
    with pytest.raises(LayoutError, match=r"need \d+ rows per bank in PIM channel \d+; 100 rows are free"):
        layer_channel_times(aim, "gpt_oss_120b", np.ones(32, dtype=np.int64), "ep", 1,
                            reserved_rows=aim.standard.rows - 100)


def test_bad_counts(aim):
    with pytest.raises(LayoutError, match="counts must be a 1-d array of non-negative token counts"):
        layer_channel_times(aim, "gpt_oss_120b", np.array([1, -1]))


# ---- the PIM expert phase of a layer (gate/up stages, one hand-off, down stages) ------------------------

@pytest.mark.parametrize("layout, per_expert", [("tp", None), ("ep", 4)])
def test_the_phase_lasts_as_long_as_its_composed_command_stream(aim, layout, per_expert):
    """The phase's duration comes from cached per-expert times; the composed log of its busiest channel comes
    from simulating every expert again with its log: both must give the same tick."""
    counts = np.array([1, 0, 5, 2, 1, 0, 9, 1])
    phase = expert_phase(aim, "gpt_oss_120b", counts, layout, per_expert)
    busiest = int(np.argmax(phase.busy_s))
    composed = expert_phase_log(aim, "gpt_oss_120b", counts, layout, per_expert, channel=busiest)
    tick_s = aim.standard.tick_ns * 1e-9
    assert composed.end_tick * tick_s == pytest.approx(phase.duration_s, rel=1e-12)
    assert composed.gate_up_end_tick * tick_s == pytest.approx(phase.gate_up_s[busiest], rel=1e-12)
    assert (composed.down_start_tick - composed.gate_up_end_tick) * tick_s == pytest.approx(aim.pim.handoff_s)
    assert np.all(np.diff(composed.log.tick) >= 0) and composed.log.tick[-1] < composed.end_tick


def test_the_hand_off_is_phase_time_not_busy_time(aim):
    phase = expert_phase(aim, "gpt_oss_120b", np.array([3, 1, 0, 1]), "tp")
    assert phase.experts == 3
    assert phase.duration_s - phase.busy_s.max() == pytest.approx(aim.pim.handoff_s)
    assert np.all(phase.gate_up_s < phase.busy_s)
    none = expert_phase(aim, "gpt_oss_120b", np.zeros(4, dtype=np.int64), "tp")
    assert none.duration_s == 0 and none.experts == 0 and not none.busy_s.any()
