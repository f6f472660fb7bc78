"""sieve's main job: simulate serving a MoE model on GPUs with HBM-PIM and write the run directory.

    python -m sieve.run +hw=aim +model=deepseek
    python -m sieve.run +hw=aim +model=gpt_oss_120b sched=pimoe num_gpus=4 workload.batch_size=128
    python -m sieve.run --multirun +hw=aim +model=qwen3_30b_a3b num_gpus=1 sched=sieve,pimoe \\
        workload.batch_size=1,4,16,64,256 hydra/launcher=joblib

The run directory (Hydra's, ``outputs/<date>/<time>`` or one sub-directory per job of a sweep) receives
``summary.json``, the tables ``layers``, ``channels``, ``experts``, ``steps`` (``output.tables=csv|parquet``),
``config.yaml`` (the resolved configuration), figures (``output.plots``) and, with ``output.timeline=true``,
``timeline.json``. A job whose directory already holds a ``summary.json`` is not run again, so a sweep
interrupted and started again with ``hydra.sweep.dir=<its directory>`` only runs what is missing.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
import hydra.errors
from omegaconf import DictConfig

from sieve.runtime import CONF_DIR, compose, simulate, write_run

log = logging.getLogger("sieve.run")


def _timeline_options(cfg: DictConfig) -> dict | None:
    out = cfg.output
    if not out.timeline:
        return None
    return {"step": int(out.timeline_step), "channels": int(out.timeline_channels),
            "dram": bool(out.timeline_dram), "dram_us": float(out.timeline_dram_us)}


def run_job(cfg: DictConfig, run_dir: str | Path, progress: bool | None = None) -> dict:
    """Simulate ``cfg`` and write ``run_dir``; a directory with a ``summary.json`` is complete and is kept
    (and said so, with its figures and date). ``progress``: instead of ``cfg.progress``."""
    import json

    run_dir = Path(run_dir)
    done = run_dir / "summary.json"
    if done.exists():
        if not _same_run(run_dir / "config.yaml", cfg):
            raise ValueError(f"{run_dir} holds a finished run of another configuration (see its config.yaml); "
                             "choose another hydra.run.dir (or hydra.sweep.dir) or remove that directory")
        summary = json.loads(done.read_text())
        note = _kept_run_note(run_dir, done, summary)
        print(note)
        log.info("%s", note)
        return summary
    result = simulate(cfg, simulation=_checked.pop(_config_key(cfg), None), progress=progress)
    write_run(result, run_dir, tables=str(cfg.output.tables), plots=bool(cfg.output.plots),
              timeline=_timeline_options(cfg))
    text = f"{result.describe()}\n  written to {run_dir}"
    print(text)
    log.info("%s", text)  # run.log keeps what the terminal showed
    return result.summary


def _kept_run_note(run_dir: Path, done: Path, summary: dict) -> str:
    """What a rerun into a finished run directory prints: that nothing ran, when the kept run was written,
    and its main figures, so results older than the code are noticed."""
    import datetime

    written = datetime.datetime.fromtimestamp(done.stat().st_mtime).strftime("%Y-%m-%d %H:%M")
    return (f"{run_dir} already holds a finished run of this configuration, written {written}; it was not run "
            f"again (remove the directory or choose another hydra.run.dir to rerun, e.g. after a code change)\n"
            f"  time per output token {summary['tpot_s'] * 1e3:.3f} ms   "
            f"{summary['tokens_per_s_per_user']:.1f} tokens/s/user   "
            f"{summary['tokens_per_s_per_gpu']:.1f} tokens/s/GPU")


def _parallel_sweep() -> bool:
    """Whether this job is one of several running at once (joblib, submitit), whose progress bars would
    overwrite each other on one terminal."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode

    hc = HydraConfig.get()
    if hc.mode != RunMode.MULTIRUN:
        return False
    launcher = hc.launcher
    return "BasicLauncher" not in str(launcher.get("_target_", "")) and launcher.get("n_jobs", 2) != 1


def _leave_ctrl_c_to_the_sweep() -> None:
    """In a worker process of a parallel sweep, ignore Ctrl-C: the terminal sends it to the whole process group,
    and the sweep's own process stops the workers and says so in one line (a worker would print a traceback)."""
    import multiprocessing
    import signal

    if multiprocessing.parent_process() is not None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# The Simulation main() built to check a single run's command line, reused by the job of that config.
_checked: dict[str, object] = {}


def _config_key(cfg: DictConfig) -> str:
    from omegaconf import OmegaConf

    return OmegaConf.to_yaml(cfg, resolve=True)


class JobError(hydra.errors.CompactHydraException):
    """A job of a sweep with a value that only fails in its combination (e.g. one batch size does not fit)."""


def _comparable(config: dict) -> dict:
    """A configuration without what does not change results (display and output options)."""
    config = {k: v for k, v in config.items() if k not in ("progress", "output", "hydra")}
    for key in ("num_gpus", "sub_batches"):  # "auto" was resolved when the run was written
        if config.get(key) == "auto":
            config.pop(key)
    return config


def _same_run(saved: Path, cfg: DictConfig) -> bool:
    """Whether the run saved with ``saved`` (its config.yaml) is the run ``cfg`` asks for."""
    from omegaconf import OmegaConf

    if not saved.exists():
        return False
    current = _comparable(OmegaConf.to_container(cfg, resolve=True))
    previous = _comparable(OmegaConf.to_container(OmegaConf.load(saved), resolve=True))
    for key in ("num_gpus", "sub_batches"):
        if key not in current:  # asked for as "auto": whatever the run resolved it to
            previous.pop(key, None)
    if current.get("model", {}).get("name") == "???":  # +model=hf: the run named it after the file
        current["model"]["name"] = previous.get("model", {}).get("name")
    return previous == current


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def _main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    parallel = _parallel_sweep()
    if parallel:
        _leave_ctrl_c_to_the_sweep()
    try:
        run_job(cfg, HydraConfig.get().runtime.output_dir, progress=False if parallel else None)
    except ValueError as e:
        raise JobError(f"error: {e}") from None


def sweep_checks(overrides: list[str]) -> list[list[str]]:
    """Override lists that try every value of every swept key once (the others at their first value), so a
    bad value in a sweep fails before any job starts, without composing every point of the sweep. The sweeps
    the config asks for itself (``hydra.sweeper.params``) count too; the command line wins for a key it sets."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from sieve.runtime import sweeper_params

    def first_value(o) -> str:
        return f"{o.get_key_element()}={next(iter(o.sweep_string_iterator()))}" if o.is_sweep_override() \
            else o.input_line

    parser = OverridesParser.create()
    parsed = parser.parse_overrides(overrides)
    given = {o.get_key_element().lstrip("+~") for o in parsed}
    implied = sweeper_params([first_value(o) for o in parsed])
    parsed += parser.parse_overrides([f"{k}={v}" for k, v in implied.items() if k not in given])
    first = [first_value(o) for o in parsed]
    checks = [first]
    for i, o in enumerate(parsed):
        if o.is_sweep_override():
            for value in list(o.sweep_string_iterator())[1:]:
                checks.append([*first[:i], f"{o.get_key_element()}={value}", *first[i + 1:]])
    return checks


def main(argv: list[str] | None = None) -> int:
    """Entry point: check the overrides first (clear one-line errors with the valid choices; for a sweep,
    every swept value), then hand the command line to Hydra."""
    from hydra.errors import HydraException

    from sieve.config import register_all
    from sieve.runtime import ConfigError, simulation_from_config

    register_all()
    args = sys.argv[1:] if argv is None else argv
    multirun = any(a in ("--multirun", "-m") for a in args)
    overrides = [a for a in args if "=" in a and not a.startswith("-") and not a.startswith("hydra")]
    flags = {a.split("=", 1)[0] for a in args if a.startswith("-")}
    runs = multirun or not flags                # --cfg, --info, --help ... only show things
    if runs or not flags & {"--help", "-h", "--hydra-help"}:
        try:
            for job in (sweep_checks(overrides) if multirun else [overrides]):
                cfg = compose(job)              # groups, options, keys and their values
                if runs:
                    sim = simulation_from_config(cfg)  # hw, model, workload, scheduler, GPUs and capacity
                    if not multirun:
                        _checked[_config_key(cfg)] = sim
        except (ConfigError, ValueError, HydraException) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    sys.argv = [sys.argv[0], *args]
    _main()
    return 0


if __name__ == "__main__":
    from sieve._cli import exit_with

    exit_with(main, "finished runs are kept; a sweep run again with the same hydra.sweep.dir resumes")
