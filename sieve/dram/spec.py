"""DRAM (and PIM) standards as data.

A standard is declared in YAML (``sieve/conf/dram/<name>.yaml``) and loaded here into plain
dataclasses, validated, with every timing converted to clock cycles. Nothing in this module knows a
particular command or timing name: ACT, RD, MAC or WRGB are all just rows of the same tables.

The YAML schema::

    name: hbm3
    source: where the numbers come from
    tCK_ns: 0.625              # clock period of the command clock (CK)
    ticks_per_ck: 2            # engine ticks per CK (2 for double-pumped HBM3)
    levels: [channel, pseudochannel, sid, bankgroup, bank]
    organization: {channel: 16, pseudochannel: 2, sid: 2, bankgroup: 4, bank: 4,
                   rows: 8192, columns: 32, column_bytes: 32}
    commands:
      ACT: {scope: bank, opens_row: true, bus: row}
      RD:  {scope: bank, access: read, needs: open, bus: column, issue_ticks: odd}
      ...
    command_bus: split         # or shared: row and column commands share one command per cycle
    timing:                     # tX in ns (JEDEC), or nX in cycles (CK) for clock-defined values
      tRCD: 19.375
      nBL: 2
    constraints:
      - {level: bank, prev: [ACT], next: [RD], latency: nRCDRD}
      - {level: pseudochannel, prev: [ACT], next: [ACT], latency: nFAW, window: 4}
      - {level: sid, prev: [RD], next: [RD], latency: nCCDR, sibling: true}

Constraint semantics: a command of ``next`` addressed to node X of ``level`` may not issue before
``latency`` CK after the ``window``-th most recent command of ``prev`` issued to the same node X
(``sibling: false``), or to any *other* node with X's parent (``sibling: true``). A command whose
scope is above ``level`` (a PREA over a pseudo-channel, an all-bank MAC) touches every node below
its scope and is checked against, and counted at, each of them.
"""

from __future__ import annotations

import ast
import math
import operator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = [
    "StandardError",
    "Command",
    "Constraint",
    "Standard",
    "load_standard",
    "available_standards",
    "standard_from_dict",
]

STANDARDS_DIR = Path(__file__).resolve().parent.parent / "conf" / "dram"

#: Organization keys that are not levels of the address tree.
ORG_EXTRA_KEYS = ("rows", "columns", "column_bytes")
ACCESS_KINDS = ("none", "read", "write")
NEEDS_KINDS = ("any", "open", "closed", "closed_or_row")
BUSES = ("row", "column")
ISSUE_TICKS = ("any", "odd", "even")


class StandardError(ValueError):
    """A DRAM standard declaration is malformed or inconsistent."""


@dataclass(frozen=True)
class Command:
    """One command of a standard, with the metadata the engine acts on."""

    name: str
    scope: str
    """Lowest level the command addresses; every node below it is affected (PREA: pseudochannel)."""
    opens_row: bool = False
    closes_row: bool = False
    access: str = "none"
    """``read`` / ``write`` for commands that move data over the bus, ``none`` otherwise."""
    refreshes: bool = False
    needs: str = "any"
    """Row-buffer state the target banks must be in: ``open`` (the addressed row), ``closed``, ``any``, or
    ``closed_or_row`` (a row opener that may issue over banks already holding the row it opens; a command
    needing that row open, with every open bank on it and some banks closed, then asks for this opener
    rather than for a precharge first)."""
    bus: str = "row"
    issue_ticks: str = "any"
    """Sub-CK phase on which the command may issue (column commands of double-pumped HBM: ``odd``)."""
    pim: bool = False
    """A processing-in-memory command (counted separately in the statistics)."""
    cycles: float = 1.0
    """CK the command occupies its bus (HBM3 ACT: 1.5). A command is recorded at its first tick."""


@dataclass(frozen=True)
class Constraint:
    level: str
    prev: tuple[str, ...]
    next: tuple[str, ...]
    latency: str
    window: int = 1
    sibling: bool = False
    latency_ck: float = 0.0
    """``latency`` evaluated against the resolved timing table (CK, may be a multiple of 1/ticks_per_ck)."""
    measured: str = "end"
    """``end``: a JEDEC latency, end of one command to end of the next; ``start``: first tick to first
    tick (bus occupancy)."""


@dataclass(frozen=True)
class Standard:
    name: str
    source: str
    tCK_ns: float
    ticks_per_ck: int
    levels: tuple[str, ...]
    fanout: tuple[int, ...]
    rows: int
    columns: int
    column_bytes: int
    commands: tuple[Command, ...]
    timing: Mapping[str, float] = field(repr=False)
    """Resolved timing values in CK, keyed by their ``n`` name (``nRCD``)."""
    constraints: tuple[Constraint, ...] = field(repr=False)
    read_command: str | None = None
    write_command: str | None = None
    read_latency_ck: float = 0.0
    """CK from a read's column command to its last data beat (nCL + nBL)."""
    write_latency_ck: float = 0.0
    """CK from a write's column command until its data is in the array side of the bus (nCWL + nBL)."""
    refresh_command: str | None = None
    refresh_scope: str | None = None
    refresh_interval: str | None = None
    """Timing names of the all-bank refresh: interval between REFs to one node (``nREFI``)."""

    @cached_property
    def command_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.commands)  # built once: the standard is frozen

    def command(self, name: str) -> Command:
        for c in self.commands:
            if c.name == name:
                return c
        raise StandardError(
            f"standard {self.name!r} has no command {name!r}; commands: {', '.join(self.command_names)}"
        )

    def level_index(self, level: str) -> int:
        try:
            return self.levels.index(level)
        except ValueError:
            raise StandardError(
                f"standard {self.name!r} has no level {level!r}; levels: {', '.join(self.levels)}"
            ) from None

    @property
    def num_banks(self) -> int:
        return math.prod(self.fanout)

    @property
    def capacity_bytes(self) -> int:
        return self.num_banks * self.rows * self.columns * self.column_bytes

    @property
    def tick_ns(self) -> float:
        return self.tCK_ns / self.ticks_per_ck

    def command_ticks(self, name: str) -> int:
        """Ticks `name` occupies its bus."""
        return int(round(self.command(name).cycles * self.ticks_per_ck))

    def pair_latency_ticks(self, con: "Constraint", prev: str, next: str) -> int:
        """Ticks from `prev`'s first tick to `next`'s first tick that `con` demands.

        JEDEC latencies run from the end of one command to the end of the next; commands are recorded
        at their first tick, so the latency grows by the extra ticks of `prev` and shrinks by those of
        `next` (an HBM3 ACT of 1.5 CK followed by a 1-CK RD: nRCDRD + 1 tick).
        """
        base = int(round(con.latency_ck * self.ticks_per_ck))
        if con.measured == "start":
            return base
        return base + (self.command_ticks(prev) - 1) - (self.command_ticks(next) - 1)


# --------------------------------------------------------------------------------------------------
# latency expressions


_BINOPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}
_FUNCS = {"max": max, "min": min}


def evaluate_latency(expr: str | int | float, timing: Mapping[str, float], where: str) -> float:
    """Evaluate a latency expression (``nCL + nBL + 2 - nCWL``) against resolved timings, in CK."""
    if isinstance(expr, bool):
        raise StandardError(f"{where}: latency must be a number or an expression, got {expr!r}")
    if isinstance(expr, (int, float)):
        return float(expr)
    if not isinstance(expr, str) or not expr.strip():
        raise StandardError(f"{where}: latency must be a number or an expression, got {expr!r}")
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError:
        raise StandardError(f"{where}: cannot parse latency expression {expr!r}") from None

    def ev(node: ast.AST) -> float:
        if isinstance(node, ast.Expression):
            return ev(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(
            node.value, bool
        ):
            return float(node.value)
        if isinstance(node, ast.Name):
            if node.id not in timing:
                raise StandardError(
                    f"{where}: latency {expr!r} names unknown timing {node.id!r}; "
                    f"timings: {', '.join(sorted(timing))}"
                )
            return float(timing[node.id])
        if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
            return _BINOPS[type(node.op)](ev(node.left), ev(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -ev(node.operand)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and node.args
            and not node.keywords
        ):
            return _FUNCS[node.func.id](ev(a) for a in node.args)
        raise StandardError(
            f"{where}: latency {expr!r} may use timing names, numbers, + - * /, max() and min() only"
        )

    return ev(tree)


# --------------------------------------------------------------------------------------------------
# loading


def available_standards() -> list[str]:
    return sorted(p.stem for p in STANDARDS_DIR.glob("*.yaml"))


def _resolve_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = STANDARDS_DIR / f"{name_or_path}.yaml"
        if not path.is_file():
            raise StandardError(
                f"unknown DRAM standard {str(name_or_path)!r}; available: {', '.join(available_standards())}"
            )
    elif not path.is_file():
        raise StandardError(f"DRAM standard file {str(path)!r} does not exist")
    return path


# libyaml's loader when PyYAML was built with it (the same documents, several times faster)
YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_raw(name_or_path: str | Path, seen: tuple[str, ...] = ()) -> tuple[dict, str]:
    """The standard's YAML as a dict, with ``extends: <base>`` (or a list of bases, e.g. a DRAM standard
    and a PIM command set from ``pim/``) merged in order: organization, commands and timing are
    updated by each later part, constraints extended by them."""
    path = _resolve_path(name_or_path)
    with open(path) as f:
        try:
            data = yaml.load(f, Loader=YAML_LOADER)
        except yaml.YAMLError as e:
            raise StandardError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise StandardError(f"{path}: a standard must be a mapping, got {type(data).__name__}")
    bases = data.get("extends")
    if bases is None:
        return dict(data), str(path)
    bases = [bases] if isinstance(bases, str) else bases
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise StandardError(f"{path}: 'extends' must name a standard or a list of them, got {bases!r}")
    merged: dict = {}
    for base_name in bases + [None]:
        if base_name is None:
            part = {k: v for k, v in data.items() if k != "extends"}
        else:
            if base_name in seen:
                raise StandardError(f"{path}: 'extends' loops through {' -> '.join(seen + (base_name,))}")
            part, _ = _read_raw(base_name, seen + (base_name,))
        for key, value in part.items():
            if key in ("organization", "commands", "timing") and isinstance(value, Mapping):
                merged[key] = {**(merged.get(key) or {}), **value}
            elif key == "constraints" and isinstance(value, list):
                merged[key] = list(merged.get(key) or []) + value
            else:
                merged[key] = value
    return merged, str(path)


def load_standard(name_or_path: str | Path) -> Standard:
    """Load a standard by preset name (``hbm3``) or from a YAML file path."""
    data, where = _read_raw(name_or_path)
    return standard_from_dict(data, where=where)


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] is None:
        raise StandardError(f"{where}: missing required key {key!r}")
    return data[key]


def _check_keys(data: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(data) - allowed
    if unknown:
        raise StandardError(
            f"{where}: unknown key(s) {', '.join(sorted(map(str, unknown)))}; allowed: {', '.join(sorted(allowed))}"
        )


def _positive_int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise StandardError(f"{where} must be a positive integer, got {value!r}")
    return value


def _resolve_timing(raw: Mapping[str, Any], tCK_ns: float, where: str) -> dict[str, float]:
    """JEDEC ``tX`` values (ns) become ``nX`` cycles by ceiling; ``nX`` values are cycles already."""
    if not isinstance(raw, Mapping):
        raise StandardError(f"{where}: 'timing' must be a mapping of timing names to values")
    out: dict[str, float] = {}
    for key, value in raw.items():
        w = f"{where}: timing {key!r}"
        if not isinstance(key, str) or len(key) < 2 or key[0] not in "tn":
            raise StandardError(f"{w}: names start with 't' (ns) or 'n' (cycles)")
        if value is None:
            raise StandardError(f"{w} has no value")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise StandardError(f"{w} must be a number, got {value!r}")
        if value < 0 or not math.isfinite(value):
            raise StandardError(f"{w} must be a finite non-negative number, got {value!r}")
        name = "n" + key[1:]
        if name in out:
            raise StandardError(f"{w}: given both as t{key[1:]} (ns) and n{key[1:]} (cycles)")
        if key[0] == "t":
            cycles = value / tCK_ns
            # ns values that are exact multiples of tCK must not round up through float noise.
            out[name] = float(math.ceil(cycles - 1e-9))
        else:
            out[name] = float(value)
    return out


_STANDARD_KEYS = {
    "name", "source", "tCK_ns", "ticks_per_ck", "levels", "organization", "commands", "timing",
    "constraints", "refresh", "requests", "read_latency", "write_latency", "command_bus",
}
_COMMAND_KEYS = {
    "scope", "opens_row", "closes_row", "access", "refreshes", "needs", "bus", "issue_ticks", "pim", "cycles",
}
_CONSTRAINT_KEYS = {"level", "prev", "next", "latency", "window", "sibling"}


@dataclass(frozen=True)
class _Organization:
    """The ``organization`` block: the fan-out of each level and the shape of one bank."""

    fanout: tuple[int, ...]
    rows: int
    columns: int
    column_bytes: int


@dataclass(frozen=True)
class _Refresh:
    """The ``refresh`` block, with the scope taken from the refresh command."""

    command: str | None = None
    scope: str | None = None
    interval: str | None = None


def standard_from_dict(data: Any, where: str = "<dict>") -> Standard:
    """Validate a standard's declaration (the merged YAML) and build its :class:`Standard`.

    The blocks are read in dependency order -- levels, organization, commands, timing, constraints
    (which name commands and timings), refresh (which names both) -- so the first error reported is
    the first one a reader of the YAML meets.
    """
    if not isinstance(data, Mapping):
        raise StandardError(f"{where}: a standard must be a mapping, got {type(data).__name__}")
    _check_keys(data, _STANDARD_KEYS, where)
    name = str(_require(data, "name", where))
    tCK_ns = _require(data, "tCK_ns", where)
    if isinstance(tCK_ns, bool) or not isinstance(tCK_ns, (int, float)) or tCK_ns <= 0:
        raise StandardError(f"{where}: tCK_ns must be a positive number, got {tCK_ns!r}")
    ticks_per_ck = _positive_int(data.get("ticks_per_ck", 1), f"{where}: ticks_per_ck")
    levels = _parse_levels(data, where)
    org = _parse_organization(data, levels, where)
    commands = _parse_commands(data, levels, ticks_per_ck, where)
    timing = _resolve_timing(_require(data, "timing", where), float(tCK_ns), where)
    constraints = _parse_constraints(data, levels, commands, timing, ticks_per_ck, where)
    refresh = _parse_refresh(data, commands, constraints, timing, where)
    constraints += _bus_constraints(data, levels, commands, where)
    requests = _parse_requests(data, commands, where)
    latencies = {key: evaluate_latency(data[key], timing, f"{where}: {key}") if key in data else 0.0
                 for key in ("read_latency", "write_latency")}
    _check_window_bus_lengths(constraints, commands, where)
    return Standard(
        name=name,
        source=str(data.get("source", "")),
        tCK_ns=float(tCK_ns),
        ticks_per_ck=ticks_per_ck,
        levels=tuple(levels),
        fanout=org.fanout,
        rows=org.rows,
        columns=org.columns,
        column_bytes=org.column_bytes,
        commands=tuple(commands),
        timing=timing,
        constraints=tuple(constraints),
        read_command=requests.get("read"),
        write_command=requests.get("write"),
        read_latency_ck=latencies["read_latency"],
        write_latency_ck=latencies["write_latency"],
        refresh_command=refresh.command,
        refresh_scope=refresh.scope,
        refresh_interval=refresh.interval,
    )


def _parse_levels(data: Mapping[str, Any], where: str) -> list[str]:
    levels = _require(data, "levels", where)
    if not isinstance(levels, list) or not levels or not all(isinstance(x, str) for x in levels):
        raise StandardError(f"{where}: 'levels' must be a non-empty list of names")
    if len(set(levels)) != len(levels):
        raise StandardError(f"{where}: 'levels' has duplicates: {levels}")
    # The engine keeps row-buffer state per node of the last level.
    if levels[-1] != "bank":
        raise StandardError(f"{where}: the last level must be 'bank', got {levels[-1]!r}")
    return levels


def _parse_organization(data: Mapping[str, Any], levels: list[str], where: str) -> _Organization:
    org = _require(data, "organization", where)
    if not isinstance(org, Mapping):
        raise StandardError(f"{where}: 'organization' must be a mapping")
    w = f"{where}: organization"
    _check_keys(org, set(levels) | set(ORG_EXTRA_KEYS), w)

    def size(key: str) -> int:
        return _positive_int(_require(org, key, w), f"{w}.{key}")

    return _Organization(fanout=tuple(size(lv) for lv in levels), rows=size("rows"),
                         columns=size("columns"), column_bytes=size("column_bytes"))


# ---- commands


def _parse_commands(data: Mapping[str, Any], levels: list[str], ticks_per_ck: int, where: str) -> list[Command]:
    raw_cmds = _require(data, "commands", where)
    if not isinstance(raw_cmds, Mapping) or not raw_cmds:
        raise StandardError(f"{where}: 'commands' must be a non-empty mapping of name -> metadata")
    commands = []
    for cname, meta in raw_cmds.items():
        w = f"{where}: command {cname!r}"
        cmd = _parse_command(str(cname), meta, levels, w)
        _check_command(cmd, ticks_per_ck, w)
        commands.append(cmd)
    return commands


def _parse_command(name: str, meta: Any, levels: list[str], w: str) -> Command:
    """One command's metadata as declared; an empty entry takes every default of :class:`Command`."""
    meta = meta or {}
    if not isinstance(meta, Mapping):
        raise StandardError(f"{w}: metadata must be a mapping")
    _check_keys(meta, _COMMAND_KEYS, w)
    scope = _require(meta, "scope", w)
    if scope not in levels:
        raise StandardError(f"{w}: scope {scope!r} is not a level; levels: {', '.join(levels)}")
    return Command(
        name=name,
        scope=scope,
        opens_row=bool(meta.get("opens_row", False)),
        closes_row=bool(meta.get("closes_row", False)),
        access=meta.get("access", "none"),
        refreshes=bool(meta.get("refreshes", False)),
        needs=meta.get("needs", "any"),
        bus=meta.get("bus", "row"),
        issue_ticks=meta.get("issue_ticks", "any"),
        pim=bool(meta.get("pim", False)),
        cycles=meta.get("cycles", 1),
    )


def _check_command(cmd: Command, ticks_per_ck: int, w: str) -> None:
    """A command's metadata must be one the engine can act on, and consistent with itself."""
    cycles = cmd.cycles
    if isinstance(cycles, bool) or not isinstance(cycles, (int, float)) or cycles <= 0 or \
            _off_tick_grid(cycles, ticks_per_ck):
        raise StandardError(f"{w}: cycles must be a positive whole number of ticks "
                            f"(1/{ticks_per_ck} CK), got {cycles!r}")
    for attr, allowed in (("access", ACCESS_KINDS), ("needs", NEEDS_KINDS), ("bus", BUSES),
                          ("issue_ticks", ISSUE_TICKS)):
        if getattr(cmd, attr) not in allowed:
            raise StandardError(f"{w}: {attr} {getattr(cmd, attr)!r} is not one of {', '.join(allowed)}")
    if cmd.opens_row and cmd.closes_row:
        raise StandardError(f"{w}: a command cannot both open and close a row")
    if cmd.opens_row and cmd.needs not in ("closed", "closed_or_row"):
        raise StandardError(f"{w}: a command that opens a row needs its banks closed (needs: closed or "
                            "closed_or_row)")
    if cmd.needs == "closed_or_row" and not cmd.opens_row:
        raise StandardError(f"{w}: needs: closed_or_row is for a command that opens a row (opens_row: true)")
    if cmd.access != "none" and cmd.needs != "open":
        raise StandardError(f"{w}: a command that accesses data needs an open row (needs: open)")
    # With one tick per CK there is no sub-CK phase to choose.
    if ticks_per_ck == 1 and cmd.issue_ticks != "any":
        raise StandardError(f"{w}: issue_ticks {cmd.issue_ticks!r} needs ticks_per_ck > 1")


def _off_tick_grid(ck: float, ticks_per_ck: int) -> bool:
    """`ck` CK is not a whole number of engine ticks (1.5 CK at 2 ticks per CK is; float noise aside)."""
    return abs(ck * ticks_per_ck - round(ck * ticks_per_ck)) > 1e-9


# ---- timing constraints


def _parse_constraints(data: Mapping[str, Any], levels: list[str], commands: list[Command],
                       timing: Mapping[str, float], ticks_per_ck: int, where: str) -> list[Constraint]:
    raw_cons = _require(data, "constraints", where)
    if not isinstance(raw_cons, list):
        raise StandardError(f"{where}: 'constraints' must be a list of records")
    names = [c.name for c in commands]
    return [_parse_constraint(rec, levels, names, timing, ticks_per_ck, f"{where}: constraint #{i}")
            for i, rec in enumerate(raw_cons)]


def _parse_constraint(rec: Any, levels: list[str], names: list[str], timing: Mapping[str, float],
                      ticks_per_ck: int, w: str) -> Constraint:
    if not isinstance(rec, Mapping):
        raise StandardError(f"{w} must be a mapping")
    _check_keys(rec, _CONSTRAINT_KEYS, w)
    level = _require(rec, "level", w)
    if level not in levels:
        raise StandardError(f"{w}: level {level!r} is not one of {', '.join(levels)}")
    prev = _command_list(rec, "prev", names, w)
    next_ = _command_list(rec, "next", names, w)
    # From here on the message names the rule, not just its position in the list.
    w = f"{w} ({'/'.join(prev)} -> {'/'.join(next_)} at {level})"
    window, sibling = _window_and_sibling(rec, level, levels, w)
    if "latency" not in rec or rec["latency"] is None:
        raise StandardError(f"{w}: missing latency")
    lat = evaluate_latency(rec["latency"], timing, w)
    if lat < 0:
        raise StandardError(f"{w}: latency {rec['latency']!r} evaluates to {lat}, must be >= 0")
    if _off_tick_grid(lat, ticks_per_ck):
        raise StandardError(
            f"{w}: latency {rec['latency']!r} = {lat} CK is not a whole number of ticks "
            f"({ticks_per_ck} per CK)"
        )
    return Constraint(level=level, prev=prev, next=next_, latency=str(rec["latency"]),
                      window=window, sibling=sibling, latency_ck=lat)


def _command_list(rec: Mapping[str, Any], key: str, names: list[str], w: str) -> tuple[str, ...]:
    """A record's ``prev`` or ``next``: one command name or a non-empty list of them."""
    value = _require(rec, key, w)
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not value:
        raise StandardError(f"{w}: {key!r} must be a command name or a non-empty list of them")
    for c in value:
        if c not in names:
            raise StandardError(f"{w}: {key} names unknown command {c!r}; commands: {', '.join(names)}")
    return tuple(value)


def _window_and_sibling(rec: Mapping[str, Any], level: str, levels: list[str], w: str) -> tuple[int, bool]:
    if "window" in rec and rec["window"] is None:
        raise StandardError(f"{w}: 'window' needs a count of preceding commands (e.g. 4 for tFAW)")
    window = _positive_int(rec.get("window", 1), f"{w}: window")
    sibling = rec.get("sibling", False)
    if not isinstance(sibling, bool):
        raise StandardError(f"{w}: sibling must be true or false, got {sibling!r}")
    if sibling and level == levels[0]:
        raise StandardError(f"{w}: the top level {level!r} has no siblings")
    # The engine keeps a window's ring per node, not per pair of siblings.
    if sibling and window > 1:
        raise StandardError(f"{w}: windowed rules between siblings are not supported")
    return window, sibling


def _bus_constraints(data: Mapping[str, Any], levels: list[str], commands: list[Command],
                     where: str) -> list[Constraint]:
    """Each bus carries one command at a time: a command blocks its bus for its own length. With a
    shared command bus (one command per cycle, as GDDR6-AiM's controller issues), row and column
    commands block each other too."""
    command_bus = data.get("command_bus", "split")
    if command_bus not in ("split", "shared"):
        raise StandardError(f"{where}: command_bus must be 'split' or 'shared', got {command_bus!r}")
    if command_bus == "split":
        buses = {bus: [c for c in commands if c.bus == bus] for bus in BUSES}
    else:
        buses = {"command": list(commands)}
    constraints = []
    for bus, on_bus in buses.items():
        # one record per bus length, so each can be measured from the start of a command of that length
        for length in sorted({c.cycles for c in on_bus}):
            constraints.append(Constraint(
                level=levels[0], prev=tuple(c.name for c in on_bus if c.cycles == length),
                next=tuple(c.name for c in on_bus), latency=f"{bus} bus: {length} CK", latency_ck=float(length),
                measured="start"))
    return constraints


def _check_window_bus_lengths(constraints: list[Constraint], commands: list[Command], where: str) -> None:
    """Windowed rules count their preceding commands in one ring, so those must share one bus length."""
    cycles = {c.name: c.cycles for c in commands}
    for con in constraints:
        if con.window > 1 and len({cycles[p] for p in con.prev}) > 1:
            raise StandardError(f"{where}: windowed rule {'/'.join(con.prev)} -> {'/'.join(con.next)} mixes "
                                "commands of different bus lengths")


# ---- refresh and requests


def _parse_refresh(data: Mapping[str, Any], commands: list[Command], constraints: list[Constraint],
                   timing: Mapping[str, float], where: str) -> _Refresh:
    refresh = data.get("refresh")
    if refresh is None:
        return _Refresh()
    w = f"{where}: refresh"
    if not isinstance(refresh, Mapping):
        raise StandardError(f"{w} must be a mapping with command and interval")
    _check_keys(refresh, {"command", "interval"}, w)
    ref_cmd = _require(refresh, "command", w)
    names = [c.name for c in commands]
    if ref_cmd not in names:
        raise StandardError(f"{w}: unknown command {ref_cmd!r}")
    command = commands[names.index(ref_cmd)]
    if not command.refreshes:
        raise StandardError(f"{w}: command {ref_cmd!r} is not declared with refreshes: true")
    interval = _require(refresh, "interval", w)
    if interval not in timing:
        raise StandardError(f"{w}: interval {interval!r} is not a timing; timings: {', '.join(sorted(timing))}")
    if timing[interval] <= 0:
        raise StandardError(f"{w}: interval {interval} must be positive")
    recovery = max((c.latency_ck for c in constraints if ref_cmd in c.prev), default=0.0)
    if timing[interval] <= recovery:
        raise StandardError(
            f"{w}: interval {interval} = {timing[interval]:g} CK must be longer than the "
            f"refresh's own recovery ({recovery:g} CK), or refreshes never catch up")
    return _Refresh(command=ref_cmd, scope=command.scope, interval=interval)


def _parse_requests(data: Mapping[str, Any], commands: list[Command], where: str) -> Mapping[str, str]:
    """``requests``: the command that serves a read request and the one that serves a write."""
    requests = data.get("requests") or {}
    if not isinstance(requests, Mapping):
        raise StandardError(f"{where}: 'requests' must map read/write to command names")
    _check_keys(requests, {"read", "write"}, f"{where}: requests")
    for kind, cname in requests.items():
        c = next((c for c in commands if c.name == cname), None)
        if c is None or c.access != kind:
            raise StandardError(f"{where}: requests.{kind} must name a command with access: {kind}, got {cname!r}")
    return requests
