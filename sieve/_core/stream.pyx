"""Command-stream executor: commands issued in order per channel, each at its earliest legal tick.

Used directly for PIM command streams. Policy, shared with the reference model in the tests:

* Commands to one channel issue in stream order (a command never issues before the previous
  command of its channel); channels are independent.
* With ``auto_prereq``, a command whose banks are in the wrong row state is preceded by the command
  the engine names (ACT for a closed bank, PRE/PREA for a conflict); without it that is an error.
* With refresh on, every refresh node (e.g. pseudo-channel) is due every ``interval`` ticks starting at
  ``interval``. Before a command of a channel would issue at or after the due tick of one of that
  channel's refresh nodes, the most overdue node is refreshed first (its banks closed, then REF,
  neither before the due tick); then the command is considered again from scratch.
"""

from libc.stdint cimport int64_t

from sieve._core.engine cimport TimingEngine, MAX_LEVELS

import numpy as np

cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef class _RefreshState:
    cdef int64_t[::1] due            # [nodes at refresh level]
    cdef int level
    cdef int cmd
    cdef int64_t interval
    cdef int64_t per_channel          # refresh nodes per channel

    def __init__(self, TimingEngine eng, int cmd, int level, int64_t interval, bint enabled):
        self.cmd = cmd if enabled else -1
        self.level = level
        self.interval = interval
        nodes = 1
        for l in range(level + 1):
            nodes *= eng.fanout[l]
        self.per_channel = nodes // eng.fanout[0] if enabled else 0
        self.due = np.full(max(nodes, 1) if enabled else 1, interval, dtype=np.int64)


cdef int _most_overdue(_RefreshState rs, int64_t channel, int64_t tick, int64_t* node) noexcept nogil:
    """Find the refresh node of `channel` with the smallest due tick <= `tick`; return 1 if any."""
    cdef int64_t n, best = -1
    cdef int64_t first = channel * rs.per_channel
    for n in range(first, first + rs.per_channel):
        if rs.due[n] <= tick and (best < 0 or rs.due[n] < rs.due[best]):
            best = n
    node[0] = best
    return best >= 0


cdef void _node_addr(TimingEngine eng, int level, int64_t node, int64_t* addr) noexcept nogil:
    cdef int l
    for l in range(eng.num_levels - 1, -1, -1):
        addr[l] = 0
    for l in range(level, -1, -1):
        addr[l] = node % eng.fanout[l]
        node = node // eng.fanout[l]


cdef int64_t _refresh(TimingEngine eng, _RefreshState rs, int64_t node, int64_t floor) noexcept nogil:
    """Close the node's banks if needed, then REF; nothing before the due tick. Returns the last tick."""
    cdef int64_t addr[MAX_LEVELS]
    cdef int p
    cdef int64_t t
    _node_addr(eng, rs.level, node, addr)
    floor = imax(floor, rs.due[node])
    while True:
        p = eng.prerequisite(rs.cmd, addr, 0)
        t = eng.earliest_at_or_after(p, addr, floor)
        eng.apply(p, addr, 0, 0, t)
        floor = t
        if p == rs.cmd:
            break
    rs.due[node] += rs.interval
    return floor


# execute() status codes beyond the row states of the engine (1..3)
cdef enum:
    _BAD_COMMAND = 100
    _BAD_ROW = 101
    _BAD_COLUMN = 102
    _BAD_LEVEL = 200  # + level index

BAD_COMMAND = _BAD_COMMAND
BAD_ROW = _BAD_ROW
BAD_COLUMN = _BAD_COLUMN
BAD_LEVEL = _BAD_LEVEL


def execute(TimingEngine eng, const int64_t[::1] cmds, const int64_t[:, ::1] addrs,
            const int64_t[::1] rows, const int64_t[::1] cols, int64_t[::1] out_ticks,
            bint auto_prereq, _RefreshState refresh, int64_t num_rows, int64_t num_cols,
            int64_t[::1] floor):
    """Run the stream. Returns (0, -1) on success, or (status, index) for the first bad command: an
    engine row state (1..3) when `auto_prereq` is off, or one of the BAD_* codes. Commands before it
    have been executed. `floor` holds, per channel, the tick before which nothing may issue; it is
    left at each channel's last issue tick, so consecutive calls continue one in-order stream."""
    cdef int64_t n = cmds.shape[0]
    cdef int L = eng.num_levels
    cdef int64_t i, t, node, ch
    cdef int c, p, l, state
    cdef int64_t addr[MAX_LEVELS]
    cdef bint do_refresh = refresh.cmd >= 0
    cdef int status = 0
    cdef int64_t bad = -1
    with nogil:
        for i in range(n):
            c = <int>cmds[i]
            if c < 0 or c >= eng.num_commands:
                status = _BAD_COMMAND
            elif rows[i] < 0 or rows[i] >= num_rows:
                status = _BAD_ROW
            elif cols[i] < 0 or cols[i] >= num_cols:
                status = _BAD_COLUMN
            else:
                for l in range(L):
                    if l <= eng.cmd_scope[c] and (addrs[i, l] < 0 or addrs[i, l] >= eng.fanout[l]):
                        status = _BAD_LEVEL + l
                        break
                    addr[l] = addrs[i, l] if addrs[i, l] >= 0 else 0
            if status != 0:
                bad = i
                break
            ch = addr[0]
            while True:
                p = eng.prerequisite(c, addr, rows[i])
                if p != c and not auto_prereq:
                    status = eng.row_state(c, addr, rows[i])
                    bad = i
                    break
                t = eng.earliest_at_or_after(p, addr, floor[ch])
                if do_refresh and _most_overdue(refresh, ch, t, &node):
                    floor[ch] = _refresh(eng, refresh, node, floor[ch])
                    continue
                eng.apply(p, addr, rows[i], cols[i], t)
                floor[ch] = t
                if p == c:
                    out_ticks[i] = t
                    break
            if status != 0:
                break
    return status, bad
