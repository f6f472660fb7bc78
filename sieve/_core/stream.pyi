import numpy as np

from .engine import TimingEngine

BAD_COMMAND: int
BAD_ROW: int
BAD_COLUMN: int
BAD_LEVEL: int

class _RefreshState:
    def __init__(self, eng: TimingEngine, cmd: int, level: int, interval: int, enabled: bool) -> None: ...

def execute(eng: TimingEngine, cmds: np.ndarray, addrs: np.ndarray, rows: np.ndarray, cols: np.ndarray,
            out_ticks: np.ndarray, auto_prereq: bool, refresh: _RefreshState, num_rows: int, num_cols: int,
            floor: np.ndarray) -> tuple[int, int]: ...
