"""The Sieve runtime: whole decode steps of a MoE model on GPUs with HBM-PIM, and their results.

From Python (the same configuration as the command line)::

    import sieve.runtime as rt
    result = rt.simulate(["+hw=aim", "+model=qwen3_30b_a3b", "sched=sieve", "workload.batch_size=64", "num_gpus=1"])
    result.summary["tokens_per_s_per_gpu"], result.layers, result.channels

or with objects: ``rt.Simulation(hw, model, "sieve", workload, num_gpus=4).run()``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .result import TABLES, RunResult, write_run
from .simulator import ExpertGemmCost, Simulation, SimulationError, auto_num_gpus
from .timeline import Span, Timeline

__all__ = ["CONF_DIR", "ConfigError", "ExpertGemmCost", "RunResult", "Simulation", "SimulationError", "Span",
           "TABLES", "Timeline", "auto_num_gpus", "compose", "simulate", "simulation_from_config", "write_run"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("hw", "model", "sched", "workload")


class ConfigError(ValueError):
    """A configuration that does not compose: the message names the bad key or option and the valid ones."""


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def compose(overrides: Sequence[str] = ()):
    """The main config (``conf/config.yaml``) with Hydra ``overrides``, e.g. ``["+hw=aim", "+model=deepseek"]``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sieve.config import register_all

    register_all()
    overrides = list(overrides)
    try:
        if GlobalHydra.instance().is_initialized():
            GlobalHydra.instance().clear()
        with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
            cfg = hydra_compose(config_name="config", overrides=overrides)
    except (HydraException, OmegaConfBaseException) as e:
        raise ConfigError(explain_config_error(e)) from None
    check_config(cfg)
    return cfg


def explain_config_error(exc: BaseException) -> str:
    """Hydra's message, cut to its first paragraph, with the valid groups or keys added where it lacks them."""
    msg = str(exc).split("\nConfig search path")[0].strip()
    lines = [line for line in msg.splitlines() if line.strip()]
    text = " ".join(line.strip() for line in lines)
    if "Available options" not in msg:
        if "not in struct" in msg or "Could not override" in msg or "Could not append" in msg:
            text += (f"; config groups: {', '.join(GROUPS)} (hw and model are added with +hw=..., +model=...); "
                     "top-level keys: num_gpus, sub_batches, allow_over_capacity, progress, output.*")
        for group in GROUPS:
            if f"'{group}/" in msg or f"{group}=" in msg:
                text += f"; {group} options: {', '.join(_options(group))}"
                break
    return text


def check_config(cfg) -> None:
    """Fail early, with the choices, when ``hw`` or ``model`` was not given."""
    for group in ("hw", "model"):
        if group not in cfg:
            raise ConfigError(f"no {group} chosen: add +{group}=<preset>; {group} presets: {', '.join(_options(group))}")


def simulation_from_config(cfg) -> Simulation:
    """A :class:`Simulation` from a composed main config."""
    import sieve.hw
    import sieve.model
    from sieve.config.workload import workload_from_config

    check_config(cfg)
    hw = sieve.hw.from_config(cfg.hw)
    model = sieve.model.from_config(cfg.model)
    workload = workload_from_config(cfg.workload)
    num_gpus = cfg.num_gpus
    if isinstance(num_gpus, str) and num_gpus != "auto":
        raise ConfigError(f"num_gpus={num_gpus!r} is invalid; allowed: a positive integer or auto")
    if cfg.output.timeline:
        step, steps = cfg.output.timeline_step, workload.decode_steps
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < steps:
            raise ConfigError(f"output.timeline_step={step!r} is not a decode step of this run; allowed: "
                              f"0..{steps - 1} (workload.decode_steps={steps})")
    sub_batches = cfg.sub_batches
    if isinstance(sub_batches, str) and sub_batches != "auto":
        raise ConfigError(f"sub_batches={sub_batches!r} is invalid; allowed: a positive integer or auto")
    return Simulation(hw, model, dict(cfg.sched), workload, num_gpus,
                      allow_over_capacity=bool(cfg.allow_over_capacity),
                      record_timeline=bool(cfg.output.timeline), sub_batches=sub_batches)


def simulate(cfg_or_overrides=(), progress: bool | None = None) -> RunResult:
    """Run one configuration (a composed config or a list of overrides); returns its :class:`RunResult`."""
    from omegaconf import DictConfig, OmegaConf

    cfg = cfg_or_overrides if isinstance(cfg_or_overrides, DictConfig) else compose(cfg_or_overrides)
    sim = simulation_from_config(cfg)
    result = sim.run(progress=bool(cfg.progress) if progress is None else progress)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    resolved["num_gpus"] = sim.num_gpus
    resolved["sub_batches"] = result.summary["sub_batches"]
    result.config = resolved
    return result
