"""Compiled executor for the common lines of an AiM trace (``sieve.pim.aim_trace``).

Runs, one after the other, the lines whose semantics need no Python: AiM instructions with device
commands that are not conventional requests (MAC_ABK, EWMUL, WR_GB, WR_BIAS, RD_MAC, RD_AF, AF,
COPY_*, MAC_SBK, WR_ABK), CFR writes, lines that issue nothing, and SYNC and EOC (the caller enters
only while no conventional request is queued). Each command is executed at once, in the order the
Python runner batches it (register-mode TMODs first, ascending channel; then columns outer, channels
inner), so ticks and the command log are those of the Python runner. It stops at the first line it
does not take and returns its index: a conventional request, a line that fails the Python runner's
validation (which then names the problem), or an AF or data row where AF's stand-in row could alias a
data row.
"""

from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

import numpy as np

from sieve._core.engine cimport TimingEngine, MAX_LEVELS, scope_counts

cdef extern from *:
    """
    #if defined(_MSC_VER)
    #include <intrin.h>
    static inline int sieve_lowest_bit(unsigned long long x) { unsigned long i; _BitScanForward64(&i, x); return (int)i; }
    #else
    static inline int sieve_lowest_bit(unsigned long long x) { return __builtin_ctzll(x); }
    #endif
    """
    int sieve_lowest_bit(unsigned long long x) noexcept nogil

cdef extern from *:
    """
    /* a + b of two rounded products: never fused with them into a multiply-add (an FMA would round
       once where NumPy's separate operations round twice) */
    #if defined(_MSC_VER)
    static __declspec(noinline) double sieve_unfused_add(double a, double b) { return a + b; }
    #else
    static __attribute__((noinline)) double sieve_unfused_add(double a, double b) { return a + b; }
    #endif
    """
    double sieve_unfused_add(double a, double b) noexcept nogil

# line kinds, per opcode (sieve.pim.aim_trace builds the table)
cdef enum:
    _KIND_PYTHON = 0
    _KIND_NOTHING = 1
    _KIND_CFR = 2
    _KIND_COMMANDS = 3
    _KIND_SYNC = 4
    _KIND_EOC = 5

# flags, per opcode: what a line's commands do, and which operands validation checks
cdef enum:
    _ONE_BANK = 1
    _REGISTER_MODE = 2
    _BLOCKING = 4
    _AF = 8
    _USES_ROW = 16
    _OPSIZE_COLUMNS = 32      # opsize columns, 1..columns
    _OPSIZE_POSITIVE = 64     # opsize >= 1 (EWADD)
    _CFR = 128                # CFR address 0..2, data 0..127

KIND_PYTHON = _KIND_PYTHON
KIND_NOTHING = _KIND_NOTHING
KIND_CFR = _KIND_CFR
KIND_COMMANDS = _KIND_COMMANDS
KIND_SYNC = _KIND_SYNC
KIND_EOC = _KIND_EOC
ONE_BANK = _ONE_BANK
REGISTER_MODE = _REGISTER_MODE
BLOCKING = _BLOCKING
AF = _AF
USES_ROW = _USES_ROW
OPSIZE_COLUMNS = _OPSIZE_COLUMNS
OPSIZE_POSITIVE = _OPSIZE_POSITIVE
CFR = _CFR

DEF MAX_CHANNELS = 64
DEF CFR_REGISTERS = 3
DEF CFR_MAX = 127


cdef struct _State:
    int64_t* floor          # per channel: nothing issues before it (the stream session's)
    signed char* register_mode     # per channel
    int64_t* done           # per channel: last completion tick
    int64_t* touched        # per channel: lines that used it
    int64_t* af_row         # [channel * banks + bank]: AF's stand-in row held, else -1
    int64_t* aim_drained    # per channel: tick its AiM queue is empty again
    int64_t* rw_drained     # per channel: tick its read/write queue is empty again
    int64_t* cfr            # [3] broadcast, ewmul_bg, afm
    const signed char* near_af     # [afm]: AF's stand-in row for that afm is a data row used so far
    const int64_t* latency  # per command: issue to completion
    int64_t decode          # tick the next line is decoded
    int64_t last_issue
    int64_t end             # tick EOC completed (0 until then)
    int64_t tpc
    int tmod
    int64_t channels
    int64_t banks           # per bank group
    int64_t banks_per_channel
    int64_t rows
    int64_t columns
    int64_t near_af_rows    # data rows at or above rows - 1 - near_af_rows may alias AF's stand-in


cdef inline int64_t imax(int64_t a, int64_t b) noexcept nogil:
    return a if a > b else b


cdef int64_t _issue(TimingEngine eng, _State* s, int c, int64_t* addr, int64_t row, int64_t col) noexcept nogil:
    """One command with the row commands it needs first, each at its earliest tick (the stream
    session's auto_prereq, refresh off). Returns the command's issue tick."""
    cdef int64_t ch = addr[0]
    cdef int p = eng.prerequisite(c, addr, row)
    cdef int64_t t
    while True:
        t = eng.earliest_at_or_after(p, addr, s.floor[ch])
        eng.apply(p, addr, row, col, t)
        s.floor[ch] = t
        if p == c:
            break
        if _opens_for(eng, p, c):
            p = c  # `p` opened `row` on exactly c's banks: c's row state is now right
        else:
            p = eng.prerequisite(c, addr, row)
    _issued(s, c, ch, t)
    return t


cdef inline bint _opens_for(TimingEngine eng, int p, int c) noexcept nogil:
    """Whether `p`, just applied at c's address and row, leaves c's banks as c needs them: p is c's
    opener at c's own scope (it opened the row on every bank c covers) and c needs its row open."""
    return eng.cmd_needs[c] == 1 and p == eng.cmd_opener[c] and eng.cmd_opens[p] != 0 \
        and eng.cmd_scope[p] == eng.cmd_scope[c]


cdef int64_t _issue_ready(TimingEngine eng, _State* s, int c, int64_t* addr, int64_t row, int64_t col) noexcept nogil:
    """`_issue` of a command whose banks are known to be as it needs them (no row command first)."""
    cdef int64_t ch = addr[0]
    cdef int64_t t = eng.earliest_at_or_after(c, addr, s.floor[ch])
    eng.apply(c, addr, row, col, t)
    s.floor[ch] = t
    _issued(s, c, ch, t)
    return t


cdef inline void _issued(_State* s, int c, int64_t ch, int64_t t) noexcept nogil:
    s.done[ch] = imax(s.done[ch], t + s.latency[c])
    s.aim_drained[ch] = imax(s.aim_drained[ch], t + s.tpc)
    s.last_issue = imax(s.last_issue, t)


cdef void _address(_State* s, int64_t ch, int64_t bank, bint one_bank, int64_t* addr) noexcept nogil:
    addr[0] = ch
    addr[1] = bank // s.banks if one_bank else 0
    addr[2] = bank % s.banks if one_bank else 0


cdef void _switch_modes(TimingEngine eng, _State* s, int cmd, int64_t* chans, int nch, int64_t bank,
                        bint one_bank, int64_t row, signed char need) noexcept nogil:
    """TMOD on every channel whose register mode differs, at the tick the line's first command there
    (or the row command it needs first) would be ready; all holds are taken before any TMOD issues."""
    cdef int64_t addr[MAX_LEVELS]
    cdef int k, p
    cdef int64_t c
    for k in range(nch - 1, -1, -1):  # ascending channel
        c = chans[k]
        if s.register_mode[c] == need:
            continue
        _address(s, c, bank, one_bank, addr)
        p = eng.prerequisite(cmd, addr, row)
        s.floor[c] = imax(s.floor[c], eng.earliest_at_or_after(p, addr, s.floor[c]))
    for k in range(nch - 1, -1, -1):
        c = chans[k]
        if s.register_mode[c] == need:
            continue
        _address(s, c, 0, False, addr)
        _issue(eng, s, s.tmod, addr, 0, 0)
        s.register_mode[c] = need


cdef int _channels(_State* s, int64_t mask, int64_t* chans) noexcept nogil:
    """Channels of a mask in the reference's order: bit 0 upward, i.e. from the last channel down."""
    cdef int n = 0
    cdef unsigned long long m = <unsigned long long>mask
    while m:
        chans[n] = s.channels - 1 - sieve_lowest_bit(m)
        n += 1
        m &= m - 1
    return n


cdef void _af_rows(_State* s, int64_t* chans, int nch, int flags, int64_t bank, int64_t row) noexcept nogil:
    cdef int k
    cdef int64_t b
    cdef int64_t held = row if flags & _AF else -1
    cdef int64_t* banks
    for k in range(nch):
        banks = &s.af_row[chans[k] * s.banks_per_channel]
        if flags & _ONE_BANK:
            banks[bank] = -1
        else:
            for b in range(s.banks_per_channel):  # one value to every bank: vector stores
                banks[b] = held


cdef bint _valid(_State* s, int flags, bint commands, int64_t opsize, int64_t mask, int64_t bank, int64_t row,
                 int64_t cfr_addr, int64_t cfr_data) noexcept nogil:
    """The checks of the Python runner's validation (a line failing one is left to it, to be named)."""
    if flags & _OPSIZE_COLUMNS and not 1 <= opsize <= s.columns:
        return False
    if flags & _OPSIZE_POSITIVE and opsize < 1:
        return False
    if flags & _ONE_BANK and not 0 <= bank < s.banks_per_channel:
        return False
    if flags & _USES_ROW and not flags & _AF and not 0 <= row < s.rows:
        return False
    if flags & _CFR and not (0 <= cfr_addr < CFR_REGISTERS and cfr_data <= CFR_MAX):
        return False
    if commands and (mask <= 0 or (s.channels < 64 and mask >> s.channels)):
        return False
    return True


cdef bint _commands(TimingEngine eng, _State* s, int cmd, int flags, int64_t ncols, int64_t mask,
                    int64_t bank, int64_t row) noexcept nogil:
    """One line with device commands, decoded at s.decode. False (nothing done) if it needs Python."""
    cdef int64_t chans[MAX_CHANNELS]
    cdef int64_t addr[MAX_LEVELS]
    cdef int nch, k
    cdef int64_t decoded = s.decode, accepted, col, finish = -1, t
    # A command that needs nothing of its banks' rows needs no row command. One that neither opens nor
    # closes rows leaves its banks' rows as they are, and the line's other commands are on other
    # channels: after a channel's first column its banks are ready.
    cdef bint needs_rows = eng.cmd_needs[cmd] != 0
    cdef bint keeps_rows = not eng.cmd_opens[cmd] and not eng.cmd_closes[cmd]
    if flags & _AF:
        if s.near_af[s.cfr[2]]:
            return False
        row = s.rows - 1 - s.cfr[2]
    elif flags & _USES_ROW and row >= s.rows - 1 - s.near_af_rows:
        return False
    nch = _channels(s, mask, chans)
    s.decode += s.tpc
    accepted = decoded
    for k in range(nch):
        s.touched[chans[k]] += 1
        accepted = imax(accepted, s.rw_drained[chans[k]])
        s.floor[chans[k]] = imax(s.floor[chans[k]], decoded)  # nothing before the line is decoded
    s.decode = imax(s.decode, accepted + s.tpc)
    if flags & _USES_ROW:
        _af_rows(s, chans, nch, flags, bank, row)
    _switch_modes(eng, s, cmd, chans, nch, bank, flags & _ONE_BANK, row, 1 if flags & _REGISTER_MODE else 0)
    for col in range(ncols):
        for k in range(nch):
            _address(s, chans[k], bank, flags & _ONE_BANK, addr)
            if not needs_rows or (col > 0 and keeps_rows):
                t = _issue_ready(eng, s, cmd, addr, row, col)
            else:
                t = _issue(eng, s, cmd, addr, row, col)
            finish = imax(finish, t + s.latency[cmd])
    if flags & _BLOCKING:  # the decoder waits for the line's commands; every channel with it
        s.decode = imax(s.decode, finish + s.tpc)
        for k in range(s.channels):
            s.floor[k] = imax(s.floor[k], s.decode)
    return True


cdef int64_t _drained(_State* s, int64_t decoded) noexcept nogil:
    """The tick a SYNC or EOC decoded at `decoded` completes: one cycle after it reached the head of
    every channel queue (the cycle after the last command issued) and every command has completed."""
    cdef int64_t k, t = imax(decoded, s.last_issue + s.tpc)
    for k in range(s.channels):
        t = imax(t, s.done[k])
    return t + s.tpc


cdef void _sync(_State* s) noexcept nogil:
    """SYNC: the next line is decoded in the cycle after it completes; nothing issues before that."""
    cdef int64_t k, decoded = s.decode
    s.decode = imax(s.decode + s.tpc, _drained(s, decoded) + s.tpc)
    for k in range(s.channels):
        s.floor[k] = imax(s.floor[k], s.decode)


def run_lines(TimingEngine eng, program, codes, state, Py_ssize_t start):
    """Execute program lines from `start` on; returns the index of the first line left to Python
    (len(program) after EOC). `program` holds per line int64 arrays ``code`` and ``operand[name]``;
    `codes` per opcode int64 arrays ``kind``, ``cmd`` and ``flags``; `state` the runner's per channel
    arrays and its decode, last_issue and end ticks, updated in place."""
    cdef const int64_t[::1] code = program.code
    operand = program.operand
    cdef const int64_t[::1] opsize = operand["opsize"], mask = operand["channel_mask"], bank = operand["bank"]
    cdef const int64_t[::1] row = operand["row"], cfr_addr = operand["cfr_addr"], cfr_data = operand["cfr_data"]
    cdef const int64_t[::1] kind_of = codes.kind, cmd_of = codes.cmd, flags_of = codes.flags
    cdef int64_t[::1] floor = state.floor, done = state.done, touched = state.touched
    cdef int64_t[::1] aim_drained = state.aim_drained, rw_drained = state.rw_drained, cfr = state.cfr
    cdef int64_t[:, ::1] af_row = state.af_row
    cdef signed char[::1] register_mode = state.register_mode
    cdef const signed char[::1] near_af = state.near_af
    cdef const int64_t[::1] latency = state.latency
    cdef _State s
    cdef Py_ssize_t i = start, n = code.shape[0]
    cdef int64_t c, kind, flags
    if af_row.shape[0] > MAX_CHANNELS or af_row.shape[0] != floor.shape[0]:
        raise ValueError(f"{af_row.shape[0]} channels: the AiM executor takes 1..{MAX_CHANNELS}")
    if cfr.shape[0] != CFR_REGISTERS or near_af.shape[0] != CFR_MAX + 1:
        raise ValueError(f"the executor expects {CFR_REGISTERS} CFRs holding 0..{CFR_MAX}")
    s.floor, s.register_mode, s.done, s.touched = &floor[0], &register_mode[0], &done[0], &touched[0]
    s.af_row, s.aim_drained, s.rw_drained, s.cfr = &af_row[0, 0], &aim_drained[0], &rw_drained[0], &cfr[0]
    s.near_af, s.latency = &near_af[0], &latency[0]
    s.decode, s.last_issue, s.end, s.tpc, s.tmod = state.decode, state.last_issue, state.end, state.tpc, state.tmod
    s.channels, s.banks, s.rows, s.columns = af_row.shape[0], state.banks, state.rows, state.columns
    s.banks_per_channel, s.near_af_rows = af_row.shape[1], CFR_MAX
    with nogil:
        while i < n:
            c = code[i]
            kind = kind_of[c]
            flags = flags_of[c]
            if kind == _KIND_PYTHON or not _valid(&s, <int>flags, kind == _KIND_COMMANDS, opsize[i], mask[i], bank[i],
                                                  row[i], cfr_addr[i], cfr_data[i]):
                break
            if kind == _KIND_COMMANDS:
                if not _commands(eng, &s, <int>cmd_of[c], <int>flags, opsize[i] if flags & _OPSIZE_COLUMNS else 1,
                                 mask[i], bank[i], row[i] if flags & _USES_ROW else 0):
                    break
            elif kind == _KIND_CFR:
                s.cfr[cfr_addr[i]] = cfr_data[i]
                s.decode += s.tpc
            elif kind == _KIND_NOTHING:
                s.decode += s.tpc
            elif kind == _KIND_SYNC:
                _sync(&s)
            else:  # EOC ends the trace
                s.decode += s.tpc
                s.end = _drained(&s, s.decode - s.tpc)
                i += 1
                break
            i += 1
    state.decode, state.last_issue, state.end = s.decode, s.last_issue, s.end
    return i


# ---- what a run's result reads from the engine ------------------------------------------------------

def engine_totals(TimingEngine eng, int64_t channels, per_bank_pj=None):
    """The engine's statistics as a run's result needs them, read in one pass over the per-node counts
    of the commands issued: commands issued by id ``[C]``; by id, commands issued per channel
    ``[C, channels]`` (channels split the engine's first level evenly); given `per_bank_pj` (float64
    ``[C]``, the energy of one command on one bank it touches), the energy of the commands each bank
    took as float64 ``[banks]``, else None. Returns the three arrays in that order.

    A bank's energy adds its commands' terms (count times energy, each rounded) in command order, never
    fused into a multiply-add: the bits of :func:`sieve.dram.energy.command_energy_pj`, on every
    machine (a BLAS product picks its kernel, and with it the order of the sums, by the CPU)."""
    cdef int64_t C = eng.num_commands, banks = eng.num_banks
    cdef int64_t c
    if channels <= 0 or eng.level_count[0] % channels:
        raise ValueError(f"{eng.level_count[0]} nodes at the engine's first level do not split into {channels} channels")
    cdef const double[::1] pj
    if per_bank_pj is not None:
        pj = np.ascontiguousarray(per_bank_pj, dtype=np.float64)
        if pj.shape[0] != C:
            raise ValueError(f"per_bank_pj holds {pj.shape[0]} commands, the engine has {C}")
    totals_arr = np.empty(C, dtype=np.int64)
    channel_arr = np.zeros((C, channels), dtype=np.int64)
    energy_arr = np.zeros(banks, dtype=np.float64) if per_bank_pj is not None else None
    cdef int64_t[::1] totals = totals_arr
    cdef int64_t[:, ::1] per = channel_arr
    cdef double[::1] energy
    if per_bank_pj is not None:
        energy = energy_arr
    for c in range(C):
        totals[c] = eng.cmd_total[c]
        if totals[c]:
            _command_counts(eng, <int>c, channels, per)
            if per_bank_pj is not None:
                _command_energy(eng, <int>c, pj[c], energy)
    return totals_arr, channel_arr, energy_arr


cdef void _command_counts(TimingEngine eng, int c, int64_t channels, int64_t[:, ::1] per) noexcept:
    """Command c's issues per channel into per[c]: every issue is counted at one node of the command's
    scope."""
    cdef int scope = <int>eng.cmd_scope[c]
    cdef int64_t C = eng.num_commands, nodes = eng.level_count[scope]
    cdef int64_t per_channel = nodes // channels, i
    cdef const int64_t* count = scope_counts(eng, c)
    for i in range(nodes):
        per[c, i // per_channel] += count[i * C]


cdef void _command_energy(TimingEngine eng, int c, double pj, double[::1] energy) noexcept:
    """Add command c's term to each bank it touched: the issues counted at the bank's node of the
    command's scope (an integer, exact in a double) times `pj`. Banks it never touched add nothing, as
    adding a term of 0.0 to a sum that starts at 0.0 changes no bit."""
    cdef int scope = <int>eng.cmd_scope[c]
    cdef int64_t C = eng.num_commands, nodes = eng.level_count[scope], span = eng.span_below[scope]
    cdef int64_t i, b, n
    cdef double term
    cdef const int64_t* count = scope_counts(eng, c)
    for i in range(nodes):
        n = count[i * C]
        if n:
            term = <double>n * pj
            for b in range(i * span, (i + 1) * span):
                energy[b] = sieve_unfused_add(energy[b], term)


def bank_background_pj(TimingEngine eng, int64_t end, double tick_ns, double precharged_mw, double active_mw,
                       out=None):
    """Per bank background energy (pJ) up to tick `end`: ``precharged_mw`` while its row is closed and
    ``active_mw`` while one is open (per bank powers), rows still open counted up to `end`. The
    operations are those of :func:`sieve.dram.energy.bank_energy_columns`, one rounding each. Written
    into `out` (float64 ``[banks]``) if given; returns the array."""
    cdef int64_t b, ticks
    cdef double open_ns, elapsed_ns = <double>end * tick_ns, closed_ns, closed_pj, open_pj
    if out is None:
        out = np.empty(eng.num_banks, dtype=np.float64)
    cdef double[::1] bg = out
    if bg.shape[0] != eng.num_banks:
        raise ValueError(f"out holds {bg.shape[0]} banks, the engine has {eng.num_banks}")
    for b in range(eng.num_banks):
        ticks = eng.bank_open_ticks[b]
        if eng.open_row[b] >= 0:
            ticks += imax(end - eng.opened_at[b], 0)
        open_ns = <double>ticks * tick_ns
        closed_ns = elapsed_ns - open_ns
        closed_pj = closed_ns * precharged_mw
        open_pj = open_ns * active_mw
        bg[b] = sieve_unfused_add(closed_pj, open_pj)
    return out
