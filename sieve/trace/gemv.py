"""Matrix-vector products as PIM command streams of one PIM channel.

A PIM channel (an HBM pseudo-channel, a GDDR6 channel) runs all-bank commands: each bank's unit
multiplies one column of its open row by the matching inputs in the channel's global buffer and
accumulates into its MAC register. A matrix slice of ``out_rows x in_elems`` is laid out so that bank
``b`` of pass ``p`` holds output row ``p * banks + b``; its weights for one global-buffer chunk of the
input sit in consecutive columns (wrapping into the next rows), at the same row and column in every bank
and every channel. The stream of one GEMV::

    for each input chunk that fits the global buffer:      WRGB x (chunk bytes / column bytes)
        for each pass of `banks` output rows:             MAC16 x (chunk columns x MAC slots per column),
                                                          RDMAC16 x reads
    (ACT16 / PREA are inserted by the executor whenever the next MAC needs another row)

Partial sums of several chunks are read out and added on the GPU. Each bank's unit has
``hw.pim.mac_lanes_per_bank`` bf16 MAC lanes; a column holds 16 bf16, 32 fp8 or 64 MXFP4 weights, so with
16 lanes it takes 1, 2 or 4 MAC slots: that many MACs of the same column, back to back.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sieve.model.spec import WEIGHT_FORMATS

from . import _gemv_kernels as K

__all__ = ["GemvShape", "PIMGeometry", "gemv_stream", "LayoutError"]

ACTIVATION_BYTES = 2  # token vectors and results are bf16


class LayoutError(ValueError):
    """A matrix does not fit the PIM layout it is asked to use."""


@dataclass(frozen=True)
class PIMGeometry:
    """What the stream generator needs to know about one PIM channel."""

    banks: int
    cols_per_row: int
    column_bytes: int
    rows: int
    global_buffer_bytes: int
    mac_lanes: int
    """bf16 MAC lanes per bank unit (``hw.pim.mac_lanes_per_bank``)."""
    cmd_gb: int
    cmd_mac: int
    cmd_read: int

    @classmethod
    def of(cls, hw) -> "PIMGeometry":
        std = hw.standard
        dev = hw.pim_device
        c = hw.pim.commands
        return cls(banks=hw.banks_per_pim_channel, cols_per_row=std.columns, column_bytes=std.column_bytes,
                   rows=std.rows, global_buffer_bytes=hw.pim.global_buffer_bytes,
                   mac_lanes=hw.pim.mac_lanes_per_bank,
                   cmd_gb=dev.cmd_id(c.global_buffer_write), cmd_mac=dev.cmd_id(c.all_bank_mac),
                   cmd_read=dev.cmd_id(c.mac_result_read))

    @property
    def gb_inputs(self) -> int:
        return self.global_buffer_bytes // ACTIVATION_BYTES

    @property
    def inputs_per_write(self) -> int:
        """Input elements one global-buffer write carries (one column)."""
        return self.column_bytes // ACTIVATION_BYTES

    @property
    def reads_per_pass(self) -> int:
        return math.ceil(self.banks * ACTIVATION_BYTES / self.column_bytes)


@dataclass(frozen=True)
class GemvShape:
    out_rows: int
    in_elems: int
    weight_format: str = "bf16"

    def weights_per_col(self, geom: PIMGeometry) -> int:
        if self.weight_format not in WEIGHT_FORMATS:
            raise LayoutError(f"weight format {self.weight_format!r} is not known; allowed: {sorted(WEIGHT_FORMATS)}")
        return int(geom.column_bytes / WEIGHT_FORMATS[self.weight_format])

    def macs_per_col(self, geom: PIMGeometry) -> int:
        """MAC slots one column of this format takes: its weights over the unit's MAC lanes."""
        return -(-self.weights_per_col(geom) // geom.mac_lanes)

    def rows_used(self, geom: PIMGeometry) -> int:
        """DRAM rows per bank this slice occupies."""
        return int(K.rows_used(self.out_rows, self.in_elems, geom.banks, geom.cols_per_row,
                               self.weights_per_col(geom), geom.gb_inputs))


def gemv_stream(geom: PIMGeometry, shape: GemvShape, *, repeat: int = 1, base_row: int = 0):
    """Commands (ids), rows and columns of `repeat` back-to-back GEMVs of `shape` on one PIM channel."""
    for name, v in (("out_rows", shape.out_rows), ("in_elems", shape.in_elems), ("repeat", repeat)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v <= 0:
            raise LayoutError(f"{name} must be a positive integer, got {v!r}")
    wpc = shape.weights_per_col(geom)
    used = shape.rows_used(geom)
    if base_row < 0 or base_row + used > geom.rows:
        raise LayoutError(
            f"a {shape.out_rows} x {shape.in_elems} {shape.weight_format} slice needs {used} rows per bank "
            f"from row {base_row}; a bank has {geom.rows} rows")
    slots = shape.macs_per_col(geom)
    n, _, _ = K.gemv_counts(shape.out_rows, shape.in_elems, geom.banks, geom.cols_per_row, wpc, geom.gb_inputs,
                            geom.inputs_per_write, geom.reads_per_pass, slots)
    cmds, rows, cols = K.empty_stream(n * repeat)
    pos = 0
    for _ in range(repeat):
        pos = K.gemv_fill(shape.out_rows, shape.in_elems, geom.banks, geom.cols_per_row, wpc, geom.gb_inputs,
                          geom.inputs_per_write, geom.reads_per_pass, slots, base_row, geom.cmd_gb, geom.cmd_mac,
                          geom.cmd_read, cmds, rows, cols, pos)
    assert pos == len(cmds)
    return cmds, rows, cols
