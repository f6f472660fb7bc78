from typing import Any

from .engine import TimingEngine

KIND_PYTHON: int
KIND_NOTHING: int
KIND_CFR: int
KIND_COMMANDS: int
ONE_BANK: int
REGISTER_MODE: int
BLOCKING: int
AF: int
USES_ROW: int

def run_lines(eng: TimingEngine, program: Any, state: Any, start: int) -> int: ...
