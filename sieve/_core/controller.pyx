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
* A read completes ``read_latency`` ticks after its RD; a write ``write_latency`` ticks after its WR.
  A read to an address with a write still queued is forwarded (completes one tick after arrival);
  a write to an address already queued for writing is merged into it (completes on arrival).

Nothing changes in a channel between two of its issues except arrivals, so a channel is evaluated
only on ticks after a change and on the first tick a command of one of its requests can become legal;
the result is identical to evaluating every tick.
"""

from libc.stdint cimport int64_t, uint8_t, uint64_t

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
    cdef const int64_t[::1] cmd_phase
    cdef int64_t tpc
    cdef int read_cmd, write_cmd, ref_cmd, ref_level
    cdef int64_t read_lat, write_lat, ref_interval, ref_per_ch
    cdef double wr_high, wr_low
    # requests (trace order)
    cdef const int64_t[:, ::1] addr
    cdef const int64_t[::1] row
    cdef const int64_t[::1] col
    cdef const uint8_t[::1] kind
    cdef const uint64_t[::1] key       # full address, for forwarding and merging
    cdef int64_t[::1] arrive
    cdef int64_t[::1] complete
    cdef uint8_t[::1] judged           # 0: first command not issued yet
    cdef uint8_t[::1] outcome          # 0 hit, 1 miss, 2 conflict, 3 forwarded, 4 merged
    cdef int64_t[::1] cached_cmd       # next command of each request, valid while its bank's version holds
    cdef int64_t[::1] cached_ready     # lower bound of the tick that command is timing-ready
    cdef int64_t[::1] cached_version
    cdef int64_t[::1] bank_version     # bumped whenever a bank's row state changes
    cdef const int64_t[::1] bank       # flat bank id of each request
    # per-channel buffers, each a list of request ids in buffer order
    cdef int64_t[:, ::1] readq
    cdef int64_t[:, ::1] writeq
    cdef int64_t[:, ::1] active
    cdef int64_t[:, ::1] prio          # refresh node ids (at ref_level)
    cdef int64_t[::1] rq_len
    cdef int64_t[::1] wq_len
    cdef int64_t[::1] act_len
    cdef int64_t[::1] prio_len
    cdef uint8_t[::1] write_mode
    cdef int64_t[::1] active_per_bank  # global bank id
    cdef int64_t[::1] next_event
    cdef uint8_t[::1] dirty
    # results
    cdef public int64_t hits, misses, conflicts, forwarded, merged
    cdef public int64_t reads, writes, read_latency_sum, last_completion, ticks
    cdef public bint deadlocked

    def __init__(self, TimingEngine eng, tables, const int64_t[:, ::1] addr, const int64_t[::1] row,
                 const int64_t[::1] col, const uint8_t[::1] kind, const uint64_t[::1] key,
                 int queue_size=32, int priority_size=1568, double wr_high=0.8, double wr_low=0.2,
                 bint refresh=False):
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
        self.cmd_phase = tables.cmd_phase
        self.tpc = tables.ticks_per_ck
        self.read_cmd = tables.read_cmd
        self.write_cmd = tables.write_cmd
        self.read_lat = tables.read_latency_ticks
        self.write_lat = tables.write_latency_ticks
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
        self.arrive = np.zeros(n, dtype=np.int64)
        self.complete = np.full(n, -1, dtype=np.int64)
        self.judged = np.zeros(n, dtype=np.uint8)
        self.outcome = np.zeros(n, dtype=np.uint8)
        self.cached_cmd = np.zeros(n, dtype=np.int64)
        self.cached_ready = np.zeros(n, dtype=np.int64)
        self.cached_version = np.full(n, -1, dtype=np.int64)
        self.bank_version = np.zeros(eng.num_banks, dtype=np.int64)
        flat = np.zeros(n, dtype=np.int64)
        for l in range(self.L):
            flat = flat * tables.fanout[l] + np.asarray(addr[:, l])
        self.bank = flat
        self.readq = np.zeros((self.nch, queue_size), dtype=np.int64)
        self.writeq = np.zeros((self.nch, queue_size), dtype=np.int64)
        self.active = np.zeros((self.nch, self.banks_per_ch), dtype=np.int64)
        self.prio = np.zeros((self.nch, priority_size), dtype=np.int64)
        self.rq_len = np.zeros(self.nch, dtype=np.int64)
        self.wq_len = np.zeros(self.nch, dtype=np.int64)
        self.act_len = np.zeros(self.nch, dtype=np.int64)
        self.prio_len = np.zeros(self.nch, dtype=np.int64)
        self.write_mode = np.zeros(self.nch, dtype=np.uint8)
        self.active_per_bank = np.zeros(eng.num_banks, dtype=np.int64)
        self.next_event = np.full(self.nch, NEVER, dtype=np.int64)
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

    cdef inline int final_cmd(self, int64_t r) noexcept nogil:
        return self.write_cmd if self.kind[r] == KIND_WRITE else self.read_cmd

    cdef int64_t pick(self, int64_t[:, ::1] buf, int64_t ch, int64_t length, int bus, int64_t clk,
                      int64_t* next_tick, int* chosen_cmd) noexcept nogil:
        """FR-FCFS over one buffer for one slot. Returns the position of the winner or -1, and lowers
        `next_tick` to the first tick at which an eligible request's command may become legal.

        Each request caches its next command and a lower bound of the tick that command is timing-ready
        (ready ticks only grow). The command is recomputed when its bank's row state changed; the bound
        is recomputed only once `clk` reaches it, so the choice is exact and the wake-up never late."""
        cdef int64_t i, r, t = NEVER, bank, rem, phase, best = -1, best_arrive = NEVER
        cdef int64_t last_bank = -1, last_row = -1
        cdef int cmd = -1, last_final = -1, final
        cdef bint eligible = False
        cdef const int64_t* a
        for i in range(length):
            r = buf[ch, i]
            bank = self.bank[r]
            final = self.final_cmd(r)
            # Neighbours in a queue often target one row of one bank (streams): the same answer holds.
            if bank != last_bank or self.row[r] != last_row or final != last_final:
                last_bank = bank
                last_row = self.row[r]
                last_final = final
                if self.cached_version[r] != self.bank_version[bank]:
                    self.cached_version[r] = self.bank_version[bank]
                    self.cached_cmd[r] = self.eng.prerequisite(final, &self.addr[r, 0], self.row[r])
                    self.cached_ready[r] = -1
                cmd = <int>self.cached_cmd[r]
                eligible = self.cmd_bus[cmd] == bus
                if eligible and self.cmd_closes[cmd]:
                    a = &self.addr[r, 0]
                    if self.cmd_scope[cmd] == self.L - 1:
                        eligible = self.active_per_bank[bank] == 0
                    else:
                        eligible = not self.would_close_active(cmd, a)
                if eligible:
                    if self.cached_ready[r] <= clk:
                        self.cached_ready[r] = self.eng.timing_ready(cmd, &self.addr[r, 0])
                    t = imax(self.cached_ready[r], clk)
                    phase = self.cmd_phase[cmd]
                    if phase >= 0:
                        rem = t % self.tpc
                        t += (phase - rem) if rem <= phase else (self.tpc - rem + phase)
            if not eligible:
                continue
            if t == clk:
                if self.arrive[r] < best_arrive:
                    best = i
                    best_arrive = self.arrive[r]
                    chosen_cmd[0] = cmd
            else:
                next_tick[0] = imin(next_tick[0], t)
        return best

    cdef void row_state_changed(self, int cmd, const int64_t* a) noexcept nogil:
        """Invalidate the cached next commands of requests to the banks `cmd` opened or closed."""
        if not (self.cmd_opens[cmd] or self.cmd_closes[cmd]):
            return
        cdef int scope = self.cmd_scope[cmd]
        cdef int64_t first = self.eng.node_of(scope, a) * self.eng.span_below[scope]
        cdef int64_t b
        for b in range(first, first + self.eng.span_below[scope]):
            self.bank_version[b] += 1

    cdef void update_write_mode(self, int64_t ch) noexcept nogil:
        cdef double wq = <double>self.wq_len[ch]
        if not self.write_mode[ch]:
            if wq > self.wr_high * self.qcap or self.rq_len[ch] == 0:
                self.write_mode[ch] = 1
        elif wq < self.wr_low * self.qcap and self.rq_len[ch] > 0:
            self.write_mode[ch] = 0

    cdef int64_t pick_rw(self, int64_t ch, int bus, int64_t clk, int64_t* next_tick, int* cmd,
                         bint* from_write) noexcept nogil:
        self.update_write_mode(ch)
        from_write[0] = self.write_mode[ch]
        if self.write_mode[ch]:
            return self.pick(self.writeq, ch, self.wq_len[ch], bus, clk, next_tick, cmd)
        return self.pick(self.readq, ch, self.rq_len[ch], bus, clk, next_tick, cmd)

    cdef void remove_at(self, int64_t[:, ::1] buf, int64_t ch, int64_t* length, int64_t pos) noexcept nogil:
        cdef int64_t i
        for i in range(pos, length[0] - 1):
            buf[ch, i] = buf[ch, i + 1]
        length[0] -= 1

    cdef void issue_request(self, int64_t ch, int64_t r, int cmd, int64_t clk, int where, int64_t pos) noexcept nogil:
        """where: 0 read queue, 1 write queue, 2 active buffer."""
        cdef const int64_t* a = &self.addr[r, 0]
        cdef int64_t bank = self.bank[r]
        cdef int64_t open_row
        if not self.judged[r]:
            self.judged[r] = 1
            open_row = self.eng.open_row[bank]
            if open_row == self.row[r]:
                self.hits += 1
                self.outcome[r] = 0
            elif open_row >= 0:
                self.conflicts += 1
                self.outcome[r] = 2
            else:
                self.misses += 1
                self.outcome[r] = 1
        self.eng.issue(cmd, a, self.row[r], self.col[r], clk)
        self.row_state_changed(cmd, a)
        if cmd == self.final_cmd(r):
            if where == 2:
                self.active_per_bank[bank] -= 1
                self.remove_at(self.active, ch, &self.act_len[ch], pos)
            elif where == 1:
                self.remove_at(self.writeq, ch, &self.wq_len[ch], pos)
            else:
                self.remove_at(self.readq, ch, &self.rq_len[ch], pos)
            if self.kind[r] == KIND_WRITE:
                self.complete[r] = clk + self.write_lat
                self.writes += 1
            else:
                self.complete[r] = clk + self.read_lat
                self.reads += 1
                self.read_latency_sum += self.complete[r] - self.arrive[r]
            self.last_completion = imax(self.last_completion, self.complete[r])
        elif self.cmd_opens[cmd]:
            if where == 1:
                self.remove_at(self.writeq, ch, &self.wq_len[ch], pos)
            else:
                self.remove_at(self.readq, ch, &self.rq_len[ch], pos)
            self.active[ch, self.act_len[ch]] = r
            self.act_len[ch] += 1
            self.active_per_bank[bank] += 1

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
            self.remove_at(self.prio, ch, &self.prio_len[ch], 0)
        return True

    cdef bint tick_channel(self, int64_t ch, int64_t clk) noexcept nogil:
        """One controller tick. Returns True if a command issued; otherwise sets next_event[ch]."""
        cdef int64_t nxt = NEVER
        cdef int64_t pos
        cdef int cmd = -1
        cdef bint from_write = False
        cdef bint issued = False
        # column slot: judged every tick so `nxt` sees column work; it can only issue on a rising edge
        pos = self.pick(self.active, ch, self.act_len[ch], BUS_COLUMN, clk, &nxt, &cmd)
        if pos >= 0:
            self.issue_request(ch, self.active[ch, pos], cmd, clk, 2, pos)
            issued = True
        elif self.prio_len[ch] > 0:
            issued = self.try_refresh(ch, BUS_COLUMN, clk, &nxt)
        else:
            pos = self.pick_rw(ch, BUS_COLUMN, clk, &nxt, &cmd, &from_write)
            if pos >= 0:
                self.issue_request(ch, self.writeq[ch, pos] if from_write else self.readq[ch, pos], cmd, clk,
                                   1 if from_write else 0, pos)
                issued = True
        # row slot
        if self.prio_len[ch] > 0:
            if self.try_refresh(ch, BUS_ROW, clk, &nxt):
                issued = True
        else:
            pos = self.pick_rw(ch, BUS_ROW, clk, &nxt, &cmd, &from_write)
            if pos >= 0:
                self.issue_request(ch, self.writeq[ch, pos] if from_write else self.readq[ch, pos], cmd, clk,
                                   1 if from_write else 0, pos)
                issued = True
        if not issued:
            self.next_event[ch] = nxt
        return issued

    # ------------------------------------------------------------------------------------------

    cdef int offer(self, int64_t r, int64_t clk) noexcept nogil:
        """Offer request r to its channel. Returns 0 if refused (queue full)."""
        cdef int64_t ch = self.addr[r, 0]
        cdef int64_t i, w
        if self.kind[r] == KIND_READ:
            for i in range(self.wq_len[ch]):
                if self.key[self.writeq[ch, i]] == self.key[r]:
                    self.arrive[r] = clk
                    self.complete[r] = clk + 1
                    self.outcome[r] = 3
                    self.judged[r] = 1
                    self.forwarded += 1
                    self.reads += 1
                    self.read_latency_sum += 1
                    self.last_completion = imax(self.last_completion, clk + 1)
                    return 1
            if self.rq_len[ch] >= self.qcap:
                return 0
            self.readq[ch, self.rq_len[ch]] = r
            self.rq_len[ch] += 1
        else:
            for i in range(self.wq_len[ch]):
                if self.key[self.writeq[ch, i]] == self.key[r]:
                    self.arrive[r] = clk
                    self.complete[r] = clk
                    self.outcome[r] = 4
                    self.judged[r] = 1
                    self.merged += 1
                    self.writes += 1
                    return 1
            if self.wq_len[ch] >= self.qcap:
                return 0
            self.writeq[ch, self.wq_len[ch]] = r
            self.wq_len[ch] += 1
        self.arrive[r] = clk
        self.dirty[ch] = 1
        return 1

    def run(self):
        cdef int64_t n = self.addr.shape[0]
        cdef int64_t clk = 0, next_req = 0, ch, target, k, node
        cdef bint any_dirty
        cdef bint refresh = self.ref_cmd >= 0
        with nogil:
            while True:
                while next_req < n and self.offer(next_req, clk):
                    next_req += 1
                if next_req == n and self.idle():
                    break
                clk += 1
                any_dirty = False
                for ch in range(self.nch):
                    if refresh and clk % self.ref_interval == 0:
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
