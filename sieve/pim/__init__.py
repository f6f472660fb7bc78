"""Processing in memory: simulated PIM costs of MoE experts, from command streams on the cycle-level core."""

from .attention import AttentionTime, attention_time
from .expert import LAYOUTS, ExpertTime, expert_run, expert_time

__all__ = ["LAYOUTS", "AttentionTime", "ExpertTime", "attention_time", "expert_run", "expert_time"]
