from typing import Any

import numpy as np

from .engine import TimingEngine

ENTRY_BYTES: int

def bank_levels(eng: TimingEngine) -> np.ndarray: ...

class Controller:
    hits: int
    misses: int
    conflicts: int
    forwarded: int
    merged: int
    reads: int
    writes: int
    read_latency_sum: int
    last_completion: int
    ticks: int
    deadlocked: bool
    def __init__(self, eng: TimingEngine, tables: Any, bank: np.ndarray, row: np.ndarray, col: np.ndarray,
                 kind: np.ndarray, key: np.ndarray, queue_size: int = ..., priority_size: int = ...,
                 wr_high: float = ..., wr_low: float = ..., refresh: bool = ...,
                 write_done_at_issue: bool = ...) -> None: ...
    def run(self) -> None: ...
    def results(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...
