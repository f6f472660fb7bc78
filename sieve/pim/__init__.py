"""Processing in memory: AiM instruction traces, and simulated PIM costs of MoE experts and decode attention,
all from command streams on the cycle-level core."""

from .aim_trace import AimTraceError, AimTraceResult, run_aim_trace
from .attention import AttentionTime, attention_time
from .expert import LAYOUTS, ExpertTime, expert_run, expert_time
from .layer import layer_channel_times

__all__ = ["LAYOUTS", "AimTraceError", "AimTraceResult", "AttentionTime", "ExpertTime", "attention_time", "expert_run",
           "expert_time", "layer_channel_times", "run_aim_trace"]
