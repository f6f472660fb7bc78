"""The timing engine: per-node earliest-issue ticks, windowed rules, per-bank row state.

The engine has no clock of its own: callers pass the tick at which they issue a command. It answers
two separate questions, ``earliest`` ("when may this command issue, timing-wise?") and
``prerequisite`` ("which command must come before it, given the row buffers?"), and applies a command
with ``issue``. All tables come from :func:`sieve.dram.resolve.resolve`.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport malloc, calloc, realloc, free
from libc.string cimport memcpy, memset

import weakref

import numpy as np

cdef extern from *:
    """
    #define SIEVE_NO_RULE (-(INT64_C(1) << 62))
    """
    # a dense row's latency where the command precedes no rule: tick + NO_RULE is below every ready tick
    const int64_t NO_RULE "SIEVE_NO_RULE"

ROW_STATES = {ROW_OK: "ok", ROW_CLOSED: "closed", ROW_CONFLICT: "conflict", ROW_MUST_CLOSE: "must_close"}

cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef _copy(const int64_t* src, int64_t n):
    """A new int64 array holding src[0:n]."""
    out = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] view = out
    if n > 0:
        memcpy(&view[0], src, n * sizeof(int64_t))
    return out


# Spare state tables. A run makes a fresh engine and drops it at the end; freeing its two largest tables
# would return their pages to the system and a new engine of the same device would fault them in again,
# which costs more than a short run itself. Up to SPARES freed tables of at most SPARE_MAX bytes are kept
# for the next engine that needs one of that size. A spare holds zeros: its engine zeroes what it wrote
# (the nodes of the channels it drove, often few) when it lets the table go, while that part is in cache.
DEF SPARES = 4
DEF SPARE_MAX = 1 << 22
cdef void* _spare_ptr[SPARES]
cdef size_t _spare_size[SPARES]


cdef int64_t* _zeroed_table(size_t n) except NULL:
    """A table of n int64 zeros, a spare of that size if there is one."""
    cdef size_t size = (n if n > 0 else 1) * sizeof(int64_t)
    cdef void* p
    cdef int i
    for i in range(SPARES):
        if _spare_ptr[i] != NULL and _spare_size[i] == size:
            p = _spare_ptr[i]
            _spare_ptr[i] = NULL
            return <int64_t*>p
    p = calloc(n if n > 0 else 1, sizeof(int64_t))
    if p == NULL:
        raise MemoryError()
    return <int64_t*>p


def free_spare_tables():
    """Free the state tables kept for later engines (a process that is done with engines can give the
    memory back; the next engine then allocates afresh)."""
    cdef int i
    for i in range(SPARES):
        free(_spare_ptr[i])
        _spare_ptr[i] = NULL


cdef int _spare_slot(size_t n) noexcept:
    """Where a released table of n int64 would be kept, -1: nowhere (too large, or no room)."""
    cdef int i
    if (n if n > 0 else 1) * sizeof(int64_t) <= SPARE_MAX:
        for i in range(SPARES):
            if _spare_ptr[i] == NULL:
                return i
    return -1


# What derives from a `Tables` object alone, per object while it lives: an engine without state whose
# views and rules the engines made from those tables share (acquiring ~20 views and laying out the
# rules costs more than the rest of a short run's engine set-up). Tables keep read-only arrays.
_PREPARED = {}  # id(tables) -> the engine prepared from them (dropped with them)


cdef TimingEngine _prepared(tables):
    cdef object key = id(tables)
    cdef TimingEngine engine = _PREPARED.get(key)
    if engine is not None and engine.tables_ref() is tables:
        return engine
    engine = TimingEngine.__new__(TimingEngine)
    engine._read_tables(tables)
    engine.tables_ref = weakref.ref(tables, lambda _, key=key: _PREPARED.pop(key, None))
    _PREPARED[key] = engine
    return engine


cdef class TimingEngine:

    def __cinit__(self):
        self.log_tick = NULL
        self.log_cmd = NULL
        self.log_addr = NULL
        self.log_row = NULL
        self.log_col = NULL
        self.log_len = 0
        self.log_cap = 0
        self.log_failed = False
        self.rules = NULL
        self.rule_start = NULL
        self.own_end = NULL
        self.win_levels = NULL
        self.ready_p = NULL
        self.node_count_p = NULL
        self.touched = NULL
        self.touched_all = False
        self.below_levels = NULL
        self.dense_start = NULL
        self.dense_level = NULL
        self.dense_lat = NULL
        self.owns_rules = False

    def __dealloc__(self):
        self._release_state(self.ready_p)
        self._release_state(self.node_count_p)
        free(self.touched)
        if self.owns_rules:
            free(self.rules)
            free(self.rule_start)
            free(self.own_end)
            free(self.win_levels)
            free(self.below_levels)
            free(self.dense_start)
            free(self.dense_level)
            free(self.dense_lat)
        free(self.log_tick)
        free(self.log_cmd)
        free(self.log_addr)
        free(self.log_row)
        free(self.log_col)

    def __init__(self, tables, bint logging=True):
        """A fresh engine (all banks closed, no history) over `tables` (:func:`sieve.dram.resolve.resolve`).
        What derives from the tables alone (views of them, the rules laid out per command) is prepared
        once per tables object and shared by its engines."""
        self._take_tables(_prepared(tables))
        self.ring = np.zeros(max(self.ring_len, 1), dtype=np.int64)
        self.ring_count = np.zeros(max(self.ring_count_len, 1), dtype=np.int64)
        self.ready_p = _zeroed_table(self.total_nodes * self.num_commands)
        self.ready = <int64_t[:self.total_nodes * self.num_commands]>self.ready_p
        self.open_row = np.full(self.num_banks, -1, dtype=np.int64)
        self.opened_at = np.zeros(self.num_banks, dtype=np.int64)
        self.node_count_p = _zeroed_table(self.total_nodes * self.num_commands)
        self.touched = <unsigned char*>calloc(self.level_count[0], 1)
        if self.touched == NULL:
            raise MemoryError()
        self.node_cmd_count = <int64_t[:self.total_nodes * self.num_commands]>self.node_count_p
        self.bank_open_ticks = np.zeros(self.num_banks, dtype=np.int64)
        self.cmd_total = np.zeros(self.num_commands, dtype=np.int64)
        self.logging = logging
        self.last_tick = 0

    cdef int _read_tables(self, tables) except -1:
        """The part of an engine that derives from its tables alone (see `_prepared`)."""
        cdef int l, w
        self.num_levels = len(tables.fanout)
        if self.num_levels > MAX_LEVELS:
            raise ValueError(f"at most {MAX_LEVELS} levels are supported, got {self.num_levels}")
        self.num_commands = len(tables.cmd_scope)
        self.ticks_per_ck = tables.ticks_per_ck
        cdef int64_t count = 1
        cdef int64_t offset = 0
        for l in range(self.num_levels):
            self.fanout[l] = tables.fanout[l]
            count *= self.fanout[l]
            self.level_count[l] = count
            self.level_offset[l] = offset
            offset += count
        self.total_nodes = offset
        self.num_banks = count
        for l in range(self.num_levels):
            self.span_below[l] = self.num_banks // self.level_count[l]
        self.cmd_scope = tables.cmd_scope
        self.cmd_opens = tables.cmd_opens
        self.cmd_closes = tables.cmd_closes
        self.cmd_access = tables.cmd_access
        self.cmd_needs = tables.cmd_needs
        self.cmd_phase = tables.cmd_phase
        self.cmd_opener = tables.cmd_opener
        self.cmd_closer = tables.cmd_closer
        self.cmd_next_levels = tables.cmd_next_levels
        self.ent_start = tables.ent_start
        self.ent_level = tables.ent_level
        self.ent_next = tables.ent_next
        self.ent_lat = tables.ent_lat
        self.ent_sibling = tables.ent_sibling
        self.win_level = tables.win_level
        self.win_size = tables.win_size
        self.win_lat = tables.win_lat
        self.win_feed_start = tables.win_feed_start
        self.win_feed = tables.win_feed
        self.win_next_start = tables.win_next_start
        self.win_next = tables.win_next
        nwin = len(tables.win_level)
        ring_offset = np.zeros(nwin, dtype=np.int64)
        count_offset = np.zeros(nwin, dtype=np.int64)
        self.ring_len = 0
        self.ring_count_len = 0
        for w in range(nwin):
            ring_offset[w] = self.ring_len
            count_offset[w] = self.ring_count_len
            self.ring_len += self.level_count[tables.win_level[w]] * tables.win_size[w]
            self.ring_count_len += self.level_count[tables.win_level[w]]
        self.win_ring_offset = ring_offset
        self.win_count_offset = count_offset
        self._gather_own_rules()
        self.owns_rules = True
        return 0

    cdef void _take_tables(self, TimingEngine prepared) noexcept:
        """Share what `prepared` (see `_prepared`) derived from the tables: sizes, views and rules."""
        cdef int l
        self.prepared = prepared
        self.num_levels, self.num_commands, self.ticks_per_ck = prepared.num_levels, prepared.num_commands, prepared.ticks_per_ck
        self.num_banks, self.total_nodes = prepared.num_banks, prepared.total_nodes
        for l in range(MAX_LEVELS):
            self.fanout[l], self.level_count[l] = prepared.fanout[l], prepared.level_count[l]
            self.level_offset[l], self.span_below[l] = prepared.level_offset[l], prepared.span_below[l]
        self.cmd_scope = prepared.cmd_scope
        self.cmd_opens = prepared.cmd_opens
        self.cmd_closes = prepared.cmd_closes
        self.cmd_access = prepared.cmd_access
        self.cmd_needs = prepared.cmd_needs
        self.cmd_phase = prepared.cmd_phase
        self.cmd_opener = prepared.cmd_opener
        self.cmd_closer = prepared.cmd_closer
        self.cmd_next_levels = prepared.cmd_next_levels
        self.ent_start = prepared.ent_start
        self.ent_level = prepared.ent_level
        self.ent_next = prepared.ent_next
        self.ent_lat = prepared.ent_lat
        self.ent_sibling = prepared.ent_sibling
        self.win_level = prepared.win_level
        self.win_size = prepared.win_size
        self.win_lat = prepared.win_lat
        self.win_feed_start = prepared.win_feed_start
        self.win_feed = prepared.win_feed
        self.win_next_start = prepared.win_next_start
        self.win_next = prepared.win_next
        self.win_ring_offset = prepared.win_ring_offset
        self.win_count_offset = prepared.win_count_offset
        self.ring_len, self.ring_count_len = prepared.ring_len, prepared.ring_count_len
        self.rules, self.rule_start, self.own_end = prepared.rules, prepared.rule_start, prepared.own_end
        self.win_levels, self.below_levels = prepared.win_levels, prepared.below_levels
        self.dense_start, self.dense_level, self.dense_lat = prepared.dense_start, prepared.dense_level, prepared.dense_lat
        self.owns_rules = False

    cdef void _release_state(self, int64_t* table) noexcept:
        """Let a state table go: kept as a spare, zeroed where this engine wrote it, or freed."""
        cdef size_t n = self.total_nodes * self.num_commands
        cdef int i = _spare_slot(n)
        if table == NULL:
            return
        if i < 0:
            free(table)
            return
        self._clear_written(table)
        _spare_ptr[i] = table
        _spare_size[i] = (n if n > 0 else 1) * sizeof(int64_t)

    cdef void _clear_written(self, int64_t* table) noexcept:
        """Zero what the engine may have written in a state table: the nodes under the first-level nodes
        its commands were addressed to (`apply` notes them), or the whole table once a sibling rule at
        the first level wrote to nodes other than the command's own."""
        cdef int64_t C = self.num_commands, top = self.level_count[0], per, ch
        cdef int l
        if self.touched == NULL or self.touched_all:
            memset(table, 0, self.total_nodes * C * sizeof(int64_t))
            return
        for ch in range(top):
            if self.touched[ch]:
                for l in range(self.num_levels):
                    per = self.level_count[l] // top
                    memset(&table[(self.level_offset[l] + ch * per) * C], 0, per * C * sizeof(int64_t))

    cdef int _gather_own_rules(self) except -1:
        """Lay out, command after command, the plain rules each command precedes at its scope and the
        levels above it (the nodes it is addressed to): first those acting at its own nodes, then its
        sibling rules; and note the levels where it feeds windows and the levels below its scope where
        it precedes rules or feeds windows.
        A level where a command precedes at least three quarters of all commands at its own node becomes
        a dense row (one pass over the node's ready ticks costs less than as many records there); its
        other rules (and sibling rules) become `Rule` records. Called from __init__."""
        cdef int C = self.num_commands, L = self.num_levels, c, l
        cdef int64_t n = 0, g
        free(self.rule_start)
        free(self.own_end)
        free(self.win_levels)
        free(self.below_levels)
        free(self.rules)
        free(self.dense_start)
        free(self.dense_level)
        free(self.dense_lat)
        cdef int64_t groups = max(C * L, 1)
        self.rule_start = <int64_t*>malloc((C + 1) * sizeof(int64_t))
        self.own_end = <int64_t*>malloc(max(C, 1) * sizeof(int64_t))
        self.win_levels = <int64_t*>malloc(max(C, 1) * sizeof(int64_t))
        self.below_levels = <int64_t*>malloc(max(C, 1) * sizeof(int64_t))
        self.rules = <Rule*>malloc(max(len(self.ent_next), 1) * sizeof(Rule))
        self.dense_start = <int64_t*>malloc((C + 1) * sizeof(int64_t))
        self.dense_level = <int64_t*>malloc(groups * sizeof(int64_t))
        self.dense_lat = <int64_t*>malloc(groups * max(C, 1) * sizeof(int64_t))
        if self.rule_start == NULL or self.own_end == NULL or self.win_levels == NULL or self.below_levels == NULL \
                or self.rules == NULL or self.dense_start == NULL or self.dense_level == NULL or self.dense_lat == NULL:
            raise MemoryError()
        self.dense_start[0] = 0
        for c in range(C):
            self.rule_start[c] = n
            n = self._gather_rules_of(c, n, False)
            self.own_end[c] = n
            n = self._gather_rules_of(c, n, True)
            self.win_levels[c] = 0
            for l in range(self.cmd_scope[c] + 1):
                g = c * L + l
                if self.win_feed_start[g + 1] > self.win_feed_start[g]:
                    self.win_levels[c] |= 1 << l
            self.below_levels[c] = 0
            for l in range(self.cmd_scope[c] + 1, L):
                g = c * L + l
                if self.ent_start[g + 1] > self.ent_start[g] or self.win_feed_start[g + 1] > self.win_feed_start[g]:
                    self.below_levels[c] |= 1 << l
        self.rule_start[C] = n
        return 0

    cdef int64_t _gather_rules_of(self, int c, int64_t n, bint siblings) noexcept:
        """Write command c's `Rule` records from rules[n] on, at its scope and above: its sibling rules,
        or else the rules at its own nodes (starting its dense rows, which follow those of command
        c - 1, and ending them at dense_start[c + 1]). Returns the next free record."""
        cdef int C = self.num_commands, L = self.num_levels, l
        cdef int64_t e, g, rows = self.dense_start[c]
        cdef bint dense
        for l in range(self.cmd_scope[c] + 1):
            g = c * L + l
            dense = not siblings and 4 * self._own_node_rules(g) >= 3 * C
            if dense:
                self._start_dense_row(rows, l)
                rows += 1
            for e in range(self.ent_start[g], self.ent_start[g + 1]):
                if (self.ent_sibling[e] != 0) != siblings:
                    continue
                if dense:
                    self.dense_lat[(rows - 1) * C + self.ent_next[e]] = self.ent_lat[e]
                    continue
                self.rules[n] = Rule(lat=self.ent_lat[e], level=l, next=self.ent_next[e])
                n += 1
        if not siblings:
            self.dense_start[c + 1] = rows
        return n

    cdef int64_t _own_node_rules(self, int64_t group) noexcept:
        """Rules of a (command, level) group that act at the command's own node (not sibling rules)."""
        cdef int64_t e, count = 0
        for e in range(self.ent_start[group], self.ent_start[group + 1]):
            count += self.ent_sibling[e] == 0
        return count

    cdef void _start_dense_row(self, int64_t row, int level) noexcept:
        cdef int64_t k
        self.dense_level[row] = level
        for k in range(self.num_commands):
            self.dense_lat[row * self.num_commands + k] = NO_RULE

    # ------------------------------------------------------------------------------------------
    # addressing

    cdef inline int64_t node_of(self, int level, const int64_t* addr) noexcept nogil:
        """Index of the node at `level` within that level (0 .. level_count-1)."""
        cdef int64_t idx = 0
        cdef int l
        for l in range(level + 1):
            idx = idx * self.fanout[l] + addr[l]
        return idx

    # ------------------------------------------------------------------------------------------
    # question 1: timing

    cdef int64_t timing_ready(self, int cmd, const int64_t* addr) noexcept nogil:
        """Earliest tick allowed by the timing rules alone (no bus phase, no row state)."""
        cdef int scope = self.cmd_scope[cmd]
        cdef int C = self.num_commands
        cdef const int64_t* ready = self.ready_p
        cdef int64_t t = 0
        cdef int64_t idx = 0, first, last, n
        cdef int l
        for l in range(scope + 1):
            idx = idx * self.fanout[l] + addr[l]
            t = imax(t, ready[(self.level_offset[l] + idx) * C + cmd])
        # A command over several banks (PREA, REF, all-bank PIM commands) must satisfy every node below it.
        first = idx
        last = idx + 1
        for l in range(scope + 1, self.num_levels):
            first *= self.fanout[l]
            last *= self.fanout[l]
            if not (self.cmd_next_levels[cmd] >> l) & 1:
                continue  # no rule at this level gates the command
            for n in range(first, last):
                t = imax(t, ready[(self.level_offset[l] + n) * C + cmd])
        return t

    cdef int64_t timing_ready_from(self, int cmd, const int64_t* addr, int64_t* slot) noexcept nogil:
        """`timing_ready`, and in `slot` the entry of the ready table that sets it (the highest level's on a
        tie), or -1 when nodes below the command's scope take part. Ready ticks only grow, so until
        that entry passes a tick the command stays illegal there, whatever the other levels say."""
        return ready_gate(self, cmd, addr, slot)

    cdef inline int64_t align(self, int cmd, int64_t tick) noexcept nogil:
        """Round `tick` up to a tick on which `cmd` may issue (column commands on the rising edge)."""
        return align_tick(self, cmd, tick)

    cdef int64_t earliest_at_or_after(self, int cmd, const int64_t* addr, int64_t floor) noexcept nogil:
        return self.align(cmd, imax(floor, self.timing_ready(cmd, addr)))

    # ------------------------------------------------------------------------------------------
    # question 2: row-buffer state

    cdef int row_state(self, int cmd, const int64_t* addr, int64_t row) noexcept nogil:
        """Needs (NEEDS_CODE): 1 open, 2 closed, 3 closed or holding `row` (an opener that may issue over
        banks already on its row). A command needing its row open whose open banks all hold that row,
        others closed, asks for its opener when the opener is of kind 3, else for a precharge first."""
        cdef int needs = self.cmd_needs[cmd]
        if needs == 0:
            return ROW_OK
        cdef int scope = self.cmd_scope[cmd]
        cdef int64_t first = self.node_of(scope, addr) * self.span_below[scope]
        cdef int64_t last = first + self.span_below[scope]
        cdef int64_t b, r
        cdef bint any_open = False, all_match = True, any_other = False
        for b in range(first, last):
            r = self.open_row[b]
            if r >= 0:
                any_open = True
                if r != row:
                    any_other = True
            if r != row:
                all_match = False
        if needs == 2:
            return ROW_MUST_CLOSE if any_open else ROW_OK
        if needs == 3:
            return ROW_MUST_CLOSE if any_other else ROW_OK
        if all_match:
            return ROW_OK
        if any_other:
            return ROW_CONFLICT
        if any_open and self.cmd_needs[self.cmd_opener[cmd]] != 3:
            return ROW_CONFLICT
        return ROW_CLOSED

    cdef int prerequisite(self, int cmd, const int64_t* addr, int64_t row) noexcept nogil:
        cdef int s = self.row_state(cmd, addr, row)
        if s == ROW_OK:
            return cmd
        if s == ROW_CLOSED:
            return self.cmd_opener[cmd]
        return self.cmd_closer[cmd]

    # ------------------------------------------------------------------------------------------
    # issuing

    cdef inline void _raise_ready(self, int64_t flat, int next_cmd, int64_t tick) noexcept nogil:
        cdef int64_t k = flat * self.num_commands + next_cmd
        if self.ready_p[k] < tick:
            self.ready_p[k] = tick

    cdef inline void _raise_rule(self, int level, int64_t node, int next_cmd, int64_t tick, bint sibling) noexcept nogil:
        """Raise `next_cmd`'s ready tick to `tick` at flat node `node` of `level` or, for a sibling rule, at
        the other nodes under the same parent."""
        if not sibling:
            self._raise_ready(node, next_cmd, tick)
            return
        self._raise_siblings(level, node, (node - self.level_offset[level]) % self.fanout[level], next_cmd, tick)

    cdef inline void _raise_siblings(self, int level, int64_t node, int64_t index, int next_cmd, int64_t tick) noexcept nogil:
        """Raise `next_cmd`'s ready tick to `tick` at the other children of the parent of flat node `node`
        of `level`, whose child `index` it is: flat nodes node - index .. node - index + fanout - 1."""
        cdef int64_t j, first = node - index
        if level == 0:
            self.touched_all = True  # other first-level nodes than the command's own
        for j in range(first, first + self.fanout[level]):
            if j != node:
                self._raise_ready(j, next_cmd, tick)

    cdef inline void _apply_own_rules(self, int cmd, const int64_t* addr, const int64_t* flat, int64_t tick) noexcept nogil:
        """Apply the plain rules `cmd` at `addr` precedes at its own nodes (levels 0 .. its scope) and its
        sibling rules; flat[l] is the flat id of its node at level l."""
        cdef const Rule* r = &self.rules[self.rule_start[cmd]]
        cdef const Rule* own_end = &self.rules[self.own_end[cmd]]
        cdef const Rule* end = &self.rules[self.rule_start[cmd + 1]]
        cdef int64_t* ready = self.ready_p
        cdef int64_t* node
        cdef const int64_t* lat
        cdef int64_t C = self.num_commands, k, t, v, d
        cdef int64_t base[MAX_LEVELS]
        cdef int l
        for l in range(self.cmd_scope[cmd] + 1):
            base[l] = flat[l] * C
        for d in range(self.dense_start[cmd], self.dense_start[cmd + 1]):
            node = &ready[base[self.dense_level[d]]]
            lat = &self.dense_lat[d * C]
            for k in range(C):
                t = tick + lat[k]
                if node[k] < t:
                    node[k] = t
        while r != own_end:
            k = base[r.level] + r.next
            t = tick + r.lat
            v = ready[k]
            ready[k] = t if t > v else v
            r += 1
        while r != end:
            self._raise_siblings(r.level, flat[r.level], addr[r.level], r.next, tick + r.lat)
            r += 1

    cdef void _apply_rules(self, int cmd, int level, int64_t idx, int64_t tick) noexcept nogil:
        """Apply every rule preceded by `cmd` at node `idx` of `level`."""
        cdef int64_t e
        cdef int64_t node = self.level_offset[level] + idx
        cdef int64_t group = cmd * self.num_levels + level
        for e in range(self.ent_start[group], self.ent_start[group + 1]):
            self._raise_rule(level, node, <int>self.ent_next[e], tick + self.ent_lat[e], self.ent_sibling[e] != 0)
        self._feed_windows(cmd, level, idx, tick)

    cdef void _feed_windows(self, int cmd, int level, int64_t idx, int64_t tick) noexcept nogil:
        """Push `tick` into the rings `cmd` feeds at node `idx` of `level`; a full ring gates its
        commands until its oldest tick plus the window's latency."""
        cdef int64_t w, wi, size, cnt, oldest, k, roff, coff
        cdef int64_t off = self.level_offset[level]
        cdef int64_t group = cmd * self.num_levels + level
        for wi in range(self.win_feed_start[group], self.win_feed_start[group + 1]):
            w = self.win_feed[wi]
            size = self.win_size[w]
            coff = self.win_count_offset[w] + idx
            roff = self.win_ring_offset[w] + idx * size
            cnt = self.ring_count[coff]
            self.ring[roff + cnt % size] = tick
            cnt += 1
            self.ring_count[coff] = cnt
            if cnt >= size:
                # the oldest of the last `size` commands is the slot that will be overwritten next
                oldest = self.ring[roff + cnt % size]
                for k in range(self.win_next_start[w], self.win_next_start[w + 1]):
                    self._raise_ready(off + idx, <int>self.win_next[k], oldest + self.win_lat[w])

    cdef int issue(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil:
        """Apply `cmd` at `tick`. Returns 0, or the row state that forbids it (the caller checked timing)."""
        cdef int s = self.row_state(cmd, addr, row)
        if s != ROW_OK:
            return s
        self.apply(cmd, addr, row, col, tick)
        return 0

    cdef void _apply_below(self, int cmd, int scope, int64_t idx, int64_t tick) noexcept nogil:
        """Apply the rules `cmd` (at node `idx` of its scope) precedes at every node below its scope."""
        cdef int64_t first = idx, last = idx + 1, n
        cdef int l
        for l in range(scope + 1, self.num_levels):
            first *= self.fanout[l]
            last *= self.fanout[l]
            if (self.below_levels[cmd] >> l) & 1:
                for n in range(first, last):
                    self._apply_rules(cmd, l, n, tick)

    cdef void _open_rows(self, int64_t first, int64_t last, int64_t row, int64_t tick) noexcept nogil:
        """Open `row` on banks first .. last - 1; a bank already on the row stays open since its own ACT."""
        cdef int64_t* open_row = &self.open_row[0]
        cdef int64_t* opened_at = &self.opened_at[0]
        cdef int64_t b
        for b in range(first, last):
            if open_row[b] < 0:
                opened_at[b] = tick
            open_row[b] = row

    cdef void _close_rows(self, int64_t first, int64_t last, int64_t tick) noexcept nogil:
        """Close banks first .. last - 1, counting the ticks each open one had its row open."""
        cdef int64_t* open_row = &self.open_row[0]
        cdef int64_t* opened_at = &self.opened_at[0]
        cdef int64_t* open_ticks = &self.bank_open_ticks[0]
        cdef int64_t b
        for b in range(first, last):
            if open_row[b] >= 0:
                open_ticks[b] += tick - opened_at[b]
                open_row[b] = -1

    cdef void apply(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil:
        """Apply `cmd` at `tick`, its row state known to be right: the command `prerequisite` named."""
        cdef int scope = self.cmd_scope[cmd]
        cdef int C = self.num_commands
        cdef int64_t idx = 0, first
        cdef int64_t flat[MAX_LEVELS]
        cdef int l
        for l in range(scope + 1):
            idx = idx * self.fanout[l] + addr[l]
            flat[l] = self.level_offset[l] + idx
        self.touched[addr[0]] = 1
        self._apply_own_rules(cmd, addr, flat, tick)
        if self.win_levels[cmd]:
            for l in range(scope + 1):
                if (self.win_levels[cmd] >> l) & 1:
                    self._feed_windows(cmd, l, flat[l] - self.level_offset[l], tick)
        if self.below_levels[cmd]:
            self._apply_below(cmd, scope, idx, tick)
        # statistics (per node; `bank_counts` spreads them over the banks) and row buffers
        self.node_cmd_count[flat[scope] * C + cmd] += 1
        first = idx * self.span_below[scope]
        if self.cmd_opens[cmd]:
            self._open_rows(first, first + self.span_below[scope], row, tick)
        elif self.cmd_closes[cmd]:
            self._close_rows(first, first + self.span_below[scope], tick)
        self.cmd_total[cmd] += 1
        if tick > self.last_tick:
            self.last_tick = tick
        if self.logging:
            self._log(cmd, addr, row, col, tick)

    cdef bint _grow_log(self) noexcept nogil:
        """Double the log's capacity. Each buffer is reallocated through a temporary, so a failed
        realloc leaves every buffer valid (the grown ones merely larger). Returns False on failure."""
        cdef int64_t cap = 1024 if self.log_cap == 0 else self.log_cap * 2
        cdef int64_t* tmp
        cdef int64_t** bufs[5]
        cdef int64_t widths[5]
        cdef int k
        bufs[0] = &self.log_tick
        bufs[1] = &self.log_cmd
        bufs[2] = &self.log_addr
        bufs[3] = &self.log_row
        bufs[4] = &self.log_col
        for k in range(5):
            widths[k] = self.num_levels if k == 2 else 1
        for k in range(5):
            tmp = <int64_t*>realloc(bufs[k][0], cap * widths[k] * sizeof(int64_t))
            if tmp == NULL:
                return False
            bufs[k][0] = tmp
        self.log_cap = cap
        return True

    cdef void _log(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil:
        cdef int64_t l
        cdef int L = self.num_levels
        if self.log_len == self.log_cap:
            if not self._grow_log():
                # Out of memory: stop logging rather than crash; `log()` reports it.
                self.logging = False
                self.log_failed = True
                return
        self.log_tick[self.log_len] = tick
        self.log_cmd[self.log_len] = cmd
        for l in range(L):
            self.log_addr[self.log_len * L + l] = addr[l] if l <= self.cmd_scope[cmd] else -1
        self.log_row[self.log_len] = row
        self.log_col[self.log_len] = col
        self.log_len += 1

    # ------------------------------------------------------------------------------------------
    # Python face (tests, the probe harness, the statistics layer)

    def _addr(self, int cmd, addr):
        """`addr` as an int64 array, checked against the levels `cmd` uses (its scope and above);
        levels below the scope do not matter to the command and may be None or negative."""
        self._check_cmd(cmd)
        vals = list(addr)
        if len(vals) > self.num_levels:
            raise ValueError(f"address has {len(vals)} levels, the standard has {self.num_levels}")
        a = np.zeros(self.num_levels, dtype=np.int64)
        for l, v in enumerate(vals):
            if l > self.cmd_scope[cmd]:
                if v is not None and v > 0:
                    a[l] = v
                continue
            if v is None or v < 0 or v >= self.fanout[l]:
                raise ValueError(f"command {cmd} at {tuple(vals)}: index {v!r} at level {l} is outside "
                                 f"0..{self.fanout[l] - 1}")
            a[l] = v
        if len(vals) <= self.cmd_scope[cmd]:
            raise ValueError(f"command {cmd} at {tuple(vals)}: the command needs indices at levels "
                             f"0..{self.cmd_scope[cmd]}")
        return a

    def earliest(self, int cmd, addr, int64_t floor=0):
        """Earliest tick >= floor at which `cmd` to `addr` satisfies every timing rule and its bus phase."""
        cdef int64_t[::1] a = self._addr(cmd, addr)
        return self.earliest_at_or_after(cmd, &a[0], floor)

    def ready_tick(self, int cmd, addr):
        """Earliest tick the timing rules alone allow `cmd` to `addr` (no bus phase, no row state)."""
        cdef int64_t[::1] a = self._addr(cmd, addr)
        return self.timing_ready(cmd, &a[0])

    def required_first(self, int cmd, addr, int64_t row=0):
        """The command that must issue before `cmd` given the row buffers (`cmd` itself when none)."""
        cdef int64_t[::1] a = self._addr(cmd, addr)
        return self.prerequisite(cmd, &a[0], row)

    def issue_at(self, int cmd, addr, int64_t tick, int64_t row=0, int64_t col=0, bint check=True):
        """Issue `cmd` at `tick`. With `check`, refuse a tick earlier than `earliest` or a wrong row state."""
        cdef int64_t[::1] a = self._addr(cmd, addr)
        cdef int64_t e
        if check:
            e = self.earliest_at_or_after(cmd, &a[0], 0)
            if tick < e or self.align(cmd, tick) != tick:
                raise ValueError(f"command {cmd} at {tuple(addr)} is not legal at tick {tick} (earliest {e})")
        s = self.issue(cmd, &a[0], row, col, tick)
        if s != 0:
            raise ValueError(f"command {cmd} at {tuple(addr)} row {row}: row state {s} forbids it")

    def _check_cmd(self, int cmd):
        if cmd < 0 or cmd >= self.num_commands:
            raise ValueError(f"command id {cmd} out of range 0..{self.num_commands - 1}")

    def open_rows(self):
        return np.asarray(self.open_row).copy()

    def log(self):
        """The issued commands as arrays: tick, cmd, addr [n, levels], row, col (copies of the buffers)."""
        if self.log_failed:
            raise MemoryError(f"the command log ran out of memory after {self.log_len} commands and was "
                              "switched off")
        cdef int64_t n = self.log_len
        cdef int L = self.num_levels
        return (_copy(self.log_tick, n), _copy(self.log_cmd, n), _copy(self.log_addr, n * L).reshape(n, L),
                _copy(self.log_row, n), _copy(self.log_col, n))

    def bank_counts(self):
        """[num_banks, num_commands] commands applied to each bank (an all-bank command counts on every bank)."""
        out = np.empty((self.num_banks, self.num_commands), dtype=np.int64)
        cdef int64_t[:, ::1] view = out
        self.fill_bank_counts(&view[0, 0])
        return out

    cdef void fill_bank_counts(self, int64_t* out) noexcept nogil:
        """out[bank * C + cmd]: `bank_counts` into a caller's buffer of num_banks * C. Only commands
        issued are visited, each at the nodes of its scope (most of them idle on a PIM device that
        drives few channels)."""
        cdef int64_t C = self.num_commands, span, i, b, n
        cdef const int64_t* count
        cdef int c
        memset(out, 0, self.num_banks * C * sizeof(int64_t))
        for c in range(C):
            if self.cmd_total[c] == 0:
                continue
            count = scope_counts(self, c)
            span = self.span_below[self.cmd_scope[c]]
            for i in range(self.level_count[self.cmd_scope[c]]):
                n = count[i * C]
                if n:
                    for b in range(i * span, (i + 1) * span):
                        out[b * C + c] = n

    def bank_open_ticks_until(self, int64_t tick):
        """[num_banks] ticks each bank had a row open, counting rows still open up to `tick`."""
        out = np.asarray(self.bank_open_ticks).copy()
        rows = np.asarray(self.open_row)
        opened = np.asarray(self.opened_at)
        still = rows >= 0
        out[still] += np.maximum(tick - opened[still], 0)
        return out

    def command_totals(self):
        return np.asarray(self.cmd_total).copy()

    @property
    def last_issue_tick(self):
        return self.last_tick
