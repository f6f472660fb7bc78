"""Processing in memory: AiM instruction traces, and simulated PIM costs of MoE experts and decode attention,
all from command streams on the cycle-level core.

The expert and attention models (and the Numba kernels behind them) are imported when first used, so
``python -m sieve.pim`` on an AiM trace starts without them."""

from importlib import import_module

from .aim_trace import AimTraceError, AimTraceResult, run_aim_trace

_LAZY = {
    "AttentionTime": "attention", "attention_time": "attention",
    "LAYOUTS": "expert", "ExpertTime": "expert", "expert_run": "expert", "expert_time": "expert",
    "layer_channel_times": "layer",
}

__all__ = ["LAYOUTS", "AimTraceError", "AimTraceResult", "AttentionTime", "ExpertTime", "attention_time", "expert_run",
           "expert_time", "layer_channel_times", "run_aim_trace"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
