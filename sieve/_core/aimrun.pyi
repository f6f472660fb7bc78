from typing import Any

from .engine import TimingEngine

KIND_PYTHON: int
KIND_NOTHING: int
KIND_CFR: int
KIND_COMMANDS: int
KIND_SYNC: int
KIND_EOC: int
ONE_BANK: int
REGISTER_MODE: int
BLOCKING: int
AF: int
USES_ROW: int
OPSIZE_COLUMNS: int
OPSIZE_POSITIVE: int
CFR: int

def run_lines(eng: TimingEngine, program: Any, codes: Any, state: Any, start: int) -> int: ...
def engine_totals(eng: TimingEngine, channels: int, per_bank_pj: Any = ...) -> tuple[Any, Any, Any]: ...
def bank_background_pj(eng: TimingEngine, end: int, tick_ns: float, precharged_mw: float, active_mw: float, out: Any = ...) -> Any: ...
