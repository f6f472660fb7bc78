"""Processing in memory: simulated PIM costs of MoE experts, from command streams on the cycle-level core."""

from .expert import LAYOUTS, ExpertTime, expert_run, expert_time

__all__ = ["LAYOUTS", "ExpertTime", "expert_run", "expert_time"]
