"""Resolve a :class:`~sieve.dram.spec.Standard` once into the integer tables the compiled engine runs on.

Only int64 arrays and ints cross into ``sieve._core``; names stay on this side. All latencies are
converted from CK to engine ticks here (``ticks_per_ck`` per CK).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .spec import BUSES, Standard, StandardError

__all__ = ["Tables", "resolve", "ACCESS_CODE", "NEEDS_CODE"]

ACCESS_CODE = {"none": 0, "read": 1, "write": 2}
NEEDS_CODE = {"any": 0, "open": 1, "closed": 2}
BUS_CODE = {bus: i for i, bus in enumerate(BUSES)}  # row 0, column 1: the controller's two issue slots
#: issue_ticks -> required residue of tick modulo ticks_per_ck (-1: any tick)
PHASE_CODE = {"any": -1, "odd": 1, "even": 0}


@dataclass(frozen=True)
class Tables:
    """The integer form of a standard. Field names mirror the arrays the engine reads."""

    standard: Standard
    fanout: np.ndarray  # [L]
    cmd_scope: np.ndarray  # [C] level index
    cmd_opens: np.ndarray  # [C] 0/1
    cmd_closes: np.ndarray  # [C]
    cmd_access: np.ndarray  # [C] ACCESS_CODE
    cmd_refreshes: np.ndarray  # [C]
    cmd_needs: np.ndarray  # [C] NEEDS_CODE
    cmd_phase: np.ndarray  # [C] PHASE_CODE
    cmd_bus: np.ndarray  # [C] BUS_CODE
    cmd_opener: np.ndarray  # [C] command that must open the row first (-1 none)
    cmd_closer: np.ndarray  # [C] command that must close rows first (-1 none)
    cmd_next_levels: np.ndarray  # [C] bit l set when some rule at level l gates the command
    # plain (window 1) rules, grouped by preceding command and level: the entries of command p at level l
    # are ent_start[p * L + l] : ent_start[p * L + l + 1]
    ent_start: np.ndarray  # [C*L+1]
    ent_level: np.ndarray
    ent_next: np.ndarray
    ent_lat: np.ndarray  # ticks
    ent_sibling: np.ndarray
    # windowed rules: one ring of `win_size` issue ticks per node of `win_level`
    # (ticks already include the bus-length adjustment of Standard.pair_latency_ticks)
    win_level: np.ndarray  # [W]
    win_size: np.ndarray
    win_lat: np.ndarray
    win_feed_start: np.ndarray  # [C*L+1] windows fed by command p at level l, laid out like ent_start
    win_feed: np.ndarray
    win_next_start: np.ndarray  # [W+1] commands gated by window w
    win_next: np.ndarray
    ticks_per_ck: int
    read_cmd: int  # -1 when the standard serves no read requests
    write_cmd: int
    read_latency_ticks: int
    write_latency_ticks: int
    refresh_cmd: int  # -1 when the standard has no refresh
    refresh_level: int
    refresh_interval_ticks: int

    @property
    def num_commands(self) -> int:
        return len(self.cmd_scope)

    @property
    def num_levels(self) -> int:
        return len(self.fanout)

    def cmd_id(self, name: str) -> int:
        return self.standard.command_names.index(self.standard.command(name).name)


def _i64(x) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(x, dtype=np.int64).reshape(-1))


def _ticks(latency_ck: float, tpc: int) -> int:
    return int(round(latency_ck * tpc))


def resolve(std: Standard) -> Tables:
    names = std.command_names
    C = len(names)
    tpc = std.ticks_per_ck
    lvl = {name: i for i, name in enumerate(std.levels)}
    bank_level = len(std.levels) - 1

    scope = [lvl[c.scope] for c in std.commands]
    opener = [-1] * C
    closer = [-1] * C
    for i, c in enumerate(std.commands):
        if c.needs == "open":
            # The command opening rows at exactly this scope (ACT for RD, an all-bank ACT for an all-bank MAC).
            cands = [j for j, o in enumerate(std.commands) if o.opens_row and scope[j] == scope[i]]
            if len(cands) != 1:
                raise StandardError(
                    f"standard {std.name!r}: command {c.name!r} needs an open row at {c.scope!r}, so exactly one "
                    f"command must open rows at that scope; found {[names[j] for j in cands]}"
                )
            opener[i] = cands[0]
        if c.needs in ("open", "closed"):
            cands = [j for j, o in enumerate(std.commands)
                     if o.closes_row and o.access == "none" and scope[j] == scope[i]]
            if len(cands) != 1:
                raise StandardError(
                    f"standard {std.name!r}: command {c.name!r} may find rows open at {c.scope!r}, so exactly one "
                    f"command must close rows at that scope; found {[names[j] for j in cands]}"
                )
            closer[i] = cands[0]

    # Plain rules merged per (prev, level, next, sibling): the strictest latency wins.
    plain: dict[tuple[int, int, int, int], int] = {}
    windows: list[tuple[int, int, int, tuple[int, ...], tuple[int, ...]]] = []
    for con in std.constraints:
        prev_ids = tuple(names.index(p) for p in con.prev)
        next_ids = tuple(names.index(n) for n in con.next)
        level = lvl[con.level]
        if con.window == 1:
            for p in prev_ids:
                for n in next_ids:
                    key = (p, level, n, int(con.sibling))
                    lat = max(std.pair_latency_ticks(con, names[p], names[n]), 0)
                    plain[key] = max(plain.get(key, 0), lat)
        else:
            # one ring per rule: split by following command when bus lengths make latencies differ
            by_lat: dict[int, list[int]] = {}
            for n in next_ids:
                by_lat.setdefault(max(std.pair_latency_ticks(con, names[prev_ids[0]], names[n]), 0), []).append(n)
            for lat, nexts in sorted(by_lat.items()):
                windows.append((level, con.window, lat, prev_ids, tuple(nexts)))

    L = len(std.levels)
    keys = sorted(plain)  # by preceding command, then level
    ent_start = np.zeros(C * L + 1, dtype=np.int64)
    for p, level, _, _ in keys:
        ent_start[p * L + level + 1] += 1
    ent_start = np.cumsum(ent_start)

    win_feed_lists: list[list[int]] = [[] for _ in range(C * L)]
    for w, (level, _, _, prev_ids, _) in enumerate(windows):
        for p in prev_ids:
            win_feed_lists[p * L + level].append(w)
    win_next_start = np.cumsum([0] + [len(w[4]) for w in windows])

    ref_cmd = ref_level = ref_interval = -1
    if std.refresh_command is not None:
        ref_cmd = names.index(std.refresh_command)
        ref_level = lvl[std.refresh_scope]
        ref_interval = _ticks(std.timing[std.refresh_interval], tpc)
    if bank_level != len(std.fanout) - 1:  # pragma: no cover - guarded by the spec loader
        raise StandardError("the bank must be the last level")

    next_levels = [0] * C
    for (_, level, n, _) in keys:
        next_levels[n] |= 1 << level
    for (level, _, _, _, nexts) in windows:
        for n in nexts:
            next_levels[n] |= 1 << level

    return Tables(
        standard=std,
        fanout=_i64(std.fanout),
        cmd_scope=_i64(scope),
        cmd_opens=_i64([c.opens_row for c in std.commands]),
        cmd_closes=_i64([c.closes_row for c in std.commands]),
        cmd_access=_i64([ACCESS_CODE[c.access] for c in std.commands]),
        cmd_refreshes=_i64([c.refreshes for c in std.commands]),
        cmd_needs=_i64([NEEDS_CODE[c.needs] for c in std.commands]),
        cmd_phase=_i64([PHASE_CODE[c.issue_ticks] for c in std.commands]),
        cmd_bus=_i64([BUS_CODE[c.bus] for c in std.commands]),
        cmd_opener=_i64(opener),
        cmd_closer=_i64(closer),
        cmd_next_levels=_i64(next_levels),
        ent_start=_i64(ent_start),
        ent_level=_i64([k[1] for k in keys]),
        ent_next=_i64([k[2] for k in keys]),
        ent_lat=_i64([plain[k] for k in keys]),
        ent_sibling=_i64([k[3] for k in keys]),
        win_level=_i64([w[0] for w in windows]),
        win_size=_i64([w[1] for w in windows]),
        win_lat=_i64([w[2] for w in windows]),
        win_feed_start=_i64(np.cumsum([0] + [len(x) for x in win_feed_lists])),
        win_feed=_i64([w for x in win_feed_lists for w in x]),
        win_next_start=_i64(win_next_start),
        win_next=_i64([n for w in windows for n in w[4]]),
        ticks_per_ck=tpc,
        read_cmd=names.index(std.read_command) if std.read_command else -1,
        write_cmd=names.index(std.write_command) if std.write_command else -1,
        read_latency_ticks=_ticks(std.read_latency_ck, tpc),
        write_latency_ticks=_ticks(std.write_latency_ck, tpc),
        refresh_cmd=ref_cmd,
        refresh_level=ref_level,
        refresh_interval_ticks=ref_interval,
    )

