"""Token-to-expert routing: Numba generators, trace files and the paper's statistics."""

from sieve.routing.families import FAMILIES, RoutingError, rank_probabilities
from sieve.routing.generate import generate
from sieve.routing.io import load_trace, read_jsonl, save_trace
from sieve.routing.presets import RoutingPreset, preset
from sieve.routing.stats import expert_counts, stats

__all__ = [
    "FAMILIES",
    "RoutingError",
    "RoutingPreset",
    "expert_counts",
    "generate",
    "load_trace",
    "preset",
    "rank_probabilities",
    "read_jsonl",
    "save_trace",
    "stats",
]
