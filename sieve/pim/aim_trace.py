"""AiM instruction traces: parse, unroll into DRAM/PIM commands, execute on the cycle-level core.

An AiM trace is the host program of an SK hynix GDDR6-AiM device, one instruction per line, as the
public AiM simulator (CENT project, on Ramulator 2.0) reads it::

    # comment
    AiM WR_GB 64 0 0xffffffff          # opsize GPR channel-mask
    AiM MAC_ABK 64 0xffffffff 7        # opsize channel-mask row
    AiM RD_MAC 8 0xffffffff            # GPR channel-mask
    W MEM 0 2 8                        # channel bank row
    W CFR 2 1                          # CFR address (0 broadcast, 1 ewmul_bg, 2 afm), data
    AiM EOC

Both forms of the reference's files are read: fields separated by blanks, or by commas with empty
leading/trailing fields (``,AiM,MAC_ABK,64,0xffffffff,0`` and ``AiM,ISR_EOC,,,``); a line whose fields
are all empty is blank; ``#`` starts a comment anywhere; opcodes may carry the ``ISR_`` prefix;
numbers are decimal or ``0x`` hexadecimal. Fields per opcode are those of :data:`OPCODE_FIELDS`.

Unrolling (:func:`unroll`), as the reference's memory system does it:

* ``opsize`` = that many consecutive 32-byte columns starting at column 0; every column of every
  selected channel is one command. Instructions without an opsize move one column.
* Channel mask: bit ``i`` selects channel ``C - 1 - i`` (``0x80000000`` is channel 0, ``0x1`` channel
  31 on the 32-channel device). A bank index ``b`` is bank group ``b // 4``, bank ``b % 4``.
* WR_SBK / RD_SBK and ``W MEM`` / ``R MEM`` are conventional WR / RD of one bank; WR_ABK is WRA16
  (write all banks, then precharge all); WR_GB is WRGB per column; WR_BIAS is WRMAC16; RD_MAC is
  RDMAC16; RD_AF is RDAF16; COPY_BKGB / COPY_GBBK are RDCP / WRCP per column of one bank; MAC_SBK is
  MAC per column of one bank; MAC_ABK is MAC16 per column; EWMUL is EWMUL16 per column (always all 16
  banks: the reference ignores the ewmul_bg register for timing); AF is one AF16. EWADD, GPR accesses
  and CFR accesses issue nothing (a CFR write sets the register the next AF reads).
* The ACT / ACT16 / PRE / PREA a command needs are inserted by the stream session's prerequisite rules
  (those of the ``gddr6_aim`` standard, taken from the reference). An all-bank command whose channel has
  some banks open on its row and the others closed gets ACT16 over the open banks, as in the reference
  (PREA only when a bank holds another row; its ``preq.h`` ``RequireAllRowsOpen`` at 0f28a07).
* Register mode: WR_GB, WR_BIAS, RD_MAC and RD_AF need the channel in register read/write mode, every
  other instruction needs it off; when an instruction's need differs from the channel's mode a TMOD
  is issued first, at the tick the instruction's first command (or the prerequisite that command
  needs) would have been ready — the reference's controller issues TMOD in place of a ready command.
  Every command then waits nMODCH after it (a timing record of the standard).
* Decoding: the host lines are decoded one per cycle, in order, from the first cycle; a comment or
  blank line costs nothing, every other line one cycle, and none of a line's commands issues before
  the cycle it is decoded in. So a line that issues no command (GPR and CFR accesses, EWADD) costs
  exactly one cycle.
* Conventional requests and AiM instructions do not share a channel's queue: a request (WR_SBK,
  RD_SBK, W/R MEM) enters its channel's queue only in the cycle after the last command of the AiM
  instructions queued there has issued, and an AiM instruction only in the cycle after the channel's
  queued requests have left it (a request leaves at its ACT or, needing none, at its RD/WR). The
  decoder retries a refused line every cycle and decodes the next line in the cycle after every
  channel has taken it (the reference at 0f28a07: ``AiM_dram_controller.cpp`` ``send``, lines 113-122,
  refuses the other kind; ``aim_DRAM_system.cpp`` ``tick``, lines 213-233, retries).
* Blocking instructions: RD_MAC and RD_AF hold the decoder until their commands complete (issue + the
  command's latency, :data:`COMMAND_LATENCY`); the next line is decoded in the following cycle. SYNC
  and EOC reach the head of every channel queue in the cycle they are decoded or the cycle after the
  last command issued, whichever is later, and complete one cycle after that or after the last
  completion, whichever is later: two cycles when nothing is outstanding. After SYNC the next line is
  decoded in the following cycle; EOC ends the trace.
* End of trace: the conventional requests (WR_SBK, RD_SBK, W/R MEM) just before EOC sit in the
  reference's request queues. Each issues the row commands it needs, and EOC, which waits only for
  what has issued, drops the RD or WR of a request past its ACT (``W MEM``, ``AiM EOC``: only the ACT
  issues, 3 cycles). Sieve drops such a RD or WR when it could issue only after EOC completes.
* ``cycles`` counts cycles from 1, as the reference's ``memory_system_cycles`` does: the cycle in
  which EOC completes. (Command ticks in the log count from 0: the reference's cycle n is tick n - 1.)

Execution: well-formed text is read by ``sieve._core.aimparse`` (anything unusual goes to the Python
parser, whose errors are the module's) and runs of AiM instructions, CFR writes, lines without
commands, SYNC and EOC by ``sieve._core.aimrun``, which executes each command at once in the order
:class:`_Runner` would batch it. Conventional requests (and the line after them), lines that fail
validation and rows that could alias AF's stand-in row go through :class:`_Runner`;
``run_aim_trace(..., fast=False)`` sends every line there (the oracle of
``tests/pim/test_aim_trace_fast.py``). What a run derives from its device alone (command ids,
latencies, the executor's per-opcode tables, energy data) is built on the device's first run.

Where sieve models the reference's behaviour differently, and why:

* **Clocks.** In the reference's shipped configuration (``test/example.yaml``) every clock ratio is 1:
  its ``memory_system_cycles`` are controller cycles, the cycles of the standard's timing values
  (tCK 0.5 ns), and compare one to one with sieve's ``cycles``.
* **Queues.** The reference holds an instruction until every channel's controller queue (33 entries)
  has accepted all its commands, so a channel with a long backlog can delay other channels' next
  instructions. Sieve executes each channel's commands in order with unbounded queues; the two agree
  whenever the instructions are spread evenly over channels, as in all of the reference's test traces.
* **Conventional requests** (WR_SBK, RD_SBK, MEM) go through FR-FCFS read and write queues in the
  reference (ready first, then oldest; writes drained by watermarks; a request past its ACT waits in an
  active buffer that is served first), which may reorder them among themselves, and an AiM instruction may issue ahead of a
  request that has had its ACT but not yet its RD/WR. Sieve issues a channel's commands in trace order.
  The reference also "forwards" any read that arrives while a write is queued in its channel (its
  addresses are all -1 for these requests); sieve does not. On ``test/all_isr.trace`` none of this
  happens (its reads arrive after the writes have issued) and every command agrees, tick for tick.
* **AF's row.** The reference activates the pseudo-row ``2**29 + AFM`` for AF, beyond the device's rows.
  Sieve stands row ``rows - 1 - AFM`` in for it and, should a data access hit that same row number,
  closes the row first, as the reference would for a different row; row-buffer behaviour is therefore
  the reference's.
* **EOC / SYNC.** The reference's lookup of an instruction's final command swaps SYNC and EOC; harmless
  there (the controller handles both by opcode) and not reproduced. Both are sent to every channel
  regardless of a mask; here they wait for every channel.
* **Refresh** never fires in the reference (its refresh manager looks for a rank level GDDR6 lacks);
  the session runs with refresh off.
* **Legacy WR_SBK / RD_SBK.** The reference's ``test/all_isr.csv`` gives these an opsize (``opsize GPR
  mask bank row``), which the reference's current parser rejects; sieve accepts that five-field form
  and moves ``opsize`` columns, as the file's comments intend. Its comments also read masks 1, 2, 4,
  8 as channels 0-3; sieve keeps the reference's mask convention (channels 31, 30, 29, 28).
* **Checks the reference lacks**: opsize must fit a row (1..columns), rows and banks must exist, CFR
  addresses must be 0, 1 or 2, and any field must be a non-negative integer; each violation is an
  :class:`AimTraceError` naming the line. WR_AFLUT is rejected, as the reference rejects it at run time.
"""

from __future__ import annotations

import time
import weakref
from functools import lru_cache
from dataclasses import dataclass, field, fields
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from sieve._cli import decode_text
from sieve.dram import CommandLog, Device
from sieve.dram.energy import DeviceEnergy, has_energy, load_energy
from sieve.dram.spec import evaluate_latency

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "AimTraceError",
    "AimInstruction",
    "AimTraceResult",
    "OPCODE_FIELDS",
    "COMMAND_LATENCY",
    "parse_aim_trace",
    "unroll",
    "run_aim_trace",
]


class AimTraceError(ValueError):
    """An AiM trace line that cannot be read or executed; names the line and what is allowed."""

    def __init__(self, message: str, line_no: int | None = None, line: str | None = None):
        self.line_no = line_no
        self.line = line
        self.reason = message
        where = f"line {line_no}: " if line_no is not None else ""
        shown = f" [{line.strip()}]" if line is not None else ""
        super().__init__(f"{where}{message}{shown}")


# Fields after "AiM <OPCODE>", in the reference's fixed order (opsize, GPR0, GPR1, mask, bank, row).
OPCODE_FIELDS: dict[str, tuple[str, ...]] = {
    "WR_SBK": ("gpr0", "channel_mask", "bank", "row"),
    "WR_ABK": ("gpr0", "channel_mask", "row"),
    "WR_GB": ("opsize", "gpr0", "channel_mask"),
    "WR_BIAS": ("gpr0", "channel_mask"),
    "WR_AFLUT": ("opsize",),
    "RD_MAC": ("gpr0", "channel_mask"),
    "RD_AF": ("gpr0", "channel_mask"),
    "RD_SBK": ("gpr0", "channel_mask", "bank", "row"),
    "COPY_BKGB": ("opsize", "channel_mask", "bank", "row"),
    "COPY_GBBK": ("opsize", "channel_mask", "bank", "row"),
    "MAC_SBK": ("opsize", "channel_mask", "bank", "row"),
    "MAC_ABK": ("opsize", "channel_mask", "row"),
    "AF": ("channel_mask",),
    "EWMUL": ("opsize", "channel_mask", "row"),
    "EWADD": ("opsize", "gpr0", "gpr1"),
    "SYNC": (),
    "EOC": (),
}
# Older five-field form of single-bank accesses, as in the reference's test/all_isr.csv.
_LEGACY_FIELDS = {"WR_SBK": ("opsize", "gpr0", "channel_mask", "bank", "row"),
                  "RD_SBK": ("opsize", "gpr0", "channel_mask", "bank", "row")}
_RW_FIELDS = {"GPR": ("gpr0",), "CFR": ("cfr_addr", "cfr_data"), "MEM": ("channel", "bank", "row")}

# Device command of each instruction, and whether it acts on one bank or all banks of a channel.
_COMMAND = {"WR_SBK": "WR", "RD_SBK": "RD", "W_MEM": "WR", "R_MEM": "RD", "WR_ABK": "WRA16",
            "WR_GB": "WRGB", "WR_BIAS": "WRMAC16", "RD_MAC": "RDMAC16", "RD_AF": "RDAF16",
            "COPY_BKGB": "RDCP", "COPY_GBBK": "WRCP", "MAC_SBK": "MAC", "MAC_ABK": "MAC16",
            "AF": "AF16", "EWMUL": "EWMUL16"}
_ONE_BANK = {"WR_SBK", "RD_SBK", "W_MEM", "R_MEM", "COPY_BKGB", "COPY_GBBK", "MAC_SBK"}
_REQUESTS = {"WR_SBK", "RD_SBK", "W_MEM", "R_MEM"}  # conventional requests of the reference's queues
_REGISTER_MODE = {"WR_GB", "WR_BIAS", "RD_MAC", "RD_AF"}
_BLOCKING = {"RD_MAC", "RD_AF"}
_OPSIZE_COLUMNS = {"MAC_ABK", "MAC_SBK", "EWMUL", "WR_GB", "COPY_BKGB", "COPY_GBBK", "WR_SBK", "RD_SBK"}  # opsize columns
_USES_ROW = {"WR_SBK", "RD_SBK", "W_MEM", "R_MEM", "WR_ABK", "COPY_BKGB", "COPY_GBBK", "MAC_SBK",
             "MAC_ABK", "AF", "EWMUL"}
CFR_NAMES = {0: "broadcast", 1: "ewmul_bg", 2: "afm"}
_CFR_MAX = 127  # the reference keeps CFR data in a signed byte

# Issue-to-completion latency of each command that ends an instruction (the reference's request
# latencies); a blocking instruction or SYNC waits for it. RD/WR take the standard's read/write latency.
COMMAND_LATENCY: dict[str, str | int] = {
    "RD": "nCL + nBL", "WR": "nCWL + nBL",
    "WRGB": "nCWLGB + nBL", "WRMAC16": "nCWLREG + nBL",
    "RDMAC16": "nCLREG + nBL", "RDAF16": "nCLREG + nBL",
    "WRA16": "nCWL + nBL + nRP",
    "RDCP": 1, "WRCP": 1, "MAC": 1, "MAC16": 1, "AF16": 1, "EWMUL16": 1,
}
# The reference's decoder reads one host line per cycle; comment and blank lines cost nothing. A blocking
# instruction holds it until the cycle after its completion; SYNC and EOC complete one cycle after they
# reach the head of every channel queue and everything issued has completed.
DECODE_CK = 1


@dataclass(frozen=True)
class AimInstruction:
    """One trace line, typed. ``opcode`` is the AiM opcode without ``ISR_`` (``MAC_ABK``), or
    ``W_MEM``, ``R_GPR``, ... for host accesses. Fields an opcode lacks keep their defaults."""

    line_no: int
    text: str
    opcode: str
    opsize: int = 1
    gpr0: int = -1
    gpr1: int = -1
    channel_mask: int = 0
    channel: int = -1
    bank: int = -1
    row: int = -1
    cfr_addr: int = -1
    cfr_data: int = -1

    def error(self, message: str) -> AimTraceError:
        return AimTraceError(message, self.line_no, self.text)


# ---- parsing ------------------------------------------------------------------------------------

def _fields(line: str) -> list[str]:
    body = line.split("#", 1)[0]
    tokens = [t.strip() for t in body.split(",")] if "," in body else body.split()
    while tokens and not tokens[0]:
        tokens.pop(0)
    while tokens and not tokens[-1]:
        tokens.pop()
    return tokens


def _number(token: str, name: str, line_no: int, line: str) -> int:
    text = token.strip()
    try:
        value = int(text[2:], 16) if text[:2].lower() == "0x" else int(text, 10)
        if text[:2].lower() == "0x" and not text[2:]:
            raise ValueError
    except ValueError:
        raise AimTraceError(f"malformed operand {token!r} for {name}: expected a decimal or 0x-hexadecimal "
                            "integer", line_no, line) from None
    if value < 0:
        raise AimTraceError(f"{name} is {value}: operands must be non-negative", line_no, line)
    return value


def _usage(opcode: str) -> str:
    forms = [OPCODE_FIELDS[opcode]] + ([_LEGACY_FIELDS[opcode]] if opcode in _LEGACY_FIELDS else [])
    return " or ".join(f"'AiM {opcode}{''.join(' ' + f for f in form)}'" for form in forms)


def _read_text(trace) -> str:
    if isinstance(trace, str) and "\n" not in trace and Path(trace).is_file():
        trace = Path(trace)
    if isinstance(trace, Path):
        if trace.is_dir():
            raise AimTraceError(f"trace path {str(trace)!r} is a directory; give an AiM trace file")
        try:
            return decode_text(trace.read_bytes(), trace)
        except OSError as e:
            raise AimTraceError(f"cannot read trace file {str(trace)!r}: {e.strerror or e}") from None
        except ValueError as e:
            raise AimTraceError(f"{e}; expected an AiM trace (lines 'AiM <OPCODE> ...')") from None
    if not isinstance(trace, str):
        raise AimTraceError(f"trace must be a path or the trace's text, got {type(trace).__name__}")
    return trace


def parse_aim_trace(trace) -> list[AimInstruction]:
    """Read a trace (a :class:`~pathlib.Path`, a path string, or the text itself) up to its EOC.

    Lines after EOC are not read (as in the reference). Raises :class:`AimTraceError` for an unknown
    line type or opcode, a wrong number of fields, a malformed number, or a trace without EOC."""
    return _parse_text(_read_text(trace))


def _parse_text(text: str) -> list[AimInstruction]:
    out: list[AimInstruction] = []
    last = 0
    for line_no, line in enumerate(text.splitlines(), start=1):
        last = line_no
        tokens = _fields(line)
        if not tokens:
            continue
        if any(not t for t in tokens):
            raise AimTraceError(f"empty field at position {tokens.index('') + 1}: only leading and trailing "
                                "fields may be empty", line_no, line)
        kind = tokens[0].upper()
        if kind == "AIM":
            if len(tokens) < 2:
                raise AimTraceError("'AiM' without an opcode; opcodes: " + ", ".join(OPCODE_FIELDS),
                                    line_no, line)
            opcode = tokens[1].upper()
            opcode = opcode[4:] if opcode.startswith("ISR_") else opcode
            if opcode not in OPCODE_FIELDS:
                raise AimTraceError(f"unknown opcode {tokens[1]!r}; opcodes (with or without 'ISR_'): "
                                    + ", ".join(OPCODE_FIELDS), line_no, line)
            values = tokens[2:]
            names = OPCODE_FIELDS[opcode]
            if len(values) != len(names):
                legacy = _LEGACY_FIELDS.get(opcode)
                if legacy is None or len(values) != len(legacy):
                    raise AimTraceError(f"{opcode} takes {len(names)} field(s), got {len(values)}; use "
                                        + _usage(opcode), line_no, line)
                names = legacy
        elif kind in ("R", "W"):
            if len(tokens) < 2 or tokens[1].upper() not in _RW_FIELDS:
                raise AimTraceError(f"'{tokens[0]}' needs a region: GPR, CFR or MEM", line_no, line)
            region = tokens[1].upper()
            opcode = f"{kind}_{region}"
            names = _RW_FIELDS[region]
            values = tokens[2:]
            if len(values) != len(names):
                raise AimTraceError(f"{kind} {region} takes {len(names)} field(s) ({' '.join(names)}), "
                                    f"got {len(values)}", line_no, line)
        else:
            raise AimTraceError(f"unknown line type {tokens[0]!r}: lines start with 'AiM', 'R' or 'W' "
                                "(or '#' for a comment)", line_no, line)
        kwargs = {n: _number(v, n, line_no, line) for n, v in zip(names, values)}
        ins = AimInstruction(line_no=line_no, text=line, opcode=opcode, **kwargs)
        out.append(ins)
        if opcode == "EOC":
            return out
    raise AimTraceError("the trace ends without EOC; every AiM trace must end with 'AiM EOC'",
                        last if last else None)


# ---- unrolling ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Geometry:
    channels: int
    bankgroups: int
    banks: int
    rows: int
    columns: int

    @classmethod
    def of(cls, device: Device) -> "_Geometry":
        std = device.standard
        if tuple(std.levels) != ("channel", "bankgroup", "bank"):
            raise AimTraceError(f"{std.name}: AiM traces address channel, bankgroup, bank, as SK hynix's "
                                f"GDDR6-AiM device does (hardware preset gddr6_aim); this standard has "
                                f"{', '.join(std.levels)}")
        names = set(std.command_names)
        missing = [c for c in set(_COMMAND.values()) | {"TMOD", "ACT", "PRE", "PREA"} if c not in names]
        if missing:
            raise AimTraceError(f"{std.name} lacks the AiM command(s) {', '.join(sorted(missing))}; use a "
                                "standard with the AiM command set (e.g. gddr6_aim)")
        ch, bg, ba = std.fanout
        return cls(ch, bg, ba, std.rows, std.columns)

    @property
    def banks_per_channel(self) -> int:
        return self.bankgroups * self.banks


def _mask_channels(ins: AimInstruction, geo: _Geometry) -> np.ndarray:
    mask = ins.channel_mask
    if mask >> geo.channels:
        raise ins.error(f"channel mask {mask:#x} selects channels beyond the device's {geo.channels}: "
                        f"bit i selects channel {geo.channels - 1} - i, so masks go up to "
                        f"{(1 << geo.channels) - 1:#x}")
    bits = [i for i in range(geo.channels) if mask >> i & 1]
    if not bits:
        raise ins.error("channel mask is 0: it selects no channel")
    # the reference walks mask bits from bit 0 upward, i.e. from the last channel down
    return np.array([geo.channels - 1 - i for i in bits], dtype=np.int64)


def _validate(ins: AimInstruction, geo: _Geometry) -> None:
    op = ins.opcode
    if op == "WR_AFLUT":
        raise ins.error("WR_AFLUT is not supported (the reference rejects it too)")
    if op in _OPSIZE_COLUMNS and not 1 <= ins.opsize <= geo.columns:
        raise ins.error(f"opsize {ins.opsize} does not fit a row: 1..{geo.columns} columns of "
                        f"{geo.columns} per row")
    if op == "EWADD" and ins.opsize < 1:
        raise ins.error("opsize must be at least 1")
    if op in _ONE_BANK and not 0 <= ins.bank < geo.banks_per_channel:
        raise ins.error(f"bank {ins.bank} is beyond the channel: banks 0..{geo.banks_per_channel - 1}")
    if op in _USES_ROW and op != "AF" and not 0 <= ins.row < geo.rows:
        raise ins.error(f"row {ins.row} is beyond the bank: rows 0..{geo.rows - 1}")
    if op in ("W_MEM", "R_MEM") and not 0 <= ins.channel < geo.channels:
        raise ins.error(f"channel {ins.channel} is beyond the device: channels 0..{geo.channels - 1} "
                        "(MEM lines give a channel number, not a mask)")
    if op in ("W_CFR", "R_CFR"):
        if ins.cfr_addr not in CFR_NAMES:
            raise ins.error(f"CFR address {ins.cfr_addr} does not exist: 0 (broadcast), 1 (ewmul_bg), 2 (afm)")
        if ins.cfr_data > _CFR_MAX:
            raise ins.error(f"CFR data {ins.cfr_data} does not fit the register: 0..{_CFR_MAX}")


def _af_row(afm: int, geo: _Geometry) -> int:
    # stands in for the reference's pseudo-row 2**29 + AFM (see the module docstring)
    return geo.rows - 1 - afm


def unroll(ins: AimInstruction, device: Device, afm: int = 0) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                         np.ndarray]:
    """The device commands one instruction becomes, before prerequisites and mode switches:
    ``(names, addr [n, 3], row, col)`` in the reference's order (columns outer, channels inner).
    ``afm`` is the AF-function register an AF reads. Instructions that issue nothing give n = 0."""
    return _unroll(ins, _Geometry.of(device), afm)


def _unroll(ins: AimInstruction, geo: _Geometry, afm: int):
    _validate(ins, geo)
    cmd = _COMMAND.get(ins.opcode)
    if cmd is None:
        return [], np.zeros((0, 3), dtype=np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
    if ins.opcode in ("W_MEM", "R_MEM"):
        chans = np.array([ins.channel], dtype=np.int64)
    else:
        chans = _mask_channels(ins, geo)
    n_cols = ins.opsize if ins.opcode in _OPSIZE_COLUMNS else 1
    ch = np.tile(chans, n_cols)
    col = np.repeat(np.arange(n_cols, dtype=np.int64), len(chans))
    addr = np.full((len(ch), 3), -1, dtype=np.int64)
    addr[:, 0] = ch
    if ins.opcode in _ONE_BANK:
        addr[:, 1] = ins.bank // geo.banks
        addr[:, 2] = ins.bank % geo.banks
    if ins.opcode == "AF":
        row_value = _af_row(afm, geo)
    else:
        row_value = ins.row if ins.opcode in _USES_ROW else 0
    row = np.full(len(ch), row_value, dtype=np.int64)
    return [cmd] * len(ch), addr, row, col


# ---- execution ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class AimTraceResult:
    cycles: int
    """Cycles, counted from 1, to the one in which the trace's EOC completes (the reference's
    ``memory_system_cycles``)."""
    commands: dict[str, int]
    """Commands issued, by name (inserted ACT/ACT16/PRE/PREA and TMOD included)."""
    instructions: dict[str, int]
    """Trace lines executed, by opcode (``MAC_ABK``, ``W_MEM``, ...)."""
    wall_s: float
    tck_ns: float
    mac_peak_fraction: float
    """MAC work done over what the device could do in ``cycles``: one all-bank MAC per nCCDL in every
    channel (a single-bank MAC counts 1/banks of one)."""
    channel_commands: dict[str, np.ndarray] = field(repr=False)
    """Per command name issued: how many times each channel issued it."""
    channel_instructions: np.ndarray = field(repr=False)
    """Per channel: trace lines that touched it."""
    channel_completion_cycle: np.ndarray = field(repr=False)
    """Per channel: the completion of its last command (CK)."""
    channel_energy_pj: dict[str, np.ndarray] | None = field(default=None, repr=False)
    """Per channel, where the standard has energy data: ``command_pj``, ``background_pj``, ``energy_pj``."""
    log: CommandLog | None = field(default=None, repr=False)
    energy_by_command_pj: dict[str, float] | None = None
    """Energy of the commands issued, by name (:mod:`sieve.dram.energy`); None without energy data."""

    @property
    def channels(self) -> "pd.DataFrame":
        """Per channel: commands by name, instructions touching it, the completion of its last command and,
        where the standard has energy data, ``command_pj``, ``background_pj`` and ``energy_pj``."""
        import pandas as pd

        df = pd.DataFrame(self.channel_commands)
        df.insert(0, "channel", np.arange(len(self.channel_instructions)))
        df.insert(1, "instructions", self.channel_instructions)
        df.insert(2, "completion_cycle", self.channel_completion_cycle)
        df["commands"] = df[list(self.channel_commands)].sum(axis=1) if self.channel_commands else 0
        for col, values in (self.channel_energy_pj or {}).items():
            df[col] = values
        return df

    @property
    def seconds(self) -> float:
        return self.cycles * self.tck_ns * 1e-9

    def summary(self) -> dict:
        """JSON-ready figures."""
        out = {"cycles": int(self.cycles), "seconds": self.seconds, "tck_ns": self.tck_ns,
               "commands": {k: int(v) for k, v in self.commands.items()},
               "instructions": {k: int(v) for k, v in self.instructions.items()},
               "mac_peak_fraction": self.mac_peak_fraction, "wall_s": self.wall_s}
        if self.energy_by_command_pj is not None:
            out["energy_pj"] = float(self.channel_energy_pj["energy_pj"].sum())
            out["background_energy_pj"] = float(self.channel_energy_pj["background_pj"].sum())
            out["energy_by_command_pj"] = self.energy_by_command_pj
        return out


class _Runner:
    """Feeds unrolled commands to one stream session, batching between the points that need the
    engine's state (mode switches, blocking instructions)."""

    def __init__(self, device: Device, log: bool):
        self.device = device
        self.tables = _DeviceTables.of(device)
        self.geo = self.tables.geo
        self.session = device.session(refresh="off", log=log)
        self.tpc = self.tables.ticks_per_ck
        self.latency = self.tables.latency
        self.id = self.tables.id
        C, B = self.geo.channels, self.geo.banks_per_channel
        self.register_mode = np.zeros(C, dtype=np.int8)  # 1: register read/write mode
        self.done = np.zeros(C, dtype=np.int64)          # per channel: last completion tick
        self.touched = np.zeros(C, dtype=np.int64)       # per channel: instructions that used it
        self.af_row = np.full((C, B), -1, dtype=np.int64)  # bank holds AF's row (its stand-in), else -1
        self.near_af = np.zeros(_CFR_MAX + 1, dtype=np.int8)  # by AF function: a data row has used its stand-in row
        self.cfr = np.zeros(len(CFR_NAMES), dtype=np.int64)  # by CFR address
        self.decode = 0                                  # tick at which the next host line is decoded
        self.last_issue = -1                             # latest issue tick of any command executed
        self.end = 0                                     # tick at which EOC completed (0 until then)
        self.batched = np.zeros(C, dtype=bool)           # channels with commands not executed yet
        self.aim_drained = np.zeros(C, dtype=np.int64)   # per channel: tick its AiM queue is empty again
        self.rw_drained = np.zeros(C, dtype=np.int64)    # per channel: tick its read/write queue is empty again
        self.requests: list[tuple] = []                  # conventional requests after the last other command
        self._cmds: list[np.ndarray] = []
        self._addr: list[np.ndarray] = []
        self._row: list[np.ndarray] = []
        self._col: list[np.ndarray] = []
        self._aim: list[np.ndarray] = []                 # per batched command: of an AiM instruction
        # read by the compiled executor (sieve._core.aimrun)
        self.floor = self.session.floor
        self.tmod = self.id["TMOD"]
        self.banks = self.geo.banks
        self.rows = self.geo.rows
        self.columns = self.geo.columns

    # -- batching

    def _push(self, cmds: np.ndarray, addr: np.ndarray, row: np.ndarray, col: np.ndarray, aim: bool = True) -> None:
        if len(cmds):
            self._cmds.append(cmds)
            self._addr.append(addr)
            self._row.append(row)
            self._col.append(col)
            self._aim.append(np.full(len(cmds), aim))
            self.batched[addr[:, 0]] = True

    def _push_one(self, name: str, addr, row: int = 0) -> None:
        self._push(np.array([self.id[name]], dtype=np.int64), np.array([addr], dtype=np.int64),
                   np.array([row], dtype=np.int64), np.zeros(1, dtype=np.int64))

    def flush(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Execute what is batched; returns (channel, issue tick, completion tick) of each command executed."""
        if not self._cmds:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64)
        cmds = np.concatenate(self._cmds)
        addr = np.concatenate(self._addr)
        row = np.concatenate(self._row)
        col = np.concatenate(self._col)
        aim = np.concatenate(self._aim)
        self._cmds, self._addr, self._row, self._col, self._aim = [], [], [], [], []
        ticks = self.session.run(cmds, addr, row, col, auto_prereq=True)
        finish = ticks + self.latency[cmds]
        np.maximum.at(self.done, addr[:, 0], finish)
        # an AiM request leaves its channel's queue when its last command issues
        np.maximum.at(self.aim_drained, addr[aim, 0], ticks[aim] + self.tpc)
        self.last_issue = max(self.last_issue, int(ticks.max()))
        self.batched[:] = False
        return addr[:, 0], ticks, finish

    def resume_decoding(self, tick: int) -> None:
        """The decoder is held until `tick`: no later line's command issues before it."""
        self.decode = max(self.decode, int(tick))
        self.session.barrier(self.decode)

    def hold_until_decoded(self, chans: np.ndarray, tick: int) -> None:
        """A line's commands issue no earlier than the cycle it is decoded in. Only an idle channel
        can be that early, so the batch is executed only when a channel's floor may be below `tick`."""
        floor = self.session.floor
        if not (floor[chans] < tick).any():
            return
        if self.batched[chans].any():
            self.flush()
        late = chans[floor[chans] < tick]
        if len(late):
            self.session.barrier(tick, late)

    def drained(self, decoded: int) -> int:
        """The tick a SYNC or EOC decoded at `decoded` completes: one cycle after it has reached the
        head of every channel queue (the cycle after the last command issued) and every command
        issued so far has completed."""
        self.flush()
        head = max(decoded, self.last_issue + self.tpc)
        return max(head, int(self.done.max())) + DECODE_CK * self.tpc

    # -- one instruction

    def execute(self, ins: AimInstruction) -> None:
        op = ins.opcode
        decoded = self.decode
        self.decode += DECODE_CK * self.tpc
        if op == "W_CFR":
            _validate(ins, self.geo)
            self.cfr[ins.cfr_addr] = ins.cfr_data
            return
        if op == "SYNC":
            self.release_requests()
            self.resume_decoding(self.drained(decoded) + DECODE_CK * self.tpc)
            return
        if op == "EOC":
            self.end = self.end_of_trace(decoded)
            return
        names, addr, row, col = _unroll(ins, self.geo, int(self.cfr[2]))
        if not names:
            return
        self.touched[np.unique(addr[:, 0])] += 1
        if op in _REQUESTS:
            accepted = self.accept_request(int(addr[0, 0]), decoded)
            self.decode = accepted + DECODE_CK * self.tpc
            self.requests.append((ins, names, addr, row, col, accepted))
            return
        self.release_requests()
        # the line is done once every channel's queue took it: not while conventional requests wait there
        accepted = max(decoded, int(self.rw_drained[np.unique(addr[:, 0])].max()))
        self.decode = max(self.decode, accepted + DECODE_CK * self.tpc)
        self.instruction(ins, names, addr, row, col, decoded)

    def accept_request(self, channel: int, decoded: int) -> int:
        """The tick a conventional request decoded at `decoded` enters its channel's queue: not while
        AiM requests are queued there. The decoder retries it every cycle and decodes the next line in
        the cycle after it is accepted."""
        if self.batched[channel]:
            self.flush()
        return max(decoded, int(self.aim_drained[channel]))

    def release_requests(self) -> None:
        """Issue the conventional requests decoded since the last AiM instruction, in order. Each leaves
        its channel's read/write queue when its ACT issues (into the reference's active buffer) or, if it
        needs none, when its RD/WR issues: only then may AiM instructions enter that channel's queue."""
        for ins, names, addr, row, col, at in self.requests:
            self.flush()  # the row state left by the requests before
            cmd = self.id[names[0]]
            c = int(addr[0, 0])
            left = -1
            opens = self.session.engine.required_first(cmd, addr[0], int(row[0])) != cmd
            if opens:
                self.instruction(ins, ["ACT"], addr[:1], row[:1], col[:1], at)
                left = int(self.flush()[1][-1])
            self.instruction(ins, names, addr, row, col, at)
            ticks = self.flush()[1]
            if not opens or len(ticks) > 1:  # columns after the first wait in the queue for their RD/WR
                left = max(left, int(ticks[-1]))
            self.rw_drained[c] = max(self.rw_drained[c], left + self.tpc)
        self.requests = []

    def end_of_trace(self, decoded: int) -> int:
        """EOC's completion tick. The conventional requests just before it are the reference's
        queued requests: each issues the row commands it needs, but a RD or WR that would issue only
        after EOC has completed is dropped (the reference drops a request past its ACT at EOC). A
        request that needs no row command stays queued ahead of EOC, after those before it."""
        requests, self.requests = self.requests, []
        past_act: list[tuple] = []
        for ins, names, addr, row, col, at in requests:
            self.flush()  # the row state left by the requests before
            cmd = self.id[names[0]]
            if self.session.engine.required_first(cmd, addr[0], int(row[0])) != cmd:
                self.instruction(ins, ["ACT"], addr[:1], row[:1], col[:1], at)
                past_act.append((ins, names, addr, row, col, at))
            else:
                for request in past_act + [(ins, names, addr, row, col, at)]:
                    self.instruction(*request)
                past_act = []
        end = self.drained(decoded)
        for ins, names, addr, row, col, at in past_act:
            floor = int(self.session.floor[addr[0, 0]])
            if self.session.engine.earliest(self.id[names[0]], addr[0], floor) < end:
                self.instruction(ins, names, addr, row, col, at)
                end = self.drained(decoded)
        return end

    def instruction(self, ins: AimInstruction, names: list[str], addr, row, col, decoded: int) -> None:
        """Batch the commands of one instruction (mode switches and closing precharges first)."""
        op = ins.opcode
        cmds = np.full(len(names), self.id[names[0]], dtype=np.int64)
        chans = np.unique(addr[:, 0])
        self.hold_until_decoded(chans, decoded)
        if op in _BLOCKING:  # the decoder waits for this line's commands, not for those batched before
            self.flush()
        closes = self._af_row_closes(ins, chans, int(row[0]))
        need = op in _REGISTER_MODE
        switch = chans[self.register_mode[chans] != need]
        if len(switch):
            self._switch_mode(switch, cmds, addr, row, closes)
            self.register_mode[switch] = need
        for name, a in closes.items():
            self._push_one(name[0], a)
        self._push(cmds, addr, row, col, aim=op not in _REQUESTS)
        if op in _BLOCKING:
            _, _, finish = self.flush()
            self.resume_decoding(int(finish.max()) + DECODE_CK * self.tpc)

    def _switch_mode(self, chans: np.ndarray, cmds, addr, row, closes: dict) -> None:
        # The reference issues TMOD in the cycle the instruction's first command (or the row command
        # that command needs first) becomes ready: ask the engine when that is, hold the channel until
        # then, and put TMOD first.
        self.flush()
        eng = self.session.engine
        floor = self.session.floor
        first: dict[int, int] = {}
        for i in range(len(cmds)):
            first.setdefault(int(addr[i, 0]), i)
        close_of = {a[0]: (self.id[name], np.asarray(a), 0) for (name, _), a in closes.items()}
        for c in (int(c) for c in chans):
            if c in close_of:
                cmd, a, r = close_of[c]
            else:
                i = first[c]
                cmd, a, r = int(cmds[i]), addr[i], int(row[i])
            p = eng.required_first(cmd, a, r)
            self.session.barrier(eng.earliest(p, a, int(floor[c])), [c])
            self._push_one("TMOD", [c, -1, -1])

    def _af_row_closes(self, ins: AimInstruction, chans: np.ndarray, row: int) -> dict:
        """AF's stand-in row and a data row with the same number are different rows in the reference:
        the explicit PRE/PREA (keyed (name, channel) -> address) that close the one open before the
        other is used. Empty unless a trace uses the rows just below the last one."""
        closes: dict = {}
        op = ins.opcode
        if op not in _USES_ROW:
            return closes
        geo = self.geo
        if op == "AF":
            if self.near_af[geo.rows - 1 - row]:  # `row` is AF's stand-in row: rows - 1 - its function
                self.flush()
                open_rows = self.session.engine.open_rows().reshape(geo.channels, -1)
                for c in (int(c) for c in chans):
                    if np.any((open_rows[c] == row) & (self.af_row[c] != row)):
                        closes[("PREA", c)] = [c, -1, -1]
            self.af_row[chans] = row
            return closes
        if row >= geo.rows - 1 - _CFR_MAX:
            self.near_af[geo.rows - 1 - row] = 1
        if op in _ONE_BANK:
            b = ins.bank
            for c in (int(c) for c in chans):
                if self.af_row[c, b] == row:
                    closes[("PRE", c)] = [c, b // geo.banks, b % geo.banks]
            self.af_row[chans, b] = -1
        else:
            for c in (int(c) for c in chans[(self.af_row[chans] == row).any(axis=1)]):
                closes[("PREA", c)] = [c, -1, -1]
            self.af_row[chans] = -1
        return closes


# ---- what a run derives from its device alone ------------------------------------------------------

_NOTHING = {"R_GPR", "W_GPR", "R_CFR", "EWADD"}
_CODES: tuple[str, ...] = tuple(OPCODE_FIELDS) + tuple(f"{k}_{r}" for k in "RW" for r in _RW_FIELDS)
_HUGE = 1 << 62
_DEFAULTS = {f.name: f.default for f in fields(AimInstruction) if f.name not in ("line_no", "text", "opcode")}


@dataclass(frozen=True)
class _Codes:
    """Per opcode (an index into ``_CODES``), for :func:`sieve._core.aimrun.run_lines`: how the executor
    takes its lines (``kind``), the device command (``cmd``, -1 for none) and what the command does and
    which operands validation checks (``flags``)."""

    kind: np.ndarray
    cmd: np.ndarray
    flags: np.ndarray

    @classmethod
    def of(cls, command_id: dict[str, int]) -> "_Codes":
        from sieve._core import aimrun as r

        def kind(op: str) -> int:
            if op in _REQUESTS or op == "WR_AFLUT":
                return r.KIND_PYTHON
            if op in _COMMAND:
                return r.KIND_COMMANDS
            return {"W_CFR": r.KIND_CFR, "SYNC": r.KIND_SYNC, "EOC": r.KIND_EOC}.get(op, r.KIND_NOTHING)

        def flags(op: str) -> int:
            named = [(_ONE_BANK, r.ONE_BANK), (_REGISTER_MODE, r.REGISTER_MODE), (_BLOCKING, r.BLOCKING),
                     ({"AF"}, r.AF), (_USES_ROW, r.USES_ROW), (_OPSIZE_COLUMNS, r.OPSIZE_COLUMNS),
                     ({"EWADD"}, r.OPSIZE_POSITIVE), ({"W_CFR", "R_CFR"}, r.CFR)]
            return sum(flag for ops, flag in named if op in ops)

        return cls(kind=np.array([kind(op) for op in _CODES], dtype=np.int64),
                   cmd=np.array([command_id[_COMMAND[op]] if op in _COMMAND else -1 for op in _CODES], dtype=np.int64),
                   flags=np.array([flags(op) for op in _CODES], dtype=np.int64))


@dataclass(frozen=True)
class _EnergyTables:
    """A device's energy data as a run's result uses it (:func:`sieve.dram.energy.bank_energy_columns`'s
    operands, computed the same way)."""

    command_pj: list[float]
    """Per command id: energy of one issue."""
    per_bank_pj: np.ndarray
    """Per command id: energy each bank an issue touches takes."""
    precharged_mw: float
    """Background power of one bank with its row closed, and with it open."""
    active_mw: float

    @classmethod
    def of(cls, energy: DeviceEnergy) -> "_EnergyTables":
        per_bank_mw = np.array([energy.precharged_mw, energy.active_mw]) / energy.banks_per_node
        return cls(command_pj=energy.command_pj.tolist(), per_bank_pj=energy.per_bank_pj(),
                   precharged_mw=float(per_bank_mw[0]), active_mw=float(per_bank_mw[1]))


@dataclass(frozen=True)
class _DeviceTables:
    """What a run derives from its device alone: geometry, command names and ids, each command's
    latency, the per-opcode tables of the compiled executor and the energy data. Built on a device's
    first run and reused by every later run on it (repeated calls, sweeps)."""

    geo: _Geometry
    names: tuple[str, ...]
    """Command names by id."""
    id: dict[str, int]
    """Ids of the commands AiM traces issue."""
    ticks_per_ck: int
    tick_ns: float
    latency: np.ndarray
    """Per command: ticks from issue to completion (:data:`COMMAND_LATENCY`)."""
    codes: _Codes
    energy: _EnergyTables | None
    tck_ns: float
    nccdl: float
    """Cycles between two column commands to one bank group: one all-bank MAC per channel at most."""

    @classmethod
    def of(cls, device: Device) -> "_DeviceTables":
        tables = _DEVICE_TABLES.get(device)
        if tables is None:
            tables = _DEVICE_TABLES[device] = cls._build(device)
        return tables

    @classmethod
    def _build(cls, device: Device) -> "_DeviceTables":
        geo = _Geometry.of(device)
        std = device.standard
        names = std.command_names
        index = {name: i for i, name in enumerate(names)}
        tpc = std.ticks_per_ck
        timing = dict(std.timing)
        latency = np.zeros(len(names), dtype=np.int64)
        for name, expr in COMMAND_LATENCY.items():
            if name == "RD" and std.read_latency_ck:
                ck = std.read_latency_ck
            elif name == "WR" and std.write_latency_ck:
                ck = std.write_latency_ck
            else:
                ck = evaluate_latency(expr, timing, f"latency of {name}")
            latency[index[name]] = int(round(ck * tpc))
        command_id = {n: index[n] for n in set(_COMMAND.values()) | {"TMOD", "ACT", "PRE", "PREA"}}
        return cls(geo=geo, names=names, id=command_id, ticks_per_ck=tpc, tick_ns=std.tick_ns, latency=latency,
                   codes=_Codes.of(command_id),
                   energy=_EnergyTables.of(load_energy(std)) if has_energy(std) else None,
                   tck_ns=float(std.tCK_ns), nccdl=float(std.timing.get("nCCDL", 1.0)))


_DEVICE_TABLES: "weakref.WeakKeyDictionary[Device, _DeviceTables]" = weakref.WeakKeyDictionary()


# ---- a program as per-line arrays -------------------------------------------------------------------

def _forms(op: str) -> list[tuple[str, ...]]:
    if op in OPCODE_FIELDS:
        return [OPCODE_FIELDS[op]] + ([_LEGACY_FIELDS[op]] if op in _LEGACY_FIELDS else [])
    return [_RW_FIELDS[op[2:]]]


@lru_cache(maxsize=1)
def _reader():
    """The compiled reader, over the opcode and region names, EOC's code, the operand field of each value
    of each form and the operands' defaults."""
    from sieve._core import aimparse

    field_index = {name: k for k, name in enumerate(_DEFAULTS)}
    forms = np.full((len(_CODES), aimparse.MAX_VALUES_PER_LINE + 1, aimparse.MAX_VALUES_PER_LINE), -2, dtype=np.int64)
    for c, op in enumerate(_CODES):
        for form in _forms(op):
            forms[c, len(form)] = [field_index[name] for name in form] + [-1] * (forms.shape[2] - len(form))
    return aimparse.Reader([op.encode() for op in OPCODE_FIELDS], [r.encode() for r in _RW_FIELDS],
                           _CODES.index("EOC"), forms, np.array(list(_DEFAULTS.values()), dtype=np.int64))


@dataclass
class _Program:
    """A parsed trace as per-line arrays: the opcode (an index into ``_CODES``), the line number, and
    one array per :class:`AimInstruction` field. Lines become :class:`AimInstruction` only on demand."""

    text: str
    line_no: np.ndarray
    code: np.ndarray
    operand: dict[str, np.ndarray]
    _parsed: list[AimInstruction] | None = None
    _text_lines: list[str] | None = None
    _counts: list[tuple[int, int]] | None = None
    """(opcode, lines) in order of first appearance, when the reader counted them."""

    @classmethod
    def of(cls, text: str, instructions: list[AimInstruction]) -> "_Program":
        codes = {op: i for i, op in enumerate(_CODES)}
        # operands beyond int64 fail validation anyway; the instructions keep their exact values
        operand = {name: np.array([min(getattr(ins, name), _HUGE) for ins in instructions], dtype=np.int64)
                   for name in _DEFAULTS}
        return cls(text, np.array([ins.line_no for ins in instructions], dtype=np.int64),
                   np.array([codes[ins.opcode] for ins in instructions], dtype=np.int64), operand, instructions)

    @classmethod
    def read(cls, trace) -> "_Program":
        """The compiled reader's parse; the Python parser's (with its errors) when the text is unusual."""
        text = _read_text(trace)
        status, line_no, code, operand, counts = _reader().parse(text)
        if status:
            return cls.of(text, _parse_text(text))
        return cls(text, line_no, code, dict(zip(_DEFAULTS, operand)), _counts=counts)

    def __len__(self) -> int:
        return len(self.code)

    def instruction(self, i: int) -> AimInstruction:
        if self._parsed is not None:
            return self._parsed[i]
        if self._text_lines is None:
            self._text_lines = self.text.splitlines()
        line_no = int(self.line_no[i])
        return AimInstruction(line_no=line_no, text=self._text_lines[line_no - 1], opcode=_CODES[self.code[i]],
                              **{name: int(v[i]) for name, v in self.operand.items()})

    def counts(self) -> dict[str, int]:
        """Lines by opcode, in order of first appearance."""
        from sieve._core import aimparse

        counts = self._counts if self._counts is not None else aimparse.opcode_counts(self.code, len(_CODES))
        return {_CODES[c]: n for c, n in counts}


def _execute(runner: "_Runner", program: _Program, fast: bool) -> None:
    """Every line in order: runs of lines the compiled executor takes go to it, the others (and all
    lines when not `fast`) to the Python runner, which is the oracle the compiled one is tested on."""
    from sieve._core import aimrun

    codes = runner.tables.codes
    i = 0
    while i < len(program):
        if fast and not runner.requests and codes.kind[program.code[i]] != aimrun.KIND_PYTHON:
            runner.flush()
            j = aimrun.run_lines(runner.session.engine, program, codes, runner, i)
            if j > i:
                i = j
                continue
        ins = program.instruction(i)
        try:
            runner.execute(ins)
        except AimTraceError:
            raise
        except ValueError as e:  # the session's own checks, e.g. a command the device cannot take
            raise ins.error(str(e)) from None
        i += 1
    runner.flush()


def run_aim_trace(trace, device: Device, *, log: bool = True, fast: bool = True) -> AimTraceResult:
    """Parse an AiM trace, unroll it and execute it on ``device`` (e.g. ``Device("gddr6_aim")``).

    ``trace`` is a :class:`~pathlib.Path`, a path string, or the trace's text. ``log`` keeps the
    command log (for the protocol checker; costs memory on long traces). ``fast=False`` runs every
    line through the Python runner (the compiled executor's oracle; same cycles and log, slower).
    What a run derives from the device alone (command ids, latencies, executor tables, energy data)
    is built on the device's first run and reused by later runs on the same :class:`Device`.
    Raises :class:`AimTraceError` (a ``ValueError``) naming the line for any bad input."""
    start = time.perf_counter()
    if fast:
        program = _Program.read(trace)
    else:
        text = _read_text(trace)
        program = _Program.of(text, _parse_text(text))
    runner = _Runner(device, log)
    _execute(runner, program, fast)
    return _result(runner, program, log, start)


def _result(runner: "_Runner", program: _Program, log: bool, start: float) -> AimTraceResult:
    from sieve._core import aimrun

    tables = runner.tables
    geo = runner.geo
    engine = runner.session.engine
    energy_data = tables.energy
    totals, per_channel, bank_command_pj = aimrun.engine_totals(
        engine, geo.channels, energy_data.per_bank_pj if energy_data is not None else None)
    counts = totals.tolist()
    issued = [i for i, n in enumerate(counts) if n]  # command ids, in id order
    commands = {tables.names[i]: counts[i] for i in issued}
    cycles_ticks = runner.end + runner.tpc  # the reference counts cycles from 1
    cycles = cycles_ticks // runner.tpc if cycles_ticks % runner.tpc == 0 else cycles_ticks / runner.tpc
    mac_units = commands.get("MAC16", 0) + commands.get("MAC", 0) / geo.banks_per_channel
    capacity = cycles * geo.channels / tables.nccdl
    energy, channel_energy = _energy(runner, issued, counts, bank_command_pj)
    return AimTraceResult(
        cycles=cycles, commands=commands, instructions=program.counts(), wall_s=time.perf_counter() - start,
        tck_ns=tables.tck_ns, mac_peak_fraction=float(mac_units / capacity) if capacity else 0.0,
        channel_commands={tables.names[i]: per_channel[i] for i in issued},
        channel_instructions=np.asarray(runner.touched), channel_completion_cycle=runner.done / runner.tpc,
        log=runner.device.log_of(engine) if log else None,
        energy_by_command_pj=energy, channel_energy_pj=channel_energy)


def _energy(runner: "_Runner", issued: list[int], counts: list[int], bank_command_pj: np.ndarray | None):
    """Energy of the commands issued (`issued` ids, `counts` by id) by name, and per channel
    ``command_pj``, ``background_pj`` and
    ``energy_pj`` (None, None without energy data): :func:`sieve.dram.energy.bank_energy_columns`
    of the engine's banks up to the last completion, summed per channel."""
    from sieve._core import aimrun

    energy = runner.tables.energy
    if energy is None:
        return None, None
    names = runner.tables.names
    by_command = {names[i]: float(counts[i] * energy.command_pj[i]) for i in issued}
    end = max(runner.done.tolist())
    bank = np.empty((3, len(bank_command_pj)))
    bank[0] = bank_command_pj
    aimrun.bank_background_pj(runner.session.engine, end, runner.tables.tick_ns, energy.precharged_mw,
                              energy.active_mw, bank[1])
    np.add(bank[0], bank[1], out=bank[2])
    per_channel = bank.reshape(3, runner.geo.channels, -1).sum(axis=2)
    return by_command, dict(zip(("command_pj", "background_pj", "energy_pj"), per_channel))
