"""DRAM and PIM energy from the commands the engine issued, DRAMPower style.

Energy is data beside the timing tables: ``sieve/conf/dram/energy/<standard>.yaml`` gives every command
of the standard an energy per issue (pJ; an all-bank command's value covers every bank it touches) and
the background power of one node of a level (a pseudo-channel on HBM) with all its banks closed and
with all of them open. Values are expressions over the file's sourced ``params`` and the standard's
geometry and timings, resolved once into a :class:`DeviceEnergy`. A standard may also have alternative energy data from
other sources, ``<standard>.<data>.yaml``, chosen by name (``load_energy("hbm3", "hbm_power")``,
``python -m sieve.dram TRACE --energy --energy-data hbm_power``); the default stays the file without a
suffix.

Accounting, after a run and without touching the engine:

* command energy of a bank = sum over commands of (times the bank took the command) x (energy per issue)
  / (banks one issue touches);
* background energy of a bank = its share of the node's power: ``precharged_mw / banks`` while its row
  is closed and ``active_mw / banks`` while a row is open (per-bank open time from its ACT/PRE ticks),
  over the elapsed time. Background power is thus linear in the number of open banks (an assumption:
  DRAMPower charges active standby once any bank is open).

Refresh is the REF command's energy (``(IDD5 - IDD3N) x VDD x tRFC``); the banks' background continues
underneath, as in DRAMPower.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
import yaml

from .spec import YAML_LOADER, Standard, StandardError, evaluate_latency, load_standard

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DeviceEnergy", "load_energy", "has_energy", "energy_data_sets", "bank_energy", "bank_energy_columns",
           "command_energy_pj", "energy_summary", "ENERGY_DIR"]

ENERGY_DIR = Path(__file__).resolve().parent.parent / "conf" / "dram" / "energy"
_KEYS = {"name", "extends", "params", "commands", "background"}


@dataclass(frozen=True)
class DeviceEnergy:
    """Energy of one standard, resolved: pJ per command issue (indexed like ``standard.command_names``)
    and background power of one node of ``background_level``."""

    standard: str
    command_pj: np.ndarray
    background_level: int
    banks_per_node: int
    precharged_mw: float
    active_mw: float
    banks_in_scope: np.ndarray
    """Banks one issue of each command touches (1 for a bank command)."""
    data: str = "default"
    """Which energy data of the standard these values are (see :func:`energy_data_sets`)."""

    def per_bank_pj(self) -> np.ndarray:
        """Energy each touched bank takes from one issue of each command."""
        return self.command_pj / self.banks_in_scope


def energy_data_sets(standard: Standard | str) -> list[str]:
    """Names of the alternative energy data of a standard (``<standard>.<data>.yaml``), sorted."""
    name = standard if isinstance(standard, str) else standard.name
    return sorted(p.stem.split(".", 1)[1] for p in ENERGY_DIR.glob(f"{name}.*.yaml"))


def _energy_path(name: str) -> Path:
    path = ENERGY_DIR / f"{name}.yaml"
    if not path.is_file() and "." in name:
        standard, data = name.split(".", 1)
        have = energy_data_sets(standard)
        raise StandardError(f"no energy data {data!r} for DRAM standard {standard!r} "
                            f"(sieve/conf/dram/energy/{name}.yaml); its energy data: "
                            f"{', '.join(['default'] + have)}")
    if not path.is_file():
        have = sorted(p.stem for p in ENERGY_DIR.glob("*.yaml") if "." not in p.stem)
        raise StandardError(f"no energy data for DRAM standard {name!r} (sieve/conf/dram/energy/{name}.yaml); "
                            f"standards with energy: {', '.join(have)}")
    return path


def _read(name: str, seen: tuple[str, ...] = ()) -> dict:
    """An energy file with its ``extends`` bases merged in order (later parts override)."""
    path = _energy_path(name)
    with open(path) as f:
        data = yaml.load(f, Loader=YAML_LOADER) or {}
    if not isinstance(data, Mapping) or set(data) - _KEYS:
        raise StandardError(f"{path}: an energy file is a mapping with keys {', '.join(sorted(_KEYS))}; "
                            f"got {sorted(data) if isinstance(data, Mapping) else type(data).__name__}")
    bases = data.get("extends") or []
    merged: dict = {"params": {}, "commands": {}}
    for base in ([bases] if isinstance(bases, str) else list(bases)):
        if base in seen:
            raise StandardError(f"{path}: 'extends' loops through {' -> '.join(seen + (base,))}")
        part = _read(base, seen + (base,))
        merged["params"].update(part["params"])
        merged["commands"].update(part["commands"])
        if "background" in part:
            merged["background"] = part["background"]
    merged["params"].update(data.get("params") or {})
    merged["commands"].update(data.get("commands") or {})
    merged["own_commands"] = list(data.get("commands") or {})
    if "background" in data:
        merged["background"] = data["background"]
    return merged


def has_energy(standard: Standard | str) -> bool:
    name = standard if isinstance(standard, str) else standard.name
    return (ENERGY_DIR / f"{name}.yaml").is_file()


@lru_cache(maxsize=64)
def _resolve(name: str) -> DeviceEnergy:
    """``name``: a standard, or ``<standard>.<data>`` for alternative energy data of that standard."""
    raw = _read(name)
    std = load_standard(name.split(".", 1)[0])
    where = f"energy/{name}.yaml"
    fan = list(std.fanout)
    below = [math.prod(fan[l + 1:]) for l in range(len(fan))]
    names = {**{k: float(v) for k, v in std.timing.items()}, "tCK_ns": float(std.tCK_ns),
             "row_bits": float(std.columns * std.column_bytes * 8), "column_bits": float(std.column_bytes * 8)}
    for key, value in raw["params"].items():
        names[key] = evaluate_latency(value, names, f"{where}: params.{key}")
    missing = [c for c in std.command_names if c not in raw["commands"]]
    unknown = [c for c in raw["own_commands"] if c not in std.command_names]  # a base may name more
    if missing or unknown:
        raise StandardError(f"{where}: every command of {name} needs an energy (0 if none); "
                            f"missing {missing}, not commands of {name}: {unknown}")
    scope = np.array([below[std.levels.index(c.scope)] for c in std.commands], dtype=np.float64)
    pj = np.array([evaluate_latency(raw["commands"][c], {**names, "banks_in_scope": scope[i]},
                                    f"{where}: commands.{c}") for i, c in enumerate(std.command_names)])
    bg = raw.get("background")
    if not isinstance(bg, Mapping) or set(bg) != {"level", "precharged_mw", "active_mw"} \
            or bg["level"] not in std.levels:
        raise StandardError(f"{where}: background needs level (one of {', '.join(std.levels)}), "
                            f"precharged_mw and active_mw; got {bg!r}")
    level = std.levels.index(bg["level"])
    pre, act = (evaluate_latency(bg[k], names, f"{where}: background.{k}") for k in ("precharged_mw", "active_mw"))
    if (pj < 0).any() or pre < 0 or act < pre:
        raise StandardError(f"{where}: energies must be >= 0 and active_mw >= precharged_mw")
    return DeviceEnergy(standard=std.name, command_pj=pj, background_level=level, banks_per_node=below[level],
                        precharged_mw=pre, active_mw=act, banks_in_scope=scope,
                        data=name.split(".", 1)[1] if "." in name else "default")


def load_energy(standard: Standard | str, data: str | None = None) -> DeviceEnergy:
    """The resolved energy data of a standard (by name or :class:`Standard`): its default data, or the
    alternative named ``data`` (one of :func:`energy_data_sets`; ``"default"`` is the default)."""
    name = standard if isinstance(standard, str) else standard.name
    if data is None or data == "default":
        return _resolve(name)
    if not isinstance(data, str) or not data or "." in data or "/" in data:
        raise StandardError(f"energy data is named by a plain word (one of {', '.join(['default'] + energy_data_sets(name))}), "
                            f"got {data!r}")
    _energy_path(name)  # the standard itself must have energy data
    return _resolve(f"{name}.{data}")


def command_energy_pj(counts: np.ndarray, per_bank_pj: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Per bank: the energy of the commands it took, ``counts`` [banks, commands] times ``per_bank_pj``
    [commands], added command after command in command order. The order is fixed and nothing is fused,
    so the same counts give the same bits on every machine (a BLAS product picks its kernel, and with it
    fused multiply-adds and the order of the sums, by the CPU it runs on)."""
    counts = np.asarray(counts, dtype=np.float64)
    out = np.empty(counts.shape[0]) if out is None else out
    out.fill(0.0)
    term = np.empty(counts.shape[0])
    for c in range(counts.shape[1]):
        np.multiply(counts[:, c], per_bank_pj[c], out=term)
        out += term
    return out


def bank_energy_columns(energy: DeviceEnergy, counts: np.ndarray, open_ns: np.ndarray,
                        elapsed_ns: float) -> dict[str, np.ndarray]:
    """Per bank: ``command_pj``, ``background_pj`` and ``energy_pj`` as NumPy arrays.

    ``counts``: [banks, commands] commands each bank took (an all-bank command on every bank it touches);
    ``open_ns``: [banks] time each bank had a row open; ``elapsed_ns``: the run's length."""
    command = command_energy_pj(counts, energy.per_bank_pj())
    per_bank_mw = np.array([energy.precharged_mw, energy.active_mw]) / energy.banks_per_node
    open_ns = np.asarray(open_ns, dtype=np.float64)
    background = (elapsed_ns - open_ns) * per_bank_mw[0] + open_ns * per_bank_mw[1]  # mW x ns = pJ
    return {"command_pj": command, "background_pj": background, "energy_pj": command + background}


def bank_energy(energy: DeviceEnergy, counts: np.ndarray, open_ns: np.ndarray, elapsed_ns: float) -> "pd.DataFrame":
    """:func:`bank_energy_columns` as a table."""
    import pandas as pd

    return pd.DataFrame(bank_energy_columns(energy, counts, open_ns, elapsed_ns))


def energy_summary(energy: DeviceEnergy, standard: Standard, bank: "Mapping[str, np.ndarray] | pd.DataFrame",
                   bits_read: int) -> dict:
    """JSON-ready totals of a bank table (a DataFrame or its columns as arrays) that has energy columns:
    by command, background, total, and per bit read (``bits_read`` > 0)."""
    counts = np.array([np.asarray(bank[c], dtype=np.float64).sum() for c in standard.command_names])
    by_command = counts * energy.per_bank_pj()
    total = float(np.asarray(bank["energy_pj"]).sum())
    return {
        "energy_pj": total,
        "energy_by_command_pj": {c: float(by_command[i]) for i, c in enumerate(standard.command_names) if counts[i]},
        "background_energy_pj": float(np.asarray(bank["background_pj"]).sum()),
        "energy_pj_per_bit_read": total / bits_read if bits_read else None,
    }
