import numpy as np

def split_banks(addr: np.ndarray, sizes: np.ndarray, dest: np.ndarray, weights: np.ndarray, bank: np.ndarray,
                row: np.ndarray, col: np.ndarray) -> None: ...
