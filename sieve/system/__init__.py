"""The machine around the PIM devices: analytical models of GPU kernels and NVLink traffic.

PIM work is never estimated here; it comes from the cycle-level core (:mod:`sieve.pim`).
"""

from ._checks import SystemModelError
from .capacity import CapacityError, MemoryUse, check_capacity, memory_use
from .gpu import (KERNEL_KINDS, NonExpertTime, decode_attention_time, embedding_time, experts_time, gemm_time,
                  grouped_gemm_time, lm_head_time, non_expert_time, peak_flops, prefill_attention_time,
                  roofline_time)
from .energy import EnergyBreakdown, RunTotals, run_energy
from .link import collective_time, combine_time, dispatch_time, expert_owner, routing_allgather_time

__all__ = [
    "CapacityError",
    "EnergyBreakdown",
    "RunTotals",
    "KERNEL_KINDS",
    "MemoryUse",
    "NonExpertTime",
    "SystemModelError",
    "check_capacity",
    "collective_time",
    "combine_time",
    "decode_attention_time",
    "dispatch_time",
    "embedding_time",
    "expert_owner",
    "experts_time",
    "gemm_time",
    "grouped_gemm_time",
    "lm_head_time",
    "memory_use",
    "non_expert_time",
    "peak_flops",
    "prefill_attention_time",
    "roofline_time",
    "routing_allgather_time",
    "run_energy",
]
