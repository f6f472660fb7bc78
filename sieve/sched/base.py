"""The interface between the runtime and the expert placement policies.

The runtime calls a policy once per MoE layer, per decode step, per GPU:

1. it builds a :class:`LayerView`: the tokens routed to each of this GPU's experts and the cost
   functions of this layer on this GPU (how the costs are computed is the runtime's business);
2. ``scheduler.place(view)`` returns a :class:`Placement`: which activated experts execute on PIM and
   which on the GPU (weights stay where they are stored, in HBM-PIM; only execution moves);
3. after the layer has run, ``scheduler.observe(counts, placement, measured)`` hands back the
   cycle-level PIM time of one expert for each token count that ran on PIM. Sieve learns its cost
   table there; the other policies ignore it.

Whether decode attention runs on PIM is fixed per policy (:attr:`Scheduler.uses_pim_attention`), so the
runtime knows it before attention runs and before the view (with its ``pim_attention_s``) exists.

The objective every estimating policy speaks of is the one of SPEC §4, for one layer on one GPU::

    max(T_comm, T_gpu(G), T_pim(S))      T_pim(S) = pim_attention_s + sum over S of cost(N_e)

with ``G`` the activated experts executed on the GPU, ``S`` those on PIM, and ``cost`` whatever the
policy believes an expert with ``N`` tokens costs on PIM. :func:`objective_terms` evaluates it for any
split and any cost function, so a placement can be judged afterwards with the true costs.

Policies are deterministic, keep no randomness, and never change their constructor parameters.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Callable, ClassVar, Mapping

import numpy as np

__all__ = [
    "SchedulerError", "UnknownSchedulerError", "ExpertPhase", "LayerView", "Placement", "Scheduler",
    "objective_terms", "objective", "hottest_first", "config_defaults",
]


class SchedulerError(ValueError):
    """Bad input to a scheduler: a malformed view, placement, measurement or parameter."""


class UnknownSchedulerError(SchedulerError):
    """A scheduler name that is not in the registry; the message lists the valid names."""


def config_defaults(name: str) -> dict[str, object]:
    """The parameters of ``conf/sched/<name>.yaml``, the one place each policy's defaults are written.

    Policies take their constructor defaults from here, so ``make(name)`` from Python and ``sched=<name>``
    from the command line agree. A value the composed config takes from another node
    (``${oc.select:node,fallback}``, e.g. the GPU preset's launch cost) is its fallback here, where no such
    node exists."""
    from importlib import resources

    from omegaconf import OmegaConf

    text = resources.files("sieve.conf").joinpath(f"sched/{name}.yaml").read_text()
    params = OmegaConf.create(text).get("params") or OmegaConf.create({})
    return OmegaConf.to_container(OmegaConf.create({"params": params}), resolve=True)["params"]


def _counts(counts, what: str = "counts") -> np.ndarray:
    """A read-only int64 copy of a 1-d array of non-negative token counts (at least one expert)."""
    arr = np.asarray(counts)
    if arr.ndim != 1:
        raise SchedulerError(f"{what} must be a 1-d array of token counts per expert, got shape {arr.shape}")
    if arr.size == 0:
        raise SchedulerError(f"{what} is empty: a GPU holds at least one expert")
    if arr.dtype.kind not in "iu":
        raise SchedulerError(f"{what} must hold integers (tokens per expert), got dtype {arr.dtype}")
    if arr.min() < 0:
        bad = int(np.flatnonzero(arr < 0)[0])
        raise SchedulerError(f"{what} must be non-negative; expert {bad} has {int(arr[bad])} tokens")
    out = arr.astype(np.int64, copy=True)
    out.setflags(write=False)
    return out


def _seconds(value, what: str) -> float:
    """A finite, non-negative time in seconds."""
    if isinstance(value, bool):
        raise SchedulerError(f"{what} must be a number of seconds, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise SchedulerError(f"{what} must be a number of seconds, got {value!r}") from None
    if not math.isfinite(x) or x < 0:
        raise SchedulerError(f"{what} must be finite and non-negative, got {value!r}")
    return x


def _index(value, what: str, allowed: str, *, minimum: int) -> int:
    """An integer of at least ``minimum`` (not a bool)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise SchedulerError(f"{what} must be {allowed}, got {value!r}")
    return int(value)


def _tokens(n, what: str) -> int:
    """A positive token count."""
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise SchedulerError(f"{what} must be a positive integer number of tokens, got {n!r}")
    return int(n)


@dataclass(frozen=True, kw_only=True)
class ExpertPhase:
    """How the runtime runs the layer's expert phase on one GPU, for policies that plan around it.

    Times are measured from the moment both the dispatch and the part of the policy's time it can count on
    before placing (:attr:`Scheduler.overhead_s`) have finished. ``gpu_ready_s``: when
    the GPU can start its experts (after work already queued, e.g. shared experts); ``pim_ready_s``: when the
    PIM channels are free; ``pim_fixed_s``: time the PIM experts of a layer take once, whatever their number
    (the hand-off between gate/up and down GEMVs); ``gpu_expert_time(counts_on_gpu)``: the GPU experts alone
    (``counts_on_gpu`` as for :attr:`LayerView.gpu_time`)."""

    gpu_ready_s: float
    pim_ready_s: float
    pim_fixed_s: float
    gpu_expert_time: Callable[[np.ndarray], float]

    def __post_init__(self):
        for name in ("gpu_ready_s", "pim_ready_s", "pim_fixed_s"):
            object.__setattr__(self, name, _seconds(getattr(self, name), f"expert_phase.{name}"))
        if not callable(self.gpu_expert_time):
            raise SchedulerError(f"expert_phase.gpu_expert_time must be callable, got {self.gpu_expert_time!r}")


@dataclass(frozen=True, kw_only=True)
class LayerView:
    """What a policy may know about one MoE layer on one GPU in one decode step.

    Required:

    ``counts``
        Tokens routed to each of this GPU's experts (index = the GPU's local expert index);
        0 means the expert is not activated. Stored as a read-only int64 copy.
    ``gpu_time(counts_on_gpu) -> seconds``
        T_gpu(G): max(bytes moved HBM-PIM -> GPU / HBM bandwidth, GPU ops / GPU peak) for *all* of
        the layer's GPU work except PIM attention and PIM experts (projections, router, shared
        experts, ..., and attention itself when the policy keeps it on the GPU), with the experts in
        ``G`` executed on the GPU. ``counts_on_gpu`` has the shape of ``counts``: an expert's token
        count if it is in ``G``, else 0. Must not decrease when an expert is added to ``G``.
    ``pim_roofline(n_tokens) -> seconds``
        Ops of one expert with ``n_tokens`` tokens / PIM peak: Sieve's estimate for a token count it
        has not observed yet.

    Optional (default: none of that cost):

    ``comm_s``
        T_comm: this GPU's inter-GPU bytes of the layer / NVLink bandwidth; it does not depend on the
        split between GPU and PIM.
    ``pim_attention_s``
        PIM time already taken by decode attention in this layer (0 when attention is on the GPU).
    ``pim_expert_time(n_tokens) -> seconds``
        The cycle-level PIM time of one expert with ``n_tokens`` tokens in Sieve's layout (every expert
        over all channels). Only the ``oracle`` needs it.
    ``num_pim_channels``
        PIM channels of this GPU.
    ``expert_channels``
        pimoe's layout: ``[experts, S]`` int array, the PIM channels (``0 .. num_pim_channels-1``)
        that hold a slice of each expert (``sieve.pim.layer.placement(..., layout="ep")``).
    ``pim_channel_expert_time(n_tokens) -> seconds``
        pimoe's cost: seconds each of an expert's ``S`` channels is busy when the expert runs
        ``n_tokens`` tokens in that layout.
    ``split_time(on_gpu) -> seconds``
        The runtime's own time of the layer's expert phase when exactly the experts of the boolean mask
        ``on_gpu`` run on the GPU (the rest of the activated ones on PIM): from the end of the dispatch to
        the end of the slower side, GPU or PIM, on this GPU's timeline. Only the ``oracle`` uses it.
    ``expert_phase``
        An :class:`ExpertPhase`: when GPU and PIM can start the experts and what the PIM phase costs once;
        ``sieve`` with ``objective="expert_phase"`` (its default) plans with it.
    ``kernel_launch_s``
        The GPU's kernel launch cost (``hw.gpu.kernel_launch_s``): the floor of ``sieve``'s scaled
        scheduling cost (:mod:`sieve.sched.overhead`). None: not given.
    ``layer``
        The model layer this view is of (what ``sieve``'s adaptive variant remembers its gain by). None:
        not given.
    """

    counts: np.ndarray
    gpu_time: Callable[[np.ndarray], float]
    pim_roofline: Callable[[int], float]
    comm_s: float = 0.0
    pim_attention_s: float = 0.0
    pim_expert_time: Callable[[int], float] | None = None
    num_pim_channels: int = 1
    expert_channels: np.ndarray | None = None
    pim_channel_expert_time: Callable[[int], float] | None = None
    split_time: Callable[[np.ndarray], float] | None = None
    expert_phase: ExpertPhase | None = None
    kernel_launch_s: float | None = None
    layer: int | None = None

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "counts", _counts(self.counts))
        if self.kernel_launch_s is not None:
            set_(self, "kernel_launch_s", _seconds(self.kernel_launch_s, "kernel_launch_s"))
        if self.layer is not None:
            set_(self, "layer", _index(self.layer, "layer", "a non-negative integer or None", minimum=0))
        set_(self, "comm_s", _seconds(self.comm_s, "comm_s"))
        set_(self, "pim_attention_s", _seconds(self.pim_attention_s, "pim_attention_s"))
        self._check_functions()
        set_(self, "num_pim_channels", _index(self.num_pim_channels, "num_pim_channels", "a positive integer",
                                              minimum=1))
        if self.expert_channels is not None:
            set_(self, "expert_channels", self._checked_expert_channels())

    def _check_functions(self) -> None:
        for name in ("gpu_time", "pim_roofline"):
            if not callable(getattr(self, name)):
                raise SchedulerError(f"{name} must be callable, got {getattr(self, name)!r}")
        for name in ("pim_expert_time", "pim_channel_expert_time", "split_time"):
            f = getattr(self, name)
            if f is not None and not callable(f):
                raise SchedulerError(f"{name} must be callable or None, got {f!r}")
        if self.expert_phase is not None and not isinstance(self.expert_phase, ExpertPhase):
            raise SchedulerError(f"expert_phase must be an ExpertPhase or None, got {self.expert_phase!r}")

    def _checked_expert_channels(self) -> np.ndarray:
        where = np.asarray(self.expert_channels)
        if where.ndim != 2 or where.shape[0] != self.num_experts or where.shape[1] < 1 \
                or where.dtype.kind not in "iu":
            raise SchedulerError(
                f"expert_channels must be an integer array of shape [{self.num_experts}, S>=1], "
                f"got shape {where.shape} dtype {where.dtype}")
        if where.min() < 0 or where.max() >= self.num_pim_channels:
            raise SchedulerError(f"expert_channels must name channels 0..{self.num_pim_channels - 1}")
        where = where.astype(np.int64, copy=True)
        where.setflags(write=False)
        return where

    @property
    def num_experts(self) -> int:
        return len(self.counts)

    @property
    def activated(self) -> np.ndarray:
        """Boolean mask of the experts that received at least one token."""
        return self.counts > 0

    def gpu_s(self, on_gpu: np.ndarray) -> float:
        """T_gpu of the split where exactly the experts in the boolean mask ``on_gpu`` run on the GPU."""
        counts_on_gpu = np.where(on_gpu, self.counts, 0)
        counts_on_gpu.setflags(write=False)
        return _seconds(self.gpu_time(counts_on_gpu), "gpu_time(...)")


@dataclass(frozen=True, kw_only=True)
class Placement:
    """Where one layer's experts execute on one GPU.

    ``on_pim`` / ``on_gpu``: boolean per expert; an activated expert is in exactly one of them, an
    expert without tokens in neither. ``estimated_s``: the objective value the policy believed for this
    split (NaN for the static policies, which estimate nothing). ``overhead_s``: the policy's own run time
    on the GPU for this layer, which the runtime puts on its timeline (beside the dispatch, SPEC §3 step 5).
    ``channel_load_s``: the PIM expert time per channel the policy expected (None when it does not model
    channels); attention is not in it.
    """

    on_pim: np.ndarray
    on_gpu: np.ndarray
    estimated_s: float = math.nan
    overhead_s: float = 0.0
    channel_load_s: np.ndarray | None = None

    @classmethod
    def of(cls, view: LayerView, on_pim, **kwargs) -> "Placement":
        """The placement that runs the activated experts of ``on_pim`` on PIM and the rest on the GPU."""
        mask = np.asarray(on_pim, dtype=bool)
        if mask.shape != view.counts.shape:
            raise SchedulerError(f"on_pim has shape {mask.shape}; the view has {view.num_experts} experts")
        on_pim = mask & view.activated
        on_gpu = view.activated & ~on_pim
        return cls(on_pim=on_pim, on_gpu=on_gpu, **kwargs)

    def __post_init__(self):
        for name in ("on_pim", "on_gpu"):
            arr = np.array(getattr(self, name), dtype=bool)
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        if self.on_pim.ndim != 1 or self.on_pim.shape != self.on_gpu.shape:
            raise SchedulerError(f"on_pim {self.on_pim.shape} and on_gpu {self.on_gpu.shape} must be 1-d and alike")
        both = np.flatnonzero(self.on_pim & self.on_gpu)
        if both.size:
            raise SchedulerError(f"experts {both.tolist()} are on both PIM and GPU")
        if self.channel_load_s is not None:
            load = np.array(self.channel_load_s, dtype=float)
            load.setflags(write=False)
            object.__setattr__(self, "channel_load_s", load)

    @property
    def num_experts(self) -> int:
        return len(self.on_pim)


def objective_terms(view: LayerView, on_gpu, pim_expert_cost: Callable[[int], float]) -> tuple[float, float, float]:
    """(T_comm, T_gpu(G), T_pim(S)) for the split where the activated experts of ``on_gpu`` run on the GPU
    and the other activated experts on PIM, each costing ``pim_expert_cost(N)`` there."""
    on_gpu = np.asarray(on_gpu, dtype=bool) & view.activated
    on_pim = view.activated & ~on_gpu
    pim = view.pim_attention_s + math.fsum(
        _seconds(pim_expert_cost(int(n)), f"PIM cost of {int(n)} tokens") for n in view.counts[on_pim])
    return view.comm_s, view.gpu_s(on_gpu), pim


def objective(view: LayerView, on_gpu, pim_expert_cost: Callable[[int], float]) -> float:
    """max(T_comm, T_gpu(G), T_pim(S)) of a split; see :func:`objective_terms`."""
    return max(objective_terms(view, on_gpu, pim_expert_cost))


def hottest_first(counts: np.ndarray) -> np.ndarray:
    """Indices of the activated experts, most tokens first; equal counts: lower expert index first."""
    active = np.flatnonzero(counts > 0)
    return active[np.argsort(-counts[active], kind="stable")]


class Scheduler:
    """Base of every placement policy.

    Subclasses set :attr:`name` (the config option, ``sched=<name>``), :attr:`uses_pim`, :attr:`uses_pim_attention`,
    and implement :meth:`place`. Constructor parameters are keyword-only and never change afterwards;
    learned state (Sieve's cost table) is separate from them.
    """

    name: ClassVar[str] = ""
    uses_pim: ClassVar[bool] = True
    """Whether the policy uses the PIM units at all (the runtime refuses experts placed on PIM otherwise)."""
    uses_pim_attention: ClassVar[bool] = True
    """Whether decode attention runs on PIM under this policy (the runtime reads it before attention)."""
    pim_layout: ClassVar[str] = "tp"
    """How the runtime lays experts out over a GPU's PIM channels for this policy: ``tp`` (every expert
    over all channels) or ``ep`` (each expert on some channels, ``LayerView.expert_channels``)."""

    def __init__(self, *, overhead_s: float = 0.0):
        self._overhead_s = _seconds(overhead_s, "overhead_s")

    @property
    def attention(self) -> str:
        """Where the runtime runs decode attention under this policy: ``pim``, ``gpu``, or ``auto`` (per layer,
        wherever it simulates faster). Fixed policies derive it from :attr:`uses_pim_attention`."""
        return "pim" if self.uses_pim_attention else "gpu"

    @property
    def overhead_s(self) -> float:
        """The policy's own run time per layer per GPU, in seconds, that the runtime can count on before the
        policy has placed the layer. A policy whose cost depends on the layer (``sieve``'s scaled cost and
        fast path) reports the least it can take here and the actual time on each :class:`Placement`."""
        return self._overhead_s

    @property
    def params(self) -> Mapping[str, object]:
        """The constructor parameters, by name."""
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {p: getattr(self, p) for p in names}

    def place(self, view: LayerView) -> Placement:
        """Choose where each activated expert of the layer executes."""
        raise NotImplementedError

    def observe(self, counts, placement: Placement, measured_pim_expert_s: Mapping[int, float]) -> None:
        """Learn from the iteration that just ran. ``measured_pim_expert_s`` maps a token count ``N`` to the
        cycle-level PIM seconds of one expert with ``N`` tokens, for token counts that ran on PIM.
        The base checks the arguments and learns nothing."""
        self._check_observation(counts, placement, measured_pim_expert_s)

    @staticmethod
    def _check_observation(counts, placement: Placement, measured: Mapping[int, float]) -> dict[int, float]:
        """Validated ``{N: seconds}``; every N must be the count of an expert the placement put on PIM."""
        counts = _counts(counts)
        if not isinstance(placement, Placement) or placement.num_experts != len(counts):
            raise SchedulerError(f"placement must be a Placement over the {len(counts)} experts of counts")
        if not isinstance(measured, Mapping):
            raise SchedulerError(f"measured_pim_expert_s must map token counts to seconds, got {measured!r}")
        ran = set(counts[placement.on_pim].tolist())
        out = {}
        for n, s in measured.items():
            n = _tokens(n, "a measured token count")
            if n not in ran:
                raise SchedulerError(f"measured time for {n} tokens, but no expert with {n} tokens ran on PIM "
                                     f"(token counts on PIM: {sorted(ran)})")
            out[n] = _seconds(s, f"measured PIM time of {n} tokens")
        return out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"
