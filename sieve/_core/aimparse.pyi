import numpy as np

MAX_VALUES_PER_LINE: int

def parse(data: np.ndarray, opcodes: list[bytes], regions: list[bytes], eoc: int, forms: np.ndarray,
          defaults: np.ndarray) -> tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None]: ...
def opcode_counts(code: np.ndarray, ncodes: int) -> tuple[np.ndarray, np.ndarray]: ...
