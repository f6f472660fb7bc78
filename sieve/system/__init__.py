"""The machine around the PIM devices: analytical models of GPU kernels and NVLink traffic.

PIM work is never estimated here; it comes from the cycle-level core (:mod:`sieve.pim`).
"""

from ._checks import SystemModelError
from .capacity import CapacityError, MemoryUse, check_capacity, memory_use
from .gpu import (KERNEL_KINDS, KernelWork, NonExpertTime, NonExpertWork, decode_attention_time, decode_attention_work,
                  embedding_time, embedding_work, experts_time, experts_work, gemm_time, gemm_work, grouped_gemm_time,
                  lm_head_time, lm_head_work, non_expert_time, peak_flops, prefill_attention_time,
                  prefill_attention_work, roofline_time)
from .energy import EnergyBreakdown, RunTotals, run_energy
from .link import (LinkTraffic, collective_time, combine_time, combine_traffic, dispatch_time, dispatch_traffic,
                   expert_owner, routing_allgather_time, routing_allgather_traffic)

__all__ = [
    "CapacityError",
    "EnergyBreakdown",
    "RunTotals",
    "KERNEL_KINDS",
    "KernelWork",
    "LinkTraffic",
    "NonExpertWork",
    "combine_traffic",
    "decode_attention_work",
    "dispatch_traffic",
    "embedding_work",
    "experts_work",
    "gemm_work",
    "lm_head_work",
    "prefill_attention_work",
    "routing_allgather_traffic",
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
