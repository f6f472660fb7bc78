"""Reference request controller in plain Python, ticking every tick and every channel.

It implements the controller policy of ``sieve._core.controller`` in the most direct way (no cached
commands, no skipped ticks) on a fresh compiled timing engine, whose own rules are checked separately
against the reference timing model. Used to check the compiled controller on small traces.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sieve.dram import Device


@dataclass
class Req:
    idx: int
    write: bool
    addr: tuple
    row: int
    col: int
    key: int
    arrive: int = -1
    complete: int = -1
    outcome: str = ""


def run_reference(device: Device, addr: np.ndarray, row, col, is_write, key, *, queue_size: int = 32,
                  refresh: bool = False, wr_high: float = 0.8, wr_low: float = 0.2,
                  write_done_at_issue: bool = True):
    std = device.standard
    t = device.tables
    eng = device.engine(logging=True)
    names = std.command_names
    cmd_of = {n: i for i, n in enumerate(names)}
    bus = {n: std.command(n).bus for n in names}
    nch = std.fanout[0]
    reqs = [Req(i, bool(is_write[i]), tuple(int(x) for x in addr[i]), int(row[i]), int(col[i]), int(key[i]))
            for i in range(len(addr))]
    readq = [[] for _ in range(nch)]
    writeq = [[] for _ in range(nch)]
    active = [[] for _ in range(nch)]
    prio = [[] for _ in range(nch)]
    write_mode = [False] * nch
    read_depart = [0] * nch  # completion of the last RD issued: reads complete in FIFO order
    active_per_bank: dict[tuple, int] = {}
    ref_levels = std.levels.index(std.refresh_scope) + 1 if refresh else 0
    ref_nodes = [n for n in np.ndindex(*std.fanout[:ref_levels])] if refresh else []
    interval = t.refresh_interval_ticks
    L = len(std.levels)

    def final(r: Req) -> str:
        return std.write_command if r.write else std.read_command

    def next_cmd(r: Req) -> str:
        return names[eng.required_first(cmd_of[final(r)], r.addr, r.row)]

    def ready(cmd: str, a, clk: int) -> bool:
        return eng.earliest(cmd_of[cmd], a, clk) == clk

    def banks_under(cmd: str, a) -> list[tuple]:
        s = std.levels.index(std.command(cmd).scope)
        return [tuple(a[: s + 1]) + tail for tail in np.ndindex(*std.fanout[s + 1:])]

    def closes_active(cmd: str, a) -> bool:
        return std.command(cmd).closes_row and any(active_per_bank.get(b, 0) for b in banks_under(cmd, a))

    def fr_fcfs(buf, slot: str, clk: int):
        best = None
        for r in buf:
            cmd = next_cmd(r)
            if bus[cmd] != slot or closes_active(cmd, r.addr) or not ready(cmd, r.addr, clk):
                continue
            if best is None or r.arrive < best[0].arrive:
                best = (r, cmd)
        return best

    def set_write_mode(ch: int) -> None:
        if not write_mode[ch]:
            if len(writeq[ch]) > wr_high * queue_size or not readq[ch]:
                write_mode[ch] = True
        elif len(writeq[ch]) < wr_low * queue_size and readq[ch]:
            write_mode[ch] = False

    def rw(ch: int):
        set_write_mode(ch)
        return writeq[ch] if write_mode[ch] else readq[ch]

    def issue(ch: int, r: Req, cmd: str, buf, clk: int) -> None:
        bank = r.addr
        if not r.outcome:
            open_row = eng.open_rows()[np.ravel_multi_index(bank, std.fanout)]
            r.outcome = "hit" if open_row == r.row else ("conflict" if open_row >= 0 else "miss")
        eng.issue_at(cmd_of[cmd], r.addr, clk, r.row, r.col, True)
        if cmd == final(r):
            buf.remove(r)
            if buf is active[ch]:
                active_per_bank[bank] -= 1
            if r.write:
                r.complete = clk if write_done_at_issue else clk + t.write_latency_ticks
            else:
                r.complete = clk + t.read_latency_ticks
                read_depart[ch] = r.complete
        elif std.command(cmd).opens_row:
            buf.remove(r)
            active[ch].append(r)
            active_per_bank[bank] = active_per_bank.get(bank, 0) + 1

    def try_refresh(ch: int, slot: str, clk: int) -> bool:
        node = prio[ch][0]
        a = tuple(node) + (0,) * (L - len(node))
        cmd = names[eng.required_first(t.refresh_cmd, a, 0)]
        if bus[cmd] != slot or closes_active(cmd, a) or not ready(cmd, a, clk):
            return False
        eng.issue_at(cmd_of[cmd], a, clk, 0, 0, True)
        if cmd_of[cmd] == t.refresh_cmd:
            prio[ch].pop(0)
        return True

    def offer(r: Req, clk: int) -> bool:
        ch = r.addr[0]
        if any(w.key == r.key for w in writeq[ch]):
            r.arrive = clk
            r.complete = clk if r.write else max(clk + 1, read_depart[ch])
            r.outcome = "merged" if r.write else "forwarded"
            return True
        q = writeq[ch] if r.write else readq[ch]
        if len(q) >= queue_size:
            return False
        r.arrive = clk
        q.append(r)
        return True

    clk = 0
    nxt = 0
    while True:
        while nxt < len(reqs) and offer(reqs[nxt], clk):
            nxt += 1
        if nxt == len(reqs) and not any(readq[c] or writeq[c] or active[c] for c in range(nch)) \
                and (not refresh or clk >= max(r.complete for r in reqs)):
            break
        clk += 1
        for ch in range(nch):
            if refresh and clk % interval == 0:
                prio[ch].extend(n for n in ref_nodes if n[0] == ch)
            # column slot
            pick = fr_fcfs(active[ch], "column", clk)
            if pick:
                issue(ch, pick[0], pick[1], active[ch], clk)
            elif prio[ch]:
                try_refresh(ch, "column", clk)
            else:
                buf = rw(ch)
                pick = fr_fcfs(buf, "column", clk)
                if pick:
                    issue(ch, pick[0], pick[1], buf, clk)
            # row slot
            if prio[ch]:
                try_refresh(ch, "row", clk)
            else:
                buf = rw(ch)
                pick = fr_fcfs(buf, "row", clk)
                if pick:
                    issue(ch, pick[0], pick[1], buf, clk)
    return reqs, device.log_of(eng)
