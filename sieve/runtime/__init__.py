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
           "TABLES", "Timeline", "auto_num_gpus", "compose", "simulate", "simulation_from_config", "sweeper_params",
           "write_run"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
GROUPS = ("hw", "model", "sched", "workload")


class ConfigError(ValueError):
    """A configuration that does not compose: the message names the bad key or option and the valid ones."""


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def _hydra_compose(overrides: list[str], with_hydra: bool = False):
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
        return hydra_compose(config_name="config", overrides=overrides, return_hydra_config=with_hydra)


def sweeper_params(overrides: Sequence[str]) -> dict[str, str]:
    """The sweeps the config itself asks for (``hydra.sweeper.params``, e.g. of an ``experiment`` preset)."""
    from hydra.errors import HydraException
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = _hydra_compose(list(overrides), with_hydra=True)
    except (HydraException, OmegaConfBaseException, ValueError) as e:
        raise ConfigError(explain_config_error(e, overrides)) from None
    params = OmegaConf.select(cfg, "hydra.sweeper.params") or {}
    return {str(k): str(v) for k, v in params.items()}


def compose(overrides: Sequence[str] = ()):
    """The main config (``conf/config.yaml``) with Hydra ``overrides``, e.g. ``["+hw=aim", "+model=deepseek"]``.

    Every key an override names must exist: ``+key=value`` may add keys only to the maps whose owner checks
    them by name (:data:`OPEN_MAPS`), so a misspelt key is an error, never a value silently ignored."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from sieve.config import register_all

    register_all()
    overrides = list(overrides)
    try:
        cfg = _hydra_compose(overrides)
    except (HydraException, OmegaConfBaseException, ValueError) as e:  # ValueError: e.g. sched=3
        raise ConfigError(explain_config_error(e, overrides)) from None
    _check_added_keys(overrides)  # first: '+modle=x' is a misspelt group, not a missing model
    check_config(cfg)
    return cfg


# Maps that take keys of the user's choosing; their owners reject unknown names with the valid ones.
OPEN_MAPS = ("sched.params", "workload.routing.params", "workload.routing.fallback_params")


def _key_overrides(overrides: list[str]) -> list[tuple[int, str, bool]]:
    """(index, key, adds) of each override that sets a key (not a config group or hydra's own); ``adds``: it
    starts with ``+``."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    try:
        parsed = OverridesParser.create().parse_overrides(overrides)
    except Exception:  # noqa: BLE001 - compose has already reported unparsable overrides
        return []
    out = []
    for i, o in enumerate(parsed):
        key = o.get_key_element().lstrip("+~")
        if "/" in key or key in GROUPS or key.startswith("hydra") or (CONF_DIR / key).is_dir():
            continue
        out.append((i, key, o.input_line.startswith("+")))
    return out


def _check_added_keys(overrides: list[str]) -> None:
    """``+key=value`` adds a key Hydra accepts anywhere; refuse the ones no schema or owner knows."""
    for i, key, adds in _key_overrides(overrides):
        parent = key.rpartition(".")[0]
        if adds and parent not in OPEN_MAPS:
            rest = overrides[:i] + overrides[i + 1:]
            known = _node_keys(rest, parent)
            if known is not None and key.rpartition(".")[2] not in known:
                raise ConfigError(_unknown_key_message(key, parent, known))


def _node_keys(overrides: list[str], path: str) -> list[str] | None:
    """The keys of the node at ``path`` of the config composed from ``overrides`` (None if it does not compose)."""
    from hydra.errors import HydraException
    from omegaconf import DictConfig, OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        cfg = _hydra_compose(overrides)
    except (HydraException, OmegaConfBaseException):  # the caller falls back to Hydra's own message
        return None
    node = OmegaConf.select(cfg, path) if path else cfg
    return [str(k) for k in node.keys() if k != "hydra"] if isinstance(node, DictConfig) else None


def _unknown_key_message(key: str, parent: str, known: list[str]) -> str:
    import difflib

    leaf = key.rpartition(".")[2]
    where = f"'{parent}'" if parent else "the top level"
    text = f"unknown config key '{key}'; {where} has: {', '.join(known)}"
    close = difflib.get_close_matches(leaf, known, n=1, cutoff=0.5)
    group = [] if parent else difflib.get_close_matches(leaf, GROUPS, n=1, cutoff=0.6)
    if group:
        text += f" (did you mean the group '+{group[0]}=...'?)"
    elif close:
        text += f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)"
    if not parent:
        text += (f"; config groups: {', '.join(GROUPS)} (hw and model are added with +hw=..., +model=...)")
    return text


def _unknown_option_message(group: str, name: str) -> str:
    """``name`` is not an option of config group ``group`` (e.g. ``model``, ``hw/gpu``): the options (the
    files of the group; schemas such as ``base_model`` are not options) and the closest one."""
    import difflib

    options = _options(group)
    text = f"{group}={name} is not an option; {group} options: {', '.join(options)}"
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return text + (f" (did you mean '{close[0]}'?)" if close else "")


_TYPE_NAMES = {"Integer": "an integer", "Float": "a number", "Boolean": "true or false", "String": "a string"}


def explain_config_error(exc: BaseException, overrides: Sequence[str] = ()) -> str:
    """One line for a config that does not compose: the bad key or value and what is allowed there."""
    overrides = list(overrides)
    msg = str(exc).split("\nConfig search path")[0].strip()
    cause = str(exc.__cause__ or "")
    for explain in (_wrong_type, _value_for_a_map, _group_option_not_a_name, _chosen_twice, _unknown_key,
                    _unknown_option):
        line = explain(msg, cause, overrides)
        if line:
            return line
    return _hydra_message(msg)


def _wrong_type(msg: str, cause: str, overrides: list[str]) -> str | None:
    import re

    full_key = re.search(r"full_key: (\S+)", cause)
    converted = re.search(r"Value '(.*)' of type '\w+' could not be converted to (\w+)", cause)
    if full_key and converted:
        kind = _TYPE_NAMES.get(converted.group(2), converted.group(2))
        return f"{full_key.group(1)}={converted.group(1)} is invalid; allowed: {kind}"
    return None


def _value_for_a_map(msg: str, cause: str, overrides: list[str]) -> str | None:
    """A plain value given to a key that holds settings of its own (``workload.context_length=-1``)."""
    import re

    full_key = re.search(r"full_key: (\S+)", cause)
    if not (full_key and re.search(r"Invalid type assigned: \w+ is not a subclass of \w+|Cannot assign \w+ to "
                                   r"Dict\[", cause)):
        return None
    key = full_key.group(1)
    for value, known in _settings_without(overrides, key, key):
        text = f"{key}={value} is invalid: {key} holds settings, not a value; set one of them, {key}.<setting>=..."
        return text + (f", with <setting> one of: {', '.join(known)}" if known else "")
    return None


def _group_option_not_a_name(msg: str, cause: str, overrides: list[str]) -> str | None:
    """``sched=3`` or ``model=true``: a config group's option is a name (Hydra reads these as a number or
    a boolean)."""
    if "Config group override must be a string" not in msg:
        return None
    for o in overrides:
        group, _, value = o.lstrip("+~").partition("=")
        if group in GROUPS and value not in _options(group):
            return _unknown_option_message(group, value)
    return None


def _chosen_twice(msg: str, cause: str, overrides: list[str]) -> str | None:
    import re

    twice = re.search(r"Multiple values for (\w+)", msg)
    if not twice:
        return None
    group = twice.group(1)
    return (f"{group} is chosen twice (by +{group}=... and by another +{group}=... or a preset such as "
            f"+experiment=... that sets it); "
            f"to replace the preset's choice write {group}=<option> without '+'; {group} options: "
            f"{', '.join(_options(group))}")


def _unknown_key(msg: str, cause: str, overrides: list[str]) -> str | None:
    import re

    missing = re.search(r"Could not (?:override|append to) '([^']+)'", msg)
    if not (missing or "not in struct" in msg):
        return None
    full_key = re.search(r"full_key: (\S+)", cause)
    key = missing.group(1) if missing else (full_key.group(1) if full_key else "")
    parent = key.rpartition(".")[0]
    for _, known in _settings_without(overrides, key, parent):
        if known is not None:
            return _unknown_key_message(key, parent, known)
    return None


def _settings_without(overrides: list[str], key: str, path: str):
    """For each override that sets `key`: its value, and the keys of the node at `path` in the config
    composed without that override (:func:`_node_keys`: None if it does not compose)."""
    for i, k, _ in _key_overrides(overrides):
        if k == key:
            yield overrides[i].split("=", 1)[1], _node_keys(overrides[:i] + overrides[i + 1:], path)


def _unknown_option(msg: str, cause: str, overrides: list[str]) -> str | None:
    import re

    option = re.search(r"Could not find '(.+)/([^'/]+)'", msg)
    return _unknown_option_message(option.group(1), option.group(2)) if option else None


def _hydra_message(msg: str) -> str:
    """Hydra's own message on one line, with the groups or options that would have been valid."""
    text = " ".join(line.strip() for line in msg.splitlines() if line.strip())
    if "Available options" in msg:
        return text
    if "not in struct" in msg or "Could not override" in msg or "Could not append" in msg:
        text += (f"; config groups: {', '.join(GROUPS)} (hw and model are added with +hw=..., +model=...); "
                 "top-level keys: num_gpus, sub_batches, allow_over_capacity, progress, output.*")
    for group in GROUPS:
        if f"'{group}/" in msg or f"{group}=" in msg:
            return text + f"; {group} options: {', '.join(_options(group))}"
    return text


_FLAGS = ("allow_over_capacity", "progress", "output.plots", "output.timeline", "output.timeline_dram")
_CHOICES = {"output.tables": ("csv", "parquet")}


def check_config(cfg) -> None:
    """Fail early, with the choices, when ``hw`` or ``model`` was not given or a top-level option is not one
    of its values (the typed groups check their own)."""
    from omegaconf import OmegaConf

    for group in ("hw", "model"):
        if group not in cfg:
            raise ConfigError(f"no {group} chosen: add +{group}=<preset>; {group} presets: {', '.join(_options(group))}")
    for key in _FLAGS:
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, bool):
            raise ConfigError(f"{key}={value!r} is invalid; allowed: true or false")
    for key, allowed in _CHOICES.items():
        value = OmegaConf.select(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}={value!r} is invalid; allowed: {', '.join(allowed)}")


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


def simulate(cfg_or_overrides=(), progress: bool | None = None, *, simulation: Simulation | None = None) -> RunResult:
    """Run one configuration (a composed config or a list of overrides); returns its :class:`RunResult`.
    ``simulation``: the :func:`simulation_from_config` of this very config, when the caller has built it."""
    from omegaconf import DictConfig, OmegaConf

    if isinstance(cfg_or_overrides, str):
        raise TypeError(f"simulate takes a list of overrides, one string each, e.g. {cfg_or_overrides.split()!r}; "
                        f"got the single string {cfg_or_overrides!r}")
    cfg = cfg_or_overrides if isinstance(cfg_or_overrides, DictConfig) else compose(cfg_or_overrides)
    sim = simulation if simulation is not None else simulation_from_config(cfg)
    result = sim.run(progress=bool(cfg.progress) if progress is None else progress)
    resolved = OmegaConf.to_container(cfg, resolve=True)
    resolved.pop("hydra", None)
    resolved["num_gpus"] = sim.num_gpus
    if resolved.get("model", {}).get("name") == "???":  # +model=hf: named after its config file
        resolved["model"]["name"] = sim.model.name
    resolved["sub_batches"] = result.summary["sub_batches"]
    result.config = resolved
    return result
