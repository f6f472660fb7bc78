"""Sweeps of ``python -m sieve.run --multirun`` through Hydra's launchers, resumed and collected.

Each sweep runs as a subprocess on the smallest useful configuration (Qwen3-30B-A3B on one GPU, B=4,
one decode step), two points: sched=sieve,allexp."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sieve.results import collect

POINT = ["+hw=aim", "+model=qwen3_30b_a3b", "num_gpus=1", "workload.batch_size=4", "workload.decode_steps=1",
         "progress=false"]
SCHEDS = ("allexp", "sieve")


def sieve_multirun(sweep_dir: Path, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "sieve.run", "--multirun", *POINT, f"sched={','.join(SCHEDS)}", *args,
           f"hydra.sweep.dir={sweep_dir}"]
    env = {**os.environ, "HYDRA_FULL_ERROR": "1"}
    proc = subprocess.run(cmd, cwd=sweep_dir.parent, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, (f"{' '.join(cmd)} exited {proc.returncode}\n--- stdout\n{proc.stdout[-3000:]}\n"
                                  f"--- stderr\n{proc.stderr[-5000:]}")
    return proc


def run_dirs(sweep_dir: Path) -> dict[str, Path]:
    """sched -> run directory of the sweep."""
    dirs = {}
    for sched in SCHEDS:
        [d] = [p for p in sweep_dir.iterdir() if p.is_dir() and f"sched={sched}," in p.name]
        dirs[sched] = d
    return dirs


def check_collected(sweep_dir: Path) -> None:
    df = collect(sweep_dir)
    assert sorted(df["sched"]) == list(SCHEDS)
    assert (df["tokens_per_s_per_gpu"] > 0).all()
    assert set(df["model"]) == {"qwen3_30b_a3b"} and set(df["batch_size"]) == {4} and set(df["num_gpus"]) == {1}
    for _, row in df.iterrows():
        assert f"sched={row['sched']}" in row["overrides"].split()
        assert f"sched={row['sched']}," in row["run_dir"]


def test_joblib_launcher_runs_the_points_in_parallel_processes_and_collects(tmp_path):
    sweep = tmp_path / "sweep"
    proc = sieve_multirun(sweep, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2")
    assert "Joblib.Parallel(n_jobs=2" in proc.stderr + proc.stdout
    check_collected(sweep)
    for run in run_dirs(sweep).values():   # the whole run directory, figures included (output.plots default)
        assert {"summary.json", "layers.csv", "channels.csv", "experts.csv", "steps.csv", "config.yaml",
                "channels.png"} <= {p.name for p in run.iterdir()}
    tables = collect(sweep, tables=("steps",))
    assert sorted(tables["steps"]["sched"]) == list(SCHEDS) and (tables["steps"]["time_s"] > 0).all()


@pytest.mark.slow
def test_submitit_local_launcher_runs_each_point_as_a_submitit_job(tmp_path):
    sweep = tmp_path / "sweep"
    sieve_multirun(sweep, "output.plots=false", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=5",
                   "hydra.launcher.cpus_per_task=1")
    check_collected(sweep)
    # submitit's own record of each job: its pickled result and the job's stdout
    results = sorted((sweep / ".submitit").glob("*/*_result.pkl"))
    assert len(results) == len(SCHEDS)
    logs = "".join(p.read_text() for p in (sweep / ".submitit").glob("*/*_log.out"))
    for run in run_dirs(sweep).values():
        assert f"written to {run}" in logs


def test_a_sweep_started_again_in_its_directory_runs_only_the_unfinished_point(tmp_path):
    sweep = tmp_path / "sweep"
    sieve_multirun(sweep, "output.plots=false")
    dirs = run_dirs(sweep)
    kept, redone = dirs["allexp"] / "summary.json", dirs["sieve"] / "summary.json"
    kept_bytes, kept_mtime = kept.read_bytes(), kept.stat().st_mtime_ns
    redone_bytes = redone.read_bytes()
    layers = dirs["sieve"] / "layers.csv"
    layers_bytes = layers.read_bytes()

    redone.unlink()                          # interrupted before its summary: its other files stay
    layers.write_text("step,layer\n")        # ... possibly stale
    assert list(collect(sweep)["sched"]) == ["allexp"]

    proc = sieve_multirun(sweep, "output.plots=false")
    assert kept.read_bytes() == kept_bytes and kept.stat().st_mtime_ns == kept_mtime
    assert f"{dirs['allexp']} already holds a finished run of this configuration, written" in proc.stdout
    assert "it was not run again" in proc.stdout
    assert redone.read_bytes() == redone_bytes and layers.read_bytes() == layers_bytes
    check_collected(sweep)


def test_slurm_launcher_preset_composes_onto_submitit_slurm():
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from sieve.config import register_all
    from sieve.runtime import CONF_DIR

    register_all()
    GlobalHydra.instance().clear()
    with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
        cfg = compose("config", overrides=[*POINT, "hydra/launcher=slurm", "hydra.launcher.partition=cpu"],
                      return_hydra_config=True)
    GlobalHydra.instance().clear()
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.SlurmLauncher")
    assert (launcher.partition, launcher.cpus_per_task, launcher.mem_gb, launcher.timeout_min) == ("cpu", 1, 2, 30)
    assert launcher.gpus_per_node is None


@pytest.fixture(autouse=True)
def _no_stray_outputs(tmp_path):
    """Sweeps write only below their hydra.sweep.dir."""
    yield
    assert not (tmp_path / "outputs").exists() and not (tmp_path / "multirun").exists()


# ---- the paper's experiment presets ------------------------------------------------------------------

@pytest.mark.parametrize("model,gpus,over", [("qwen3_30b_a3b", 1, False), ("gpt_oss_120b", 4, False),
                                             ("qwen3_5_397b_a17b", 8, True)])
def test_paper_experiment_presets_set_the_papers_machine(model, gpus, over):
    import sieve.runtime as rt
    from sieve.reproduce import paper_models
    from sieve.run import sweep_checks

    assert model in paper_models()
    cfg = rt.compose([f"+experiment=paper_{model}"])
    assert (cfg.hw.name, cfg.model.name, cfg.num_gpus, cfg.allow_over_capacity) == ("aim", model, gpus, over)
    # the paper's runs are bf16 throughout (its GPU counts are the bf16 footprints); the model presets are not
    assert (cfg.model.weight_format, cfg.model.expert_weight_format) == ("bf16", "bf16")
    if model == "gpt_oss_120b":
        assert rt.compose(["+hw=aim", f"+model={model}"]).model.expert_weight_format == "mxfp4"
    # a multirun sweeps Figure 9's grid; every value is checked before the first job
    tried = {o for job in sweep_checks([f"+experiment=paper_{model}"]) for o in job}
    assert {f"sched={s}" for s in ("noexp", "allexp", "pimoe", "sieve", "gpu_only")} <= tried
    assert {f"workload.batch_size={2 ** i}" for i in range(9)} <= tried
    # the command line wins over the preset's sweep
    tried = {o for job in sweep_checks([f"+experiment=paper_{model}", "sched=pimoe"]) for o in job}
    assert {o for o in tried if o.startswith("sched=")} == {"sched=pimoe"}


@pytest.mark.slow
def test_an_experiment_multirun_runs_the_presets_grid(tmp_path):
    sweep = tmp_path / "sweep"
    cmd = [sys.executable, "-m", "sieve.run", "-m", "+experiment=paper_qwen3_30b_a3b", "workload.batch_size=4",
           "workload.decode_steps=1", "sched=allexp,sieve", "progress=false", "output.plots=false",
           f"hydra.sweep.dir={sweep}"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    df = collect(sweep)
    assert sorted(df["sched"]) == ["allexp", "sieve"] and set(df["num_gpus"]) == {1}
    bad = subprocess.run([*cmd[:-1], f"hydra.sweep.dir={tmp_path / 'bad'}", "workload.decode_steps=1,0"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert bad.returncode == 2 and "decode_steps=0" in bad.stderr and not (tmp_path / "bad").exists()
