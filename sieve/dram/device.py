"""A DRAM device: a resolved standard plus the compiled engine, with a validating Python face.

``Device`` is what the rest of sieve (and users) hold: command names instead of ids, checked
addresses, and results as arrays and pandas tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np

from sieve._core.engine import TimingEngine
from sieve._core import stream as _stream

from .resolve import Tables, resolve
from .stats import bank_table
from .spec import Standard, StandardError, load_standard

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Device", "StreamSession", "CommandLog", "StreamResult", "ROW_STATE_NAMES", "REFRESH_MODES"]

ROW_STATE_NAMES = {1: "the bank is closed", 2: "another row is open", 3: "rows are still open"}
REFRESH_MODES = ("off", "allbank")


@dataclass(frozen=True)
class CommandLog:
    """Every command the engine applied, in issue order. ``addr`` has -1 below a command's scope."""

    tick: np.ndarray
    cmd: np.ndarray
    addr: np.ndarray
    row: np.ndarray
    col: np.ndarray
    standard: Standard

    def __len__(self) -> int:
        return len(self.tick)

    def to_frame(self) -> "pd.DataFrame":
        import pandas as pd

        names = np.asarray(self.standard.command_names, dtype=object)
        df = pd.DataFrame({"tick": self.tick, "cycle_ck": self.tick / self.standard.ticks_per_ck,
                           "command": names[self.cmd]})
        for l, level in enumerate(self.standard.levels):
            df[level] = self.addr[:, l]
        df["row"] = self.row
        df["column"] = self.col
        return df


@dataclass(frozen=True)
class StreamResult:
    ticks: np.ndarray
    """Issue tick of each command of the input stream."""
    log: CommandLog | None
    device: "Device"
    engine: TimingEngine

    @property
    def cycles_ck(self) -> float:
        """CK from tick 0 to the issue of the last command applied (stream order or inserted)."""
        return self.engine.last_issue_tick / self.device.standard.ticks_per_ck

    def bank_stats(self) -> "pd.DataFrame":
        return bank_table(self.device, self.engine, self.engine.last_issue_tick)


class Device:
    """A DRAM standard resolved for simulation."""

    def __init__(self, standard: Standard | str):
        self.standard = load_standard(standard) if isinstance(standard, str) else standard

    @cached_property
    def tables(self) -> Tables:
        return resolve(self.standard)

    def __repr__(self) -> str:
        return f"Device({self.standard.name!r})"

    # -- names and addresses --------------------------------------------------------------------

    @cached_property
    def _command_index(self) -> dict[str, int]:
        return {n: i for i, n in enumerate(self.standard.command_names)}

    def cmd_id(self, name: str) -> int:
        index = self._command_index.get(name)
        return index if index is not None else self.standard.command_names.index(self.standard.command(name).name)

    def cmd_ids(self, names: Iterable[str] | np.ndarray) -> np.ndarray:
        names = np.asarray(list(names) if not isinstance(names, np.ndarray) else names)
        if names.dtype.kind in "iu":
            bad = (names < 0) | (names >= len(self.standard.commands))
            if bad.any():
                raise StandardError(
                    f"command id {names[bad][0]} out of range 0..{len(self.standard.commands) - 1}")
            return names.astype(np.int64)
        lookup = self._command_index
        out = np.empty(len(names), dtype=np.int64)
        for i, n in enumerate(names):
            if n not in lookup:
                raise StandardError(
                    f"command #{i}: unknown command {str(n)!r} for {self.standard.name}; "
                    f"commands: {', '.join(self.standard.command_names)}"
                )
            out[i] = lookup[n]
        return out

    def _describe_bad(self, status: int, i: int, cmds, addr, row, col) -> str:
        std = self.standard
        if status == _stream.BAD_COMMAND:
            return f"command #{i}: command id {cmds[i]} out of range 0..{len(std.commands) - 1}"
        name = std.command_names[cmds[i]]
        if status == _stream.BAD_ROW:
            return f"command #{i} ({name}): row {row[i]} is outside 0..{std.rows - 1}"
        if status == _stream.BAD_COLUMN:
            return f"command #{i} ({name}): column {col[i]} is outside 0..{std.columns - 1}"
        l = status - _stream.BAD_LEVEL
        return f"command #{i} ({name}): {std.levels[l]} {addr[i, l]} is outside 0..{std.fanout[l] - 1}"

    # -- engines --------------------------------------------------------------------------------

    def engine(self, logging: bool = True) -> TimingEngine:
        """A fresh engine (all banks closed, no history) over this device's tables."""
        return TimingEngine(self.tables, logging)

    def execute(
        self,
        commands: Sequence[str] | np.ndarray,
        addr: np.ndarray,
        row: np.ndarray | None = None,
        col: np.ndarray | None = None,
        *,
        refresh: str = "off",
        auto_prereq: bool = False,
        log: bool = True,
    ) -> StreamResult:
        """Execute a command stream in order per channel, each command at its earliest legal tick.

        ``commands``: names or ids; ``addr``: [n, levels] (entries below a command's scope are ignored);
        ``row``/``col``: per command (default 0). ``auto_prereq`` inserts the ACT/PRE/PREA the row
        buffers require; otherwise a command in the wrong row state is an error naming it.
        """
        session = self.session(refresh=refresh, log=log)
        ticks = session.run(commands, addr, row, col, auto_prereq=auto_prereq)
        return StreamResult(ticks=ticks, log=self.log_of(session.engine) if log else None, device=self,
                            engine=session.engine)

    def session(self, *, refresh: str = "off", log: bool = True) -> "StreamSession":
        """A fresh device for streams executed piece by piece (with barriers between the pieces)."""
        return StreamSession(self, refresh=refresh, log=log)

    def log_of(self, eng: TimingEngine) -> CommandLog:
        tick, cmd, addr, row, col = eng.log()
        return CommandLog(tick=tick, cmd=cmd, addr=addr, row=row, col=col, standard=self.standard)


class StreamSession:
    """One device's state across several stream pieces: engine, refresh schedule, per-channel order.

    ``run`` continues each channel's in-order stream; ``barrier(tick)`` holds every channel until
    ``tick`` (a front end's SYNC, or a wait for a result to come back)."""

    def __init__(self, device: Device, *, refresh: str = "off", log: bool = True):
        if refresh not in REFRESH_MODES:
            raise StandardError(f"refresh {refresh!r} is not one of {', '.join(REFRESH_MODES)}")
        tables = device.tables
        if refresh != "off" and tables.refresh_cmd < 0:
            raise StandardError(f"standard {device.standard.name!r} declares no refresh command")
        self.device = device
        self.engine = device.engine(logging=log)
        self.refresh = _stream._RefreshState(self.engine, tables.refresh_cmd, tables.refresh_level,
                                             tables.refresh_interval_ticks, refresh != "off")
        self.floor = np.zeros(device.standard.fanout[0], dtype=np.int64)
        """Per channel: the last tick a command issued (or a barrier); nothing issues before it."""

    def barrier(self, tick: int, channels=None) -> None:
        """Nothing issues before `tick` on `channels` (default: all)."""
        sel = slice(None) if channels is None else np.asarray(channels)
        self.floor[sel] = np.maximum(self.floor[sel], tick)

    def run(self, commands, addr, row=None, col=None, *, auto_prereq: bool = False) -> np.ndarray:
        """Execute a piece; returns the issue tick of each of its commands."""
        device = self.device
        std = device.standard
        cmds = device.cmd_ids(commands)
        addr = np.ascontiguousarray(np.asarray(addr, dtype=np.int64))
        n = len(cmds)
        L = len(std.levels)
        if addr.ndim == 1 and n == 0:
            addr = addr.reshape(0, L)
        row = np.zeros(n, dtype=np.int64) if row is None else np.ascontiguousarray(np.asarray(row, dtype=np.int64))
        col = np.zeros(n, dtype=np.int64) if col is None else np.ascontiguousarray(np.asarray(col, dtype=np.int64))
        if addr.ndim != 2 or addr.shape[1] != L:
            raise StandardError(f"addresses must have shape [n, {L}] ({', '.join(std.levels)}), got {addr.shape}")
        if not (addr.shape[0] == len(row) == len(col) == n):
            raise StandardError(
                f"stream arrays differ in length: commands {n}, addresses {addr.shape[0]}, rows {len(row)}, "
                f"columns {len(col)}")
        ticks = np.full(n, -1, dtype=np.int64)
        status, bad = _stream.execute(self.engine, cmds, addr, row, col, ticks, auto_prereq, self.refresh,
                                      std.rows, std.columns, self.floor)
        if status >= _stream.BAD_COMMAND:
            raise StandardError(device._describe_bad(status, bad, cmds, addr, row, col))
        if status != 0:
            c = std.command_names[cmds[bad]]
            where = ", ".join(f"{lv} {addr[bad, l]}" for l, lv in enumerate(std.levels)
                              if l <= device.tables.cmd_scope[cmds[bad]])
            first = std.command_names[self.engine.required_first(cmds[bad], addr[bad], row[bad])]
            raise StandardError(
                f"command #{bad} ({c} at {where}, row {row[bad]}) cannot issue: {ROW_STATE_NAMES[status]}; "
                f"insert the {first} it needs first, or execute with auto_prereq=True")
        return ticks
