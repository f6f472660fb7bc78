"""Hardware presets: GPU + memory (with its DRAM/PIM standard) + PIM architecture + link.

Presets live in ``sieve/conf/hw/`` and compose from sub-groups, so a user can pair any of them, e.g.
AiM-style PIM on HBM3 with H200s::

    sieve.hw.load("aim", overrides=["hw/gpu=h200", "hw/memory=hbm3"])

or on the command line of a Hydra app: ``+hw=aim hw/gpu=h200``. Every value is validated against the
schemas below (unknown keys and wrong types are errors that name the key).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import typing
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional, Sequence

from sieve.dram import Device, StandardError

if TYPE_CHECKING:
    from omegaconf import DictConfig

__all__ = ["HardwareError", "GPU", "Link", "Memory", "PIMArch", "Hardware", "load", "available"]

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
PIM_COMMAND_ROLES = ("all_bank_activate", "all_bank_precharge", "all_bank_mac", "bank_mac",
                     "global_buffer_write", "mac_result_read", "mac_register_write")


class HardwareError(ValueError):
    """A hardware preset or override is invalid."""


# ---- hardware, immutable; the same classes are the schemas configs are validated against ----------------

@dataclass(frozen=True)
class PIMCommands:
    """Which command of the memory standard plays each PIM role."""

    all_bank_activate: str = "ACT16"
    all_bank_precharge: str = "PREA"
    all_bank_mac: str = "MAC16"
    bank_mac: str = "MAC"
    global_buffer_write: str = "WRGB"
    mac_result_read: str = "RDMAC16"
    mac_register_write: str = "WRMAC16"


@dataclass(frozen=True)
class GPU:
    """One GPU: datasheet peaks and the fractions of them its kernels achieve.

    Peaks are dense (no structured sparsity). The efficiencies scale the peaks in the roofline models
    of :mod:`sieve.system.gpu`; every preset documents where its values come from.
    """

    name: str
    bf16_flops: float
    fp8_flops: float
    hbm_bytes_per_s: float
    gemm_efficiency: float
    """Fraction of the peak FLOP/s a large dense GEMM achieves."""
    grouped_gemm_efficiency: float
    """Fraction of the peak FLOP/s an MoE grouped GEMM (one group per expert) achieves."""
    stream_efficiency: float
    """Fraction of ``hbm_bytes_per_s`` a kernel streaming weights (or a KV cache) from HBM achieves."""
    kernel_launch_s: float
    """Fixed cost of one kernel: launch plus the ramp and drain a roofline does not see."""
    pj_per_flop: Optional[float] = None
    """Energy of one FLOP of GEMM arithmetic (:mod:`sieve.system.energy`); None: no energy data."""
    static_w: Optional[float] = None
    """Power the GPU draws whatever it runs (leakage, clocks, idle SMs), in W; None: no energy data."""
    source: str = ""


@dataclass(frozen=True)
class Link:
    name: str
    bytes_per_s_per_direction: float
    latency_s: float
    pj_per_bit: Optional[float] = None
    """Energy of one bit sent from one GPU to another (:mod:`sieve.system.energy`); None: no energy data."""
    source: str = ""


@dataclass(frozen=True)
class Memory:
    name: str
    standard: str
    stacks: int
    source: str = ""


BF16_BYTES = 2
"""Bytes of one bf16 weight: the element a MAC lane multiplies."""


@dataclass(frozen=True)
class PIMArch:
    name: str
    mac_lanes_per_bank: int
    """bf16 multiply-accumulate lanes of each bank's unit: one MAC command feeds each lane one weight."""
    global_buffer_bytes: int
    mac_registers_per_bank: int = 1
    handoff_s: float = 2.0e-6
    """GPU time between a PIM expert's gate/up results and its down projection's inputs."""
    commands: PIMCommands = field(default_factory=PIMCommands)
    source: str = ""


@dataclass(frozen=True)
class Hardware:
    name: str
    gpu: GPU
    link: Link
    memory: Memory
    pim: PIMArch

    @cached_property
    def pim_device(self) -> Device:
        """One memory stack (or device) as the cycle-level engine simulates it."""
        return Device(self.memory.standard)

    @property
    def standard(self):
        return self.pim_device.standard

    @property
    def pim_level(self) -> int:
        """Level whose nodes each run one stream of all-bank PIM commands (a pseudo-channel on HBM)."""
        return self.standard.level_index(self.standard.command(self.pim.commands.all_bank_mac).scope)

    @property
    def pim_channels_per_stack(self) -> int:
        return math.prod(self.standard.fanout[: self.pim_level + 1])

    @cached_property  # asked for every PIM phase the runtime places
    def pim_channels_per_gpu(self) -> int:
        return self.pim_channels_per_stack * self.memory.stacks

    @property
    def banks_per_pim_channel(self) -> int:
        return math.prod(self.standard.fanout[self.pim_level + 1:])

    @property
    def memory_bytes_per_gpu(self) -> int:
        return self.standard.capacity_bytes * self.memory.stacks

    @cached_property
    def mac_interval_ticks(self) -> int:
        """Ticks between two all-bank MACs of one PIM channel, from the standard's own rules."""
        dev = self.pim_device
        eng = dev.engine(logging=False)
        mac = dev.cmd_id(self.pim.commands.all_bank_mac)
        act = dev.cmd_id(self.pim.commands.all_bank_activate)
        addr = [0] * len(self.standard.levels)
        t = eng.earliest(act, addr)
        eng.issue_at(act, addr, t, 0, 0, True)
        t = eng.earliest(mac, addr, t)
        eng.issue_at(mac, addr, t, 0, 0, True)
        return eng.earliest(mac, addr, t + 1) - t

    @property
    def pim_peak_flops_per_gpu(self) -> float:
        """Peak MAC throughput of all PIM units of one GPU: 2 FLOP per multiplier per all-bank MAC."""
        per_mac = 2 * self.pim.mac_lanes_per_bank * self.banks_per_pim_channel
        seconds = self.mac_interval_ticks * self.standard.tick_ns * 1e-9
        return per_mac * self.pim_channels_per_gpu / seconds


def available() -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / "hw").glob("*.yaml"))


def _compose(name: str, overrides: Sequence[str]) -> "DictConfig":
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    args = [f"+hw={name}", *overrides]
    try:
        if GlobalHydra.instance().is_initialized():
            return compose(overrides=args).hw
        with initialize_config_dir(version_base=None, config_dir=str(CONF_DIR)):
            return compose(overrides=args).hw
    except (HydraException, OmegaConfBaseException) as e:
        msg = str(e).split("\nConfig search path")[0].replace("\n\n", "; ").replace("\n\t", " ")
        raise HardwareError(f"hardware preset {name!r}: {msg}") from None


def _writable(node: "DictConfig") -> "DictConfig":
    """A structured config of frozen dataclasses is read-only at every level; let configs merge into it."""
    from omegaconf import DictConfig, OmegaConf

    OmegaConf.set_readonly(node, False)
    for key in node:
        if OmegaConf.is_missing(node, key):
            continue  # a leaf still to be given
        child = node[key]
        if isinstance(child, DictConfig):
            _writable(child)
    return node


def _is_dictconfig(value: Any) -> bool:
    """Whether ``value`` is an OmegaConf DictConfig (only possible once OmegaConf is loaded)."""
    omegaconf = sys.modules.get("omegaconf")
    return omegaconf is not None and isinstance(value, omegaconf.DictConfig)


@lru_cache(maxsize=None)
def _field_types(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain_value(kind: Any, value: Any) -> tuple[bool, Any]:
    """(True, value as ``kind``) when a plain YAML value has the declared type or is a number where a float
    is declared, as OmegaConf gives it (``float(value)``); (False, None) for anything else OmegaConf must
    convert, interpolate or reject."""
    if typing.get_origin(kind) is typing.Union:
        args = typing.get_args(kind)
        if value is None and type(None) in args:
            return True, None
        inner = [a for a in args if a is not type(None)]
        return _plain_value(inner[0], value) if len(inner) == 1 else (False, None)
    if dataclasses.is_dataclass(kind):
        built = _plain_typed(kind, value)
        return built is not None, built
    if kind is float and type(value) in (int, float, str) and "${" not in str(value):
        try:  # OmegaConf's conversion; YAML reads 2.25e15 (no exponent sign) as a string
            return True, float(value)
        except ValueError:
            return False, None
    if kind in (int, bool) and type(value) is kind:
        return True, value
    if kind is str and type(value) is str and "${" not in value:
        return True, value
    return False, None


def _plain_typed(cls, data: Any):
    """``cls`` built straight from a plain mapping whose values all have their declared types (None when
    a value needs OmegaConf: a conversion, an interpolation, an unknown or missing key); the same object
    OmegaConf's validation gives, without loading it."""
    if type(data) is not dict:
        return None
    fields = {f.name: f for f in dataclasses.fields(cls)}
    if set(data) - set(fields):
        return None
    types = _field_types(cls)
    kwargs = {}
    for name, f in fields.items():
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                return None
            continue
        ok, kwargs[name] = _plain_value(types[name], data[name])
        if not ok:
            return None
    return cls(**kwargs)


def _typed(cls, cfg: Any, where: str):
    if not (isinstance(cfg, dict) or _is_dictconfig(cfg)):
        settings = ", ".join(f.name for f in dataclasses.fields(cls))
        raise HardwareError(f"hw.{where}={cfg!r} is invalid: hw.{where} holds settings, not a value; "
                            f"set one of them, hw.{where}.<setting>=..., with <setting> one of: {settings}")
    plain = _plain_typed(cls, cfg)
    if plain is not None:
        return plain
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_object(OmegaConf.merge(_writable(OmegaConf.structured(cls)), cfg))
    except OmegaConfBaseException as e:
        raise HardwareError(f"invalid hardware config hw.{where}: {e}".split("\n    full_key")[0]) from None


def from_config(cfg: Any) -> Hardware:
    """Validate a composed ``hw`` config (DictConfig or dict) against :class:`Hardware` and resolve it."""
    parts = {"gpu": GPU, "link": Link, "memory": Memory, "pim": PIMArch}
    if not (isinstance(cfg, dict) or _is_dictconfig(cfg)):
        raise HardwareError(f"a hardware config is a mapping, got {type(cfg).__name__}")
    unknown = sorted(set(cfg) - {"name", *parts})
    missing = sorted({"name", *parts} - set(cfg))
    if unknown or missing:
        raise HardwareError(f"hardware config: unknown key(s) {unknown}, missing key(s) {missing}; "
                            f"a hardware config has name, {', '.join(parts)}")
    hw = Hardware(name=str(cfg["name"]), **{k: _typed(cls, cfg[k], k) for k, cls in parts.items()})
    for what, value in (("gpu.bf16_flops", hw.gpu.bf16_flops), ("gpu.fp8_flops", hw.gpu.fp8_flops),
                        ("gpu.hbm_bytes_per_s", hw.gpu.hbm_bytes_per_s),
                        ("link.bytes_per_s_per_direction", hw.link.bytes_per_s_per_direction),
                        ("memory.stacks", hw.memory.stacks), ("pim.mac_lanes_per_bank", hw.pim.mac_lanes_per_bank),
                        ("pim.global_buffer_bytes", hw.pim.global_buffer_bytes)):
        if not value > 0:
            raise HardwareError(f"hw.{what} must be positive, got {value!r}")
    for key in ("gemm_efficiency", "grouped_gemm_efficiency", "stream_efficiency"):
        value = getattr(hw.gpu, key)
        if not 0 < value <= 1:
            raise HardwareError(f"hw.gpu.{key} must lie in (0, 1], got {value!r}")
    if not hw.gpu.kernel_launch_s >= 0:
        raise HardwareError(f"hw.gpu.kernel_launch_s must be >= 0, got {hw.gpu.kernel_launch_s!r}")
    if hw.pim.handoff_s < 0:
        raise HardwareError(f"hw.pim.handoff_s must be >= 0, got {hw.pim.handoff_s!r}")
    for what, value in (("gpu.pj_per_flop", hw.gpu.pj_per_flop), ("gpu.static_w", hw.gpu.static_w),
                        ("link.pj_per_bit", hw.link.pj_per_bit)):
        if value is not None and not value >= 0:
            raise HardwareError(f"hw.{what} must be >= 0 (or null: no energy data), got {value!r}")
    if hw.link.latency_s < 0:
        raise HardwareError(f"hw.link.latency_s must be >= 0, got {hw.link.latency_s!r}")
    try:
        std = hw.standard
    except StandardError as e:
        raise HardwareError(f"hw.memory.standard: {e}") from None
    for role in PIM_COMMAND_ROLES:
        cmd = getattr(hw.pim.commands, role)
        if cmd not in std.command_names:
            raise HardwareError(
                f"hw.pim.commands.{role} = {cmd!r} is not a command of memory standard {std.name!r} "
                f"(commands: {', '.join(std.command_names)}); pick a memory with PIM commands")
    bf16_per_column = std.column_bytes // BF16_BYTES
    if bf16_per_column % hw.pim.mac_lanes_per_bank:
        raise HardwareError(
            f"hw.pim.mac_lanes_per_bank={hw.pim.mac_lanes_per_bank} must divide the {bf16_per_column} bf16 weights "
            f"of a {std.column_bytes}-byte column of {std.name} (so that a column takes whole MAC slots)")
    return hw


def load(name: str | Hardware = "aim", overrides: Sequence[str] = ()) -> Hardware:
    """A hardware preset by name (``aim``, ``gddr6_aim``), with optional Hydra overrides."""
    if isinstance(name, Hardware):
        return name
    if isinstance(name, dict) or _is_dictconfig(name):
        return from_config(name)
    if name not in available():
        raise HardwareError(f"unknown hardware preset {name!r}; available: {', '.join(available())}")
    return _load_preset(name, tuple(overrides))


@lru_cache(maxsize=64)
def _load_preset(name: str, overrides: tuple[str, ...]) -> Hardware:
    # One object per preset and overrides: composing is slow, and caches keyed on hardware stay warm.
    plain = None if overrides else _compose_plain(name)
    return from_config(plain if plain is not None else _compose(name, overrides))


def _compose_plain(name: str) -> dict | None:
    """The preset as Hydra composes it, without importing Hydra: a defaults list of ``group: option``
    entries ending in ``_self_``, each option a plain YAML file placed under its group, then the
    preset's own keys. None for anything else (Hydra composes it)."""
    import yaml

    def read(path: Path):
        text = path.read_text()
        if "@package" in text:
            return None
        data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        return data if isinstance(data, dict) else None

    preset = read(CONF_DIR / "hw" / f"{name}.yaml")
    if preset is None:
        return None
    defaults = preset.pop("defaults", [])
    if not isinstance(defaults, list) or not defaults or defaults[-1] != "_self_":
        return None
    out: dict = {}
    for entry in defaults[:-1]:
        if not (isinstance(entry, dict) and len(entry) == 1):
            return None
        (group, option), = entry.items()
        path = CONF_DIR / "hw" / str(group) / f"{option}.yaml"
        part = read(path) if path.is_file() else None
        if part is None or "defaults" in part:
            return None
        out[str(group)] = part
    for key, value in preset.items():
        out[key] = {**out[key], **value} if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out
