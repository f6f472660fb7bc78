"""Calibrated routing presets, stored as data in ``conf/routing/calibrated.yaml``.

The file is written by ``scripts/calibrate_routing.py``; each entry records the family and
parameters, the targets it was fitted to and the statistics it reached.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import yaml

from sieve.model import ModelSpec
from sieve.routing.families import RoutingError, check_params

PRESET_FILE = ("sieve.conf", "routing/calibrated.yaml")


@dataclass(frozen=True)
class RoutingPreset:
    model: str
    family: str
    params: dict[str, float]
    drift: float
    basis: str = ""
    targets: dict[str, Any] = field(default_factory=dict, compare=False)
    achieved: dict[str, Any] = field(default_factory=dict, compare=False)


def _load_all() -> dict[str, Any]:
    package, rel = PRESET_FILE
    text = resources.files(package).joinpath(rel).read_text()
    return yaml.safe_load(text)["presets"]


def available() -> list[str]:
    return sorted(_load_all())


def preset(model_name: str | ModelSpec) -> RoutingPreset:
    """The calibrated routing family, parameters and drift for ``model_name``."""
    name = model_name.name if isinstance(model_name, ModelSpec) else model_name
    entries = _load_all()
    if name not in entries:
        raise RoutingError(f"no calibrated routing preset for model {name!r}; available: {sorted(entries)}; "
                           f"pass family= and its parameters instead")
    e = entries[name]
    return RoutingPreset(model=name, family=e["family"], params=check_params(e["family"], e["params"]),
                         drift=float(e["drift"]), basis=e.get("basis", ""),
                         targets=e.get("targets", {}), achieved=e.get("achieved", {}))
