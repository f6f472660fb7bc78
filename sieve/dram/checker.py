"""Protocol checker: replay a logged command sequence against a standard's declared records.

Independent of the engine and of the resolved tables: it reads the :class:`Standard` (names, levels,
constraint records as written) and judges each logged command by counting, for every record, the
preceding commands that fall inside the record's latency. It reports every violation it finds.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .spec import Command, Constraint, Standard

__all__ = ["Violation", "check_log"]


@dataclass(frozen=True)
class Violation:
    index: int
    """Position of the offending command in the log."""
    tick: int
    command: str
    rule: str

    def __str__(self) -> str:
        return f"#{self.index} {self.command} at tick {self.tick}: {self.rule}"


def _nodes(std: Standard, addr: tuple[int, ...], scope: int, level: int) -> list[tuple[int, ...]]:
    """Nodes of `level` a command addressed to `addr` with scope `scope` touches (as address prefixes)."""
    if level <= scope:
        return [addr[: level + 1]]
    prefixes = [addr[: scope + 1]]
    for l in range(scope + 1, level + 1):
        prefixes = [p + (i,) for p in prefixes for i in range(std.fanout[l])]
    return prefixes


def check_log(std: Standard, log) -> list[Violation]:
    """Return the violations in `log` (a :class:`~sieve.dram.device.CommandLog` or equivalent arrays)."""
    replay = _Replay(std)
    scopes = [std.level_index(c.scope) for c in std.commands]
    # plain Python ints, read once (NumPy scalars are slow to index and compare one by one)
    ticks, cmds, rows = (np.asarray(a).tolist() for a in (log.tick, log.cmd, log.row))
    addrs = np.asarray(log.addr).tolist()
    for i in np.argsort(np.asarray(log.tick), kind="stable").tolist():
        c = cmds[i]
        scope = scopes[c]
        replay.step(_Issued(index=i, tick=ticks[i], command=std.commands[c], scope=scope,
                            addr=tuple(addrs[i][: scope + 1]), row=rows[i]))
    return replay.violations


class _Issued(NamedTuple):
    """One logged command as the checks see it."""

    index: int
    tick: int
    command: Command
    scope: int
    """Level index of the command's scope."""
    addr: tuple[int, ...]
    """Its address down to its scope."""
    row: int


class _Record(NamedTuple):
    """A constraint record with its position in the standard (the key of its history) and level index."""

    index: int
    constraint: Constraint
    level: int

    @property
    def groups(self) -> list[tuple[str, str]]:
        """(preceding command, history group) pairs: a windowed rule counts all its preceding commands
        together, in group '*' (they share one bus length)."""
        rec = self.constraint
        return [(rec.prev[0], "*")] if rec.window > 1 else [(prev, prev) for prev in rec.prev]


class _Replay:
    """The log replayed in tick order: each command is judged against what issued before it (bus phase,
    every timing record that gates it, row-buffer state), then recorded as a predecessor."""

    def __init__(self, std: Standard) -> None:
        self.std = std
        self.records = [_Record(r, rec, std.level_index(rec.level)) for r, rec in enumerate(std.constraints)]
        self.groups = [record.groups for record in self.records]
        # (record, preceding command or '*' for a window, node) -> sorted ticks issued there
        self.history: dict[tuple[int, str, tuple[int, ...]], list[int]] = defaultdict(list)
        self.open_row: dict[tuple[int, ...], int] = {}
        self.violations: list[Violation] = []
        # Lookups that depend on the standard alone, made once rather than per logged command: the
        # records that gate each command and those it precedes (in record order), latencies, nodes.
        names = [c.name for c in std.commands]
        self.gating = {n: [rec for rec in self.records if n in rec.constraint.next] for n in names}
        self.preceded = {n: [rec for rec in self.records if n in rec.constraint.prev] for n in names}
        self._latency: dict[tuple[int, str, str], int] = {}
        self._nodes: dict[tuple[tuple[int, ...], int, int], list[tuple[int, ...]]] = {}
        self._watched: dict[tuple[int, tuple[int, ...], int], list[tuple[int, ...]]] = {}

    def latency(self, record: _Record, prev: str, next: str) -> int:
        """:meth:`Standard.pair_latency_ticks` of the record, remembered."""
        key = (record.index, prev, next)
        lat = self._latency.get(key)
        if lat is None:
            lat = self._latency[key] = self.std.pair_latency_ticks(record.constraint, prev, next)
        return lat

    def nodes(self, addr: tuple[int, ...], scope: int, level: int) -> list[tuple[int, ...]]:
        """:func:`_nodes`, remembered."""
        key = (addr, scope, level)
        nodes = self._nodes.get(key)
        if nodes is None:
            nodes = self._nodes[key] = _nodes(self.std, addr, scope, level)
        return nodes

    def watched(self, record: _Record, addr: tuple[int, ...], scope: int) -> list[tuple[int, ...]]:
        """The nodes whose preceding commands gate a command at `addr` (scope `scope`) under `record`:
        :func:`_watched` of every node of the record's level it touches, in order; remembered."""
        key = (record.index, addr, scope)
        watched = self._watched.get(key)
        if watched is None:
            watched = self._watched[key] = [
                w for node in self.nodes(addr, scope, record.level)
                for w in _watched(self.std, record.constraint, record.level, node)]
        return watched

    def step(self, cmd: _Issued) -> None:
        self._check_phase(cmd)
        for record in self.gating[cmd.command.name]:
            self._check_record(record, cmd)
        self._check_and_update_rows(cmd)
        self._record_as_predecessor(cmd)

    def _bad(self, cmd: _Issued, rule: str) -> None:
        self.violations.append(Violation(index=cmd.index, tick=cmd.tick, command=cmd.command.name, rule=rule))

    def _check_phase(self, cmd: _Issued) -> None:
        tpc = self.std.ticks_per_ck
        if cmd.command.issue_ticks == "odd" and cmd.tick % tpc != 1 % tpc:
            self._bad(cmd, "may issue only on odd ticks")
        if cmd.command.issue_ticks == "even" and cmd.tick % tpc != 0:
            self._bad(cmd, "may issue only on even ticks")

    def _check_record(self, record: _Record, cmd: _Issued) -> None:
        """Is `cmd` at least the record's latency after the `window`-th most recent preceding command
        at every node it touches?"""
        r, rec = record.index, record.constraint
        name = cmd.command.name
        watched = self.watched(record, cmd.addr, cmd.scope)
        for prev, group in self.groups[r]:
            lat = self.latency(record, prev, name)
            for key in watched:
                ticks = self.history.get((r, group, key))
                if not ticks:
                    continue
                # preceding commands whose latency has not yet elapsed at t
                inside = len(ticks) - bisect.bisect_right(ticks, cmd.tick - lat)
                if inside >= rec.window:
                    what = f"{rec.window} x " if rec.window > 1 else ""
                    self._bad(cmd, f"{what}{prev if group != '*' else '/'.join(rec.prev)} -> {name} at "
                                   f"{rec.level} {key}{' (sibling)' if rec.sibling else ''} needs "
                                   f"{rec.latency} = {lat} ticks")

    def _check_and_update_rows(self, cmd: _Issued) -> None:
        c = cmd.command
        banks = self.nodes(cmd.addr, cmd.scope, len(self.std.levels) - 1)
        if c.needs == "open" and any(self.open_row.get(b) != cmd.row for b in banks):
            self._bad(cmd, f"needs row {cmd.row} open")
        if c.needs == "closed" and any(b in self.open_row for b in banks):
            self._bad(cmd, "needs its banks closed")
        if c.needs == "closed_or_row" and any(self.open_row.get(b, cmd.row) != cmd.row for b in banks):
            self._bad(cmd, f"needs its banks closed or on row {cmd.row}")
        for b in banks:
            if c.opens_row:
                self.open_row[b] = cmd.row
            elif c.closes_row:
                self.open_row.pop(b, None)

    def _record_as_predecessor(self, cmd: _Issued) -> None:
        name = cmd.command.name
        for record in self.preceded[name]:
            group = "*" if record.constraint.window > 1 else name
            for node in self.nodes(cmd.addr, cmd.scope, record.level):
                bisect.insort(self.history[(record.index, group, node)], cmd.tick)


def _watched(std: Standard, rec: Constraint, level: int, node: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The nodes whose preceding commands gate a command at `node`: the node itself, or for a sibling
    rule every other node with the same parent."""
    if rec.sibling:
        return [node[:-1] + (j,) for j in range(std.fanout[level]) if j != node[-1]]
    return [node]


def assert_clean(std: Standard, log, limit: int = 10) -> None:
    """Raise AssertionError listing the first violations, if any."""
    v = check_log(std, log)
    if v:
        shown = "\n  ".join(str(x) for x in v[:limit])
        more = f"\n  ... and {len(v) - limit} more" if len(v) > limit else ""
        raise AssertionError(f"{len(v)} protocol violation(s):\n  {shown}{more}")

