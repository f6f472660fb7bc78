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
the result is identical to evaluating every tick.
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport malloc, free
from libc.string cimport memmove

from sieve._core.engine cimport TimingEngine, MAX_LEVELS

import numpy as np

cdef int64_t NEVER = 0x7FFFFFFFFFFFFFFF

cdef enum:
    BUS_ROW = 0
    BUS_COLUMN = 1

cdef enum:
    KIND_READ = 0
    KIND_WRITE = 1

cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b

cdef inline int64_t imin(int64_t a, int64_t b) noexcept nogil:
    return a if a < b else b


# A request waiting in a channel buffer. The buffers hold these by value, so a scan reads one small
# contiguous array instead of gathering from trace-sized arrays (one cache miss per field per request
# on random traces). An entry moves with its request from queue to active buffer.
cdef struct Entry:
    # read by every scan
    int64_t bank        # flat bank id
    int64_t row
    int64_t arrive
    int64_t version     # bank_version[bank] when `cmd` was computed; `cmd` is stale once it differs
    int64_t ready       # lower bound of the first tick, at or after the tick it was computed, at which
                        # `cmd` may issue (timing and bus phase); recomputed once the clock reaches it
    int32_t cmd         # next command towards `final`
    int32_t final       # read or write command
    # read when the cached command is recomputed, on issue and on offer
    int64_t r           # request id (trace order)
    int64_t col
    uint64_t key        # full address, for forwarding and merging
    int64_t addr[MAX_LEVELS]
    bint judged         # first command issued (hit / miss / conflict decided)


# The winner of one slot in a scan.
cdef struct Pick:
    int64_t pos         # position in its buffer, -1: none
    int64_t arrive
    int cmd


cdef inline void pick_reset(Pick* p) noexcept nogil:
    p.pos = -1
    p.arrive = NEVER


cdef class Controller:
    cdef TimingEngine eng
    cdef int L
    cdef int64_t nch
    cdef int64_t banks_per_ch
    cdef int64_t qcap
    cdef int64_t pcap
    cdef const int64_t[::1] cmd_bus
    cdef const int64_t[::1] cmd_closes
    cdef const int64_t[::1] cmd_opens
    cdef const int64_t[::1] cmd_scope
    cdef int read_cmd, write_cmd, ref_cmd, ref_level
    cdef int64_t read_lat, write_lat, ref_interval, ref_per_ch
    cdef double wr_high, wr_low
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
    cdef int64_t[::1] bank_version     # bumped whenever a bank's row state changes
    # per-channel buffers in buffer order: channel ch owns entries [ch * capacity, (ch + 1) * capacity)
    cdef Entry* readq
    cdef Entry* writeq
    cdef Entry* active
    cdef int64_t[:, ::1] prio          # refresh node ids (at ref_level)
    cdef int64_t[::1] rq_len
    cdef int64_t[::1] wq_len
    cdef int64_t[::1] act_len
    cdef int64_t[::1] prio_len
    cdef uint8_t[::1] write_mode
    cdef int64_t[::1] active_per_bank  # global bank id
    cdef int64_t[::1] next_event
    cdef int64_t[::1] read_depart      # per channel: completion of the last RD issued
    cdef uint8_t[::1] dirty
    # results
    cdef public int64_t hits, misses, conflicts, forwarded, merged
    cdef public int64_t reads, writes, read_latency_sum, last_completion, ticks
    cdef public bint deadlocked

    def __cinit__(self):
        self.readq = NULL
        self.writeq = NULL
        self.active = NULL

    def __dealloc__(self):
        free(self.readq)
        free(self.writeq)
        free(self.active)

    def __init__(self, TimingEngine eng, tables, const int64_t[:, ::1] addr, const int64_t[::1] row,
                 const int64_t[::1] col, const uint8_t[::1] kind, const uint64_t[::1] key,
                 int queue_size=32, int priority_size=1568, double wr_high=0.8, double wr_low=0.2,
                 bint refresh=False, bint write_done_at_issue=True):
        n = addr.shape[0]
        self.eng = eng
        self.L = eng.num_levels
        self.nch = tables.fanout[0]
        self.banks_per_ch = eng.num_banks // self.nch
        self.qcap = queue_size
        self.pcap = priority_size
        self.cmd_bus = np.ascontiguousarray(
            [1 if c.bus == "column" else 0 for c in tables.standard.commands], dtype=np.int64)
        self.cmd_closes = tables.cmd_closes
        self.cmd_opens = tables.cmd_opens
        self.cmd_scope = tables.cmd_scope
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
        self.bank_version = np.zeros(eng.num_banks, dtype=np.int64)
        self.readq = <Entry*>malloc(self.nch * self.qcap * sizeof(Entry))
        self.writeq = <Entry*>malloc(self.nch * self.qcap * sizeof(Entry))
        # a request is active from its ACT to its final command, and a bank holding one is never closed
        self.active = <Entry*>malloc(self.nch * self.banks_per_ch * sizeof(Entry))
        if self.readq == NULL or self.writeq == NULL or self.active == NULL:
            raise MemoryError()
        self.prio = np.zeros((self.nch, priority_size), dtype=np.int64)
        self.rq_len = np.zeros(self.nch, dtype=np.int64)
        self.wq_len = np.zeros(self.nch, dtype=np.int64)
        self.act_len = np.zeros(self.nch, dtype=np.int64)
        self.prio_len = np.zeros(self.nch, dtype=np.int64)
        self.write_mode = np.zeros(self.nch, dtype=np.uint8)
        self.active_per_bank = np.zeros(eng.num_banks, dtype=np.int64)
        self.next_event = np.full(self.nch, NEVER, dtype=np.int64)
        self.read_depart = np.zeros(self.nch, dtype=np.int64)
        self.dirty = np.zeros(self.nch, dtype=np.uint8)

    # ------------------------------------------------------------------------------------------

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

    cdef void scan(self, Entry* buf, int64_t length, int64_t clk, Pick* column, Pick* row,
                   int64_t* next_tick) noexcept nogil:
        """FR-FCFS over one buffer for the column and the row slot at once (NULL: slot not served).
        Each slot's pick gets the position of its winner; `next_tick` (unless NULL) is lowered to the
        first tick at which a request's command may become legal, or to an earlier tick.

        Each entry caches its next command and a lower bound of the tick it may issue (ready ticks only
        grow). The command is recomputed when its bank's row state changed; the bound is recomputed only
        once `clk` reaches it, so the choice is exact and the wake-up never late."""
        cdef int64_t i, t = NEVER, last_bank = -1, last_row = -1, nxt = NEVER
        cdef int cmd = -1, last_final = -1
        cdef Pick* slot = NULL
        cdef Entry* e
        cdef const int64_t* bank_version = &self.bank_version[0]
        for i in range(length):
            e = &buf[i]
            # Neighbours in a queue often target one row of one bank (streams): the same answer holds.
            if e.bank != last_bank or e.row != last_row or e.final != last_final:
                last_bank = e.bank
                last_row = e.row
                last_final = e.final
                if e.version == bank_version[e.bank] and e.ready > clk:
                    # Not legal before its cached bound, so it cannot win; only the wake-up needs the
                    # bound. The slot and the closed-bank check are skipped: an entry of a slot not
                    # served here or not eligible now may wake the channel early, which is harmless.
                    slot = NULL
                    t = e.ready
                else:
                    if e.version != bank_version[e.bank]:
                        e.version = bank_version[e.bank]
                        e.cmd = self.eng.prerequisite(e.final, e.addr, e.row)
                        e.ready = -1
                    cmd = e.cmd
                    slot = column if self.cmd_bus[cmd] == BUS_COLUMN else row
                    if slot != NULL and self.cmd_closes[cmd]:
                        if self.cmd_scope[cmd] == self.L - 1:
                            if self.active_per_bank[e.bank] != 0:
                                slot = NULL
                        elif self.would_close_active(cmd, e.addr):
                            slot = NULL
                    if slot != NULL:
                        if e.ready <= clk:
                            e.ready = self.eng.align(cmd, imax(self.eng.timing_ready(cmd, e.addr), clk))
                        t = e.ready
                    else:
                        t = NEVER
            if t == clk:
                if e.arrive < slot.arrive:
                    slot.pos = i
                    slot.arrive = e.arrive
                    slot.cmd = cmd
            elif t < nxt:
                nxt = t
        if next_tick != NULL and nxt < next_tick[0]:
            next_tick[0] = nxt

    cdef void row_state_changed(self, int cmd, const int64_t* a) noexcept nogil:
        """Invalidate the cached next commands of requests to the banks `cmd` opened or closed."""
        if not (self.cmd_opens[cmd] or self.cmd_closes[cmd]):
            return
        cdef int scope = self.cmd_scope[cmd]
        cdef int64_t first = self.eng.node_of(scope, a) * self.eng.span_below[scope]
        cdef int64_t b
        for b in range(first, first + self.eng.span_below[scope]):
            self.bank_version[b] += 1

    cdef bint update_write_mode(self, int64_t ch) noexcept nogil:
        """Returns True if the channel serves its write queue."""
        cdef double wq = <double>self.wq_len[ch]
        if not self.write_mode[ch]:
            if wq > self.wr_high * self.qcap or self.rq_len[ch] == 0:
                self.write_mode[ch] = 1
        elif wq < self.wr_low * self.qcap and self.rq_len[ch] > 0:
            self.write_mode[ch] = 0
        return self.write_mode[ch]

    cdef inline void remove_at(self, Entry* buf, int64_t* length, int64_t pos) noexcept nogil:
        memmove(&buf[pos], &buf[pos + 1], (length[0] - 1 - pos) * sizeof(Entry))
        length[0] -= 1

    cdef void issue_request(self, int64_t ch, Entry* buf, int64_t* length, int64_t pos, int cmd,
                            int64_t clk) noexcept nogil:
        """Issue `cmd` for the entry at `pos` of `buf` (a queue or the active buffer of channel ch)."""
        cdef Entry* e = &buf[pos]
        cdef int64_t r = e.r
        cdef int64_t open_row
        if not e.judged:
            e.judged = True
            open_row = self.eng.open_row[e.bank]
            if open_row == e.row:
                self.hits += 1
                self.outcome[r] = 0
            elif open_row >= 0:
                self.conflicts += 1
                self.outcome[r] = 2
            else:
                self.misses += 1
                self.outcome[r] = 1
        self.eng.issue(cmd, e.addr, e.row, e.col, clk)
        self.row_state_changed(cmd, e.addr)
        if cmd == e.final:
            if buf == &self.active[ch * self.banks_per_ch]:
                self.active_per_bank[e.bank] -= 1
            if cmd == self.write_cmd:
                self.complete[r] = clk + self.write_lat
                self.writes += 1
            else:
                self.complete[r] = clk + self.read_lat
                self.read_depart[ch] = self.complete[r]
                self.reads += 1
                self.read_latency_sum += self.complete[r] - e.arrive
            self.last_completion = imax(self.last_completion, self.complete[r])
            self.remove_at(buf, length, pos)
        elif self.cmd_opens[cmd]:
            self.active_per_bank[e.bank] += 1
            self.active[ch * self.banks_per_ch + self.act_len[ch]] = e[0]
            self.act_len[ch] += 1
            self.remove_at(buf, length, pos)

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
        self.row_state_changed(cmd, addr)
        if cmd == self.ref_cmd:
            for l in range(self.prio_len[ch] - 1):
                self.prio[ch, l] = self.prio[ch, l + 1]
            self.prio_len[ch] -= 1
        return True

    cdef Entry* rw_queue(self, int64_t ch, int64_t** length) noexcept nogil:
        """The queue the channel serves now (read or write) and its length."""
        if self.update_write_mode(ch):
            length[0] = &self.wq_len[ch]
            return &self.writeq[ch * self.qcap]
        length[0] = &self.rq_len[ch]
        return &self.readq[ch * self.qcap]

    cdef bint tick_channel(self, int64_t ch, int64_t clk) noexcept nogil:
        """One controller tick. Returns True if a command issued; otherwise sets next_event[ch]."""
        cdef int64_t nxt = NEVER
        cdef Pick col_pick, row_pick
        cdef Entry* act = &self.active[ch * self.banks_per_ch]
        cdef Entry* q
        cdef int64_t* qlen
        cdef bint issued = False
        cdef bint row_picked = False
        # column slot: judged every tick so `nxt` sees column work; it can only issue on a rising edge
        pick_reset(&col_pick)
        self.scan(act, self.act_len[ch], clk, &col_pick, NULL, &nxt)
        if col_pick.pos >= 0:
            self.issue_request(ch, act, &self.act_len[ch], col_pick.pos, col_pick.cmd, clk)
            issued = True
        elif self.prio_len[ch] > 0:
            issued = self.try_refresh(ch, BUS_COLUMN, clk, &nxt)
        else:
            # One scan judges the queue for both slots: the row slot's winner stands unless the column
            # slot changes the channel.
            q = self.rw_queue(ch, &qlen)
            pick_reset(&row_pick)
            self.scan(q, qlen[0], clk, &col_pick, &row_pick, &nxt)
            if col_pick.pos >= 0:
                self.issue_request(ch, q, qlen, col_pick.pos, col_pick.cmd, clk)
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
                q = self.rw_queue(ch, &qlen)
                pick_reset(&row_pick)
                self.scan(q, qlen[0], clk, NULL, &row_pick, NULL)
            if row_pick.pos >= 0:
                self.issue_request(ch, q, qlen, row_pick.pos, row_pick.cmd, clk)
                issued = True
        if not issued:
            self.next_event[ch] = nxt
        return issued

    # ------------------------------------------------------------------------------------------

    cdef int offer(self, int64_t r, int64_t clk) noexcept nogil:
        """Offer request r to its channel. Returns 0 if refused (queue full)."""
        cdef int64_t ch = self.addr[r, 0]
        cdef Entry* wq = &self.writeq[ch * self.qcap]
        cdef Entry* e
        cdef int64_t i
        cdef int l
        for i in range(self.wq_len[ch]):
            if wq[i].key == self.key[r]:
                self.arrive[r] = clk
                if self.kind[r] == KIND_READ:
                    self.complete[r] = imax(clk + 1, self.read_depart[ch])
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
                return 1
        if self.kind[r] == KIND_READ:
            if self.rq_len[ch] >= self.qcap:
                return 0
            e = &self.readq[ch * self.qcap + self.rq_len[ch]]
            self.rq_len[ch] += 1
            e.final = self.read_cmd
        else:
            if self.wq_len[ch] >= self.qcap:
                return 0
            e = &wq[self.wq_len[ch]]
            self.wq_len[ch] += 1
            e.final = self.write_cmd
        e.r = r
        e.bank = self.bank[r]
        e.row = self.row[r]
        e.col = self.col[r]
        e.key = self.key[r]
        e.arrive = clk
        e.version = -1
        e.judged = False
        for l in range(self.L):
            e.addr[l] = self.addr[r, l]
        self.arrive[r] = clk
        self.dirty[ch] = 1
        return 1

    def run(self):
        cdef int64_t n = self.addr.shape[0]
        cdef int64_t clk = 0, next_req = 0, ch, target, k
        cdef bint any_dirty, refresh_due
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
                        self.dirty[ch] = self.tick_channel(ch, clk)
                        any_dirty = any_dirty or self.dirty[ch]
                if not any_dirty:
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

    cdef bint idle(self) noexcept nogil:
        cdef int64_t ch
        for ch in range(self.nch):
            if self.rq_len[ch] or self.wq_len[ch] or self.act_len[ch]:
                return False
        return True

    def results(self):
        return (np.asarray(self.arrive).copy(), np.asarray(self.complete).copy(),
                np.asarray(self.outcome).copy())
