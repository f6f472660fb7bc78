"""Schema of the ``workload`` config group (``conf/workload/*.yaml``): what is being served.

B (``batch_size``) is the global number of requests in decode. Context lengths are drawn per
request from ``context_length``; an optional prefill mix adds ``prefill.num_requests`` prompts per
batch. Routing comes from the model's calibrated preset unless ``routing`` names a family or a
trace file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, Optional

import numpy as np
from omegaconf import MISSING

DISTRIBUTIONS = ("fixed", "uniform", "lognormal")


class WorkloadError(ValueError):
    """A workload setting is out of range."""


def _check_int(where: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise WorkloadError(f"{where}={value!r} is invalid; allowed: an integer >= {minimum}")


@dataclass
class LengthConfig:
    """A distribution of token counts.

    ``fixed``: always ``mean``. ``uniform``: integers in [low, high]. ``lognormal``: median
    ``mean`` and log-space spread ``sigma``, clipped to [low, high].
    """

    distribution: str = "fixed"
    mean: int = 1024
    low: int = 1
    high: int = 32768
    sigma: float = 0.5

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise WorkloadError(f"distribution={self.distribution!r} is not known; allowed: {DISTRIBUTIONS}")
        for name in ("mean", "low", "high"):
            _check_int(name, getattr(self, name), 1)
        if not self.low <= self.high:
            raise WorkloadError(f"low={self.low} must not exceed high={self.high}")
        if self.distribution != "fixed" and not self.low <= self.mean <= self.high:
            raise WorkloadError(f"mean={self.mean} must lie in [low={self.low}, high={self.high}]")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise WorkloadError(f"sigma={self.sigma} is invalid; allowed: >= 0")

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` lengths as int64."""
        if self.distribution == "fixed":
            return np.full(n, self.mean, dtype=np.int64)
        if self.distribution == "uniform":
            return rng.integers(self.low, self.high, size=n, endpoint=True, dtype=np.int64)
        draws = np.exp(math.log(self.mean) + self.sigma * rng.standard_normal(n))
        return np.clip(np.rint(draws), self.low, self.high).astype(np.int64)


@dataclass
class PrefillConfig:
    num_requests: int = 0
    prompt_length: LengthConfig = field(default_factory=lambda: LengthConfig(mean=512))

    def __post_init__(self) -> None:
        _check_int("prefill.num_requests", self.num_requests, 0)


@dataclass
class RoutingConfig:
    # "preset" (the model's calibrated family), a family of sieve.routing.FAMILIES, or "trace".
    family: str = "preset"
    params: Dict[str, float] = field(default_factory=dict)
    # None: the preset's drift (or 0 for an explicit family).
    drift: Optional[float] = None
    # npz (sieve-routing-v1) or JSONL trace, used when family is "trace".
    trace: Optional[str] = None
    # With family "preset", for a model without a calibrated preset: this family and parameters.
    fallback_family: str = "zipf"
    fallback_params: Dict[str, float] = field(default_factory=lambda: {"s": 1.0})

    def __post_init__(self) -> None:
        if self.family == "trace" and not self.trace:
            raise WorkloadError("routing.family='trace' needs routing.trace (path to an npz or jsonl file)")
        if self.drift is not None and not 0.0 <= self.drift <= 1.0:
            raise WorkloadError(f"routing.drift={self.drift} is invalid; allowed: 0 <= drift <= 1")


@dataclass
class WorkloadConfig:
    name: str = MISSING
    batch_size: int = MISSING
    decode_steps: int = 8
    seed: int = 0
    context_length: LengthConfig = field(default_factory=LengthConfig)
    prefill: PrefillConfig = field(default_factory=PrefillConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)

    def __post_init__(self) -> None:
        _check_int("batch_size", self.batch_size, 1)
        _check_int("decode_steps", self.decode_steps, 1)
        _check_int("seed", self.seed, 0)
        if self.prefill.num_requests > self.batch_size:
            raise WorkloadError(f"prefill.num_requests={self.prefill.num_requests} exceeds "
                                f"batch_size={self.batch_size}")

    def rng(self) -> np.random.Generator:
        return np.random.default_rng(self.seed)


def workload_from_config(cfg) -> WorkloadConfig:
    """Validate a composed ``workload`` node and return the typed object."""
    from omegaconf import OmegaConf
    from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

    try:
        node = OmegaConf.merge(OmegaConf.structured(WorkloadConfig), cfg)
        return OmegaConf.to_object(node)
    except MissingMandatoryValue as exc:
        raise WorkloadError(f"workload config lacks {exc.full_key!r}: pick a workload "
                            f"({', '.join(_workload_presets())})") from exc
    except OmegaConfBaseException as exc:
        cause = exc.__cause__ if isinstance(exc.__cause__, WorkloadError) else None
        if cause is not None:
            raise cause from exc
        raise WorkloadError(f"invalid workload config: {exc}") from exc


def _workload_presets() -> list[str]:
    from pathlib import Path

    return sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "conf" / "workload").glob("*.yaml"))


def register() -> None:
    """Store the schema in Hydra's ConfigStore as ``workload/base_workload``."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(group="workload", name="base_workload", node=WorkloadConfig)
