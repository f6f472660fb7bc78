import numpy as np

def split_fields(addr: np.ndarray, sizes: np.ndarray, dest: np.ndarray, levels: np.ndarray, row: np.ndarray,
                 col: np.ndarray) -> None: ...
