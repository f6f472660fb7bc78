"""The comparison with the paper: statistics worked out by hand on a made-up sweep, and the guard that no
change moves a headline statistic silently."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from sieve.results.paper import compare, markdown

COMMITTED = Path(__file__).resolve().parent / "paper_comparison_quick.csv"
MOVE = 0.02  # largest relative move of any statistic before the guard fails


def _fig9(model, tput):
    """A fig9 table from {sched: {B: tokens/s per GPU}}."""
    return pd.DataFrame([{"model": model, "sched": s, "batch_size": b, "tokens_per_s_per_gpu": v}
                         for s, by_b in tput.items() for b, v in by_b.items()])


def test_statistics_of_a_hand_made_sweep():
    # B = 2, 16, 32, 256. Baselines: the best is allexp at 2 (10), pimoe at 16 (20), 32 (30) and 256 (100).
    t = {"noexp": {2: 5, 16: 6, 32: 7, 256: 8}, "allexp": {2: 10, 16: 15, 32: 20, 256: 25},
         "pimoe": {2: 8, 16: 20, 32: 30, 256: 100}, "gpu_only": {2: 1, 16: 2, 32: 3, 256: 4},
         "sieve": {2: 9, 16: 19.6, 32: 36, 256: 130}, "sieve[overhead_s=0]": {2: 10, 16: 20, 32: 30, 256: 100}}
    fig11 = pd.DataFrame({"model": "qwen3_30b_a3b", "sched": ["noexp", "sieve", "sieve"], "batch_size": [16, 16, 32],
                          "speedup_over_noexp": [1.0, 2.5, 2.0]})
    tables = {m: _fig9(m, t) for m in ("qwen3_5_397b_a17b", "gpt_oss_120b", "qwen3_30b_a3b")}
    got = compare(tables, fig11).set_index(["model", "curve", "statistic"])
    v = got["value"]
    assert v["qwen3_5_397b_a17b", "sieve", "sieve_over_pimoe"] == 1.3            # 130 / 100 at B=256
    assert v["gpt_oss_120b", "sieve", "sieve_over_pimoe"] == pytest.approx(1.25)  # median(36/30, 130/100)
    assert v["qwen3_30b_a3b", "sieve", "sieve_over_pimoe"] == pytest.approx(1.3)  # best of .98, 1.2, 1.3
    assert v["qwen3_30b_a3b", "sieve", "worst_vs_best_baseline_b16"] == pytest.approx(0.98)
    assert got.loc[("qwen3_30b_a3b", "sieve", "worst_vs_best_baseline_b16"), "where"] == "B=16 (pimoe)"
    assert got.loc[("qwen3_30b_a3b", "sieve", "worst_vs_best_baseline_b16"), "holds"] is False  # < 0.99
    assert v["qwen3_30b_a3b", "sieve", "worst_vs_best_baseline_small_b"] == pytest.approx(0.9)  # 9 / 10, allexp
    assert got.loc[("qwen3_30b_a3b", "sieve", "worst_vs_best_baseline_small_b"), "holds"] is True
    assert v["qwen3_30b_a3b", "allexp", "allexp_growth_32_256"] == 1.25
    assert v["qwen3_30b_a3b", "sieve", "sieve_growth_32_256"] == pytest.approx(130 / 36)
    assert v["qwen3_30b_a3b", "sieve", "fig11_speedup_b16"] == 2.5
    assert v["qwen3_30b_a3b", "sieve[overhead_s=0]", "sieve_over_pimoe"] == 1.0
    md = markdown(compare(tables, fig11))
    assert "| qwen3_5_397b_a17b | Sieve over pimoe | 1.30× | B=256 | 1.26× at B=256 | 1.10–1.50 | yes |" in md
    assert "| `sieve[overhead_s=0]` |" in md


@pytest.mark.slow
def test_headline_statistics_have_not_moved(tmp_path):
    """The reduced grid of ``python -m sieve.reproduce paper --quick`` against the committed table: every
    statistic within 2% (regenerate the file with that command when a change is meant to move results)."""
    from sieve.reproduce import run_paper

    new = pd.read_csv(run_paper(tmp_path, quick=True, jobs=1, progress=False))
    old = pd.read_csv(COMMITTED)
    key = ["model", "curve", "statistic"]
    both = old.merge(new, on=key, how="outer", suffixes=("_committed", "_now"), indicator=True)
    assert (both["_merge"] == "both").all(), both.loc[both["_merge"] != "both", key + ["_merge"]].to_string()
    both["move"] = both["value_now"] / both["value_committed"] - 1
    moved = both[both["move"].abs() > MOVE]
    assert moved.empty, "statistics moved by more than 2%:\n" + moved[key + ["value_committed", "value_now", "move"]].to_string()
