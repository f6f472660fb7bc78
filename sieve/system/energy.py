"""System energy of a run from its totals: GPU arithmetic and memory traffic, NVLink, the PIM commands
the cycle-level engine issued, DRAM refresh, and static power over the run's time.

Values are data: ``hw.gpu.pj_per_flop`` and ``hw.gpu.static_w`` (GPU presets), ``hw.link.pj_per_bit``
(link presets) and the DRAM/PIM energies of the memory standard (``sieve/conf/dram/energy/``); every
value carries its source there. The components:

* ``gpu_compute``: FLOPs x ``pj_per_flop``;
* ``gpu_memory``: bytes moved between HBM(-PIM) and the GPU x the memory's energy per byte read
  (:func:`memory_pj_per_byte`: a column read plus its share of a fully read row's activation);
* ``pim_compute`` / ``pim_act_pre``: the PIM commands issued, by their energy per issue; commands that
  open or close rows are activation/precharge, the rest (MACs, buffer writes, result reads) compute;
* ``refresh``: every refresh node of every stack refreshes once per tREFI for the run's time;
* ``nvlink``: bytes sent x 8 x ``pj_per_bit``;
* ``static``: (GPU static power + DRAM precharge-standby power of all stacks) x time, per GPU.

:func:`run_energy` is a pure function of a :class:`RunTotals` record.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass, field
from typing import Mapping

from sieve.dram.energy import load_energy
from sieve.hw import Hardware
from sieve.hw import load as load_hw

from ._checks import SystemModelError

__all__ = ["RunTotals", "EnergyBreakdown", "ExpertEnergy", "run_energy", "expert_energy", "memory_pj_per_byte",
           "pim_command_energy", "pim_expert_commands", "expert_crossovers",
           "COMPONENTS"]

COMPONENTS = ("gpu_compute", "gpu_memory", "pim_compute", "pim_act_pre", "refresh", "nvlink", "static")


@dataclass(frozen=True)
class RunTotals:
    """What a run did, summed over all its GPUs."""

    seconds: float
    """Simulated time of the run."""
    num_gpus: int
    tokens: int
    """Tokens generated."""
    gpu_flops: float = 0.0
    gpu_memory_bytes: float = 0.0
    """Bytes moved between HBM(-PIM) and the GPUs (weights, KV caches, activations)."""
    link_bytes: float = 0.0
    """Bytes sent over NVLink by all GPUs."""
    pim_commands: Mapping[str, int] = field(default_factory=dict)
    """PIM commands issued on all channels of all GPUs, by name (ACT16/PREA included)."""


@dataclass(frozen=True)
class EnergyBreakdown:
    """Joules per component (:data:`COMPONENTS`) of one run, and the per-token figures."""

    gpu_compute_j: float
    gpu_memory_j: float
    pim_compute_j: float
    pim_act_pre_j: float
    refresh_j: float
    nvlink_j: float
    static_j: float
    tokens: int

    @property
    def total_j(self) -> float:
        return sum(getattr(self, f"{c}_j") for c in COMPONENTS)

    @property
    def energy_j_per_token(self) -> float:
        return self.total_j / self.tokens

    @property
    def tokens_per_joule(self) -> float:
        return self.tokens / self.total_j if self.total_j > 0 else math.inf

    def as_dict(self) -> dict:
        """JSON-ready: ``energy_j_per_token``, ``tokens_per_joule``, ``energy_j`` and ``energy_<component>_j``."""
        out = {"energy_j_per_token": self.energy_j_per_token, "tokens_per_joule": self.tokens_per_joule,
               "energy_j": self.total_j}
        out.update({f"energy_{c}_j": getattr(self, f"{c}_j") for c in COMPONENTS})
        return out


def _need(value, what: str, hw: Hardware) -> float:
    if value is None:
        raise SystemModelError(f"hw.{what} is not set for hardware {hw.name!r}; energy needs it "
                               "(see the gpu and link presets for sourced values)")
    return float(value)


def memory_pj_per_byte(hw: Hardware | str) -> float:
    """Energy of one byte the GPU reads from its memory: a column read plus 1/columns of an activation."""
    hw = load_hw(hw)
    std = hw.standard
    pj = load_energy(std).command_pj
    act = next(i for i, c in enumerate(std.commands) if c.opens_row and c.scope == std.levels[-1])
    read = std.command_names.index(std.read_command)
    return float((pj[read] + pj[act] / std.columns) / std.column_bytes)


def pim_command_energy(hw: Hardware | str, commands: Mapping[str, int]) -> tuple[float, float, float]:
    """(compute, activation/precharge, refresh) joules of PIM commands issued, by name."""
    hw = load_hw(hw)
    std = hw.standard
    pj = load_energy(std).command_pj
    parts = [0.0, 0.0, 0.0]
    for name, n in commands.items():
        if name not in std.command_names:
            close = difflib.get_close_matches(str(name), std.command_names, n=3)
            raise SystemModelError(f"PIM command {name!r} is not a command of {std.name}"
                                   + (f"; did you mean {', '.join(close)}?" if close else
                                      f"; commands: {', '.join(std.command_names)}"))
        if isinstance(n, bool) or not n >= 0:
            raise SystemModelError(f"PIM command count of {name} must be >= 0, got {n!r}")
        cmd = std.command(name)
        kind = 2 if cmd.refreshes else 1 if (cmd.opens_row or cmd.closes_row) else 0
        parts[kind] += n * pj[std.command_names.index(name)] * 1e-12
    return parts[0], parts[1], parts[2]


def _check(totals: RunTotals) -> None:
    if isinstance(totals.num_gpus, bool) or not isinstance(totals.num_gpus, int) or totals.num_gpus < 1:
        raise SystemModelError(f"num_gpus must be a positive integer, got {totals.num_gpus!r}")
    if isinstance(totals.tokens, bool) or not isinstance(totals.tokens, int) or totals.tokens < 1:
        raise SystemModelError(f"tokens must be a positive integer, got {totals.tokens!r}")
    for name in ("seconds", "gpu_flops", "gpu_memory_bytes", "link_bytes"):
        value = getattr(totals, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < math.inf:
            raise SystemModelError(f"{name} must be a finite number >= 0, got {value!r}")


def _per_gpu_dram(hw: Hardware, seconds: float) -> tuple[float, float]:
    """(refresh, precharge-standby) joules of one GPU's memory stacks over `seconds`."""
    std, energy = hw.standard, load_energy(hw.standard)
    fan = std.fanout
    standby = energy.precharged_mw * 1e-3 * math.prod(fan[: energy.background_level + 1]) * hw.memory.stacks
    refresh = 0.0
    ref = next((i for i, c in enumerate(std.commands) if c.refreshes), None)
    if ref is not None and "nREFI" in std.timing:
        nodes = math.prod(fan[: std.level_index(std.commands[ref].scope) + 1]) * hw.memory.stacks
        interval_s = std.timing["nREFI"] * std.tCK_ns * 1e-9
        refresh = nodes * seconds / interval_s * energy.command_pj[ref] * 1e-12
    return refresh, standby * seconds


def run_energy(hw: Hardware | str, totals: RunTotals) -> EnergyBreakdown:
    """Energy of a run by component (:data:`COMPONENTS`), per token and tokens per joule."""
    hw = load_hw(hw)
    _check(totals)
    pim_compute, pim_act_pre, pim_refresh = pim_command_energy(hw, totals.pim_commands)
    refresh, standby = _per_gpu_dram(hw, totals.seconds)
    static = totals.num_gpus * (_need(hw.gpu.static_w, "gpu.static_w", hw) * totals.seconds + standby)
    return EnergyBreakdown(
        gpu_compute_j=totals.gpu_flops * _need(hw.gpu.pj_per_flop, "gpu.pj_per_flop", hw) * 1e-12,
        gpu_memory_j=totals.gpu_memory_bytes * memory_pj_per_byte(hw) * 1e-12,
        pim_compute_j=pim_compute,
        pim_act_pre_j=pim_act_pre,
        refresh_j=pim_refresh + totals.num_gpus * refresh,
        nvlink_j=totals.link_bytes * 8 * _need(hw.link.pj_per_bit, "link.pj_per_bit", hw) * 1e-12,
        static_j=static,
        tokens=totals.tokens,
    )


@dataclass(frozen=True)
class ExpertEnergy:
    """One routed expert with ``n_tokens`` tokens on PIM (``tp`` layout, simulated) and on the GPU
    (grouped-GEMM roofline): seconds and dynamic joules (no static power)."""

    n_tokens: int
    pim_s: float
    gpu_s: float
    pim_j: float
    gpu_j: float


def expert_energy(hw: Hardware | str, model, n_tokens: int) -> ExpertEnergy:
    """PIM against GPU time and energy of one expert: the PIM side from the commands the engine issued on
    every channel holding the expert, the GPU side from the FLOPs and bytes its two grouped GEMMs count."""
    from sieve.model import load as load_model
    from sieve.pim import expert_time

    from .gpu import experts_time, experts_work

    hw = load_hw(hw)
    model = model if not isinstance(model, str) else load_model(model)
    pim = expert_time(hw, model, n_tokens, details=True)
    flops, nbytes = experts_work(model, [n_tokens])
    gpu_j = (flops * _need(hw.gpu.pj_per_flop, "gpu.pj_per_flop", hw) + nbytes * memory_pj_per_byte(hw)) * 1e-12
    return ExpertEnergy(n_tokens=int(n_tokens), pim_s=pim.seconds, gpu_s=experts_time(hw, model, [n_tokens]),
                        pim_j=sum(pim_command_energy(hw, pim.total_commands)), gpu_j=gpu_j)


def pim_expert_commands(hw: Hardware | str, model, tokens_per_expert, layout: str = "tp", *,
                        channels_per_expert: int | None = None) -> dict:
    """PIM commands (all channels) of PIM experts with ``tokens_per_expert`` tokens each, one entry per
    expert run (any order, e.g. a run's experts table filtered to PIM): the engine's commands of each
    distinct token count, times how often it occurs."""
    import numpy as np

    from sieve.pim import expert_time

    hw = load_hw(hw)
    counts, times = np.unique(np.asarray(tokens_per_expert, dtype=np.int64), return_counts=True)
    total: dict[str, int] = {}
    for n, k in zip(counts.tolist(), times.tolist()):
        if n == 0:
            continue
        e = expert_time(hw, model, n, layout, channels_per_expert=channels_per_expert, details=True)
        for name, c in e.total_commands.items():
            total[name] = total.get(name, 0) + c * k
    return total


def _first_cheaper(hw, model, key, lo: int, hi: int) -> int | None:
    """Smallest token count in lo..hi at which the GPU beats PIM on `key` (both sides grow with the
    tokens, PIM faster), by bisection; None when PIM still wins at `hi`."""
    def gpu_wins(n: int) -> bool:
        e = expert_energy(hw, model, n)
        return key(e)[1] < key(e)[0]

    if not gpu_wins(hi):
        return None
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if gpu_wins(mid) else (mid + 1, hi)
    return lo


def expert_crossovers(hw: Hardware | str, model, max_tokens: int = 1024) -> dict:
    """Token counts from which one expert is cheaper in energy (``energy``) and faster (``speed``) on the
    GPU than on PIM (None: not up to ``max_tokens``)."""
    return {"energy": _first_cheaper(hw, model, lambda e: (e.pim_j, e.gpu_j), 1, max_tokens),
            "speed": _first_cheaper(hw, model, lambda e: (e.pim_s, e.gpu_s), 1, max_tokens)}
