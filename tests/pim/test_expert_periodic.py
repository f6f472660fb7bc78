"""Long expert streams are periodic per token: the extrapolated time equals the whole simulation, tick for tick."""

from __future__ import annotations

import pytest

import sieve.hw
import sieve.model
from sieve.pim.expert import SIMULATED_UP_TO, expert_run, expert_time


@pytest.mark.parametrize("model,layout,channels", [
    ("qwen3_30b_a3b", "tp", None), ("qwen3_30b_a3b", "ep", 2), ("gpt_oss_120b", "tp", None),
    ("gpt_oss_120b", "ep", 8),
])
@pytest.mark.parametrize("n", [SIMULATED_UP_TO + 1, SIMULATED_UP_TO + 2, 97, 150])
def test_extrapolated_time_is_the_simulated_time(model, layout, channels, n):
    hw, spec = sieve.hw.load("aim"), sieve.model.load(model)
    ticks, _ = expert_run(hw, spec, n, layout, channels_per_expert=channels)
    got = expert_time(hw, spec, n, layout, channels_per_expert=channels, details=True)
    assert round(got.seconds / (hw.standard.tick_ns * 1e-9)) == ticks


def test_extrapolated_commands_are_counted():
    hw, spec = sieve.hw.load("aim"), sieve.model.load("qwen3_30b_a3b")
    _, session = expert_run(hw, spec, 100, log=False)
    totals = session.engine.command_totals()
    names = hw.standard.command_names
    want = {names[i]: int(totals[i]) for i in range(len(names)) if totals[i]}
    assert expert_time(hw, spec, 100, details=True).commands == want
