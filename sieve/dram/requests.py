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

When a write counts as complete is a choice of the controller model (``write_completion``):

* ``"issue"`` (default): when its WR issues, as Ramulator 2's controller calls a write's callback
  (no write latency is added). This is the semantics of the reference figures.
* ``"data"``: when its last data beat is on the bus, ``write_latency`` (``nCWL + nBL`` on HBM3) after
  the WR. A write-heavy trace's total grows by at most that latency.
"""

from __future__ import annotations

import mmap
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from sieve._core import addrmap as _addrmap
from sieve._core import controller as _controller
from sieve._core import traceparse as _traceparse
from sieve._cli import binary_content

from .device import REFRESH_MODES, Device
from .energy import energy_summary, load_energy
from .spec import StandardError, load_standard
from .stats import bank_columns

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["TraceError", "Trace", "read_trace", "map_addresses", "RequestResult", "run_requests", "MAPPINGS",
           "WRITE_COMPLETIONS"]

MAPPINGS = ("RoBaRaCoCh",)
WRITE_COMPLETIONS = ("issue", "data")  # when a write completes: at its WR, or at its last data beat


class TraceError(ValueError):
    """A memory trace is malformed or does not fit the device."""


@dataclass(frozen=True)
class Trace:
    is_write: np.ndarray  # uint8 [n]
    addr: np.ndarray  # uint64 [n] byte addresses
    lines: np.ndarray | None = field(default=None, repr=False)  # int64 [n] line numbers; None: 1 .. n
    source: str = "<array>"

    def __len__(self) -> int:
        return len(self.addr)

    @cached_property
    def line(self) -> np.ndarray:
        """int64 [n]: the line number of each request in its file (1-based)."""
        return np.arange(1, len(self.addr) + 1, dtype=np.int64) if self.lines is None else self.lines

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
        return cls(w, addr, None, source)


def read_trace(path: str | Path) -> Trace:
    path = Path(path)
    try:
        with open(path, "rb") as f, _mapped_file(f) as data:
            return _parse_trace(data, path)
    except FileNotFoundError:
        raise TraceError(f"trace file {str(path)!r} does not exist") from None
    except IsADirectoryError:
        raise TraceError(f"trace path {str(path)!r} is a directory") from None
    except OSError as e:
        raise TraceError(f"cannot read trace file {str(path)!r}: {e.strerror or e}") from None


@contextmanager
def _mapped_file(f):
    """The file's bytes, mapped rather than copied where the file can be mapped (a regular, non-empty
    file): the parser reads a long trace once, from the page cache."""
    try:
        data = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (ValueError, OSError):  # empty, or a pipe or device that cannot be mapped
        data = None
    if data is None:
        yield f.read()
        return
    try:
        yield data
    finally:
        data.close()


def _parse_trace(data, path: Path) -> Trace:
    """Check that `data` (bytes or a read-only map of them) is text and parse it."""
    if data.find(b"\0") >= 0 or np.frombuffer(data, dtype=np.uint8).max(initial=0) >= 0x80:
        problem = binary_content(bytes(data))  # which one (gzip, NUL, not UTF-8), if any: UTF-8 is text
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


def _field_layout(device: Device, trace: Trace, mapping: str) -> tuple[np.ndarray, np.ndarray]:
    """The mapping's fields, least significant first: their sizes and where each goes (-1 nowhere, a level,
    L the row, L + 1 the column), after checking the mapping and every address against the device."""
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
    L = len(std.levels)
    # LSB first: offset (dropped), channel, column, the levels below the channel from the top, row
    sizes = np.array([std.column_bytes, std.fanout[0], std.columns, *std.fanout[1:], std.rows], dtype=np.int64)
    dest = np.array([-1, 0, L + 1, *range(1, L), L], dtype=np.int64)  # -1: nowhere, L: row, L + 1: column
    return sizes, dest


def map_addresses(device: Device, trace: Trace, mapping: str = "RoBaRaCoCh"):
    """Split byte addresses into [n, levels] level indices, rows and columns.

    Fields are peeled off from the least significant end in mapping order, in one compiled pass: bit
    slicing where a field is a power of two (HBM3), division and remainder where it is not (24 banks as
    6 groups of 4 stay dense). It is the request mode's pass (flat bank ids), with the levels spelled out.
    """
    bank, row, col = _map_banks(device, trace, mapping)
    return _levels_of(device, bank), row.astype(np.int64), col.astype(np.int64)


def _map_banks(device: Device, trace: Trace, mapping: str):
    """:func:`map_addresses` with each request's levels as one flat bank id (levels from the channel
    down), in one compiled pass: the controller's input (32-bit), without the [n, levels] array."""
    sizes, dest = _field_layout(device, trace, mapping)
    std = device.standard
    fanout = np.asarray(std.fanout, dtype=np.int64)
    if max(int(np.prod(fanout)), std.rows, std.columns) >= 2 ** 31:
        raise StandardError(f"standard {std.name!r}: request mode needs fewer than 2^31 banks, rows and columns")
    weights = np.array([np.prod(fanout[l + 1:], dtype=np.int64) for l in range(len(fanout))], dtype=np.int64)
    n = len(trace.addr)
    bank = np.empty(n, dtype=np.int32)
    row = np.empty(n, dtype=np.int32)
    col = np.empty(n, dtype=np.int32)
    _addrmap.split_banks(np.ascontiguousarray(trace.addr, dtype=np.uint64), sizes, dest, weights, bank, row, col)
    return bank, row, col


def _levels_of(device: Device, bank: np.ndarray) -> np.ndarray:
    """[n, levels] int64: the level indices (from the channel down) of flat bank ids."""
    return np.stack(np.unravel_index(bank, device.standard.fanout), axis=1).astype(np.int64, copy=False)


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
    arrive_tick: np.ndarray = field(repr=False)
    """Per request (trace order): the tick it entered its controller."""
    complete_tick: np.ndarray = field(repr=False)
    """Per request: the tick it completed."""
    outcome_code: np.ndarray = field(repr=False)
    """Per request: an index into ``OUTCOMES`` (hit, miss, conflict, forwarded, merged)."""
    _trace: Trace = field(repr=False)
    _mapped: tuple = field(repr=False)  # (flat bank id, row, col) from _map_banks
    _device: Device = field(repr=False)
    _engine: object = field(repr=False)
    _until_tick: int = field(repr=False)

    @cached_property
    def per_request(self) -> "pd.DataFrame":
        """One row per request: its line, address fields, arrival, completion (CK) and outcome."""
        import pandas as pd

        bank, row, col = self._mapped
        levels = _levels_of(self._device, bank)
        return pd.DataFrame({
            "line": self._trace.line,
            "write": self._trace.is_write.astype(bool),
            "addr": self._trace.addr,
            **{lv: levels[:, l] for l, lv in enumerate(self._device.standard.levels)},
            "row": row.astype(np.int64),
            "column": col.astype(np.int64),
            "arrive_ck": self.arrive_tick / self.ticks_per_ck,
            "complete_ck": self.complete_tick / self.ticks_per_ck,
            "outcome": OUTCOMES[self.outcome_code],
        })

    @cached_property
    def bank_columns(self) -> dict[str, np.ndarray]:
        """The columns of :attr:`bank` as NumPy arrays (no pandas)."""
        return bank_columns(self._device, self._engine, self._until_tick)

    @cached_property
    def bank(self) -> "pd.DataFrame":
        """One row per bank (see :func:`sieve.dram.stats.bank_table`)."""
        import pandas as pd

        return pd.DataFrame(self.bank_columns)

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

    def bank_columns_with(self, energy_data: str | None) -> dict[str, np.ndarray]:
        """:attr:`bank_columns` with the energy columns of the named energy data of the standard
        (``None`` or ``"default"``: :attr:`bank_columns` itself)."""
        if energy_data in (None, "default"):
            return self.bank_columns
        return bank_columns(self._device, self._engine, self._until_tick, energy_data)

    def energy(self, energy_data: str | None = None) -> dict:
        """Energy totals of the run (see :mod:`sieve.dram.energy`): by command, background, total and per
        bit read, from the standard's default energy data or the alternative named ``energy_data``.
        Raises :class:`StandardError` when the standard has no such energy data."""
        std = load_standard(self.standard)
        energy = load_energy(std, energy_data)  # raises, naming what exists
        return energy_summary(energy, std, self.bank_columns_with(energy_data), self.reads * std.column_bytes * 8)


OUTCOMES = np.array(["hit", "miss", "conflict", "forwarded", "merged"], dtype=object)


def run_requests(
    device: Device | str,
    trace: Trace | str | Path,
    *,
    refresh: str = "off",
    mapping: str = "RoBaRaCoCh",
    queue_size: int = 32,
    write_completion: str = "issue",
    log: bool = False,
):
    """Run a request trace. Returns a :class:`RequestResult` (and the command log when ``log``).

    ``write_completion`` is ``"issue"`` (a write completes when its WR issues, as in Ramulator 2) or
    ``"data"`` (at WR + ``write_latency``); see the module docstring."""
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
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or not 0 < queue_size < 2**31:
        raise StandardError(f"queue_size must be a positive integer below 2^31, got {queue_size!r}")
    if write_completion not in WRITE_COMPLETIONS:
        raise StandardError(f"write_completion {write_completion!r} is not one of {', '.join(WRITE_COMPLETIONS)}")
    bank, row, col = _map_banks(device, trace, mapping)
    eng = device.engine(logging=log)
    try:
        ctl = _controller.Controller(eng, tables, bank, row, col, trace.is_write, trace.addr,
                                     queue_size=queue_size, refresh=refresh != "off",
                                     write_done_at_issue=write_completion == "issue")
    except MemoryError:
        channels = int(tables.fanout[0])
        gib = 2 * queue_size * channels * _controller.ENTRY_BYTES / 2**30
        raise StandardError(f"queue_size {queue_size}: the queues of {channels} channels do not fit in "
                            f"memory (their entries alone take {gib:.1f} GiB)") from None
    t0 = time.perf_counter()
    ctl.run()
    wall = time.perf_counter() - t0
    if ctl.deadlocked:
        raise StandardError(f"standard {device.standard.name!r}: requests wait but no command can serve them")
    tpc = tables.ticks_per_ck
    arrive, complete, outcome = ctl.results()
    totals = eng.command_totals()
    commands = {name: int(totals[i]) for i, name in enumerate(device.standard.command_names)}
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
        arrive_tick=arrive,
        complete_tick=complete,
        outcome_code=outcome,
        _trace=trace,
        _mapped=(bank, row, col),
        _device=device,
        _engine=eng,
        _until_tick=ctl.last_completion,
    )
    if log:
        return result, device.log_of(eng)
    return result
