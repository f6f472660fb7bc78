"""python -m sieve.reproduce sensitivity: the tidy table, Sieve's gain, resuming, and bad keys and values."""

from __future__ import annotations

import pandas as pd
import pytest

import sieve.runtime as rt
from sieve.reproduce import ReproduceError, main, run_sensitivity

FAST = dict(batch_sizes=[16], extra=["workload.decode_steps=1"], scheds=["allexp", "sieve"], progress=False)


def test_table_gain_and_resume(tmp_path, monkeypatch):
    csv = run_sensitivity("qwen3_30b_a3b", "hw.memory.stacks", ["6", "8"], tmp_path, **FAST)
    t = pd.read_csv(csv)
    assert list(t.columns) == ["model", "param", "value", "sched", "batch_size", "num_gpus", "tpot_s",
                               "tokens_per_s_per_gpu", "tokens_per_s_per_user", "sieve_gain"]
    assert sorted(t["value"].unique()) == [6, 8] and set(t["sched"]) == {"allexp", "sieve"}
    for value, rows in t.groupby("value"):
        rate = rows.set_index("sched")["tokens_per_s_per_gpu"]
        assert rows.set_index("sched")["sieve_gain"].to_dict() == pytest.approx(
            {"allexp": rate["sieve"] / rate["allexp"], "sieve": 1.0})
    assert (tmp_path / f"{csv.stem}.png").stat().st_size > 0
    # the value reached the machine: 6 stacks have 3/4 of 8 stacks' PIM channels
    assert t.loc[t["value"] == 6, "tokens_per_s_per_gpu"].tolist() != t.loc[t["value"] == 8, "tokens_per_s_per_gpu"].tolist()
    # interrupted: one point is missing; the rerun simulates only that one
    points = sorted((tmp_path / ".points").glob("*.json"))
    assert len(points) == 4
    points[0].unlink()
    calls = []
    simulate = rt.simulate
    monkeypatch.setattr(rt, "simulate", lambda overrides: calls.append(overrides) or simulate(overrides))
    run_sensitivity("qwen3_30b_a3b", "hw.memory.stacks", ["6", "8"], tmp_path, **FAST)
    assert len(calls) == 1
    pd.testing.assert_frame_equal(pd.read_csv(csv), t)


@pytest.mark.parametrize("param,values,message", [
    ("hw.link.bytes_per_second", ["1e12"], "unknown config key; close keys: hw.link.bytes_per_s_per_direction"),
    ("workload.context_lenght.mean", ["512"], "close keys: workload.context_length.mean"),
    ("hw.memory.stacks", ["8", "many"], "'many' is not of type int, the type of hw.memory.stacks (default 8)"),
    ("hw.link.latency_s", ["fast"], "'fast' is not of type float"),
    ("workload.context_length", ["512"], "is a group of keys; pick one of: workload.context_length.distribution"),
    ("sched.params.alpha", ["0.1"], "compare them with --variant SCHED:sched.params.alpha=VALUE"),
])
def test_bad_keys_and_values_are_named(tmp_path, param, values, message):
    with pytest.raises(ReproduceError) as e:
        run_sensitivity("qwen3_30b_a3b", param, values, tmp_path, **FAST)
    assert message in str(e.value)
    assert not (tmp_path / ".points").exists()


def test_cli_arguments(tmp_path, capsys):
    assert main(["sensitivity", "--model", "qwen3_30b_a3b", "--param", "hw.memory.stacks", "--values", "x",
                 "--out", str(tmp_path)]) == 2
    assert "'x' is not of type int" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["sensitivity", "--model", "qwen3_30b_a3b"])
    assert "sensitivity needs --param KEY and --values" in capsys.readouterr().err
