"""Request-trace mode: memory traces through per-channel FR-FCFS controllers on the timing engine.

Trace format: one request per line, ``LD <addr>`` or ``ST <addr>``, the byte address in decimal or
``0x`` hexadecimal; each line is one transaction of the standard's column size (32 bytes on HBM3).
Blank lines and lines starting with ``#`` are ignored.

Address mapping ``RoBaRaCoCh`` (LSB first): transaction offset, channel, column, then the levels below
the channel from the top (pseudo-channel, stack id, bank group, bank), then row; fields that are not
powers of two are peeled off by division. An address at or beyond the device's capacity is an error.

The controller's semantics are listed in ``sieve._core.controller``; they follow Ramulator 2's HBM3
controller (FR-FCFS oldest-ready-first, open page, 32-entry read and write queues, requests past their
ACT served first, all-bank refresh per pseudo-channel).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from sieve._core import controller as _controller
from sieve._core import traceparse as _traceparse
from sieve._cli import binary_content

from .device import REFRESH_MODES, Device
from .spec import StandardError
from .stats import bank_table

__all__ = ["TraceError", "Trace", "read_trace", "map_addresses", "RequestResult", "run_requests", "MAPPINGS"]

MAPPINGS = ("RoBaRaCoCh",)


class TraceError(ValueError):
    """A memory trace is malformed or does not fit the device."""


@dataclass(frozen=True)
class Trace:
    is_write: np.ndarray  # uint8 [n]
    addr: np.ndarray  # uint64 [n] byte addresses
    line: np.ndarray  # int64 [n] line number of each request in its file (1-based)
    source: str = "<array>"

    def __len__(self) -> int:
        return len(self.addr)

    @classmethod
    def from_arrays(cls, addr, is_write=None, source: str = "<array>") -> "Trace":
        addr = np.asarray(addr)
        if addr.ndim != 1:
            raise TraceError(f"addresses must be a 1-d array, got shape {addr.shape}")
        if addr.dtype.kind == "i" and (addr < 0).any():
            i = int(np.argmax(addr < 0))
            raise TraceError(f"request #{i}: negative address {addr[i]}")
        addr = addr.astype(np.uint64)
        w = np.zeros(len(addr), dtype=np.uint8) if is_write is None else np.asarray(is_write, dtype=np.uint8)
        if w.shape != addr.shape:
            raise TraceError(f"is_write has shape {w.shape}, addresses {addr.shape}")
        return cls(w, addr, np.arange(1, len(addr) + 1, dtype=np.int64), source)


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise TraceError(f"trace file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise TraceError(f"trace path {str(path)!r} is a directory") from None
    except OSError as e:
        raise TraceError(f"cannot read trace file {str(path)!r}: {e.strerror or e}") from None
    problem = binary_content(data)
    if problem is not None:
        raise TraceError(f"trace file {str(path)!r} {problem}; expected lines 'LD <addr>' or 'ST <addr>'")
    try:
        w, a, line = _traceparse.parse(data)
    except ValueError as e:
        line_no, text = e.args
        raise TraceError(
            f"{path}:{line_no}: malformed trace line {text!r}; expected 'LD <addr>' or 'ST <addr>' "
            "(decimal or 0x hexadecimal, below 2^64)") from None
    if len(a) == 0:
        raise TraceError(f"trace file {str(path)!r} holds no requests (only blank or comment lines); "
                         "expected lines 'LD <addr>' or 'ST <addr>'")
    return Trace(w, a, line, str(path))


def map_addresses(device: Device, trace: Trace, mapping: str = "RoBaRaCoCh"):
    """Split byte addresses into [n, levels] level indices, rows and columns.

    Fields are peeled off from the least significant end in mapping order by division and remainder,
    which is bit slicing when every field is a power of two (HBM3) and stays dense when one is not
    (24 banks as 6 groups of 4).
    """
    if mapping not in MAPPINGS:
        raise StandardError(f"unknown address mapping {mapping!r}; available: {', '.join(MAPPINGS)}")
    std = device.standard
    cap = std.capacity_bytes
    bad = trace.addr >= np.uint64(cap)
    if bad.any():
        i = int(np.argmax(bad))
        raise TraceError(
            f"{trace.source}:{trace.line[i]}: address {int(trace.addr[i]):#x} is beyond the device "
            f"({std.name}: {cap} bytes, addresses 0..{cap - 1:#x})")
    rest = (trace.addr // np.uint64(std.column_bytes)).astype(np.int64)
    L = len(std.levels)
    out = np.empty((len(rest), L), dtype=np.int64)

    def take(count: int) -> np.ndarray:
        nonlocal rest
        v = rest % count
        rest = rest // count
        return v

    out[:, 0] = take(std.fanout[0])
    col = take(std.columns)
    for l in range(1, L):
        out[:, l] = take(std.fanout[l])
    row = take(std.rows)
    return out, row, col


@dataclass
class RequestResult:
    standard: str
    refresh: str
    ticks_per_ck: int
    requests: int
    cycles_ck: float
    commands: dict
    row_hits: int
    row_misses: int
    row_conflicts: int
    forwarded: int
    merged: int
    reads: int
    writes: int
    avg_read_latency_ck: float
    wall_s: float
    per_request: pd.DataFrame = field(repr=False)
    bank: pd.DataFrame = field(repr=False)

    def summary(self) -> dict:
        """The JSON-ready summary printed by ``python -m sieve.dram --json``."""
        return {
            "standard": self.standard,
            "refresh": self.refresh,
            "requests": self.requests,
            "cycles_ck": self.cycles_ck,
            "commands": self.commands,
            "row_hits": self.row_hits,
            "row_misses": self.row_misses,
            "row_conflicts": self.row_conflicts,
            "forwarded_reads": self.forwarded,
            "merged_writes": self.merged,
            "reads": self.reads,
            "writes": self.writes,
            "avg_read_latency_ck": self.avg_read_latency_ck,
            "wall_s": self.wall_s,
        }


OUTCOMES = np.array(["hit", "miss", "conflict", "forwarded", "merged"], dtype=object)


def run_requests(
    device: Device | str,
    trace: Trace | str | Path,
    *,
    refresh: str = "off",
    mapping: str = "RoBaRaCoCh",
    queue_size: int = 32,
    log: bool = False,
):
    """Run a request trace. Returns a :class:`RequestResult` (and the command log when ``log``)."""
    device = Device(device) if isinstance(device, str) else device
    if not isinstance(trace, Trace):
        trace = read_trace(trace)
    if refresh not in REFRESH_MODES:
        raise StandardError(f"refresh {refresh!r} is not one of {', '.join(REFRESH_MODES)}")
    tables = device.tables
    if tables.read_cmd < 0 or tables.write_cmd < 0:
        raise StandardError(f"standard {device.standard.name!r} declares no read/write commands (requests:)")
    if refresh != "off" and tables.refresh_cmd < 0:
        raise StandardError(f"standard {device.standard.name!r} declares no refresh command")
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size <= 0:
        raise StandardError(f"queue_size must be a positive integer, got {queue_size!r}")
    addr, row, col = map_addresses(device, trace, mapping)
    eng = device.engine(logging=log)
    ctl = _controller.Controller(eng, tables, addr, row, col, trace.is_write, trace.addr,
                                 queue_size=queue_size, refresh=refresh != "off")
    t0 = time.perf_counter()
    ctl.run()
    wall = time.perf_counter() - t0
    if ctl.deadlocked:
        raise StandardError(f"standard {device.standard.name!r}: requests wait but no command can serve them")
    tpc = tables.ticks_per_ck
    arrive, complete, outcome = ctl.results()
    totals = eng.command_totals()
    commands = {name: int(totals[i]) for i, name in enumerate(device.standard.command_names)}
    per_request = pd.DataFrame({
        "line": trace.line,
        "write": trace.is_write.astype(bool),
        "addr": trace.addr,
        **{lv: addr[:, l] for l, lv in enumerate(device.standard.levels)},
        "row": row,
        "column": col,
        "arrive_ck": arrive / tpc,
        "complete_ck": complete / tpc,
        "outcome": OUTCOMES[outcome],
    })
    result = RequestResult(
        standard=device.standard.name,
        refresh=refresh,
        ticks_per_ck=tpc,
        requests=len(trace),
        cycles_ck=ctl.last_completion / tpc,
        commands=commands,
        row_hits=ctl.hits,
        row_misses=ctl.misses,
        row_conflicts=ctl.conflicts,
        forwarded=ctl.forwarded,
        merged=ctl.merged,
        reads=ctl.reads,
        writes=ctl.writes,
        avg_read_latency_ck=(ctl.read_latency_sum / ctl.reads / tpc) if ctl.reads else 0.0,
        wall_s=wall,
        per_request=per_request,
        bank=bank_table(device, eng, ctl.last_completion),
    )
    if log:
        return result, device.log_of(eng)
    return result
