"""The sweep collector on run directories made by hand: which directories count as runs, what a row holds,
the order, the errors, the concatenated tables and the command line."""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import pandas as pd
import pytest

from sieve.results import collect
from sieve.results.collect import find_runs, main


def make_run(root, rel, *, sched="sieve", batch_size=4, num_gpus=1, overrides=None, tables=None,
             fmt="csv", finished=True):
    """A run directory as ``python -m sieve.run`` leaves it (tables given as {name: DataFrame})."""
    run = root / rel
    (run / ".hydra").mkdir(parents=True)
    if overrides is not None:
        (run / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    for name, df in (tables or {}).items():
        if fmt == "parquet":
            df.to_parquet(run / f"{name}.parquet", index=False)
        else:
            df.to_csv(run / f"{name}.csv", index=False)
    if finished:
        summary = {"model": "qwen3_30b_a3b", "hw": "aim", "sched": sched, "batch_size": batch_size,
                   "num_gpus": num_gpus, "tokens_per_s_per_gpu": 100.0 * batch_size}
        (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_one_row_per_finished_run_sorted_by_path_with_overrides_and_run_dir(tmp_path):
    make_run(tmp_path, "sched=sieve,workload.batch_size=4", overrides=["sched=sieve", "workload.batch_size=4"])
    make_run(tmp_path, "sched=allexp,workload.batch_size=16", sched="allexp", batch_size=16,
             overrides=["sched=allexp", "workload.batch_size=16"])
    df = collect(tmp_path)
    assert list(df["run_dir"]) == ["sched=allexp,workload.batch_size=16", "sched=sieve,workload.batch_size=4"]
    assert list(df["sched"]) == ["allexp", "sieve"]
    assert list(df["batch_size"]) == [16, 4]
    assert list(df["overrides"]) == ["sched=allexp workload.batch_size=16", "sched=sieve workload.batch_size=4"]
    assert list(df.columns[:6]) == ["model", "hw", "sched", "batch_size", "num_gpus", "tokens_per_s_per_gpu"]
    assert list(df.columns[-2:]) == ["overrides", "run_dir"]


def test_a_run_without_hydra_overrides_has_empty_overrides_and_a_single_run_dir_is_itself(tmp_path):
    run = make_run(tmp_path, "outputs/2026-11-29/09-00-00")
    df = collect(run)
    assert list(df["run_dir"]) == ["."]
    assert list(df["overrides"]) == [""]
    assert len(collect(tmp_path)) == 1


def test_unfinished_runs_are_skipped_with_a_warning_naming_how_many(tmp_path, caplog):
    make_run(tmp_path, "a", overrides=["sched=sieve"])
    make_run(tmp_path, "b", overrides=["sched=allexp"], finished=False,
             tables={"layers": pd.DataFrame({"layer": [0]})})
    (tmp_path / "c").mkdir()                                  # Hydra had not started it: not a run at all
    with caplog.at_level(logging.WARNING, logger="sieve.results.collect"):
        df = collect(tmp_path)
    assert list(df["run_dir"]) == ["a"]
    assert len(caplog.records) == 1
    msg = caplog.records[0].getMessage()
    assert "1 of 2 runs" in msg and str(tmp_path) in msg and ": b" in msg


def test_hidden_directories_are_not_searched(tmp_path):
    make_run(tmp_path, "a")
    make_run(tmp_path, ".submitit/123")                     # submitit's files, never a run
    make_run(tmp_path, "b/.partial-xyz", finished=False,    # staging left by a killed write_run
             tables={"layers": pd.DataFrame({"layer": [0]})})
    finished, unfinished = find_runs(tmp_path)
    assert [p.name for p in finished] == ["a"] and unfinished == []


def test_missing_directory_and_a_file_are_errors_naming_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        collect(tmp_path / "nowhere")
    (tmp_path / "f.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="f.txt"):
        collect(tmp_path / "f.txt")


def test_a_directory_without_a_finished_run_is_an_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} holds no finished run"):
        collect(tmp_path)
    make_run(tmp_path, "a", finished=False)
    with pytest.raises(ValueError, match=r"1 unfinished"):
        collect(tmp_path)


def test_a_summary_that_is_not_a_json_object_is_an_error_naming_the_file(tmp_path):
    run = make_run(tmp_path, "a")
    (run / "summary.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"a/summary\.json holds a list"):
        collect(tmp_path)
    (run / "summary.json").write_text("{")
    with pytest.raises(ValueError, match=r"a/summary\.json is not valid JSON"):
        collect(tmp_path)


def test_summaries_with_different_keys_give_the_union_of_columns(tmp_path):
    make_run(tmp_path, "a")
    run = make_run(tmp_path, "b")
    summary = json.loads((run / "summary.json").read_text())
    (run / "summary.json").write_text(json.dumps({**summary, "pim_busy": 0.5}))
    df = collect(tmp_path)
    assert df["pim_busy"].isna().tolist() == [True, False]


def test_tables_are_concatenated_with_the_identity_of_their_run_in_front(tmp_path):
    steps_a = pd.DataFrame({"step": [0, 1], "time_s": [1e-3, 2e-3]})
    steps_b = pd.DataFrame({"step": [0], "time_s": [3e-3]})
    chan_a = pd.DataFrame({"gpu": [0, 0], "channel": [0, 1], "utilization": [0.5, 0.25]})
    chan_b = pd.DataFrame({"gpu": [0, 1], "channel": [0, 0], "utilization": [0.1, 0.2]})
    make_run(tmp_path, "a", sched="allexp", batch_size=8, tables={"steps": steps_a, "channels": chan_a})
    make_run(tmp_path, "b", sched="sieve", batch_size=2, num_gpus=2, tables={"steps": steps_b, "channels": chan_b},
             fmt="parquet")
    out = collect(tmp_path, tables=("steps", "channels"))
    assert set(out) == {"summary", "steps", "channels"}
    pd.testing.assert_frame_equal(out["summary"], collect(tmp_path))
    steps = out["steps"]
    assert list(steps.columns) == ["model", "sched", "batch_size", "num_gpus", "run_dir", "step", "time_s"]
    assert list(steps["sched"]) == ["allexp", "allexp", "sieve"]
    assert list(steps["batch_size"]) == [8, 8, 2]
    assert list(steps["run_dir"]) == ["a", "a", "b"]
    assert steps["time_s"].tolist() == [1e-3, 2e-3, 3e-3]
    channels = out["channels"]
    assert len(channels) == 4 and list(channels["num_gpus"]) == [1, 1, 2, 2]
    assert channels.loc[channels["run_dir"] == "b", "utilization"].tolist() == [0.1, 0.2]
    assert list(collect(tmp_path, tables="steps")) == ["summary", "steps"]


def test_an_unknown_or_missing_table_is_an_error_naming_it(tmp_path):
    make_run(tmp_path, "a", tables={"steps": pd.DataFrame({"step": [0]})})
    with pytest.raises(ValueError, match=r"unknown table 'step'; tables of a run: layers, channels, experts, steps"):
        collect(tmp_path, tables=("step",))
    with pytest.raises(FileNotFoundError, match=r"a/layers\.csv \(or \.parquet\)"):
        collect(tmp_path, tables=("layers",))


def test_command_prints_the_table_or_writes_csv_and_parquet(tmp_path, capsys):
    make_run(tmp_path / "sweep", "a", sched="allexp")
    make_run(tmp_path / "sweep", "b", sched="sieve")
    assert main([str(tmp_path / "sweep")]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4 and "allexp" in printed[2] and "sieve" in printed[3]
    (tmp_path / "out").mkdir()  # --out writes into an existing directory (a missing one is an error)
    for name in ("runs.csv", "out/runs.parquet"):
        out = tmp_path / name
        assert main([str(tmp_path / "sweep"), "--out", str(out)]) == 0
        table = pd.read_csv(out) if out.suffix == ".csv" else pd.read_parquet(out)
        assert list(table["sched"]) == ["allexp", "sieve"]
        assert "2 runs written to" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["{tmp}/nowhere"], "error: {tmp}/nowhere: no such directory"),
    (["{tmp}"], "error: {tmp} holds no finished run: no summary.json at or below it"),
    (["{tmp}", "--out", "{tmp}/runs.txt"], "error: --out {tmp}/runs.txt: unknown table format '.txt'; "
                                           "allowed: .csv, .parquet"),
])
def test_command_errors_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    assert main([a.format(tmp=tmp_path) for a in args]) == 2
    captured = capsys.readouterr()
    assert captured.err == message.format(tmp=tmp_path) + "\n" and captured.out == ""


def test_python_dash_m_runs_the_command(tmp_path):
    make_run(tmp_path, "a")
    proc = subprocess.run([sys.executable, "-m", "sieve.results", str(tmp_path), "--out",
                           str(tmp_path / "runs.csv")], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert pd.read_csv(tmp_path / "runs.csv")["run_dir"].tolist() == ["a"]


def test_batch_sizes_sort_as_numbers_and_the_printed_table_is_narrow(tmp_path, capsys):
    for b in (1, 16, 256, 4, 64):
        make_run(tmp_path, f"sched=sieve,workload.batch_size={b}", batch_size=b,
                 overrides=["sched=sieve", f"workload.batch_size={b}"])
    assert list(collect(tmp_path)["batch_size"]) == [1, 4, 16, 64, 256]
    assert main([str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    # settings shared by every run once, above a table of what differs and the figures
    assert lines[0] == "5 runs; in every run: model=qwen3_30b_a3b, hw=aim, sched=sieve, num_gpus=1"
    assert lines[1].split() == ["batch_size", "tokens_per_s_per_gpu"]
    assert [line.split() for line in lines[2:]] == [["1", "100"], ["4", "400"], ["16", "1600"], ["64", "6400"],
                                                    ["256", "2.56e+04"]]
    assert max(map(len, lines)) < 100
