"""Numba kernels that write PIM command streams for matrix-vector products into preallocated arrays."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def gemv_counts(out_rows, in_elems, banks, cols_per_row, weights_per_col, gb_inputs, inputs_per_write,
                reads_per_pass, macs_per_col):
    """Commands one channel issues for one GEMV (prerequisite ACT/PRE excluded): (count, passes, chunks)."""
    passes = (out_rows + banks - 1) // banks
    chunks = (in_elems + gb_inputs - 1) // gb_inputs
    n = 0
    for c in range(chunks):
        chunk = min(gb_inputs, in_elems - c * gb_inputs)
        n += (chunk + inputs_per_write - 1) // inputs_per_write
        n += passes * ((chunk + weights_per_col - 1) // weights_per_col * macs_per_col + reads_per_pass)
    return n, passes, chunks


@njit(cache=True)
def gemv_fill(out_rows, in_elems, banks, cols_per_row, weights_per_col, gb_inputs, inputs_per_write,
              reads_per_pass, macs_per_col, base_row, cmd_gb, cmd_mac, cmd_read, cmds, rows, cols, start):
    """Write one GEMV's commands for one channel from position `start`; returns the next position.

    Order: for each input chunk that fits the global buffer, write it there, then for each pass of
    `banks` output rows (one per bank) MAC across the chunk's weight columns and read the partial sums
    out; each column takes ``macs_per_col`` MACs in a row (its weights over the unit's MAC lanes). Weights of
    pass p, chunk c lie in consecutive columns from column ((p * chunks + c) * chunk
    columns) of `base_row`, wrapping into the following rows.
    """
    passes = (out_rows + banks - 1) // banks
    chunks = (in_elems + gb_inputs - 1) // gb_inputs
    cols_full = (gb_inputs + weights_per_col - 1) // weights_per_col
    i = start
    for c in range(chunks):
        chunk = min(gb_inputs, in_elems - c * gb_inputs)
        ncols = (chunk + weights_per_col - 1) // weights_per_col
        for k in range((chunk + inputs_per_write - 1) // inputs_per_write):
            cmds[i] = cmd_gb
            rows[i] = 0
            cols[i] = k % cols_per_row
            i += 1
        for p in range(passes):
            first = (p * chunks + c) * cols_full
            for k in range(ncols):
                col = first + k
                for _ in range(macs_per_col):
                    cmds[i] = cmd_mac
                    rows[i] = base_row + col // cols_per_row
                    cols[i] = col % cols_per_row
                    i += 1
            for k in range(reads_per_pass):
                cmds[i] = cmd_read
                rows[i] = 0
                cols[i] = k % cols_per_row
                i += 1
    return i


@njit(cache=True)
def rows_used(out_rows, in_elems, banks, cols_per_row, weights_per_col, gb_inputs):
    """DRAM rows per bank one matrix slice occupies in this layout."""
    passes = (out_rows + banks - 1) // banks
    chunks = (in_elems + gb_inputs - 1) // gb_inputs
    cols_full = (gb_inputs + weights_per_col - 1) // weights_per_col
    last = (passes - 1) * chunks + chunks - 1
    total_cols = last * cols_full + (in_elems - (chunks - 1) * gb_inputs + weights_per_col - 1) // weights_per_col
    return (total_cols + cols_per_row - 1) // cols_per_row


def empty_stream(n: int):
    return np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
