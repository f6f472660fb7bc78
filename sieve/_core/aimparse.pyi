import numpy as np

MAX_VALUES_PER_LINE: int

class Reader:
    def __init__(self, opcodes: list[bytes], regions: list[bytes], eoc: int, forms: np.ndarray,
                 defaults: np.ndarray) -> None: ...
    def parse(self, text: str) -> tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None,
                                        list[tuple[int, int]] | None]: ...

def opcode_counts(code: np.ndarray, ncodes: int) -> list[tuple[int, int]]: ...
