"""The Sieve runtime: decode steps of a MoE model on GPUs with HBM-PIM, layer by layer, on resource timelines.

Parallelism (SPEC §3): attention is data-parallel (request ``i`` of the batch lives on GPU
``array_split(range(B), G)``), experts are expert-parallel (GPU ``g`` owns a contiguous block of
``E / G`` experts, :func:`sieve.system.expert_owner`), and inside a GPU the policy decides per layer
which of its activated experts execute on PIM and which on the GPU.

Every layer of every GPU is a chain of tasks on that GPU's lanes (see :mod:`sieve.runtime.timeline`)::

    gpu{g}/compute   kernels in issue order: projections, GPU attention, router, metadata, shared expert,
                     grouped GEMM of the GPU experts, dense FFN, embedding, LM head
    gpu{g}/memory    weights streamed HBM-PIM -> GPU by those kernels (shown; never a bottleneck of its own,
                     a kernel's roofline already counts it)
    gpu{g}/pim       the GPU's PIM channels: decode attention, then the PIM experts (per-channel busy
                     times are kept beside it)
    gpu{g}/sched     the placement policy (its own stream, beside the dispatch)
    gpu{g}/nvlink_send, gpu{g}/nvlink_recv   collectives (every GPU's link lanes at once)

One MoE layer (the dependency graph of SPEC §3)::

    projections -> attention (PIM, or GPU) -> router -> AllGather of routing maps -> metadata
      -> { dispatch (NVLink)  ||  scheduler (sched lane)  ||  shared expert (GPU) }
      -> { GPU experts (grouped GEMM)  ||  PIM experts }            (each after dispatch and scheduler)
      -> combine (NVLink), which waits for both and ends the layer on every GPU

The QKV and output projections are one task before attention: both sit on the chain's critical path
between the previous combine and the router, so their order inside it does not change any time.
Dense layers are projections -> attention -> dense FFN, with no collective. A decode step is the
embedding, every layer, then the LM head; the next step starts when the slowest GPU has finished.

PIM experts of a layer run, on every channel, all their gate/up GEMVs, one hand-off to the GPU for the
activation (``hw.pim.handoff_s``), then all their down GEMVs. A channel's time is the sum of its experts'
cycle-level phase times (:attr:`sieve.pim.expert.ExpertTime.busy_seconds`, each phase simulated on the
DRAM/PIM engine and read back); the phase lasts as long as its busiest channel plus the hand-off, during
which the channels wait (it is not counted as channel busy time). Layouts: the policy's :attr:`pim_layout`:
``tp`` (every expert over all channels; ``sieve``, ``allexp``, ``oracle``) or ``ep`` (each expert on
``channels / experts_per_gpu`` channels; ``pimoe``).

Sub-batches (``sub_batches``, NeuPIMs-style interleaving): each GPU's requests are cut into that many
contiguous parts that go through every layer separately; the tasks of a layer are issued phase by phase
(every sub-batch's projections, then every sub-batch's attention, then routers, collectives, experts and
combines), so one sub-batch's PIM attention can overlap another's GPU work. Each sub-batch reads the GPU
weights again. ``"auto"`` simulates one and two sub-batches and keeps the faster.

Prefill requests of a mixed batch (``workload.prefill.num_requests``) take the slots
``(i * B) // P``; each step they bring a whole new prompt, whose tokens go through every projection and
expert like decode tokens; their attention is causal self-attention on the GPU
(:func:`sieve.system.prefill_attention_time`), never on PIM (it is a GEMM). Every request emits one
token per step, so a step yields ``B`` tokens.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from sieve.config.workload import WorkloadConfig
from sieve.hw import Hardware
from sieve.model import ModelSpec, matrix_bytes
from sieve.sched import Scheduler, SchedulerError
from sieve.sched import from_config as sched_from_config
from sieve.sched import make as make_scheduler
from sieve.system import CapacityError, check_capacity, expert_owner, memory_use, peak_flops
from sieve.system._checks import SystemModelError

from .result import RunResult

__all__ = ["Simulation", "SimulationError", "ExpertGemmCost", "auto_num_gpus"]

log = logging.getLogger(__name__)


class SimulationError(ValueError):
    """A run that cannot be simulated as configured (the message names the setting and what is allowed)."""


_sum, _count_nonzero = np.add.reduce, np.count_nonzero  # without the wrappers: called per candidate split


class ExpertGemmCost:
    """:func:`sieve.system.experts_time` of one model on one GPU, for many splits of the same counts.

    Same formula (two grouped GEMMs: gate+up, then down), evaluated on plain floats: the schedulers ask
    for it once per candidate move."""

    def __init__(self, hw: Hardware, model: ModelSpec, activation_bytes: float = 2):
        gpu, fmt = hw.gpu, model.expert_weight_format
        h, i = model.hidden_size, model.expert_intermediate_size
        peak = peak_flops(gpu, fmt) * gpu.grouped_gemm_efficiency
        bw = gpu.hbm_bytes_per_s * gpu.stream_efficiency
        # (flops per token, weight bytes per active expert, activation bytes per token) of each GEMM
        self._gemms = [(2.0 * n * k, matrix_bytes(n, k, fmt), (k + n) * activation_bytes)
                       for n, k in ((2 * i, h), (h, i))]
        self._peak, self._bw, self._launch = peak, bw, gpu.kernel_launch_s

    def __call__(self, counts_on_gpu: np.ndarray) -> float:
        total = int(_sum(counts_on_gpu))  # as split(), without building its tuple: the schedulers call this often
        return self.seconds(total, int(_count_nonzero(counts_on_gpu))) if total else 0.0

    @staticmethod
    def split(counts_on_gpu: np.ndarray) -> tuple[int, int]:
        """(tokens, activated experts) of the counts: all the cost depends on."""
        return int(_sum(counts_on_gpu)), int(_count_nonzero(counts_on_gpu))

    def seconds(self, total: int, active: int) -> float:
        """The cost of ``total`` tokens over ``active`` experts."""
        if total == 0:
            return 0.0
        peak, bw, launch = self._peak, self._bw, self._launch
        t = 0.0
        for flops, weight, act in self._gemms:
            compute = flops * total / peak
            memory = (active * weight + total * act) / bw
            t += (memory if memory > compute else compute) + launch  # max(compute, memory), without the call
        return t

    def weight_bytes(self, active: int) -> float:
        return active * sum(w for _, w, _ in self._gemms)


def auto_num_gpus(hw: Hardware, model: ModelSpec, context_lengths) -> int:
    """The fewest GPUs (a divisor of the expert count, at most 64) whose memory holds the model and the KV
    cache of requests with ``context_lengths``."""
    tried = [g for g in range(1, min(model.num_experts, 64) + 1) if model.num_experts % g == 0]
    for g in tried:
        if memory_use(hw, model, g, context_lengths).fits:
            return g
    use = memory_use(hw, model, tried[-1], context_lengths)
    raise CapacityError(f"{model.name} does not fit even on {tried[-1]} x {hw.name}: {use.describe()}; "
                        "set num_gpus and allow_over_capacity=true to run anyway")


@dataclass(frozen=True)
class _Batch:
    """The requests of a run: who decodes, who prefills, where they live, what they route to."""

    home: np.ndarray            # [B] GPU of each request
    prefill: np.ndarray         # [B] bool
    context: np.ndarray         # [B] decode context at step 0 (prefill slots: 0)
    prompts: np.ndarray         # [steps, B] prompt tokens of prefill slots (0 for decode slots)
    routing: np.ndarray         # [steps, moe_layers, tokens, k]


class Simulation:
    """A configured run: hardware, model, placement policy, workload and GPU count.

    ``sched``: a policy name, a ``sched`` config mapping (``name``, ``params``) or a callable returning a new
    :class:`~sieve.sched.Scheduler` (one per GPU is made). ``num_gpus``: an integer or ``"auto"``.
    ``record_timeline``: keep every span (for :mod:`sieve.runtime.trace`)."""

    def __init__(self, hw: Hardware, model: ModelSpec, sched: str | Mapping | Callable[[], Scheduler],
                 workload: WorkloadConfig, num_gpus: int | str = "auto", *, allow_over_capacity: bool = False,
                 record_timeline: bool = False, sub_batches: int | str = 1):
        if not isinstance(hw, Hardware):
            raise SimulationError(f"hw must be a sieve.hw.Hardware, got {type(hw).__name__}")
        if not isinstance(model, ModelSpec):
            raise SimulationError(f"model must be a sieve.model.ModelSpec, got {type(model).__name__}")
        if not isinstance(workload, WorkloadConfig):
            raise SimulationError(f"workload must be a sieve.config.workload.WorkloadConfig, got {type(workload).__name__}")
        self.hw, self.model, self.workload = hw, model, workload
        self._new_scheduler = self._scheduler_factory(sched)
        probe = self._new_scheduler()  # a bad name or parameter fails here
        if not isinstance(probe, Scheduler):
            raise SchedulerError(f"sched() must return a sieve.sched.Scheduler, got {type(probe).__name__}")
        self.sched_name = probe.name
        self.pim_layout = probe.pim_layout
        """How experts lie over a GPU's PIM channels for this policy: ``tp`` or ``ep``."""
        self.record_timeline = bool(record_timeline)
        if sub_batches != "auto" and (isinstance(sub_batches, bool) or not isinstance(sub_batches, (int, np.integer))
                                      or sub_batches < 1):
            raise SimulationError(f"sub_batches={sub_batches!r} is invalid; allowed: a positive integer or 'auto'")
        self.sub_batches = sub_batches
        self.allow_over_capacity = bool(allow_over_capacity)
        rng = workload.rng()
        B = workload.batch_size
        context = workload.context_length.sample(B, rng)
        P = workload.prefill.num_requests
        prompts = np.stack([workload.prefill.prompt_length.sample(P, rng) for _ in range(workload.decode_steps)]) \
            if P else np.zeros((workload.decode_steps, 0), dtype=np.int64)
        final_lengths = context + workload.decode_steps
        if P:
            final_lengths = np.concatenate([final_lengths, prompts.max(axis=0)])
        if num_gpus == "auto":
            num_gpus = auto_num_gpus(hw, model, final_lengths)
        if isinstance(num_gpus, bool) or not isinstance(num_gpus, (int, np.integer)) or num_gpus < 1:
            raise SimulationError(f"num_gpus={num_gpus!r} is invalid; allowed: a positive integer or 'auto'")
        self.num_gpus = int(num_gpus)
        try:
            self.owner = expert_owner(model.num_experts, self.num_gpus)
        except SystemModelError as e:
            raise SimulationError(str(e)) from None
        self.experts_per_gpu = model.num_experts // self.num_gpus
        self.channels_per_expert = (max(1, hw.pim_channels_per_gpu // self.experts_per_gpu)
                                    if self.pim_layout == "ep" else None)
        """PIM channels holding each expert in the ``ep`` layout (None in ``tp``: all of them)."""
        self.memory = check_capacity(hw, model, self.num_gpus, final_lengths,
                                     allow_over_capacity=self.allow_over_capacity)
        self.batch = self._make_batch(rng, context, prompts)

    # ----------------------------------------------------------------------------------------- set-up
    @staticmethod
    def _scheduler_factory(sched) -> Callable[[], Scheduler]:
        if isinstance(sched, str):
            return lambda: make_scheduler(sched)
        if isinstance(sched, Mapping) or hasattr(sched, "keys"):
            # read a config node once: resolving its interpolations again for every GPU of every run is slow
            plain = {key: dict(value) if hasattr(value, "keys") else value for key, value in sched.items()}
            return lambda: sched_from_config(plain)
        if callable(sched):
            return sched
        raise SchedulerError(f"sched must be a policy name, a sched config or a factory, got {sched!r}")

    def _make_batch(self, rng: np.random.Generator, context: np.ndarray, prompts: np.ndarray) -> _Batch:
        wl, model, G = self.workload, self.model, self.num_gpus
        B, P, steps = wl.batch_size, wl.prefill.num_requests, wl.decode_steps
        home = np.empty(B, dtype=np.int64)
        for g, part in enumerate(np.array_split(np.arange(B), G)):
            home[part] = g
        prefill = np.zeros(B, dtype=bool)
        slots = (np.arange(P) * B) // P if P else np.zeros(0, dtype=np.int64)
        prefill[slots] = True
        context = np.where(prefill, 0, context)
        full_prompts = np.zeros((steps, B), dtype=np.int64)
        full_prompts[:, slots] = prompts
        max_tokens = int((np.where(prefill, full_prompts, 1)).sum(axis=1).max())
        routing = self._routing(max_tokens, np.random.default_rng([wl.seed, 1]))
        return _Batch(home, prefill, context, full_prompts, routing)

    def _routing(self, tokens: int, rng: np.random.Generator) -> np.ndarray:
        from sieve.routing import RoutingError, generate, load_trace, read_jsonl

        wl, model = self.workload, self.model
        r = wl.routing
        try:
            if r.family == "trace":
                path = Path(r.trace)
                if not path.is_file():
                    raise SimulationError(f"workload.routing.trace={r.trace!r}: no such file")
                routing = read_jsonl(path, model) if path.suffix == ".jsonl" else load_trace(path, model)
                steps, _, have, _ = routing.shape
                if steps < wl.decode_steps or have < tokens:
                    raise SimulationError(
                        f"routing trace {r.trace} has {steps} steps x {have} tokens; this workload needs "
                        f"{wl.decode_steps} steps x {tokens} tokens (decode_steps, batch_size and prompts)")
                self.routing_family = f"trace({r.trace})"
                return routing[:wl.decode_steps, :, :tokens]
            family, params = r.family, dict(r.params)
            if family == "preset":
                from sieve.routing.presets import available

                if model.name not in available():
                    family, params = r.fallback_family, dict(r.fallback_params)
                    log.info("no calibrated routing preset for %s; routing.fallback_family %s %s", model.name,
                             family, params)
            self.routing_family = f"{family}({', '.join(f'{k}={v}' for k, v in params.items())})"
            return generate(model, tokens, wl.decode_steps, family=family, seed=rng, drift=r.drift, **params)
        except RoutingError as e:
            raise SimulationError(f"workload.routing: {e}") from None

    # ----------------------------------------------------------------------------------------- costs
    def __repr__(self) -> str:
        return (f"<Simulation {self.model.name} on {self.num_gpus} x {self.hw.name}, sched={self.sched_name}, "
                f"B={self.workload.batch_size}, {self.workload.decode_steps} decode steps>")

    def run(self, progress: bool = False) -> RunResult:
        """Simulate ``workload.decode_steps`` decode steps; returns the tables and the summary.

        With ``sub_batches="auto"`` both one and two sub-batches are simulated (two only when some GPU holds
        at least two requests) and the faster run is returned; its summary says which."""
        if self.sub_batches != "auto":
            return self._run(int(self.sub_batches), progress)
        runs = [self._run(1, progress)]
        if int(np.bincount(self.batch.home, minlength=self.num_gpus).max()) >= 2:
            runs.append(self._run(2, progress))
        return min(runs, key=lambda r: r.summary["tpot_s"])  # equal times: one sub-batch

    def _sub_batches(self, count: int) -> np.ndarray:
        """[B] sub-batch of each request: each GPU's requests cut into ``count`` contiguous parts."""
        of = np.zeros(self.workload.batch_size, dtype=np.int64)
        for g in range(self.num_gpus):
            mine = np.flatnonzero(self.batch.home == g)
            for k, part in enumerate(np.array_split(mine, count)):
                of[part] = k
        return of

    def _run(self, sub_batches: int, progress: bool) -> RunResult:
        from .steps import run_steps

        return RunResult.build(self, run_steps(self, sub_batches, progress))
