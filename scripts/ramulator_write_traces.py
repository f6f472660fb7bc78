"""Write sieve's copies of the request traces with writes that Ramulator 2.1 ran for the HBM3 reference
figures (``shared/golden/ramulator_hbm3.md``), rebuilt from their description (NumPy ``default_rng(777)``)
and checked byte for byte against the reference's files by their md5::

    python scripts/ramulator_write_traces.py OUT_DIR

Each trace is one ``LD <addr>`` or ``ST <addr>`` per line, addresses in hexadecimal, as
``python -m sieve.dram`` reads them.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

import numpy as np

# byte-address fields of the reference's mapping (RoBaRaCoCh on HBM3), LSB first
CH, COL, PC, SID, BG, BA, ROW = 5, 9, 14, 15, 16, 18, 20

MD5 = {"wr_only_seq": "d3312a156d8a3fa88a78158ee153eab5",
       "rw_alternate_2banks": "b61756e686f1b53af624f80edfb07934",
       "rw25_random_1MiB": "2573d5348024246ded6084a7cf899bc3"}
"""md5 of each trace file of the reference."""


def address(ch=0, pc=0, sid=0, bg=0, ba=0, row=0, col=0) -> int:
    """The byte address of a column of HBM3 under the reference's mapping."""
    return (ch << CH) | (col << COL) | (pc << PC) | (sid << SID) | (bg << BG) | (ba << BA) | (row << ROW)


def traces() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each trace's byte addresses (int64) and whether each request is a store, in trace order:

    * ``wr_only_seq``: 4 MiB of stores, 32 bytes apart;
    * ``rw_alternate_2banks``: loads and stores in turn to two banks of channel 2, four rows, random columns;
    * ``rw25_random_1MiB``: uniform random 32-byte requests over 1 MiB, a quarter of them stores.
    """
    rng = np.random.default_rng(777)
    n = 4 * (1 << 20) // 32
    out = {"wr_only_seq": (np.arange(n, dtype=np.int64) * 32, np.ones(n, dtype=bool))}
    m = 1 << 16
    banks = np.array([address(ch=2, pc=1, bg=0, ba=1), address(ch=2, pc=1, bg=3, ba=2)], dtype=np.int64)
    rows = np.array([0, 7, 4095, 8191], dtype=np.int64)
    b, r, c = rng.integers(0, 2, size=m), rng.integers(0, 4, size=m), rng.integers(0, 32, size=m)
    out["rw_alternate_2banks"] = (banks[b] | (rows[r] << ROW) | (c.astype(np.int64) << COL), np.arange(m) % 2 == 1)
    k = 1 << 18
    addr = rng.integers(0, (1 << 20) // 32, size=k, dtype=np.int64) * 32
    out["rw25_random_1MiB"] = (addr, rng.random(k) < 0.25)
    return out


def text(addr: np.ndarray, store: np.ndarray) -> str:
    """A trace's file text, in the reference's layout."""
    return "\n".join(f"{'ST' if w else 'LD'} 0x{a:x}" for a, w in zip(addr.tolist(), store.tolist())) + "\n"


def write_all(out: Path) -> list[Path]:
    """Write every trace to ``out/<name>.trace`` after checking its md5; returns the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, (addr, store) in traces().items():
        data = text(addr, store).encode()
        if hashlib.md5(data).hexdigest() != MD5[name]:
            raise RuntimeError(f"{name}: the rebuilt trace is not the reference's (md5 differs)")
        path = out / f"{name}.trace"
        path.write_bytes(data)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="directory to write the traces into")
    args = p.parse_args(argv)
    for path in write_all(args.out):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
