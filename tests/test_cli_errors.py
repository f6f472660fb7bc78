"""Every command a new user is likely to get wrong ends in one ``error:`` line naming the bad value and what
is allowed (exit status 2), before anything is written; none ends in a traceback or a silently wrong result."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """The exact command, as a user types it (this checkout's sieve)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)


def in_process(module: str, *args: str, cwd: Path, capsys, monkeypatch) -> subprocess.CompletedProcess:
    """The same command through its ``main(argv)``, without starting an interpreter (for the many cases)."""
    import importlib

    monkeypatch.chdir(cwd)
    name = f"{module}.__main__" if module in ("sieve.dram", "sieve.pim") else module
    main = importlib.import_module(name).main
    try:
        code = main(list(args))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, out.out, out.err)


def one_line_error(p: subprocess.CompletedProcess, *fragments: str) -> str:
    assert "Traceback" not in p.stderr, p.stderr
    lines = p.stderr.strip().splitlines()
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: "), p.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "binary.trace").write_bytes(bytes(range(256)))
    (tmp_path / "trace.gz").write_bytes(gzip.compress(b"LD 0x0\n"))
    (tmp_path / "empty.trace").write_text("")
    (tmp_path / "comments.trace").write_text("# nothing but a comment\n\n")
    (tmp_path / "ok.trace").write_text("LD 0x0\nST 0x40\n")
    (tmp_path / "aim.trace").write_text("AiM EOC\n")
    (tmp_path / "a_directory").mkdir()
    return tmp_path


# ---- python -m sieve.dram --------------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [
    ("binary.trace", "is binary, not a text file (NUL byte at offset 0)"),
    ("trace.gz", "is gzip-compressed; decompress it first"),
    ("empty.trace", "holds no requests (only blank or comment lines)"),
    ("comments.trace", "holds no requests (only blank or comment lines)"),
    ("a_directory", "is a directory"),
])
def test_dram_refuses_traces_without_requests(files, name, fragment, capsys, monkeypatch):
    one_line_error(in_process("sieve.dram", name, cwd=files, capsys=capsys, monkeypatch=monkeypatch), repr(name),
                   fragment)


def test_dram_on_a_binary_file_as_typed(files):
    one_line_error(run("sieve.dram", "binary.trace", cwd=files), "is binary, not a text file")


def test_dram_generate_into_a_missing_directory(files):
    one_line_error(run("sieve.dram", "--generate", "seq", "5", "/nonexistent/dir/x.trace", cwd=files),
                   "--generate OUT '/nonexistent/dir/x.trace'", "directory '/nonexistent/dir' does not exist")
    assert not list(files.glob(".trace-*"))


def test_dram_bank_csv_into_a_missing_directory_is_refused_before_the_run(files):
    one_line_error(run("sieve.dram", "ok.trace", "--bank-csv", "missing/banks.csv", cwd=files),
                   "--bank-csv 'missing/banks.csv'", "directory 'missing' does not exist")


def test_dram_table_prints_floats_readably(files):
    p = run("sieve.dram", "ok.trace", cwd=files)
    assert p.returncode == 0, p.stderr
    wall = next(line for line in p.stdout.splitlines() if line.strip().startswith("wall_s:"))
    value = wall.split(":", 1)[1].strip()
    assert len(value.replace("e-", "")) <= 10 and float(value) > 0  # 6 significant digits, not 17


# ---- python -m sieve.pim ---------------------------------------------------------------------------

@pytest.mark.parametrize("name, fragment", [
    ("binary.trace", "is binary, not a text file"),
    ("trace.gz", "is gzip-compressed; decompress it first"),
    ("a_directory", "is a directory; give an AiM trace file"),
    ("nothere.trace", "does not exist"),
])
def test_pim_refuses_what_is_not_an_aim_trace(files, name, fragment, capsys, monkeypatch):
    one_line_error(in_process("sieve.pim", name, cwd=files, capsys=capsys, monkeypatch=monkeypatch), repr(name),
                   fragment)


def test_pim_on_a_gzip_file_as_typed(files):
    one_line_error(run("sieve.pim", "trace.gz", cwd=files), "is gzip-compressed; decompress it first")


def test_pim_channel_csv_into_a_missing_directory(files):
    one_line_error(run("sieve.pim", "aim.trace", "--channel-csv", "missing/ch.csv", cwd=files),
                   "--channel-csv 'missing/ch.csv'", "does not exist")


def test_pim_on_hbm_says_which_preset_runs_aim_traces(files):
    one_line_error(run("sieve.pim", "aim.trace", "--hw", "aim", cwd=files), "hardware preset gddr6_aim",
                   "pseudochannel")
    assert "only gddr6_aim runs them" in " ".join(run("sieve.pim", "--help", cwd=files).stdout.split())


# ---- python -m sieve.results -----------------------------------------------------------------------

def test_results_out_into_a_missing_directory_is_refused_not_created(tmp_path):
    (tmp_path / "sweep").mkdir()
    one_line_error(run("sieve.results", "sweep", "--out", "nowhere/x.csv", cwd=tmp_path),
                   "--out 'nowhere/x.csv'", "does not exist")
    assert not (tmp_path / "nowhere").exists()


# ---- python -m sieve.run: config groups and values --------------------------------------------------

@pytest.mark.parametrize("args, fragments", [
    (["+hw=aim", "+model=deepseak"], ["model=deepseak is not an option", "did you mean 'deepseek'?"]),
    (["+hw=aim", "+model=deepseek", "sched=seive"], ["sched=seive is not an option", "did you mean 'sieve'?"]),
    (["+hw=aim", "+model=deepseek", "workload=decod"], ["workload options: decode, mixed", "did you mean 'decode'?"]),
    (["+hw=aim", "+model=deepseek", "hw/gpu=b20"], ["hw/gpu=b20 is not an option", "did you mean 'b200'?"]),
    (["+hw=aim", "+modle=deepseek"], ["unknown config key 'modle'", "did you mean the group '+model=...'?"]),
    # 8 of 1..256 is the smallest GPU count that divides DeepSeek-V3's 256 experts and holds its ~630 GB
    (["+hw=aim", "+model=deepseek", "num_gpus=1"], ["use num_gpus=8 (the fewest that fit)"]),
    # a number where a config group's option, a name, belongs
    (["+hw=aim", "+model=deepseek", "sched=3"], ["sched=3 is not an option; sched options: allexp,"]),
    (["+hw=aim", "+model=deepseek", "workload=2.5"], ["workload=2.5 is not an option; workload options: decode"]),
    (["+hw=aim", "+model=deepseek", "sched=true"], ["sched=true is not an option; sched options: allexp,"]),
    # a value where a key holds settings of its own
    (["+hw=aim", "+model=deepseek", "workload.context_length=-1"],
     ["workload.context_length=-1 is invalid: workload.context_length holds settings, not a value",
      "workload.context_length.<setting>=..., with <setting> one of: distribution, mean"]),
    (["+hw=aim", "+model=deepseek", "workload.routing.params=3"],
     ["workload.routing.params=3 is invalid", "set one of them, workload.routing.params.<setting>=..."]),
    (["+hw=aim", "+model=deepseek", "hw.gpu=3"],
     ["hw.gpu=3 is invalid: hw.gpu holds settings, not a value", "<setting> one of: name, bf16_flops"]),
    (["+hw=aim", "+model=deepseek", "sched.params=3"],
     ["sched.params=3 is invalid: sched.params holds the scheduler's parameters by name"]),
])
def test_run_names_the_bad_choice_and_the_closest_valid_one(tmp_path, args, fragments, capsys, monkeypatch):
    line = one_line_error(in_process("sieve.run", *args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch),
                          *fragments)
    assert "base_model" not in line and "base_workload" not in line  # schemas, not options


def test_run_with_a_misspelt_model_as_typed(tmp_path):
    one_line_error(run("sieve.run", "+hw=aim", "+model=deepseak", cwd=tmp_path), "did you mean 'deepseek'?")


def test_run_with_an_empty_routing_trace(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    one_line_error(run("sieve.run", "+hw=aim", "+model=qwen3_30b_a3b", "workload.routing.family=trace",
                       "workload.routing.trace=empty.npz", cwd=tmp_path),
                   "empty.npz: not an npz routing trace", "the file is empty")


def test_run_with_a_config_json_missing_the_expert_width(tmp_path):
    raw = json.loads((ROOT / "tests/fixtures/hf/qwen3_30b_a3b.json").read_text())
    del raw["moe_intermediate_size"]
    (tmp_path / "config.json").write_text(json.dumps(raw))
    one_line_error(run("sieve.run", "+hw=aim", "+model=hf", "model.hf_config=config.json", cwd=tmp_path),
                   "required field 'moe_intermediate_size'")


def test_simulate_refuses_a_string(tmp_path):
    import sieve

    with pytest.raises(TypeError, match=r"a list of overrides.*\['\+hw=aim', '\+model=x'\]"):
        sieve.simulate("+hw=aim +model=x")


# ---- python -m sieve.reproduce -----------------------------------------------------------------------

def test_reproduce_with_a_misspelt_model(tmp_path):
    one_line_error(run("sieve.reproduce", "fig9", "--model", "deepseak", "--out", "r", cwd=tmp_path),
                   "unknown model 'deepseak'", "did you mean 'deepseek'?")
    assert not (tmp_path / "r").exists()


# ---- a finished run directory, and Ctrl-C ------------------------------------------------------------

SMALL = ["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=2", "workload.decode_steps=1",
         "output.plots=false", "progress=false"]


def test_rerun_into_a_finished_run_dir_says_it_was_not_run_and_shows_the_figures(tmp_path):
    first = run("sieve.run", *SMALL, "hydra.run.dir=out", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    tpot = json.loads((tmp_path / "out/summary.json").read_text())["tpot_s"]
    again = run("sieve.run", *SMALL, "hydra.run.dir=out", cwd=tmp_path)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    assert "already holds a finished run of this configuration, written" in again.stdout
    assert "it was not run again" in again.stdout
    assert f"time per output token {tpot * 1e3:.3f} ms" in again.stdout
    log = (tmp_path / "out/run.log").read_text()
    assert f"time per output token {tpot * 1e3:.3f} ms" in log  # run.log keeps the summary of the run


def _interrupt(args: list[str], cwd: Path, after: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Start the command in its own process group, and press Ctrl-C (SIGINT to the group) once ``after``
    appears in its output files."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out, err = cwd / "stdout.txt", cwd / "stderr.txt"
    with open(out, "w") as o, open(err, "w") as e:
        # as a shell starts a command: Ctrl-C at its default, whatever this process (a test worker, which
        # an earlier test may have left ignoring it) does with it; Python installs its handler only then
        p = subprocess.Popen([sys.executable, "-m", *args], cwd=cwd, env=env, stdout=o, stderr=e,
                             start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        deadline = time.monotonic() + timeout
        while after not in out.read_text() + err.read_text():
            assert p.poll() is None and time.monotonic() < deadline, err.read_text()
            time.sleep(0.2)
        os.killpg(p.pid, signal.SIGINT)
        p.wait(timeout=120)
    return subprocess.CompletedProcess(args, p.returncode, out.read_text(), err.read_text())


@pytest.mark.slow
def test_ctrl_c_in_a_parallel_sweep_is_one_line_and_resumes_cleanly(tmp_path):
    shown = [a for a in SMALL if a != "progress=false"]  # parallel jobs must turn their bars off themselves
    sweep = ["sieve.run", "--multirun", *shown, "workload.batch_size=1,2,4,8,16,32,64,128",
             "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "hydra.sweep.dir=sweep"]
    p = _interrupt(sweep, tmp_path, after="written to")
    assert p.returncode == 130
    assert p.stderr.strip().splitlines()[-1].startswith("interrupted; finished runs are kept")
    assert "Traceback" not in p.stderr and "leaked semaphore" not in p.stderr
    assert "layer/s" not in p.stderr  # no progress bars of parallel jobs writing over each other
    resumed = run(*sweep, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    runs = [d for d in (tmp_path / "sweep").iterdir() if d.is_dir()]
    assert len(runs) == 8 and all((d / "summary.json").exists() for d in runs)
    assert not list((tmp_path / "sweep").glob("*/.partial-*"))


def test_ctrl_c_in_a_run_is_one_line(tmp_path):
    # enough decode steps that the run is still going when Ctrl-C arrives (8 steps take under a second)
    args = ["sieve.run", "+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=64",
            "workload.decode_steps=400", "hydra.run.dir=out"]
    p = _interrupt(args, tmp_path, after="layer/s")
    assert p.returncode == 130, p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("interrupted")
    assert "Traceback" not in p.stderr
    assert not (tmp_path / "out/summary.json").exists() and not list((tmp_path / "out").glob(".partial-*"))


def test_a_stale_partial_directory_is_removed_by_the_next_write(tmp_path):
    import sieve
    from sieve.runtime import write_run

    result = sieve.simulate(SMALL)
    (tmp_path / ".partial-killed").mkdir()
    (tmp_path / ".partial-killed" / "layers.csv").write_text("half")
    write_run(result, tmp_path, plots=False)
    assert not list(tmp_path.glob(".partial-*")) and (tmp_path / "summary.json").exists()


def test_output_gb_are_binary_as_the_hardware_states_them():
    import sieve

    result = sieve.simulate(SMALL)
    s = result.summary
    assert s["memory_capacity_gb"] == 96.0  # conf/hw/memory/hbm3e_pim.yaml: 96 GB usable per GPU
    assert np.isclose(s["memory_per_gpu_gb"] * 2**30, result.simulation.memory.total)
    assert "memory per GPU" in result.describe() and "of 96.0 GB" in result.describe()
