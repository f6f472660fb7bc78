"""Protocol checker: replay a logged command sequence against a standard's declared records.

Independent of the engine and of the resolved tables: it reads the :class:`Standard` (names, levels,
constraint records as written) and judges each logged command by counting, for every record, the
preceding commands that fall inside the record's latency. It reports every violation it finds.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from .spec import Standard

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
    names = std.command_names
    tpc = std.ticks_per_ck
    scope = {c.name: std.levels.index(c.scope) for c in std.commands}
    meta = {c.name: c for c in std.commands}
    L = len(std.levels)
    order = np.argsort(np.asarray(log.tick), kind="stable")
    # history[(record, preceding command or '*' for a window, node)] -> sorted ticks issued there
    history: dict[tuple[int, tuple[int, ...]], list[int]] = defaultdict(list)
    open_row: dict[tuple[int, ...], int] = {}
    violations: list[Violation] = []
    records = list(enumerate(std.constraints))
    for i in order:
        i = int(i)
        t = int(log.tick[i])
        name = names[int(log.cmd[i])]
        s = scope[name]
        addr = tuple(int(a) for a in log.addr[i][: s + 1])
        row = int(log.row[i])
        c = meta[name]

        def bad(rule: str) -> None:
            violations.append(Violation(index=i, tick=t, command=name, rule=rule))

        # bus phase
        if c.issue_ticks == "odd" and t % tpc != 1 % tpc:
            bad("may issue only on odd ticks")
        if c.issue_ticks == "even" and t % tpc != 0:
            bad("may issue only on even ticks")
        # timing records
        for r, rec in records:
            if name not in rec.next:
                continue
            level = std.levels.index(rec.level)
            # a windowed rule counts all its preceding commands together (they share one bus length)
            groups = [(rec.prev[0], "*")] if rec.window > 1 else [(prev, prev) for prev in rec.prev]
            for prev, group in groups:
                lat = std.pair_latency_ticks(rec, prev, name)
                for node in _nodes(std, addr, s, level):
                    if rec.sibling:
                        keys = [node[:-1] + (j,) for j in range(std.fanout[level]) if j != node[-1]]
                    else:
                        keys = [node]
                    for key in keys:
                        ticks = history.get((r, group, key))
                        if not ticks:
                            continue
                        # preceding commands whose latency has not yet elapsed at t
                        inside = len(ticks) - bisect.bisect_right(ticks, t - lat)
                        if inside >= rec.window:
                            what = f"{rec.window} x " if rec.window > 1 else ""
                            bad(f"{what}{prev if group != '*' else '/'.join(rec.prev)} -> {name} at {rec.level} "
                                f"{key}{' (sibling)' if rec.sibling else ''} needs {rec.latency} = {lat} ticks")
        # row-buffer state
        banks = _nodes(std, addr, s, L - 1)
        if c.needs == "open" and any(open_row.get(b) != row for b in banks):
            bad(f"needs row {row} open")
        if c.needs == "closed" and any(b in open_row for b in banks):
            bad("needs its banks closed")
        for b in banks:
            if c.opens_row:
                open_row[b] = row
            elif c.closes_row:
                open_row.pop(b, None)
        # record this command as a predecessor
        for r, rec in records:
            if name in rec.prev:
                level = std.levels.index(rec.level)
                group = "*" if rec.window > 1 else name
                for node in _nodes(std, addr, s, level):
                    bisect.insort(history[(r, group, node)], t)
    return violations


def assert_clean(std: Standard, log, limit: int = 10) -> None:
    """Raise AssertionError listing the first violations, if any."""
    v = check_log(std, log)
    if v:
        shown = "\n  ".join(str(x) for x in v[:limit])
        more = f"\n  ... and {len(v) - limit} more" if len(v) > limit else ""
        raise AssertionError(f"{len(v)} protocol violation(s):\n  {shown}{more}")

