"""Expert placement policies: where each activated expert of a MoE layer executes, GPU or PIM.

One policy per module, all behind :class:`~sieve.sched.base.Scheduler` (see :mod:`sieve.sched.base` for
the interface the runtime calls), registered under the config option that selects it (``sched=<name>``)::

    sched = make("sieve", alpha=0.5)
    placement = sched.place(view)                     # once per layer, decode step and GPU
    sched.observe(view.counts, placement, measured)   # after the layer ran

``gpu_only``, ``noexp``, ``allexp``, ``pimoe`` and ``sieve`` are the paper's; ``oracle`` is the best
hottest-first split under the true costs, a bound to measure the others against.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping

from .allexp import AllExp
from .base import (ExpertPhase, LayerView, Placement, Scheduler, SchedulerError, UnknownSchedulerError, hottest_first,
                   objective, objective_terms)
from .gpu_only import GpuOnly
from .noexp import NoExp
from .oracle import Oracle
from .pimoe import PIMoE
from .sieve import Sieve

__all__ = [
    "SCHEDULERS", "make", "from_config", "ExpertPhase", "LayerView", "Placement", "Scheduler", "SchedulerError", "UnknownSchedulerError",
    "objective", "objective_terms", "hottest_first",
    "GpuOnly", "NoExp", "AllExp", "PIMoE", "Sieve", "Oracle",
]

SCHEDULERS: dict[str, type[Scheduler]] = {cls.name: cls for cls in (GpuOnly, NoExp, AllExp, PIMoE, Sieve, Oracle)}
"""Policy classes by config option name."""


def from_config(cfg) -> Scheduler:
    """A scheduler from a ``sched`` config (``sieve/conf/sched/<name>.yaml``: ``name`` and ``params``)."""
    try:
        name = cfg["name"]
    except (KeyError, TypeError):
        raise SchedulerError(f"a sched config needs a 'name' (one of {', '.join(SCHEDULERS)}), got {cfg!r}") from None
    params = cfg.get("params") or {}
    unknown = sorted(set(cfg) - {"name", "params"})
    if unknown:
        raise SchedulerError(f"sched config has unknown key(s) {', '.join(map(str, unknown))}; allowed: name, params")
    if not isinstance(params, Mapping):
        raise SchedulerError(f"sched.params={params!r} is invalid: sched.params holds the scheduler's parameters "
                             "by name; set one of them, sched.params.<name>=...")
    return make(name, **dict(params))


def make(name: str, **params) -> Scheduler:
    """A new scheduler of policy ``name`` with constructor ``params`` (keyword only).

    Raises :class:`UnknownSchedulerError` (a ``ValueError``) listing the valid names for an unknown policy,
    and :class:`SchedulerError` listing the accepted parameters for an unknown parameter."""
    if not isinstance(name, str) or name not in SCHEDULERS:
        raise UnknownSchedulerError(f"unknown scheduler {name!r}; valid schedulers: {', '.join(SCHEDULERS)}")
    cls = SCHEDULERS[name]
    accepted = [p for p in inspect.signature(cls.__init__).parameters if p != "self"]
    unknown = sorted(set(params) - set(accepted))
    if unknown:
        raise SchedulerError(f"scheduler {name!r} has no parameter {', '.join(map(repr, unknown))}; "
                             f"it takes: {', '.join(accepted) or 'no parameters'}")
    return cls(**params)
