"""Reference command-stream executor, written for clarity rather than speed.

It keeps the full history of issued commands and, for every command, scans every constraint record of
the standard as declared (names, levels, CK latencies) against that whole history. It implements the
same stream policy as ``sieve._core.stream`` (in-order per channel, prerequisites on request, refresh of
the most overdue node before a command that would issue at or after its due tick).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import product

from sieve.dram.spec import Standard


@dataclass
class Issued:
    tick: int
    name: str
    addr: tuple  # full-length address prefix up to the command's scope
    row: int
    col: int


@dataclass
class OracleDRAM:
    std: Standard
    history: list = field(default_factory=list)
    open_rows: dict = field(default_factory=dict)  # bank address tuple -> row

    def __post_init__(self):
        # Indexes only to keep the scans short: records by following command, history by command name.
        self.records_for = {c.name: [r for r in self.std.constraints if c.name in r.next] for c in self.std.commands}
        self.history_of = {c.name: [] for c in self.std.commands}

    def scope(self, name: str) -> int:
        return self.std.levels.index(self.std.command(name).scope)

    def touched(self, name: str, addr: tuple, level: int) -> list[tuple]:
        """Nodes of `level` (as address prefixes) touched by command `name` addressed at `addr`."""
        s = self.scope(name)
        if level <= s:
            return [tuple(addr[: level + 1])]
        extra = [range(self.std.fanout[l]) for l in range(s + 1, level + 1)]
        return [tuple(addr[: s + 1]) + tail for tail in product(*extra)]

    def timing_ready(self, name: str, addr: tuple) -> int:
        t = 0
        for rec in self.records_for[name]:
            level = self.std.levels.index(rec.level)
            for node in self.touched(name, addr, level):
                ticks = []  # (tick, latency) of each preceding command that counts at this node
                for prev in rec.prev:
                    lat = self.std.pair_latency_ticks(rec, prev, name)
                    for h in self.history_of[prev]:
                        for other in self.touched(h.name, h.addr, level):
                            same_parent = other[:-1] == node[:-1]
                            if (rec.sibling and same_parent and other != node) or (not rec.sibling and other == node):
                                ticks.append((h.tick, lat))
                                break
                if len(ticks) >= rec.window:
                    ticks.sort()
                    tick, lat = ticks[-rec.window]
                    t = max(t, tick + lat)
        return t

    def align(self, name: str, tick: int) -> int:
        phase = self.std.command(name).issue_ticks
        tpc = self.std.ticks_per_ck
        while (phase == "odd" and tick % tpc != 1) or (phase == "even" and tick % tpc != 0):
            tick += 1
        return tick

    def banks(self, name: str, addr: tuple) -> list[tuple]:
        return self.touched(name, addr, len(self.std.levels) - 1)

    def required_first(self, name: str, addr: tuple, row: int) -> str:
        cmd = self.std.command(name)
        rows = [self.open_rows.get(b) for b in self.banks(name, addr)]
        same_scope = [c for c in self.std.commands if c.scope == cmd.scope]
        opener = next((c.name for c in same_scope if c.opens_row), None)
        closer = next((c.name for c in same_scope if c.closes_row and c.access == "none"), None)
        if cmd.needs == "open":
            if all(r == row for r in rows):
                return name
            if all(r is None for r in rows):
                return opener
            # some banks on this row, the others closed: an opener that may issue over its own row
            on_row_or_closed = all(r in (None, row) for r in rows)
            return opener if on_row_or_closed and self.std.command(opener).needs == "closed_or_row" else closer
        if cmd.needs == "closed" and any(r is not None for r in rows):
            return closer
        if cmd.needs == "closed_or_row" and any(r not in (None, row) for r in rows):
            return closer
        return name

    def issue(self, name: str, addr: tuple, row: int, col: int, tick: int) -> None:
        cmd = self.std.command(name)
        for b in self.banks(name, addr):
            if cmd.opens_row:
                self.open_rows[b] = row
            elif cmd.closes_row:
                self.open_rows.pop(b, None)
        issued = Issued(tick, name, tuple(addr[: self.scope(name) + 1]), row, col)
        self.history.append(issued)
        self.history_of[name].append(issued)


def run_stream(std: Standard, stream, *, auto_prereq: bool = True, refresh: bool = False):
    """stream: list of (name, addr tuple of full length, row, col). Returns (issue ticks, history)."""
    dram = OracleDRAM(std)
    tpc = std.ticks_per_ck
    floor: dict[int, int] = {}
    due: dict[tuple, int] = {}
    if refresh:
        interval = round(std.timing[std.refresh_interval] * tpc)
        ref_level = std.levels.index(std.refresh_scope)
        for node in product(*[range(std.fanout[l]) for l in range(ref_level + 1)]):
            due[node] = interval
    out = []
    for name, addr, row, col in stream:
        ch = addr[0]
        while True:
            first = dram.required_first(name, addr, row)
            if first != name and not auto_prereq:
                raise ValueError(f"{name} at {addr} needs {first} first")
            t = dram.align(first, max(floor.get(ch, 0), dram.timing_ready(first, addr)))
            overdue = sorted((d, node) for node, d in due.items() if node[0] == ch and d <= t)
            if overdue:
                d, node = overdue[0]
                node_addr = node + (0,) * (len(std.levels) - len(node))
                f = max(floor.get(ch, 0), d)
                while True:
                    step = dram.required_first(std.refresh_command, node_addr, 0)
                    ts = dram.align(step, max(f, dram.timing_ready(step, node_addr)))
                    dram.issue(step, node_addr, 0, 0, ts)
                    f = ts
                    if step == std.refresh_command:
                        break
                floor[ch] = f
                due[node] = d + interval
                continue
            dram.issue(first, addr, row, col, t)
            floor[ch] = t
            if first == name:
                out.append(t)
                break
    return out, dram.history
