"""Resolve a :class:`~sieve.dram.spec.Standard` once into the integer tables the compiled engine runs on.

Only int64 arrays and ints cross into ``sieve._core``; names stay on this side. All latencies are
converted from CK to engine ticks here (``ticks_per_ck`` per CK).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .spec import BUSES, Standard, StandardError

__all__ = ["Tables", "resolve", "ACCESS_CODE", "NEEDS_CODE"]

ACCESS_CODE = {"none": 0, "read": 1, "write": 2}
NEEDS_CODE = {"any": 0, "open": 1, "closed": 2, "closed_or_row": 3}
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

    def __post_init__(self) -> None:
        # Read-only, as the dataclass is frozen: engines prepare their rules from these arrays once per
        # Tables and share them, so the arrays must not change under them.
        for value in vars(self).values():
            if isinstance(value, np.ndarray):
                value.flags.writeable = False

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
    """The integer tables of `std`: per-command metadata, the plain and windowed timing rules in
    engine ticks, and the request and refresh commands."""
    opener, closer = _row_prerequisites(std)
    if len(std.levels) != len(std.fanout):  # pragma: no cover - guarded by the spec loader
        raise StandardError("the bank must be the last level")
    plain, windows = _merge_rules(std)
    L = len(std.levels)
    return Tables(
        standard=std,
        fanout=_i64(std.fanout),
        **_command_arrays(std, opener, closer, plain, windows),
        **_plain_arrays(plain, len(std.commands), L),
        **_window_arrays(windows, len(std.commands), L),
        **_request_and_refresh_fields(std),
    )


class _RuleKey(NamedTuple):
    """A plain rule between two commands: `next` addressed to a node of `level` waits for `prev` at that
    node (at a sibling node when `sibling` is 1). Keys sort by preceding command, then level, as the
    engine looks them up."""

    prev: int
    level: int
    next: int
    sibling: int


@dataclass(frozen=True)
class _Window:
    """A windowed rule (nFAW): `next` waits until `latency` ticks after the `size`-th most recent
    command of `prev` at the same node of `level`."""

    level: int
    size: int
    latency: int
    prev: tuple[int, ...]
    next: tuple[int, ...]


def _row_prerequisites(std: Standard) -> tuple[list[int], list[int]]:
    """For each command, the command that must open its row first and the one that must close open
    rows first (-1: none), so the engine can answer "which command comes first?" without names."""
    names = std.command_names
    scope = [std.level_index(c.scope) for c in std.commands]
    opener = [-1] * len(names)
    closer = [-1] * len(names)
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
        if c.needs in ("open", "closed", "closed_or_row"):
            cands = [j for j, o in enumerate(std.commands)
                     if o.closes_row and o.access == "none" and scope[j] == scope[i]]
            if len(cands) != 1:
                raise StandardError(
                    f"standard {std.name!r}: command {c.name!r} may find rows open at {c.scope!r}, so exactly one "
                    f"command must close rows at that scope; found {[names[j] for j in cands]}"
                )
            closer[i] = cands[0]
    return opener, closer


def _merge_rules(std: Standard) -> tuple[dict[_RuleKey, int], list[_Window]]:
    """Expand the constraint records into per-pair latencies in ticks. Plain rules are merged per
    :class:`_RuleKey` (the strictest latency wins); each windowed rule keeps its own ring."""
    names = std.command_names
    plain: dict[_RuleKey, int] = {}
    windows: list[_Window] = []
    for con in std.constraints:
        prev_ids = tuple(names.index(p) for p in con.prev)
        next_ids = tuple(names.index(n) for n in con.next)
        level = std.level_index(con.level)
        if con.window == 1:
            for p in prev_ids:
                for n in next_ids:
                    key = _RuleKey(p, level, n, int(con.sibling))
                    lat = max(std.pair_latency_ticks(con, names[p], names[n]), 0)
                    plain[key] = max(plain.get(key, 0), lat)
        else:
            # One ring per rule (its preceding commands share one bus length); split by following
            # command when bus lengths make the latencies differ.
            by_lat: dict[int, list[int]] = {}
            for n in next_ids:
                by_lat.setdefault(max(std.pair_latency_ticks(con, names[prev_ids[0]], names[n]), 0), []).append(n)
            for lat, nexts in sorted(by_lat.items()):
                windows.append(_Window(level=level, size=con.window, latency=lat, prev=prev_ids, next=tuple(nexts)))
    return plain, windows


def _command_arrays(std: Standard, opener: list[int], closer: list[int], plain: dict[_RuleKey, int],
                    windows: list[_Window]) -> dict[str, np.ndarray]:
    """The ``cmd_*`` fields of :class:`Tables`: one entry per command."""
    next_levels = [0] * len(std.commands)
    for key in plain:
        next_levels[key.next] |= 1 << key.level
    for win in windows:
        for n in win.next:
            next_levels[n] |= 1 << win.level
    return dict(
        cmd_scope=_i64([std.level_index(c.scope) for c in std.commands]),
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
    )


def _plain_arrays(plain: dict[_RuleKey, int], C: int, L: int) -> dict[str, np.ndarray]:
    """The ``ent_*`` fields of :class:`Tables`: plain rules as CSR rows, one row per (preceding command,
    level), so the engine visits only the rules a just-issued command feeds."""
    keys = sorted(plain)
    ent_start = np.zeros(C * L + 1, dtype=np.int64)
    for key in keys:
        ent_start[key.prev * L + key.level + 1] += 1
    return dict(
        ent_start=_i64(np.cumsum(ent_start)),
        ent_level=_i64([k.level for k in keys]),
        ent_next=_i64([k.next for k in keys]),
        ent_lat=_i64([plain[k] for k in keys]),
        ent_sibling=_i64([k.sibling for k in keys]),
    )


def _window_arrays(windows: list[_Window], C: int, L: int) -> dict[str, np.ndarray]:
    """The ``win_*`` fields of :class:`Tables`: each ring's level, size and latency, the rings each
    (command, level) feeds (laid out like ``ent_start``) and the commands each ring gates."""
    feeds: list[list[int]] = [[] for _ in range(C * L)]
    for w, win in enumerate(windows):
        for p in win.prev:
            feeds[p * L + win.level].append(w)
    return dict(
        win_level=_i64([w.level for w in windows]),
        win_size=_i64([w.size for w in windows]),
        win_lat=_i64([w.latency for w in windows]),
        win_feed_start=_i64(np.cumsum([0] + [len(x) for x in feeds])),
        win_feed=_i64([w for x in feeds for w in x]),
        win_next_start=_i64(np.cumsum([0] + [len(w.next) for w in windows])),
        win_next=_i64([n for w in windows for n in w.next]),
    )


def _request_and_refresh_fields(std: Standard) -> dict[str, int]:
    """The scalar fields of :class:`Tables`: the request commands and latencies and the refresh
    (-1 where the standard declares none)."""
    names = std.command_names
    tpc = std.ticks_per_ck
    refresh = dict(refresh_cmd=-1, refresh_level=-1, refresh_interval_ticks=-1)
    if std.refresh_command is not None:
        refresh = dict(
            refresh_cmd=names.index(std.refresh_command),
            refresh_level=std.level_index(std.refresh_scope),
            refresh_interval_ticks=_ticks(std.timing[std.refresh_interval], tpc),
        )
    return dict(
        ticks_per_ck=tpc,
        read_cmd=names.index(std.read_command) if std.read_command else -1,
        write_cmd=names.index(std.write_command) if std.write_command else -1,
        read_latency_ticks=_ticks(std.read_latency_ck, tpc),
        write_latency_ticks=_ticks(std.write_latency_ck, tpc),
        **refresh,
    )
