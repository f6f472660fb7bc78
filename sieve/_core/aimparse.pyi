import numpy as np

def parse(data: np.ndarray, opcodes: list[bytes], regions: list[bytes], eoc: int
          ) -> tuple[int, np.ndarray | None, np.ndarray | None, np.ndarray | None, np.ndarray | None]: ...
