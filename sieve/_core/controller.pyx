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
only on ticks after a change and on the first tick a command of one of its requests can become legal;
the result is identical to evaluating every tick. After an issue the next tick is evaluated only when a
buffer's floor (at or below every bound in it) says an entry can be due then, and a read that joins a
group (below) does not wake its channel.

How a tick finds its winners without re-deciding every request: each buffer entry keeps its next
command and ``bound``, a tick before which that command cannot issue (ready ticks only grow). A scan
skips an entry whose bound lies ahead after one comparison. An entry whose bound is reached first
checks the one ready-table entry that set the bound last time (the shared gate, e.g. the
pseudo-channel's ACT window that every waiting ACT of that pseudo-channel hits): while that gate is
still shut, it moves the bound on without recomputing anything else; otherwise it reads the ready
ticks of its command at its bank's nodes through rows precomputed per bank. A due entry that wants
the same command on the same bank as the entry decided just before it in the scan (the same row, or
a bank whose open row is neither's) takes that entry's bound. A due entry whose slot the scan does
not serve (a read while the row slot is judged after the column slot issued) has its bound moved
on too. Requests to one row of one bank that join a queue one after another form a group, which the
scan sees as one entry, its oldest: the others want the same command, legal on the same ticks, so they
cannot win before it (a stream's queue is one or two groups, not 32 entries). A command that opens or
closes rows marks the entries of the banks it touches stale, so they recompute their next command;
the request it issued for reads its next command from the bank's row buffer at once (after an ACT, and
after a precharge when no other request waits on that bank), bounded by that command's ready tick at
the bank.
Queues keep arrival order, so the first legal entry of a slot is its oldest and the scan of that slot
stops. Forwarding and merging ask whether an address is in the channel's write queue: a hash set of the
queued writes' addresses answers in one probe or a few, whatever the queue size.
"""

cimport cython
from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport calloc, malloc, free
from libc.string cimport memmove

cdef extern from "stdlib.h" nogil:
    int posix_memalign(void** memptr, size_t alignment, size_t size)

from sieve._core.engine cimport TimingEngine, MAX_LEVELS, prerequisite_on_bank, ready_gate

import math

import numpy as np

# compile-time constants, so that comparisons with them need no load
cdef extern from *:
    """
    #define SIEVE_CTL_NEVER INT64_MAX
    #define SIEVE_CTL_STALE (-1)
    #define SIEVE_CTL_END INT64_MIN
    """
    const int64_t NEVER "SIEVE_CTL_NEVER"
    const int64_t STALE "SIEVE_CTL_STALE"  # an entry's bound when its bank changed: its next command must be recomputed
    const int64_t END "SIEVE_CTL_END"      # the bound of the place after a buffer's last entry: due on every tick

cdef enum:
    BUS_ROW = 0             # resolve.BUS_CODE
    BUS_COLUMN = 1

# what a channel's tick did (Controller.tick_channel)
cdef enum:
    NOT_ISSUED = 0              # no command issued: the channel waits for next_event or an arrival
    ISSUED = 1                  # a command issued; nothing can be due before next_event
    ISSUED_EVALUATE_NEXT = 2    # a command issued; the channel is evaluated again on the next tick

cdef enum:
    KIND_READ = 0
    KIND_WRITE = 1

# the three buffers of a channel
cdef enum:
    READ_QUEUE = 0
    WRITE_QUEUE = 1
    ACTIVE = 2
    NUM_BUFFERS = 3

cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b

cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


# A request waiting in a channel buffer, held by value so an entry moves with its request from queue
# to active buffer. Only an entry whose bound has been reached is read; the bounds themselves sit in
# the buffer's array of positions (`Place`), so that skipping an entry reads 8 bytes. An entry fills
# one 64-byte cache line (their pool is aligned to one): deciding a due entry reads one line.
cdef struct Entry:
    int64_t r           # request id (trace order)
    int64_t arrive
    int64_t row
    uint64_t key        # full address, for forwarding and merging
    int32_t bank        # flat bank id (its level indices: `Controller.levels_of`)
    int32_t col
    int32_t gate        # ready-table entry that set the bound (TimingEngine.timing_ready_from), -1: none
    int32_t cmd         # next command towards `final` (valid unless the bound is STALE)
    int32_t final       # read or write command
    int32_t judged      # first command issued (hit / miss / conflict decided)
    int32_t next_member # slot of the next younger entry of its group, -1: none (see `Buffer`)
    int32_t last_member # (a group's first entry) slot of its youngest entry


# One position of a buffer: what a scan reads of an entry before it knows the entry is due, and what
# removing an entry shifts (one move of the positions behind it).
cdef struct Place:
    int64_t bound       # STALE, or a tick before which the entry's command cannot issue
    int32_t bank        # the entry's flat bank id, swept when a bank changes
    int32_t slot        # the entry's slot in `Buffer.ent`


# A queue keeps requests to one row of one bank that arrived one after another as one group: they want
# the same command and it is legal for all of them at once, so only the oldest, the group's first entry,
# can win a slot and only it has a place. The others follow it in a chain of slots (`next_member`); as
# no other request of the queue arrived between them, the next one takes the place when it leaves.
cdef struct Buffer:
    Entry* ent          # [cap] entries, each in a fixed slot while it stays in the buffer
    Place* at           # [cap + 1] in buffer order: arrival order for queues, ACT order for the active
                        # buffer; at[len].bound is END, which ends a scan's run of entries not due
    int32_t* free       # [cap] a stack of free slots
    int64_t nfree
    int64_t low         # at or below every entry's bound: while it lies ahead, a scan reads nothing
    int64_t len         # places (groups' first entries)
    int64_t count       # entries
    int64_t cap
    int64_t last_group  # slot of the first entry of the group the last entry joined, -1: none
    bint in_age_order   # a queue: arrival order; the active buffer is in ACT order


# One place of a channel's set of the addresses in its write queue (open addressing, linear probing).
cdef struct WriteKey:
    uint64_t key
    int64_t used        # 0: empty


cdef inline bint cyclic_between(uint64_t lo, uint64_t x, uint64_t hi) noexcept nogil:
    """Whether x lies in the cyclic range (lo, hi] of table places."""
    if lo <= hi:
        return lo < x and x <= hi
    return lo < x or x <= hi


# What the controller asks of a command while it schedules, in one record (read per due entry).
cdef struct CommandInfo:
    int64_t phase       # tick within a CK on which it may issue (column commands), -1: any tick
    int32_t bus         # BUS_ROW or BUS_COLUMN
    int32_t scope       # level of its node
    int32_t gate_levels # levels its rules sit at (scope + 1), or 0 when rules below its scope take part
    bint one_bank       # its scope is the bank
    bint opens          # opens rows
    bint closes         # closes rows
    bint row_on_bank    # needs its row open on one bank (`prerequisite_on_bank` reads the bank's row buffer)


# The winner of one slot in a scan.
cdef struct Pick:
    int64_t pos         # position in its buffer, -1: none
    int64_t arrive
    int cmd


cdef inline void pick_reset(Pick* p) noexcept nogil:
    p.pos = -1
    p.arrive = NEVER


cdef inline Entry* entry_at(Buffer* b, int64_t pos) noexcept nogil:
    return &b.ent[b.at[pos].slot]


cdef inline void buffer_remove(Buffer* b, int64_t pos) noexcept nogil:
    """Remove the entry at place `pos`; the next entry of its group, if any, takes the place (stale)."""
    cdef int32_t slot = b.at[pos].slot
    cdef Entry* e = &b.ent[slot]
    cdef int32_t m = e.next_member
    b.free[b.nfree] = slot
    b.nfree += 1
    b.count -= 1
    if m < 0:
        memmove(&b.at[pos], &b.at[pos + 1], (b.len - pos) * sizeof(Place))  # and the END after them
        b.len -= 1
        if b.last_group == slot:
            b.last_group = -1
        return
    b.ent[m].last_member = e.last_member
    if b.last_group == slot:
        b.last_group = m
    b.at[pos].slot = m
    b.at[pos].bound = STALE
    b.low = STALE


cdef inline Entry* new_entry(Buffer* b) noexcept nogil:
    cdef Entry* e
    b.nfree -= 1
    e = &b.ent[b.free[b.nfree]]
    e.next_member = -1
    e.last_member = b.free[b.nfree]
    b.count += 1
    return e


cdef inline Entry* buffer_push(Buffer* b, int64_t bank, int64_t bound) noexcept nogil:
    """Append an entry to `bank` with a place of its own and `bound` (STALE: it recomputes its command
    when next scanned; NEVER: the caller sets it) and return it (the caller fills it)."""
    cdef Place* at = &b.at[b.len]
    at.slot = b.free[b.nfree - 1]
    at.bank = bank
    at.bound = bound
    at[1].bound = END
    if bound < b.low:
        b.low = bound
    b.len += 1
    b.last_group = at.slot
    return new_entry(b)


cdef inline Entry* queue_push(Buffer* b, int64_t bank, int64_t row) noexcept nogil:
    """Append an entry to `bank` and `row` (the caller fills it in): to the group the last entry
    joined when that group is to the same row of the same bank, else with a place of its own."""
    cdef Entry* first
    cdef Entry* e
    cdef int32_t slot
    if b.last_group >= 0:
        first = &b.ent[b.last_group]
        if first.bank == bank and first.row == row:
            slot = b.free[b.nfree - 1]
            e = new_entry(b)
            b.ent[first.last_member].next_member = slot
            first.last_member = slot
            return e
    return buffer_push(b, bank, STALE)


ENTRY_BYTES = sizeof(Entry)
"""Bytes of one queue entry (a request waiting in a channel buffer)."""


def bank_levels(TimingEngine eng):
    """[num_banks, levels]: the level indices (from the channel down) of each flat bank id."""
    out = np.empty((eng.num_banks, eng.num_levels), dtype=np.int64)
    cdef int64_t[:, ::1] lv = out
    cdef int64_t b, rest
    cdef int l
    for b in range(eng.num_banks):
        rest = b
        for l in range(eng.num_levels - 1, -1, -1):
            lv[b, l] = rest % eng.fanout[l]
            rest = rest // eng.fanout[l]
    return out


@cython.final
cdef class Controller:
    cdef TimingEngine eng
    cdef int L
    cdef int64_t nch
    cdef int64_t banks_per_ch
    cdef int64_t qcap
    cdef int64_t pcap
    cdef CommandInfo* cmd               # [commands]
    cdef int64_t tpc                    # ticks per CK
    cdef int64_t tpc_mask               # tpc - 1 when tpc is a power of two, else -1
    cdef const int64_t* ready           # the engine's ready table (fixed size, never reallocated)
    cdef int32_t* bank_rows             # [num_banks * MAX_LEVELS]: first ready-table entry of each level's
                                        # node above the bank (the command id is added to it)
    cdef int read_cmd, write_cmd, ref_cmd, ref_level
    cdef int64_t read_lat, write_lat, ref_interval, ref_per_ch
    cdef int64_t write_enter            # write mode starts with this many queued writes (above the high watermark)
    cdef int64_t write_leave            # and ends below this many (below the low watermark) while reads wait
    # requests (trace order), read on offer
    cdef const int32_t[::1] bank       # flat bank id of each request
    cdef const int32_t[::1] row
    cdef const int32_t[::1] col
    cdef const uint8_t[::1] kind
    cdef const uint64_t[::1] key
    cdef const int64_t[:, ::1] bank_levels  # [num_banks, levels] level indices of each flat bank id
    cdef const int64_t* levels_p        # &bank_levels[0, 0]
    # results (trace order)
    cdef int64_t[::1] arrive
    cdef int64_t[::1] complete
    cdef uint8_t[::1] outcome          # 0 hit, 1 miss, 2 conflict, 3 forwarded, 4 merged
    # per-channel buffers: channel ch owns buffers [ch * NUM_BUFFERS, (ch + 1) * NUM_BUFFERS)
    cdef Buffer* buffers
    cdef Entry* ent_pool
    cdef Place* place_pool
    cdef int32_t* free_pool
    cdef WriteKey* write_keys           # [nch * key_places]: channel ch's set of queued write addresses
    cdef uint64_t key_places            # a power of two, at least twice the queue size
    cdef int key_shift                  # 64 - log2(key_places): a key's home place is its hash's top bits
    cdef bint lost_writes               # the address set disagreed with the write queue (a bug: run() raises)
    cdef bint refused                   # the engine refused a command the controller chose (a bug: run() raises)
    cdef int64_t[:, ::1] prio          # refresh node ids (at ref_level)
    cdef int64_t[::1] prio_len
    cdef uint8_t[::1] write_mode
    cdef int64_t[::1] active_per_bank  # global bank id
    cdef int64_t[::1] held_per_bank    # global bank id: requests in the channel's buffers (queues and active)
    cdef int64_t[::1] next_event
    cdef int64_t[::1] read_depart      # per channel: completion of the last RD issued
    cdef uint8_t[::1] dirty
    # results
    cdef public int64_t hits, misses, conflicts, forwarded, merged
    cdef public int64_t reads, writes, read_latency_sum, last_completion, ticks
    cdef public bint deadlocked

    def __cinit__(self):
        self.buffers = NULL
        self.ent_pool = NULL
        self.place_pool = NULL
        self.free_pool = NULL
        self.write_keys = NULL
        self.bank_rows = NULL
        self.cmd = NULL

    def __dealloc__(self):
        free(self.bank_rows)
        free(self.cmd)
        free(self.buffers)
        free(self.ent_pool)
        free(self.place_pool)
        free(self.free_pool)
        free(self.write_keys)

    def __init__(self, TimingEngine eng, tables, const int32_t[::1] bank, const int32_t[::1] row,
                 const int32_t[::1] col, const uint8_t[::1] kind, const uint64_t[::1] key,
                 int queue_size=32, int priority_size=1568, double wr_high=0.8, double wr_low=0.2,
                 bint refresh=False, bint write_done_at_issue=True):
        """`bank`: each request's flat bank id (levels from the channel down, in 0 .. num_banks - 1);
        `row`, `col`, `kind` (0 read, 1 write) and `key` (its address, for forwarding and merging) per
        request, in trace order."""
        n = bank.shape[0]
        if row.shape[0] != n or col.shape[0] != n or kind.shape[0] != n or key.shape[0] != n:
            raise ValueError("Controller: request arrays of different lengths")
        if n and not (0 <= np.min(bank) and np.max(bank) < eng.num_banks):
            raise ValueError(f"Controller: bank ids must lie in 0..{eng.num_banks - 1}")
        self.eng = eng
        self.L = eng.num_levels
        self.nch = tables.fanout[0]
        self.banks_per_ch = eng.num_banks // self.nch
        self.qcap = queue_size
        self.pcap = priority_size
        self.ready = &eng.ready[0]
        self._index_ready_table(eng)
        self._describe_commands(eng, tables)
        self.read_cmd = tables.read_cmd
        self.write_cmd = tables.write_cmd
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
        # the fewest writes above wr_high * queue_size, and the fewest not below wr_low * queue_size
        self.write_enter = math.floor(wr_high * queue_size) + 1
        self.write_leave = math.ceil(wr_low * queue_size)
        self.bank = bank
        self.bank_levels = bank_levels(eng)
        self.levels_p = &self.bank_levels[0, 0]
        self.row = row
        self.col = col
        self.kind = kind
        self.key = key
        self.arrive = np.zeros(n, dtype=np.int64)
        self.complete = np.full(n, -1, dtype=np.int64)
        self.outcome = np.zeros(n, dtype=np.uint8)
        self._allocate_buffers()
        self.prio = np.zeros((self.nch, priority_size), dtype=np.int64)
        self.prio_len = np.zeros(self.nch, dtype=np.int64)
        self.write_mode = np.zeros(self.nch, dtype=np.uint8)
        self.active_per_bank = np.zeros(eng.num_banks, dtype=np.int64)
        self.held_per_bank = np.zeros(eng.num_banks, dtype=np.int64)
        self.next_event = np.full(self.nch, NEVER, dtype=np.int64)
        self.read_depart = np.zeros(self.nch, dtype=np.int64)
        # Every channel is evaluated on the first tick, as if ticked every tick: one that has no request
        # yet enters write mode then (its read queue is empty), which decides what it serves first.
        self.dirty = np.ones(self.nch, dtype=np.uint8)

    def _allocate_buffers(self):
        # a request is active from its ACT to its final command, and a bank holding one is never closed
        cdef int64_t caps[NUM_BUFFERS]
        caps[READ_QUEUE] = self.qcap
        caps[WRITE_QUEUE] = self.qcap
        caps[ACTIVE] = self.banks_per_ch
        cdef int64_t per_ch = caps[0] + caps[1] + caps[2]
        cdef int64_t total = self.nch * per_ch, at = 0, places = 0, ch, i
        cdef int k
        self.buffers = <Buffer*>malloc(self.nch * NUM_BUFFERS * sizeof(Buffer))
        cdef void* pool = NULL
        if posix_memalign(&pool, 64, max(total, 1) * sizeof(Entry)) != 0:
            raise MemoryError()
        self.ent_pool = <Entry*>pool
        self.place_pool = <Place*>malloc((total + self.nch * NUM_BUFFERS) * sizeof(Place))
        self.free_pool = <int32_t*>malloc(total * sizeof(int32_t))
        self.key_places = 2
        self.key_shift = 63
        while self.key_places < 2 * self.qcap:
            self.key_places *= 2
            self.key_shift -= 1
        self.write_keys = <WriteKey*>calloc(self.nch * self.key_places, sizeof(WriteKey))
        if self.buffers == NULL or self.ent_pool == NULL or self.place_pool == NULL or self.free_pool == NULL \
                or self.write_keys == NULL:
            raise MemoryError()
        for ch in range(self.nch):
            for k in range(NUM_BUFFERS):
                self.buffers[ch * NUM_BUFFERS + k] = Buffer(
                    ent=&self.ent_pool[at], at=&self.place_pool[places], free=&self.free_pool[at],
                    nfree=caps[k],
                    low=NEVER, len=0, count=0, cap=caps[k], last_group=-1, in_age_order=k != ACTIVE)
                self.place_pool[places].bound = END
                for i in range(caps[k]):
                    self.free_pool[at + i] = caps[k] - 1 - i
                at += caps[k]
                places += caps[k] + 1

    def _index_ready_table(self, TimingEngine eng):
        cdef int64_t b, C = eng.num_commands
        cdef int l
        if eng.total_nodes * C >= 2 ** 31 or eng.num_banks >= 2 ** 31:
            raise ValueError("Controller: a device of more than 2^31 banks or ready-table entries")
        self.bank_rows = <int32_t*>malloc(eng.num_banks * MAX_LEVELS * sizeof(int32_t))
        if self.bank_rows == NULL:
            raise MemoryError()
        for b in range(eng.num_banks):
            for l in range(eng.num_levels):
                self.bank_rows[b * MAX_LEVELS + l] = (eng.level_offset[l] + b // eng.span_below[l]) * C

    def _describe_commands(self, TimingEngine eng, tables):
        cdef int c, scope
        self.cmd = <CommandInfo*>malloc(eng.num_commands * sizeof(CommandInfo))
        if self.cmd == NULL:
            raise MemoryError()
        for c in range(eng.num_commands):
            scope = eng.cmd_scope[c]
            self.cmd[c] = CommandInfo(
                phase=eng.cmd_phase[c], bus=tables.cmd_bus[c], scope=scope,
                gate_levels=0 if eng.cmd_next_levels[c] >> (scope + 1) else scope + 1,
                one_bank=scope == eng.num_levels - 1, opens=eng.cmd_opens[c] != 0,
                closes=eng.cmd_closes[c] != 0,
                row_on_bank=eng.cmd_needs[c] == 1 and scope == eng.num_levels - 1)
        self.tpc = eng.ticks_per_ck
        self.tpc_mask = self.tpc - 1 if self.tpc & (self.tpc - 1) == 0 else -1

    cdef inline int64_t align(self, int cmd, int64_t tick) noexcept nogil:
        """The engine's `align_tick` (column commands on their phase of the CK), for tick >= 0."""
        cdef int64_t phase = self.cmd[cmd].phase, r
        if phase < 0:
            return tick
        r = tick & self.tpc_mask if self.tpc_mask >= 0 else tick % self.tpc
        if r <= phase:
            return tick + (phase - r)
        return tick + self.tpc - r + phase

    cdef inline const int64_t* levels_of(self, int64_t bank) noexcept nogil:
        """The level indices (from the channel down) of flat bank `bank`."""
        return &self.levels_p[bank * self.L]

    cdef inline Buffer* buffer(self, int64_t ch, int k) noexcept nogil:
        return &self.buffers[ch * NUM_BUFFERS + k]

    # ------------------------------------------------------------------------------------------

    cdef bint would_close_active(self, int cmd, const int64_t* a) noexcept nogil:
        if not self.cmd[cmd].closes:
            return False
        cdef int scope = self.cmd[cmd].scope
        cdef int64_t first = self.eng.node_of(scope, a) * self.eng.span_below[scope]
        cdef int64_t b
        for b in range(first, first + self.eng.span_below[scope]):
            if self.active_per_bank[b] > 0:
                return True
        return False

    cdef inline bint closes_active(self, int cmd, Entry* e) noexcept nogil:
        if not self.cmd[cmd].closes:
            return False
        if self.cmd[cmd].one_bank:
            return self.active_per_bank[e.bank] != 0
        return self.would_close_active(cmd, self.levels_of(e.bank))

    cdef inline int64_t legal_from(self, Entry* e, int64_t clk) noexcept nogil:
        """The first tick >= clk at which e.cmd may issue, or, while the gate that held it back last
        time is still shut at clk, a tick before which it cannot."""
        cdef int64_t t, gate = -1
        if e.gate >= 0:
            t = self.ready[e.gate]
            if t > clk:
                return self.align(e.cmd, t)
        if self.cmd[e.cmd].gate_levels:
            t = self.ready_on_bank(e.cmd, e.bank, &gate)
        else:
            t = ready_gate(self.eng, e.cmd, self.levels_of(e.bank), &gate)
        e.gate = <int32_t>gate
        return self.align(e.cmd, imax(t, clk))

    cdef inline int64_t ready_on_bank(self, int cmd, int64_t bank, int64_t* gate) noexcept nogil:
        """The engine's `ready_gate` for a command whose rules all lie at or above its scope, read
        through the bank's ready-table rows: the earliest tick the rules allow `cmd` on `bank`, and in
        `gate` the entry that sets it (the highest level's on a tie)."""
        cdef const int32_t* rows = &self.bank_rows[bank * MAX_LEVELS]
        cdef int64_t t = -1, k
        cdef int l
        for l in range(self.cmd[cmd].gate_levels):
            k = rows[l] + cmd
            if self.ready[k] > t:
                t = self.ready[k]
                gate[0] = k
        return t

    cdef inline void scan(self, Buffer* b, int64_t clk, Pick* column, Pick* row, int64_t* next_tick) noexcept nogil:
        """`scan_due`, without a call when nothing is due: every bound lies ahead."""
        if b.low > clk:
            if next_tick != NULL and b.low < next_tick[0]:
                next_tick[0] = b.low
            return
        self.scan_due(b, clk, column, row, next_tick)

    cdef void scan_due(self, Buffer* b, int64_t clk, Pick* column, Pick* row, int64_t* next_tick) noexcept nogil:
        """FR-FCFS over one buffer for the column and the row slot at once (NULL: slot not served).
        Each slot's pick gets the position of its winner; `next_tick` (unless NULL) is lowered to a
        tick at or before the first one at which a request's command may become legal.

        An entry left undecided (its slot already has an older winner) keeps a bound at or before
        `clk`: a winner issues this tick, so the channel is evaluated again on the next one.

        A queue is in age order (the active buffer is in ACT order), so a slot's first legal entry is
        its winner. The scan of a queue stops at the
        column winner (it issues, and the row slot is judged again after it) or, when only the row
        slot is served, at the row winner; either way `next_tick` is not needed. Entries not reached
        keep their bounds, and `low` their old floor."""
        cdef int64_t t, nxt = NEVER, low_due = NEVER, last_t = 0
        cdef Place* p = b.at
        cdef Place* end = b.at + b.len
        cdef Entry* e
        cdef Entry* last = NULL
        cdef Pick* stop_at = column if column != NULL else row
        # Entries not due are only folded into `nxt`: each lies at or above the old `low`, so the new
        # floor is the lower of `nxt` and the bounds of the entries decided here (`low_due`).
        while True:
            # a run of entries not due, ended by a due one or by the END after the last entry
            while p.bound > clk:
                if p.bound < nxt:
                    nxt = p.bound
                p += 1
            if p == end:
                break
            t = p.bound
            e = &b.ent[p.slot]
            if last != NULL and last_t > clk and self.same_command(e, last):
                # Neighbours often want the same command on one bank (streams, hot banks): not
                # legal before the same tick.
                e.cmd = last.cmd
                e.gate = last.gate
                p.bound = last_t
            else:
                if t == STALE:
                    e.cmd = prerequisite_on_bank(self.eng, e.final, e.bank, self.levels_of(e.bank), e.row)
                    e.gate = -1
                    p.bound = 0
                self.decide(b, p, clk, column, row)
                if b.in_age_order and stop_at.pos >= 0:
                    b.low = imin(imin(low_due, p.bound), b.low)
                    return
                last = e
                last_t = p.bound
            t = p.bound
            low_due = imin(low_due, t)
            if t > clk:
                nxt = imin(nxt, t)
            p += 1
        b.low = imin(low_due, nxt)
        if next_tick != NULL and nxt < next_tick[0]:
            next_tick[0] = nxt

    cdef inline bint same_command(self, Entry* e, Entry* other) noexcept nogil:
        """Whether e's next command is other's (whose command is current) on the same bank: the same
        request kind to the same row, or, when that kind needs its row open on one bank (a read or a
        write), the bank's open row is neither's (both open it, or both close it)."""
        cdef int64_t open_row
        if e.bank != other.bank or e.final != other.final:
            return False
        if e.row == other.row:
            return True
        if not self.cmd[e.final].row_on_bank:
            return False
        open_row = self.eng.open_row[e.bank]
        return open_row != e.row and open_row != other.row

    cdef inline void decide(self, Buffer* b, Place* p, int64_t clk, Pick* column, Pick* row) noexcept nogil:
        """The entry at place p of `b` is due and knows its command: make it its slot's pick if it is
        legal now and older than the pick, or move its bound on. An entry that cannot win here stays due."""
        cdef Entry* e = &b.ent[p.slot]
        cdef int cmd = e.cmd
        cdef Pick* slot = column if self.cmd[cmd].bus == BUS_COLUMN else row
        cdef int64_t t
        if slot == NULL:
            # not served in this scan (the column slot already issued): move its bound on, so that
            # the scans before the channel's next issue pass over it
            t = self.legal_from(e, clk)
            if t > clk:
                p.bound = t
            return
        if e.arrive >= slot.arrive:
            return
        if self.closes_active(cmd, e):
            if self.cmd[cmd].one_bank:
                p.bound = NEVER  # until its bank's last active request leaves (issue_request)
            return
        t = self.legal_from(e, clk)
        if t == clk:
            slot.pos = p - b.at
            slot.arrive = e.arrive
            slot.cmd = cmd
        else:
            p.bound = t

    cdef void row_state_changed(self, int cmd, const int64_t* a) noexcept nogil:
        """Mark stale the entries of the banks `cmd` opened or closed: their next command changes."""
        if not (self.cmd[cmd].opens or self.cmd[cmd].closes):
            return
        cdef int scope = self.cmd[cmd].scope
        self.mark_stale(a[0], self.eng.node_of(scope, a) * self.eng.span_below[scope], self.eng.span_below[scope])

    cdef void mark_stale(self, int64_t ch, int64_t first, int64_t count) noexcept nogil:
        """Mark stale the entries of channel ch to banks first .. first + count - 1."""
        cdef Buffer* b
        cdef int64_t i
        cdef int k
        for k in range(NUM_BUFFERS):
            b = self.buffer(ch, k)
            for i in range(b.len):
                if <uint64_t>(b.at[i].bank - first) < <uint64_t>count:
                    b.at[i].bound = STALE
                    b.low = STALE

    cdef bint update_write_mode(self, int64_t ch) noexcept nogil:
        """Returns True if the channel serves its write queue."""
        cdef int64_t wq = self.buffer(ch, WRITE_QUEUE).count
        cdef int64_t rq = self.buffer(ch, READ_QUEUE).count
        if not self.write_mode[ch]:
            if wq >= self.write_enter or rq == 0:
                self.write_mode[ch] = 1
        elif wq < self.write_leave and rq > 0:
            self.write_mode[ch] = 0
        return self.write_mode[ch]

    cdef void judge(self, Entry* e) noexcept nogil:
        """Hit, miss or conflict, from the bank as the request's first command finds it."""
        cdef int64_t open_row = self.eng.open_row[e.bank]
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

    cdef void issue_request(self, int64_t ch, int k, int64_t pos, int cmd, int64_t clk) noexcept nogil:
        """Issue `cmd` for the entry at `pos` of buffer `k` of channel ch."""
        cdef Buffer* b = self.buffer(ch, k)
        cdef Buffer* act
        cdef Entry* f
        cdef int32_t m
        cdef Entry* e = entry_at(b, pos)
        cdef const int64_t* addr = self.levels_of(e.bank)
        cdef bint one_bank = self.cmd[cmd].one_bank
        if not e.judged:
            self.judge(e)
        if one_bank:
            # `cmd` came from its bank's row state, and every change of that state since marked the
            # entry stale: the state is as the command needs it, so it is applied without asking again.
            self.eng.apply(cmd, addr, e.row, e.col, clk)
            if self.cmd[cmd].opens or self.cmd[cmd].closes:
                if self.held_per_bank[e.bank] == 1:
                    # the bank holds only this request: its next command is the only one that changes
                    # (after a command that opens rows the request moves to the active buffer and learns
                    # it there; after its final command it leaves)
                    if not self.cmd[cmd].opens and cmd != e.final:
                        self.redecide_on_bank(b, &b.at[pos], e)
                else:
                    self.mark_stale(ch, e.bank, 1)
        else:
            # `cmd` is what `prerequisite` named for the bank states it spans, so the engine takes it
            self.refused |= self.eng.issue(cmd, addr, e.row, e.col, clk) != 0
            self.row_state_changed(cmd, addr)
        if cmd == e.final:
            self.held_per_bank[e.bank] -= 1
            if k == ACTIVE:
                self.active_per_bank[e.bank] -= 1
                if self.active_per_bank[e.bank] == 0 and self.held_per_bank[e.bank] > 0:
                    self.mark_stale(ch, e.bank, 1)  # its precharges may be chosen again
            self.complete_request(ch, e, cmd, clk)
            self.leave(ch, k, pos)
        elif self.cmd[cmd].opens:
            self.active_per_bank[e.bank] += 1
            act = self.buffer(ch, ACTIVE)
            f = buffer_push(act, e.bank, NEVER)  # its bound is set below
            m = f.last_member  # its own slot
            f[0] = e[0]
            f.next_member = -1
            f.last_member = m
            self.redecide_on_bank(act, &act.at[act.len - 1], f)
            self.leave(ch, k, pos)

    cdef inline void redecide_on_bank(self, Buffer* b, Place* p, Entry* e) noexcept nogil:
        """The entry at place p of `b`, whose bank just changed its row state, learns its next command from
        the bank's row buffer (as a stale entry would when next scanned) and takes as its bound that
        command's ready tick at the bank, just raised by the command that issued, with that entry as its
        gate: the rules above the bank can only hold it longer. A command that is not the bank's own
        leaves the entry stale."""
        cdef int cmd = prerequisite_on_bank(self.eng, e.final, e.bank, self.levels_of(e.bank), e.row)
        cdef int64_t slot
        if not self.cmd[cmd].one_bank:
            p.bound = STALE
            b.low = STALE
            return
        slot = self.bank_rows[e.bank * MAX_LEVELS + self.L - 1] + cmd
        e.cmd = cmd
        e.gate = <int32_t>slot
        p.bound = self.align(cmd, self.ready[slot])
        if p.bound < b.low:
            b.low = p.bound

    cdef inline void leave(self, int64_t ch, int k, int64_t pos) noexcept nogil:
        """The entry at `pos` of buffer k leaves it (a write leaving the write queue leaves its address set)."""
        cdef Buffer* b = self.buffer(ch, k)
        if k == WRITE_QUEUE:
            self.drop_write_key(ch, entry_at(b, pos).key)
        buffer_remove(b, pos)

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
        if self.cmd[cmd].bus != bus or self.would_close_active(cmd, addr):
            return False
        t = self.eng.align(cmd, imax(self.eng.timing_ready(cmd, addr), clk))
        if t != clk:
            next_tick[0] = imin(next_tick[0], t)
            return False
        self.refused |= self.eng.issue(cmd, addr, 0, 0, clk) != 0
        self.row_state_changed(cmd, addr)
        if cmd == self.ref_cmd:
            for l in range(self.prio_len[ch] - 1):
                self.prio[ch, l] = self.prio[ch, l + 1]
            self.prio_len[ch] -= 1
        return True

    cdef int rw_queue(self, int64_t ch) noexcept nogil:
        """The queue the channel serves now (read or write)."""
        return WRITE_QUEUE if self.update_write_mode(ch) else READ_QUEUE

    cdef int tick_channel(self, int64_t ch, int64_t clk) noexcept nogil:
        """One controller tick. Returns whether a command issued and whether the channel must be evaluated
        on the next tick (ISSUED_EVALUATE_NEXT); otherwise sets next_event[ch], the first tick it must be."""
        cdef int64_t nxt = NEVER
        cdef Pick col_pick, row_pick
        cdef int q = READ_QUEUE
        cdef bint issued = False
        cdef bint row_picked = False
        # column slot: judged every tick so `nxt` sees column work; it can only issue on a rising edge
        pick_reset(&col_pick)
        self.scan(self.buffer(ch, ACTIVE), clk, &col_pick, NULL, &nxt)
        if col_pick.pos >= 0:
            self.issue_request(ch, ACTIVE, col_pick.pos, col_pick.cmd, clk)
            issued = True
        elif self.prio_len[ch] > 0:
            issued = self.try_refresh(ch, BUS_COLUMN, clk, &nxt)
        else:
            # One scan judges the queue for both slots: the row slot's winner stands unless the column
            # slot changes the channel.
            q = self.rw_queue(ch)
            pick_reset(&row_pick)
            self.scan(self.buffer(ch, q), clk, &col_pick, &row_pick, &nxt)
            if col_pick.pos >= 0:
                self.issue_request(ch, q, col_pick.pos, col_pick.cmd, clk)
                issued = True
            else:
                row_picked = True
        # row slot
        if self.prio_len[ch] > 0:
            if self.try_refresh(ch, BUS_ROW, clk, &nxt):
                issued = True
        else:
            if not row_picked:
                # The column slot issued, so the row slot must see it; the wake-up tick is not needed.
                q = self.rw_queue(ch)
                pick_reset(&row_pick)
                self.scan(self.buffer(ch, q), clk, NULL, &row_pick, NULL)
            if row_pick.pos >= 0:
                self.issue_request(ch, q, row_pick.pos, row_pick.cmd, clk)
                issued = True
        if not issued:
            self.next_event[ch] = nxt
            return NOT_ISSUED
        if self.prio_len[ch] > 0:
            return ISSUED_EVALUATE_NEXT
        # After an issue the next tick need not be evaluated when every entry's bound lies beyond it: the
        # buffers' floors say when one can be due first (a scan that stopped early leaves a low one).
        nxt = imin(imin(self.buffer(ch, ACTIVE).low, self.buffer(ch, READ_QUEUE).low),
                   self.buffer(ch, WRITE_QUEUE).low)
        if nxt <= clk + 1:
            return ISSUED_EVALUATE_NEXT
        self.next_event[ch] = nxt
        return ISSUED

    # ------------------------------------------------------------------------------------------

    cdef inline WriteKey* key_table(self, int64_t ch) noexcept nogil:
        return &self.write_keys[ch * <int64_t>self.key_places]

    cdef inline uint64_t key_home(self, uint64_t key) noexcept nogil:
        """A key's first place: the top bits of its Fibonacci hash, which spreads strided addresses."""
        return (key * <uint64_t>0x9E3779B97F4A7C15ULL) >> self.key_shift

    cdef inline int64_t key_place(self, int64_t ch, uint64_t key) noexcept nogil:
        """The place of `key` in channel ch's set of queued write addresses, or -1."""
        cdef WriteKey* t = self.key_table(ch)
        cdef uint64_t i = self.key_home(key), mask = self.key_places - 1, probes
        for probes in range(self.key_places):  # a run ends at an empty place: the set is at most half full
            if not t[i].used:
                break
            if t[i].key == key:
                return <int64_t>i
            i = (i + 1) & mask
        return -1

    cdef void add_write_key(self, int64_t ch, uint64_t key) noexcept nogil:
        """Add the address of a write joining the write queue (not in it: it would have merged)."""
        cdef WriteKey* t = self.key_table(ch)
        cdef uint64_t i = self.key_home(key), mask = self.key_places - 1, probes
        for probes in range(self.key_places):
            if not t[i].used:
                t[i].key = key
                t[i].used = 1
                return
            i = (i + 1) & mask
        self.lost_writes = True  # full: addresses of writes that left the queue were not removed

    cdef void drop_write_key(self, int64_t ch, uint64_t key) noexcept nogil:
        """Remove the address of a write leaving the write queue; the keys after it in its run move back
        into the hole when their home place allows (deletion without tombstones)."""
        cdef WriteKey* t = self.key_table(ch)
        cdef int64_t at = self.key_place(ch, key)
        cdef uint64_t mask = self.key_places - 1, hole, j, probes
        if at < 0:
            self.lost_writes = True  # a queued write's address was not in the set
            return
        hole = j = <uint64_t>at
        for probes in range(self.key_places - 1):  # to the end of the run: an empty place
            j = (j + 1) & mask
            if not t[j].used:
                break
            if cyclic_between(hole, self.key_home(t[j].key), j):
                continue  # its home lies after the hole: it stays
            t[hole] = t[j]
            hole = j
        t[hole].used = 0

    cdef int offer(self, int64_t r, int64_t clk) noexcept nogil:
        """Offer request r to its channel. Returns 0 if refused (queue full)."""
        cdef int64_t ch = self.bank_levels[self.bank[r], 0], places
        cdef Buffer* q
        cdef Entry* e
        if self.buffer(ch, WRITE_QUEUE).count and self.key_place(ch, self.key[r]) >= 0:
            self.absorb(r, clk)
            return 1
        q = self.buffer(ch, READ_QUEUE if self.kind[r] == KIND_READ else WRITE_QUEUE)
        if q.count >= q.cap:
            return 0
        if self.kind[r] != KIND_READ:
            self.add_write_key(ch, self.key[r])
        places = q.len
        e = queue_push(q, self.bank[r], self.row[r])
        self.held_per_bank[self.bank[r]] += 1
        e.final = self.read_cmd if self.kind[r] == KIND_READ else self.write_cmd
        e.r = r
        e.bank = self.bank[r]
        e.row = self.row[r]
        e.col = self.col[r]
        e.key = self.key[r]
        e.arrive = clk
        e.gate = -1
        e.judged = False
        self.arrive[r] = clk
        if q.len != places or self.kind[r] != KIND_READ:
            # A read that joined a group changes nothing a scan sees (the group's first entry decides
            # for it) nor the choice of queue (the read queue was not empty): only the others make the
            # channel evaluate the next tick.
            self.dirty[ch] = 1
        return 1

    cdef void absorb(self, int64_t r, int64_t clk) noexcept nogil:
        """Request r finds its address queued for writing: a read is forwarded, a write merged."""
        self.arrive[r] = clk
        if self.kind[r] == KIND_READ:
            self.complete[r] = imax(clk + 1, self.read_depart[self.bank_levels[self.bank[r], 0]])
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
        cdef int64_t n = self.bank.shape[0]
        cdef int64_t clk = 0, next_req = 0, ch, target, k
        cdef bint any_issued, refresh_due
        cdef int outcome
        cdef bint refresh = self.ref_cmd >= 0
        with nogil:
            while True:
                while next_req < n and self.offer(next_req, clk):
                    next_req += 1
                if next_req == n and self.idle() and (clk >= self.last_completion or not refresh):
                    break
                clk += 1
                any_issued = False
                refresh_due = refresh and clk % self.ref_interval == 0
                for ch in range(self.nch):
                    if refresh_due:
                        for k in range(self.ref_per_ch):
                            if self.prio_len[ch] < self.pcap:
                                self.prio[ch, self.prio_len[ch]] = ch * self.ref_per_ch + k
                                self.prio_len[ch] += 1
                        self.dirty[ch] = 1
                    if self.dirty[ch] or clk >= self.next_event[ch]:
                        outcome = self.tick_channel(ch, clk)
                        self.dirty[ch] = outcome == ISSUED_EVALUATE_NEXT
                        # an issue may have freed a queue slot: the trace is offered again before the next tick
                        any_issued |= outcome != NOT_ISSUED
                if not any_issued:
                    # Nothing changes before the earliest next event: the trace stays blocked or exhausted.
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
        if self.refused:
            raise RuntimeError("Controller: the timing engine refused a command the controller chose for its "
                               "banks' row state (an internal error; the results are not valid)")
        if self.lost_writes or (not self.deadlocked and self.write_keys_left()):
            raise RuntimeError("Controller: the set of queued write addresses disagreed with the write queues "
                               "(an internal error; forwarding and merging may be wrong)")

    cdef bint write_keys_left(self) noexcept nogil:
        """Whether an address is left in a write-address set (none once every request has completed)."""
        cdef uint64_t i
        for i in range(<uint64_t>self.nch * self.key_places):
            if self.write_keys[i].used:
                return True
        return False

    cdef bint idle(self) noexcept nogil:
        cdef int64_t ch
        cdef int k
        for ch in range(self.nch):
            for k in range(NUM_BUFFERS):
                if self.buffer(ch, k).count:
                    return False
        return True

    def results(self):
        """Arrival tick, completion tick and outcome code of each request (the controller's own arrays)."""
        return np.asarray(self.arrive), np.asarray(self.complete), np.asarray(self.outcome)
