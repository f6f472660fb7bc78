"""Request-trace mode: one FR-FCFS, open-page controller per channel on the timing engine.

Semantics (documented for users in ``sieve.dram.requests``):

* Before every tick the trace is offered in order until a request's queue is full; that request
  blocks the whole trace (head of line). A request offered before tick t arrives at t - 1 and may
  issue at t. Ticks are numbered from 1; odd ticks are rising edges.
* Per channel and tick: on a rising edge the column slot serves, in order, the active buffer
  (requests whose ACT has issued), the head of the priority (refresh) buffer and, only while no
  refresh is pending, the read or write queue; then the row slot serves the refresh head and, only
  while no refresh is pending, the read or write queue. At most one command per slot per tick; the
  row slot sees what the column slot just did.
* FR-FCFS: among the requests whose next command passes timing now, the oldest arrival wins (then
  buffer order); row hits get no priority. A precharge that would close a bank (or pseudo-channel)
  holding active requests is never chosen.
* A request leaves its queue when its ACT issues (it moves to the active buffer) or when its final
  command issues. Writes are served when the write queue is above the high watermark or no read waits,
  until it falls below the low watermark while reads wait.
* Hit / miss / conflict is judged from the bank state when a request's first command issues.
* A read completes ``read_latency`` ticks after its RD. A write completes when its WR issues
  (``write_done_at_issue``, Ramulator 2's semantics), or else ``write_latency`` ticks after it.
  A read to an address with a write still queued is forwarded and a write to an address already
  queued for writing is merged into it; neither takes a queue slot. A merged write completes on
  arrival. A forwarded read counts one tick of read latency, but it joins the back of the channel's
  FIFO of reads in flight, which completes reads only from its head: it completes one tick after
  arrival or with the last read issued before it, whichever is later.
* The run lasts until the last request has completed (refresh continues until then).

Nothing changes in a channel between two of its issues except arrivals, so a channel is evaluated
only on ticks after a change and on the first tick a command of one of its requests becomes legal;
the result is identical to evaluating every tick.

How a tick finds its winners without looking at every request. Requests, reads, writes and row
openings all act on one bank, so each buffer keeps a FIFO list per bank. All requests of one list
that want the same command (a row hit's RD, or the PRE / ACT every other request of the bank needs)
pass timing together, so only the oldest of them, the list's *head* for that command, can win: a
list has at most two heads. A head is a leaf of a tree per (buffer, command) shaped like the device
(channel, pseudo-channel, ..., bank); every node keeps the earliest tick a head below it passes the
timing rules of the levels from that node down:

    value(bank)  = ready(bank, cmd) if the bank has a head for cmd, else never
    value(node)  = max(ready(node, cmd), min over children value(child))

so a channel's root is the first tick any of its heads can issue, exactly. A command raises the
ready ticks the standard's rules name (at its own nodes, their siblings, its windows); each raised
(node, command) is re-evaluated up to the root, stopping as soon as a value is unchanged, and a
bank whose heads changed (a request came or left, the row opened or closed) is re-evaluated from
its leaf. Picking the oldest legal head walks only the subtrees whose value has passed.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, free

from sieve._core.engine cimport TimingEngine, MAX_LEVELS

import numpy as np

cdef int64_t NEVER = 0x7FFFFFFFFFFFFFFF

cdef enum:
    BUS_ROW = 0             # resolve.BUS_CODE
    BUS_COLUMN = 1

cdef enum:
    KIND_READ = 0
    KIND_WRITE = 1

# the three buffers of a channel
cdef enum:
    READ_QUEUE = 0
    WRITE_QUEUE = 1
    ACTIVE = 2
    NUM_BUFFERS = 3

cdef enum:
    MAX_HEADS = 2           # commands a bank's list can want at once: its row hits' and the others'

cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b

cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


# A request in a channel buffer. It keeps its slot from arrival to its final command; moving to the
# active buffer relinks it.
cdef struct Entry:
    int64_t r           # request id (trace order)
    int64_t bank        # flat bank id
    int64_t row
    int64_t col
    int64_t arrive
    int64_t seq         # order within its buffer at equal arrival: the request id in a queue, the ACT
                        # count in the active buffer
    uint64_t key        # full address, for forwarding and merging
    int32_t final       # read or write command
    int32_t judged      # first command issued (hit / miss / conflict decided)
    int32_t buf         # READ_QUEUE, WRITE_QUEUE or ACTIVE
    int32_t prev        # neighbours in its bank's list (slots, -1: none)
    int32_t next
    int32_t widx        # position in the channel's write-key array while in the write queue
    const int64_t* addr # its level indices (a row of the trace's address table)


# The requests of one buffer to one bank, oldest first.
cdef struct BankList:
    int32_t head
    int32_t tail
    int32_t len
    int32_t nhit                # requests to the bank's open row
    int32_t head_cmd[MAX_HEADS] # commands this list has a leaf for, -1: none


cdef inline int64_t align_to(int64_t phase, int64_t tpc, int64_t tick) noexcept nogil:
    """TimingEngine.align: round `tick` up to the command's phase (phase < 0: any tick)."""
    if phase < 0:
        return tick
    cdef int64_t r = tick % tpc
    if r <= phase:
        return tick + (phase - r)
    return tick + tpc - r + phase


cdef inline bint older(Entry* a, Entry* b) noexcept nogil:
    return a.arrive < b.arrive or (a.arrive == b.arrive and a.seq < b.seq)


@cython.final
cdef class Controller:
    cdef TimingEngine eng
    cdef int L
    cdef int C
    cdef int64_t nch
    cdef int64_t nbanks
    cdef int64_t banks_per_ch
    cdef int64_t qcap
    cdef int64_t pcap
    cdef int64_t per_ch                 # entry slots per channel
    cdef const int64_t[::1] cmd_bus
    cdef const int64_t[::1] cmd_closes
    cdef const int64_t[::1] cmd_opens
    cdef const int64_t[::1] cmd_scope
    cdef const int64_t* ready           # the engine's ready table (fixed size, never reallocated)
    cdef const int64_t* open_row        # the engine's row buffers
    cdef int read_cmd, write_cmd, ref_cmd, ref_level
    cdef int64_t read_lat, write_lat, ref_interval, ref_per_ch, act_count
    cdef double wr_high, wr_low
    # the commands a request can need (read, write, their openers and closers): one tree each
    cdef int T                          # how many
    cdef int tree_cmd[8]                # command of each tree
    cdef int64_t[::1] tree_of           # [C] tree of each command, -1: none
    cdef int bus_trees[2][8]            # trees by bus
    cdef int n_bus_trees[2]
    # the device under one channel, for the trees (all arrays by level)
    cdef int64_t fan[MAX_LEVELS]        # fanout
    cdef int64_t goff[MAX_LEVELS]       # first node of the level in the engine's node numbering
    cdef int64_t per[MAX_LEVELS]        # nodes of the level under one channel
    cdef int64_t loff[MAX_LEVELS]       # first node of the level in a channel's tree
    cdef int64_t npc                    # nodes under one channel
    # the ready entries each command raises: per (command, level) the distinct (next command, sibling)
    cdef int64_t[::1] raise_start
    cdef int64_t[::1] raise_cmd
    cdef int64_t[::1] raise_tree
    cdef int64_t[:, ::1] held           # [NUM_BUFFERS, C] 1 if a head of the buffer can want the command
    cdef int64_t[::1] cmd_phase
    cdef int64_t[::1] cmd_opener
    cdef int64_t[::1] cmd_closer
    cdef int64_t tpc
    cdef int64_t[::1] raise_sibling
    cdef object tree_cmd_set
    # requests (trace order), read on offer
    cdef const int64_t[:, ::1] addr
    cdef const int64_t[::1] row
    cdef const int64_t[::1] col
    cdef const uint8_t[::1] kind
    cdef const uint64_t[::1] key
    cdef const int64_t[::1] bank       # flat bank id of each request
    # results (trace order)
    cdef int64_t[::1] arrive
    cdef int64_t[::1] complete
    cdef uint8_t[::1] outcome          # 0 hit, 1 miss, 2 conflict, 3 forwarded, 4 merged
    # buffers
    cdef Entry* ent                    # [nch * per_ch]
    cdef int32_t* free_slot            # [nch * per_ch] a stack of free slots per channel
    cdef int64_t* nfree                # [nch]
    cdef int64_t* blen                 # [nch * NUM_BUFFERS] requests in each buffer
    cdef BankList* lists               # [NUM_BUFFERS * nbanks]
    cdef int32_t* wslot                # [nch * qcap] slots of the write queue, any order (merging)
    # head trees, one per (channel, buffer, tree command), numbered tid = (ch * NUM_BUFFERS + q) * T + t:
    # value[tid * npc + local node], leaf[tid * banks_per_ch + local bank] (-1: none)
    cdef int64_t* value
    cdef int32_t* leaf
    cdef int64_t* leaves               # [trees] heads in each tree
    cdef int64_t[:, ::1] prio          # refresh node ids (at ref_level)
    cdef int64_t[::1] prio_len
    cdef uint8_t[::1] write_mode
    cdef int64_t[::1] active_per_bank  # global bank id
    cdef int64_t[::1] next_event
    cdef int64_t[::1] read_depart      # per channel: completion of the last RD issued
    cdef uint8_t[::1] dirty
    cdef int64_t[::1] mode_due         # per channel: tick after which the write mode is due for an update
    # results
    cdef public int64_t hits, misses, conflicts, forwarded, merged
    cdef public int64_t reads, writes, read_latency_sum, last_completion, ticks
    cdef public bint deadlocked

    def __cinit__(self):
        self.ent = NULL
        self.free_slot = NULL
        self.nfree = NULL
        self.blen = NULL
        self.lists = NULL
        self.wslot = NULL
        self.value = NULL
        self.leaf = NULL
        self.leaves = NULL

    def __dealloc__(self):
        free(self.ent)
        free(self.free_slot)
        free(self.nfree)
        free(self.blen)
        free(self.lists)
        free(self.wslot)
        free(self.value)
        free(self.leaf)
        free(self.leaves)

    def __init__(self, TimingEngine eng, tables, const int64_t[:, ::1] addr, const int64_t[::1] row,
                 const int64_t[::1] col, const uint8_t[::1] kind, const uint64_t[::1] key,
                 int queue_size=32, int priority_size=1568, double wr_high=0.8, double wr_low=0.2,
                 bint refresh=False, bint write_done_at_issue=True):
        n = addr.shape[0]
        self.eng = eng
        self.L = eng.num_levels
        self.C = eng.num_commands
        self.nch = tables.fanout[0]
        self.nbanks = eng.num_banks
        self.banks_per_ch = eng.num_banks // self.nch
        self.qcap = queue_size
        self.pcap = priority_size
        self.cmd_bus = tables.cmd_bus
        self.cmd_closes = tables.cmd_closes
        self.cmd_opens = tables.cmd_opens
        self.cmd_scope = tables.cmd_scope
        self.cmd_phase = tables.cmd_phase
        self.cmd_opener = tables.cmd_opener
        self.cmd_closer = tables.cmd_closer
        self.tpc = tables.ticks_per_ck
        self.ready = &eng.ready[0]
        self.open_row = &eng.open_row[0]
        self.read_cmd = tables.read_cmd
        self.write_cmd = tables.write_cmd
        self._check_bank_commands(tables)
        self.read_lat = tables.read_latency_ticks
        self.write_lat = 0 if write_done_at_issue else tables.write_latency_ticks
        self.ref_cmd = tables.refresh_cmd if refresh else -1
        self.ref_level = tables.refresh_level
        self.ref_interval = tables.refresh_interval_ticks
        if refresh:
            nodes = 1
            for l in range(self.ref_level + 1):
                nodes *= tables.fanout[l]
            self.ref_per_ch = nodes // self.nch
        else:
            self.ref_per_ch = 0
        self.wr_high = wr_high
        self.wr_low = wr_low
        self.addr = addr
        self.row = row
        self.col = col
        self.kind = kind
        self.key = key
        flat = np.zeros(n, dtype=np.int64)
        for l in range(self.L):
            flat = flat * tables.fanout[l] + np.asarray(addr[:, l])
        self.bank = flat
        self.arrive = np.zeros(n, dtype=np.int64)
        self.complete = np.full(n, -1, dtype=np.int64)
        self.outcome = np.zeros(n, dtype=np.uint8)
        self._tree_commands(tables)
        self._raised_entries(tables)
        self._allocate()
        self.prio = np.zeros((self.nch, priority_size), dtype=np.int64)
        self.prio_len = np.zeros(self.nch, dtype=np.int64)
        self.write_mode = np.zeros(self.nch, dtype=np.uint8)
        self.active_per_bank = np.zeros(eng.num_banks, dtype=np.int64)
        self.next_event = np.full(self.nch, NEVER, dtype=np.int64)
        self.read_depart = np.zeros(self.nch, dtype=np.int64)
        self.dirty = np.zeros(self.nch, dtype=np.uint8)
        self.mode_due = np.full(self.nch, NEVER, dtype=np.int64)

    def _check_bank_commands(self, tables):
        """Requests are indexed by bank: their commands must act on one bank."""
        for final in (self.read_cmd, self.write_cmd):
            for cmd, role in ((final, "request"), (tables.cmd_opener[final], "opening"),
                              (tables.cmd_closer[final], "closing")):
                if cmd < 0:
                    raise ValueError(f"request mode needs a {role} command for command {final}; the "
                                     "standard declares none")
                if tables.cmd_scope[cmd] != self.L - 1:
                    raise ValueError(f"request mode needs bank-level read, write, opening and closing "
                                     f"commands; command {cmd} ({role}) acts at level {tables.cmd_scope[cmd]}")

    def _tree_commands(self, tables):
        cmds = sorted({int(c) for f in (self.read_cmd, self.write_cmd)
                       for c in (f, tables.cmd_opener[f], tables.cmd_closer[f])})
        tree_of = np.full(self.C, -1, dtype=np.int64)
        self.T = len(cmds)
        self.n_bus_trees[0] = self.n_bus_trees[1] = 0
        for t, c in enumerate(cmds):
            tree_of[c] = t
            self.tree_cmd[t] = c
            bus = int(tables.cmd_bus[c])
            self.bus_trees[bus][self.n_bus_trees[bus]] = t
            self.n_bus_trees[bus] += 1
        self.tree_of = tree_of
        self.tree_cmd_set = set(cmds)
        cdef int l
        self.npc = 0
        for l in range(self.L):
            self.fan[l] = self.eng.fanout[l]
            self.goff[l] = self.eng.level_offset[l]
            self.per[l] = self.eng.level_count[l] // self.nch
            self.loff[l] = self.npc
            self.npc += self.per[l]

    def _raised_entries(self, tables):
        """Per (command, level): the distinct (next command, sibling) pairs of the ready entries its
        rules and windows raise, so a command re-evaluates each raised tree node once."""
        L, C = self.L, self.C
        start, cmds, sibs = [0], [], []
        for g in range(C * L):
            pairs = []
            for e in range(tables.ent_start[g], tables.ent_start[g + 1]):
                pairs.append((int(tables.ent_next[e]), int(tables.ent_sibling[e])))
            for wi in range(tables.win_feed_start[g], tables.win_feed_start[g + 1]):
                w = tables.win_feed[wi]
                pairs.extend((int(tables.win_next[k]), 0)
                             for k in range(tables.win_next_start[w], tables.win_next_start[w + 1]))
            for p in sorted(p for p in set(pairs) if p[0] in self.tree_cmd_set):
                cmds.append(p[0])
                sibs.append(p[1])
            start.append(len(cmds))
        self.raise_start = np.asarray(start, dtype=np.int64)
        self.raise_cmd = np.asarray(cmds + [0], dtype=np.int64)
        self.raise_tree = np.asarray([self.tree_of[c] for c in cmds] + [0], dtype=np.int64)
        # which buffers can hold a head wanting each tree command: a queue's requests want its final
        # command, its opener and its closer; an active request's bank stays open on its row, so it
        # wants only its final command
        held = np.zeros((NUM_BUFFERS, self.C), dtype=np.int64)
        for q, final in ((READ_QUEUE, self.read_cmd), (WRITE_QUEUE, self.write_cmd)):
            for c in (final, tables.cmd_opener[final], tables.cmd_closer[final]):
                held[q, c] = 1
        held[ACTIVE, self.read_cmd] = held[ACTIVE, self.write_cmd] = 1
        self.held = held
        self.raise_sibling = np.asarray(sibs + [0], dtype=np.int64)

    def _allocate(self):
        # a bank holding an active request is never closed, so it holds at most one
        cdef int64_t i, ch, trees = self.nch * NUM_BUFFERS * self.T
        if self.nch * (2 * self.qcap + self.banks_per_ch) >= 2 ** 31:
            raise ValueError("too many queue entries")
        self.per_ch = 2 * self.qcap + self.banks_per_ch
        self.ent = <Entry*>malloc(self.nch * self.per_ch * sizeof(Entry))
        self.free_slot = <int32_t*>malloc(self.nch * self.per_ch * sizeof(int32_t))
        self.nfree = <int64_t*>malloc(self.nch * sizeof(int64_t))
        self.blen = <int64_t*>malloc(self.nch * NUM_BUFFERS * sizeof(int64_t))
        self.lists = <BankList*>malloc(NUM_BUFFERS * self.nbanks * sizeof(BankList))
        self.wslot = <int32_t*>malloc(self.nch * self.qcap * sizeof(int32_t))
        self.value = <int64_t*>malloc(trees * self.npc * sizeof(int64_t))
        self.leaf = <int32_t*>malloc(trees * self.banks_per_ch * sizeof(int32_t))
        self.leaves = <int64_t*>malloc(trees * sizeof(int64_t))
        if self.ent == NULL or self.free_slot == NULL or self.nfree == NULL or self.blen == NULL \
                or self.lists == NULL or self.wslot == NULL or self.value == NULL or self.leaf == NULL \
                or self.leaves == NULL:
            raise MemoryError()
        for ch in range(self.nch):
            self.nfree[ch] = self.per_ch
            for i in range(self.per_ch):
                self.free_slot[ch * self.per_ch + i] = <int32_t>(ch * self.per_ch + self.per_ch - 1 - i)
        for i in range(self.nch * NUM_BUFFERS):
            self.blen[i] = 0
        for i in range(NUM_BUFFERS * self.nbanks):
            self.lists[i].head = -1
            self.lists[i].tail = -1
            self.lists[i].len = 0
            self.lists[i].nhit = 0
            self.lists[i].head_cmd[0] = -1
            self.lists[i].head_cmd[1] = -1
        for i in range(trees * self.npc):
            self.value[i] = NEVER
        for i in range(trees * self.banks_per_ch):
            self.leaf[i] = -1
        for i in range(trees):
            self.leaves[i] = 0

    # ------------------------------------------------------------------------------------------
    # head trees

    cdef inline int64_t tid_of(self, int64_t ch, int q, int t) noexcept nogil:
        return (ch * NUM_BUFFERS + q) * self.T + t

    cdef inline int64_t* vals(self, int64_t tid) noexcept nogil:
        return &self.value[tid * self.npc]

    cdef inline int64_t ready_at(self, int64_t ch, int c, int l, int64_t i) noexcept nogil:
        """The ready tick of command c at local node i of level l of channel ch."""
        return self.ready[(self.goff[l] + ch * self.per[l] + i) * self.C + c]

    cdef inline int64_t node_value(self, int64_t tid, int64_t ch, int c, int l, int64_t i) noexcept nogil:
        """The value of local node i of level l in tree tid (command c), from its children and the
        ready table."""
        cdef int64_t* v = self.vals(tid)
        cdef int64_t m = NEVER, j, f, first
        if l == self.L - 1:
            if self.leaf[tid * self.banks_per_ch + i] < 0:
                return NEVER
            return self.ready_at(ch, c, l, i)
        f = self.fan[l + 1]
        first = self.loff[l + 1] + i * f
        for j in range(f):
            m = imin(m, v[first + j])
        if m == NEVER:
            return NEVER
        return imax(m, self.ready_at(ch, c, l, i))

    cdef void propagate(self, int64_t tid, int64_t ch, int c, int l, int64_t i) noexcept nogil:
        """Re-evaluate local node i of level l in tree tid and its ancestors while values change."""
        cdef int64_t* v = self.vals(tid)
        cdef int64_t val
        while True:
            val = self.node_value(tid, ch, c, l, i)
            if v[self.loff[l] + i] == val:
                return
            v[self.loff[l] + i] = val
            if l == 0:
                return
            i = i // self.fan[l]
            l -= 1

    cdef inline void raised(self, int64_t tid, int64_t ch, int c, int l, int64_t i) noexcept nogil:
        """The ready tick of (local node i of level l, c) grew: re-evaluate tree tid from there. An
        inner node whose value is at or above the new tick keeps its value, and so do its ancestors."""
        if self.leaves[tid] == 0:
            return
        if l < self.L - 1 and self.ready_at(ch, c, l, i) <= self.vals(tid)[self.loff[l] + i]:
            return
        self.propagate(tid, ch, c, l, i)

    cdef void rebuild(self, int64_t ch) noexcept nogil:
        """Re-evaluate every node of channel ch in every tree (after a command above bank level)."""
        cdef int q, t, l
        cdef int64_t i, tid
        for q in range(NUM_BUFFERS):
            for t in range(self.T):
                tid = self.tid_of(ch, q, t)
                if self.leaves[tid] == 0:
                    continue
                for l in range(self.L - 1, -1, -1):
                    for i in range(self.per[l]):
                        self.vals(tid)[self.loff[l] + i] = self.node_value(tid, ch, self.tree_cmd[t], l, i)

    cdef void propagate_raises(self, int64_t ch, int cmd, const int64_t* a) noexcept nogil:
        """Re-evaluate the tree nodes whose ready ticks the bank-level `cmd` at `a` may have raised."""
        cdef int64_t idx = 0, g, k, f, parent, j, sib
        cdef int l, q, c, t
        for l in range(self.cmd_scope[cmd] + 1):
            idx = idx * self.fan[l] + a[l]
            g = cmd * self.L + l
            for k in range(self.raise_start[g], self.raise_start[g + 1]):
                c = <int>self.raise_cmd[k]
                t = <int>self.raise_tree[k]
                if not self.raise_sibling[k]:
                    for q in range(NUM_BUFFERS):
                        if self.held[q, c]:
                            self.raised(self.tid_of(ch, q, t), ch, c, l, idx - ch * self.per[l])
                    continue
                f = self.fan[l]
                parent = idx // f
                for j in range(f):
                    sib = parent * f + j
                    if sib == idx:
                        continue
                    for q in range(NUM_BUFFERS):
                        if l == 0:
                            self.raised(self.tid_of(sib, q, t), sib, c, 0, 0)
                        else:
                            self.raised(self.tid_of(ch, q, t), ch, c, l, sib - ch * self.per[l])

    cdef void set_leaf(self, int q, int c, int64_t bank, int32_t slot) noexcept nogil:
        """Make `slot` (-1: nothing) the head for command c of buffer q at `bank`."""
        cdef int64_t ch = bank // self.banks_per_ch
        cdef int64_t b = bank - ch * self.banks_per_ch
        cdef int64_t tid = self.tid_of(ch, q, <int>self.tree_of[c])
        cdef int32_t* leaf = &self.leaf[tid * self.banks_per_ch + b]
        if (leaf[0] < 0) != (slot < 0):
            self.leaves[tid] += 1 if slot >= 0 else -1
        if leaf[0] >= 0 and slot >= 0:
            leaf[0] = slot  # the value does not depend on which request is the head
            return
        leaf[0] = slot
        self.propagate(tid, ch, c, self.L - 1, b)

    # ------------------------------------------------------------------------------------------
    # per-bank lists and their heads

    cdef inline BankList* list_of(self, int q, int64_t bank) noexcept nogil:
        return &self.lists[q * self.nbanks + bank]

    cdef void list_append(self, int q, int32_t slot) noexcept nogil:
        cdef Entry* e = &self.ent[slot]
        cdef BankList* b = self.list_of(q, e.bank)
        e.buf = q
        e.prev = b.tail
        e.next = -1
        if b.tail >= 0:
            self.ent[b.tail].next = slot
        else:
            b.head = slot
        b.tail = slot
        b.len += 1
        if e.row == self.open_row[e.bank]:
            b.nhit += 1

    cdef void list_remove(self, int32_t slot) noexcept nogil:
        cdef Entry* e = &self.ent[slot]
        cdef BankList* b = self.list_of(e.buf, e.bank)
        if e.prev >= 0:
            self.ent[e.prev].next = e.next
        else:
            b.head = e.next
        if e.next >= 0:
            self.ent[e.next].prev = e.prev
        else:
            b.tail = e.prev
        b.len -= 1
        if e.row == self.open_row[e.bank]:
            b.nhit -= 1

    cdef inline int next_cmd(self, Entry* e) noexcept nogil:
        """The command the request needs next, from its bank's row buffer (bank-level commands)."""
        cdef int64_t open_row = self.open_row[e.bank]
        if open_row == e.row:
            return e.final
        return <int>(self.cmd_closer[e.final] if open_row >= 0 else self.cmd_opener[e.final])

    cdef void derive(self, int q, int64_t bank) noexcept nogil:
        """Recompute the heads of buffer q's list at `bank`: the oldest request wanting each command.
        A precharge of a bank holding active requests is never chosen, so it has no head."""
        cdef BankList* b = self.list_of(q, bank)
        cdef int32_t slot = b.head
        cdef int32_t heads[MAX_HEADS]
        cdef int cmds[MAX_HEADS]
        cdef int n = 0, k, cmd
        cdef bint seen_hit = b.nhit == 0, seen_other = b.nhit == b.len
        while slot >= 0 and n < MAX_HEADS and not (seen_hit and seen_other and q != ACTIVE):
            cmd = self.next_cmd(&self.ent[slot])
            if self.ent[slot].row == self.open_row[bank]:
                seen_hit = True
            else:
                seen_other = True
            for k in range(n):
                if cmds[k] == cmd:
                    break
            else:
                cmds[n] = cmd
                heads[n] = slot
                n += 1
            slot = self.ent[slot].next
        for k in range(n):
            if self.cmd_closes[cmds[k]] and self.active_per_bank[bank] > 0:
                cmds[k] = -1
        self.replace_heads(q, bank, b, cmds, heads, n)

    cdef void replace_heads(self, int q, int64_t bank, BankList* b, int* cmds, int32_t* heads, int n) noexcept nogil:
        """Make heads[k] the list's head for cmds[k] (-1: none) and drop its other heads; a tree is
        re-evaluated only where its leaf appears or disappears."""
        cdef int k, j, old
        cdef bint kept
        for k in range(MAX_HEADS):
            old = b.head_cmd[k]
            if old < 0:
                continue
            kept = False
            for j in range(n):
                kept = kept or cmds[j] == old
            if not kept:
                self.set_leaf(q, old, bank, -1)
            b.head_cmd[k] = -1
        for k in range(n):
            if cmds[k] < 0:
                continue
            b.head_cmd[k] = cmds[k]
            self.set_leaf(q, cmds[k], bank, heads[k])

    cdef void bank_changed(self, int64_t bank) noexcept nogil:
        """The bank's row opened or closed: recount row hits and recompute every buffer's heads."""
        cdef int q
        cdef int32_t slot
        cdef BankList* b
        for q in range(NUM_BUFFERS):
            b = self.list_of(q, bank)
            b.nhit = 0
            slot = b.head
            while slot >= 0:
                if self.ent[slot].row == self.open_row[bank]:
                    b.nhit += 1
                slot = self.ent[slot].next
            self.derive(q, bank)

    cdef void after_command(self, int64_t ch, int cmd, const int64_t* a) noexcept nogil:
        """Bring the trees up to date after `cmd` issued at `a`."""
        cdef int scope = self.cmd_scope[cmd]
        cdef int64_t first, b
        if scope == self.L - 1:
            self.propagate_raises(ch, cmd, a)
            return
        if self.cmd_opens[cmd] or self.cmd_closes[cmd]:
            first = self.eng.node_of(scope, a) * self.eng.span_below[scope]
            for b in range(first, first + self.eng.span_below[scope]):
                self.bank_changed(b)
        self.rebuild(ch)

    # ------------------------------------------------------------------------------------------
    # picking

    cdef void oldest_legal(self, int64_t tid, int l, int64_t i, int64_t clk, int32_t* best) noexcept nogil:
        """Lower `best` to the oldest head of tree tid under local node i of level l that is legal at
        clk (the node's value has passed)."""
        cdef int64_t* v
        cdef int64_t j, f, first
        cdef int32_t slot
        if l == self.L - 1:
            slot = self.leaf[tid * self.banks_per_ch + i]
            if best[0] < 0 or older(&self.ent[slot], &self.ent[best[0]]):
                best[0] = slot
            return
        v = self.vals(tid)
        f = self.fan[l + 1]
        first = i * f
        for j in range(f):
            if v[self.loff[l + 1] + first + j] <= clk:
                self.oldest_legal(tid, l + 1, first + j, clk, best)

    cdef int32_t pick(self, int64_t ch, int q, int bus, int64_t clk, int* cmd_out) noexcept nogil:
        """FR-FCFS for one slot: the oldest request of buffer q whose next command is on `bus` and
        legal at clk (-1: none); its command in cmd_out."""
        cdef int32_t best = -1, got
        cdef int c, k, t
        cdef int64_t tid
        for k in range(self.n_bus_trees[bus]):
            t = self.bus_trees[bus][k]
            tid = self.tid_of(ch, q, t)
            c = self.tree_cmd[t]
            if self.vals(tid)[0] > clk or align_to(self.cmd_phase[c], self.tpc, clk) != clk:
                continue
            got = -1
            self.oldest_legal(tid, 0, 0, clk, &got)
            if best < 0 or older(&self.ent[got], &self.ent[best]):
                best = got
                cmd_out[0] = c
        return best

    cdef int64_t wake_tick(self, int64_t ch, int q, int64_t floor) noexcept nogil:
        """The first tick from `floor` on at which a head of buffer q can be legal (NEVER: none)."""
        cdef int64_t nxt = NEVER, root
        cdef int t
        for t in range(self.T):
            root = self.vals(self.tid_of(ch, q, t))[0]
            if root != NEVER:
                nxt = imin(nxt, align_to(self.cmd_phase[self.tree_cmd[t]], self.tpc, imax(root, floor)))
        return nxt

    # ------------------------------------------------------------------------------------------
    # issuing

    cdef bint would_close_active(self, int cmd, const int64_t* a) noexcept nogil:
        if not self.cmd_closes[cmd]:
            return False
        cdef int scope = self.cmd_scope[cmd]
        cdef int64_t first = self.eng.node_of(scope, a) * self.eng.span_below[scope]
        cdef int64_t b
        for b in range(first, first + self.eng.span_below[scope]):
            if self.active_per_bank[b] > 0:
                return True
        return False

    cdef bint update_write_mode(self, int64_t ch) noexcept nogil:
        """Returns True if the channel serves its write queue."""
        cdef double wq = <double>self.blen[ch * NUM_BUFFERS + WRITE_QUEUE]
        cdef int64_t rq = self.blen[ch * NUM_BUFFERS + READ_QUEUE]
        if not self.write_mode[ch]:
            if wq > self.wr_high * self.qcap or rq == 0:
                self.write_mode[ch] = 1
        elif wq < self.wr_low * self.qcap and rq > 0:
            self.write_mode[ch] = 0
        return self.write_mode[ch]

    cdef void judge(self, Entry* e) noexcept nogil:
        """Hit, miss or conflict, from the bank as the request's first command finds it."""
        cdef int64_t open_row = self.open_row[e.bank]
        e.judged = True
        if open_row == e.row:
            self.hits += 1
            self.outcome[e.r] = 0
        elif open_row >= 0:
            self.conflicts += 1
            self.outcome[e.r] = 2
        else:
            self.misses += 1
            self.outcome[e.r] = 1

    cdef void complete_request(self, int64_t ch, Entry* e, int cmd, int64_t clk) noexcept nogil:
        cdef int64_t r = e.r
        if cmd == self.write_cmd:
            self.complete[r] = clk + self.write_lat
            self.writes += 1
        else:
            self.complete[r] = clk + self.read_lat
            self.read_depart[ch] = self.complete[r]
            self.reads += 1
            self.read_latency_sum += self.complete[r] - e.arrive
        self.last_completion = imax(self.last_completion, self.complete[r])

    cdef void leave_buffer(self, int64_t ch, int32_t slot) noexcept nogil:
        """Take the request out of its buffer's count (and the write-key array)."""
        cdef Entry* e = &self.ent[slot]
        cdef int32_t last
        self.blen[ch * NUM_BUFFERS + e.buf] -= 1
        if e.buf == WRITE_QUEUE:
            last = self.wslot[ch * self.qcap + self.blen[ch * NUM_BUFFERS + WRITE_QUEUE]]
            self.wslot[ch * self.qcap + e.widx] = last
            self.ent[last].widx = e.widx

    cdef void issue_request(self, int64_t ch, int32_t slot, int cmd, int64_t clk) noexcept nogil:
        """Issue `cmd` for the request in `slot` of channel ch and update its buffers and heads."""
        cdef Entry* e = &self.ent[slot]
        cdef int q = e.buf
        cdef int64_t bank = e.bank
        cdef bint row_changed = self.cmd_opens[cmd] or self.cmd_closes[cmd]
        if not e.judged:
            self.judge(e)
        self.eng.apply(cmd, e.addr, e.row, e.col, clk)
        self.propagate_raises(ch, cmd, e.addr)
        if cmd == e.final:
            self.list_remove(slot)
            self.leave_buffer(ch, slot)
            if q == ACTIVE:
                self.active_per_bank[bank] -= 1
            self.complete_request(ch, e, cmd, clk)
            self.free_slot[ch * self.per_ch + self.nfree[ch]] = slot
            self.nfree[ch] += 1
            if row_changed:
                self.bank_changed(bank)
            else:
                self.derive(q, bank)
                if q == ACTIVE and self.active_per_bank[bank] == 0:
                    # its precharges may be chosen again
                    self.derive(READ_QUEUE, bank)
                    self.derive(WRITE_QUEUE, bank)
        elif self.cmd_opens[cmd]:
            self.list_remove(slot)
            self.leave_buffer(ch, slot)
            self.active_per_bank[bank] += 1
            e.seq = self.act_count
            self.act_count += 1
            self.list_append(ACTIVE, slot)
            self.blen[ch * NUM_BUFFERS + ACTIVE] += 1
            self.bank_changed(bank)
        elif row_changed:
            self.bank_changed(bank)

    cdef bint try_refresh(self, int64_t ch, int bus, int64_t clk, int64_t* next_tick) noexcept nogil:
        cdef int64_t addr[MAX_LEVELS]
        cdef int64_t node = self.prio[ch, 0]
        cdef int l, cmd
        cdef int64_t t
        for l in range(self.L - 1, -1, -1):
            addr[l] = 0
        for l in range(self.ref_level, -1, -1):
            addr[l] = node % self.eng.fanout[l]
            node = node // self.eng.fanout[l]
        cmd = self.eng.prerequisite(self.ref_cmd, addr, 0)
        if self.cmd_bus[cmd] != bus or self.would_close_active(cmd, addr):
            return False
        t = self.eng.align(cmd, imax(self.eng.timing_ready(cmd, addr), clk))
        if t != clk:
            next_tick[0] = imin(next_tick[0], t)
            return False
        self.eng.issue(cmd, addr, 0, 0, clk)
        self.after_command(ch, cmd, addr)
        if cmd == self.ref_cmd:
            for l in range(self.prio_len[ch] - 1):
                self.prio[ch, l] = self.prio[ch, l + 1]
            self.prio_len[ch] -= 1
        return True

    cdef int rw_queue(self, int64_t ch) noexcept nogil:
        """The queue the channel serves now (read or write)."""
        return WRITE_QUEUE if self.update_write_mode(ch) else READ_QUEUE

    cdef int tick_channel(self, int64_t ch, int64_t clk) noexcept nogil:
        """One controller tick: 0 if no command issued, 1 if one did and the channel must be evaluated
        on the next tick, 2 if one did and next_event[ch] says when to evaluate it again."""
        cdef int64_t nxt = NEVER
        cdef int q = READ_QUEUE, cmd = 0
        cdef int32_t slot
        cdef bint issued = False
        if self.mode_due[ch] != NEVER and clk > self.mode_due[ch] + 1:
            # the channel skipped the tick on which its write mode was due for an update: the queue
            # lengths have not changed since, so it updates now as it would have then
            self.update_write_mode(ch)
        self.mode_due[ch] = NEVER
        # column slot: the active buffer, then refresh, then the read or write queue
        slot = self.pick(ch, ACTIVE, BUS_COLUMN, clk, &cmd)
        if slot >= 0:
            self.issue_request(ch, slot, cmd, clk)
            issued = True
        elif self.prio_len[ch] > 0:
            issued = self.try_refresh(ch, BUS_COLUMN, clk, &nxt)
        else:
            q = self.rw_queue(ch)
            slot = self.pick(ch, q, BUS_COLUMN, clk, &cmd)
            if slot >= 0:
                self.issue_request(ch, slot, cmd, clk)
                issued = True
        # row slot: refresh, then the read or write queue
        if self.prio_len[ch] > 0:
            if self.try_refresh(ch, BUS_ROW, clk, &nxt):
                issued = True
        else:
            q = self.rw_queue(ch)
            slot = self.pick(ch, q, BUS_ROW, clk, &cmd)
            if slot >= 0:
                self.issue_request(ch, slot, cmd, clk)
                issued = True
        if not issued:
            nxt = imin(nxt, self.wake_tick(ch, ACTIVE, clk + 1))
            if self.prio_len[ch] == 0:
                nxt = imin(nxt, self.wake_tick(ch, q, clk + 1))
            self.next_event[ch] = nxt
            return 0
        if self.prio_len[ch] > 0:
            return 1
        self.defer_tick(ch, clk)
        return 2

    cdef void defer_tick(self, int64_t ch, int64_t clk) noexcept nogil:
        """The channel changed at clk (an issue or an arrival). Its next tick would only update the
        write mode from the queue lengths unless a head becomes legal, so that update is deferred
        (`mode_due`) and the channel wakes when a head of any buffer can issue (which queue it will
        serve is not yet known)."""
        cdef int64_t nxt = imin(self.wake_tick(ch, ACTIVE, clk + 1), self.wake_tick(ch, READ_QUEUE, clk + 1))
        self.next_event[ch] = imin(nxt, self.wake_tick(ch, WRITE_QUEUE, clk + 1))
        self.mode_due[ch] = clk

    # ------------------------------------------------------------------------------------------

    cdef int offer(self, int64_t r, int64_t clk) noexcept nogil:
        """Offer request r to its channel. Returns 0 if refused (queue full)."""
        cdef int64_t ch = self.addr[r, 0]
        cdef int64_t nw = self.blen[ch * NUM_BUFFERS + WRITE_QUEUE], i
        cdef int q = READ_QUEUE if self.kind[r] == KIND_READ else WRITE_QUEUE
        cdef int32_t slot
        cdef Entry* e
        cdef int l
        if clk > self.mode_due[ch]:
            # The channel skipped the tick after its last issue: the write mode updates as it would
            # have then, before this arrival changes the queue lengths.
            self.update_write_mode(ch)
            self.mode_due[ch] = NEVER
        for i in range(nw):
            if self.ent[self.wslot[ch * self.qcap + i]].key == self.key[r]:
                self.absorb(r, clk)
                return 1
        if self.blen[ch * NUM_BUFFERS + q] >= self.qcap:
            return 0
        self.nfree[ch] -= 1
        slot = self.free_slot[ch * self.per_ch + self.nfree[ch]]
        e = &self.ent[slot]
        e.final = self.read_cmd if q == READ_QUEUE else self.write_cmd
        e.r = r
        e.seq = r
        e.bank = self.bank[r]
        e.row = self.row[r]
        e.col = self.col[r]
        e.key = self.key[r]
        e.arrive = clk
        e.judged = False
        e.addr = &self.addr[r, 0]
        if q == WRITE_QUEUE:
            e.widx = <int32_t>nw
            self.wslot[ch * self.qcap + nw] = slot
        self.blen[ch * NUM_BUFFERS + q] += 1
        self.list_append(q, slot)
        if self.list_of(q, e.bank).len <= MAX_HEADS or self.list_of(q, e.bank).head_cmd[1] < 0:
            self.derive(q, e.bank)  # otherwise both heads are older than it
        self.arrive[r] = clk
        if self.prio_len[ch] > 0:
            self.dirty[ch] = 1
        else:
            self.defer_tick(ch, clk)
        return 1

    cdef void absorb(self, int64_t r, int64_t clk) noexcept nogil:
        """Request r finds its address queued for writing: a read is forwarded, a write merged."""
        self.arrive[r] = clk
        if self.kind[r] == KIND_READ:
            self.complete[r] = imax(clk + 1, self.read_depart[self.addr[r, 0]])
            self.outcome[r] = 3
            self.forwarded += 1
            self.reads += 1
            self.read_latency_sum += 1
            self.last_completion = imax(self.last_completion, self.complete[r])
        else:
            self.complete[r] = clk
            self.outcome[r] = 4
            self.merged += 1
            self.writes += 1

    def run(self):
        cdef int64_t n = self.addr.shape[0]
        cdef int64_t clk = 0, next_req = 0, ch, target, k
        cdef bint any_dirty, refresh_due
        cdef int done
        cdef bint refresh = self.ref_cmd >= 0
        with nogil:
            while True:
                while next_req < n and self.offer(next_req, clk):
                    next_req += 1
                if next_req == n and self.idle() and (clk >= self.last_completion or not refresh):
                    break
                clk += 1
                any_dirty = False
                refresh_due = refresh and clk % self.ref_interval == 0
                for ch in range(self.nch):
                    if refresh_due:
                        for k in range(self.ref_per_ch):
                            if self.prio_len[ch] < self.pcap:
                                self.prio[ch, self.prio_len[ch]] = ch * self.ref_per_ch + k
                                self.prio_len[ch] += 1
                        self.dirty[ch] = 1
                    if self.dirty[ch] or clk >= self.next_event[ch]:
                        done = self.tick_channel(ch, clk)
                        self.dirty[ch] = done == 1
                        any_dirty = any_dirty or done != 0
                if not any_dirty:
                    # Nothing issued, so nothing changes before the earliest next event: the trace stays
                    # blocked or exhausted.
                    target = NEVER
                    for ch in range(self.nch):
                        target = imin(target, self.next_event[ch])
                    if refresh:
                        target = imin(target, (clk // self.ref_interval + 1) * self.ref_interval)
                        if next_req == n and self.idle():
                            target = imin(target, imax(self.last_completion, clk + 1))
                    if target == NEVER:
                        # requests wait but none can ever issue: a standard without the commands they need
                        self.deadlocked = True
                        break
                    clk = target - 1
        self.ticks = clk

    cdef bint idle(self) noexcept nogil:
        cdef int64_t i
        for i in range(self.nch * NUM_BUFFERS):
            if self.blen[i]:
                return False
        return True

    def results(self):
        """Arrival tick, completion tick and outcome code of each request (the controller's own arrays)."""
        return np.asarray(self.arrive), np.asarray(self.complete), np.asarray(self.outcome)
