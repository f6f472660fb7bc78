cimport cython
from libc.stdint cimport int32_t, int64_t

cdef enum:
    MAX_LEVELS = 8

# row_state() answers
cdef enum:
    ROW_OK = 0          # the banks are as the command needs them
    ROW_CLOSED = 1      # needs an open row, the bank is closed: open it first
    ROW_CONFLICT = 2    # needs an open row, another row is open: close it first
    ROW_MUST_CLOSE = 3  # needs closed banks (or banks on its row), some are open (on another row): close them first

# One plain rule preceded by a command at a level at or above the command's scope (and not in a dense row
# below), as `apply` reads it:
# the ent_* tables of those (command, level) groups laid out one command after another. Whether it acts at
# the command's own node or at the other nodes under the same parent (a sibling rule) is its place:
# TimingEngine.own_end.
cdef struct Rule:
    int64_t lat         # ticks
    int32_t level
    int32_t next        # the command it gates


@cython.final
cdef class TimingEngine:
    # --- tables (read-only after construction) ---
    cdef readonly int num_levels
    cdef readonly int num_commands
    cdef readonly int ticks_per_ck
    cdef readonly int64_t num_banks
    cdef int64_t fanout[MAX_LEVELS]
    cdef int64_t level_count[MAX_LEVELS]   # nodes at each level
    cdef int64_t level_offset[MAX_LEVELS]  # first flat node id of each level
    cdef int64_t span_below[MAX_LEVELS]    # banks under one node of each level
    cdef int64_t total_nodes
    cdef const int64_t[::1] cmd_scope
    cdef const int64_t[::1] cmd_opens
    cdef const int64_t[::1] cmd_closes
    cdef const int64_t[::1] cmd_access
    cdef const int64_t[::1] cmd_needs
    cdef const int64_t[::1] cmd_phase
    cdef const int64_t[::1] cmd_opener
    cdef const int64_t[::1] cmd_closer
    cdef const int64_t[::1] cmd_next_levels
    cdef const int64_t[::1] ent_start
    cdef const int64_t[::1] ent_level
    cdef const int64_t[::1] ent_next
    cdef const int64_t[::1] ent_lat
    cdef const int64_t[::1] ent_sibling
    cdef const int64_t[::1] win_level
    cdef const int64_t[::1] win_size
    cdef const int64_t[::1] win_lat
    cdef const int64_t[::1] win_feed_start
    cdef const int64_t[::1] win_feed
    cdef const int64_t[::1] win_next_start
    cdef const int64_t[::1] win_next
    cdef Rule* rules                        # [ent_* entries at or above each command's scope] by command
    cdef int64_t* rule_start                # [C+1] command c's rules are rules[rule_start[c]:rule_start[c+1]]
    cdef int64_t* own_end                   # [C] of those, rules[rule_start[c]:own_end[c]] act at c's own nodes,
                                            # the rest (sibling rules) at the other nodes under their parent
    cdef int64_t* win_levels                # [C] bit l set when c feeds a window at level l <= its scope
    cdef int64_t* below_levels              # [C] bit l set when c precedes a rule or feeds a window at level l > its scope
    cdef bint owns_rules                    # rules .. dense_lat are this engine's (else its `prepared` engine's)
    cdef TimingEngine prepared              # the engine without state whose tables and rules this one shares
    cdef object tables_ref                  # (a prepared engine) a weak reference to its tables
    cdef int64_t ring_len                   # entries of `ring` and of `ring_count`
    cdef int64_t ring_count_len
    # Dense rows: the plain rules one command precedes at one level of its own nodes, as a latency to
    # every command (NO_RULE where it precedes none), applied in one pass over that node's ready ticks.
    # Used where a command precedes most commands at a level (every command at a GDDR6-AiM channel);
    # sparser levels keep `Rule` records.
    cdef int64_t* dense_start               # [C+1] command c's dense rows are rows dense_start[c] .. dense_start[c+1]-1
    cdef int64_t* dense_level               # [rows] the level of each dense row
    cdef int64_t* dense_lat                 # [rows * C] a dense row's latency to each command, NO_RULE where none
    cdef int64_t[::1] win_ring_offset       # [W] start of window w's rings in `ring`
    cdef int64_t[::1] win_count_offset      # [W] start of window w's counters in `ring_count`
    # --- state ---
    cdef int64_t[::1] ready                 # [total_nodes * C] earliest tick each command may issue at each node
    cdef int64_t* ready_p                   # &ready[0]: the table, never reallocated (owned, see _zeroed_table)
    cdef int64_t[::1] ring                  # issue ticks of windowed rules, one ring per (window, node)
    cdef int64_t[::1] ring_count            # [sum over windows of nodes] commands pushed so far
    cdef int64_t[::1] open_row              # [num_banks] -1: closed
    cdef int64_t[::1] opened_at             # [num_banks] tick the open row was opened
    # --- statistics ---
    cdef int64_t[::1] node_cmd_count        # [total_nodes * C] commands issued to each node (at their scope)
    cdef int64_t* node_count_p              # &node_cmd_count[0] (owned, see _zeroed_table)
    cdef unsigned char* touched             # [level_count[0]] first-level nodes commands were addressed to
    cdef bint touched_all                   # a sibling rule at the first level wrote other nodes too
    cdef int64_t[::1] bank_open_ticks       # [num_banks] ticks spent with a row open (closed rows only)
    cdef int64_t[::1] cmd_total             # [C]
    cdef public bint logging
    cdef int64_t* log_tick
    cdef int64_t* log_cmd
    cdef int64_t* log_addr                  # [n * num_levels]
    cdef int64_t* log_row
    cdef int64_t* log_col
    cdef int64_t log_len
    cdef int64_t log_cap
    cdef bint log_failed                   # a growth of the log failed: logging stopped
    cdef int64_t last_tick

    cdef void _release_state(self, int64_t* table) noexcept
    cdef void _clear_written(self, int64_t* table) noexcept
    cdef int _read_tables(self, tables) except -1
    cdef void _take_tables(self, TimingEngine prepared) noexcept
    cdef int _gather_own_rules(self) except -1
    cdef int64_t _own_node_rules(self, int64_t group) noexcept
    cdef void _start_dense_row(self, int64_t row, int level) noexcept
    cdef int64_t node_of(self, int level, const int64_t* addr) noexcept nogil
    cdef int64_t timing_ready(self, int cmd, const int64_t* addr) noexcept nogil
    cdef int64_t timing_ready_from(self, int cmd, const int64_t* addr, int64_t* slot) noexcept nogil
    cdef int64_t align(self, int cmd, int64_t tick) noexcept nogil
    cdef int64_t earliest_at_or_after(self, int cmd, const int64_t* addr, int64_t floor) noexcept nogil
    cdef int row_state(self, int cmd, const int64_t* addr, int64_t row) noexcept nogil
    cdef int prerequisite(self, int cmd, const int64_t* addr, int64_t row) noexcept nogil
    cdef inline void _raise_ready(self, int64_t flat, int next_cmd, int64_t tick) noexcept nogil
    cdef inline void _raise_rule(self, int level, int64_t node, int next_cmd, int64_t tick, bint sibling) noexcept nogil
    cdef void _apply_rules(self, int cmd, int level, int64_t idx, int64_t tick) noexcept nogil
    cdef void _feed_windows(self, int cmd, int level, int64_t idx, int64_t tick) noexcept nogil
    cdef inline void _apply_own_rules(self, int cmd, const int64_t* addr, const int64_t* flat, int64_t tick) noexcept nogil
    cdef inline void _raise_siblings(self, int level, int64_t node, int64_t index, int next_cmd, int64_t tick) noexcept nogil
    cdef int64_t _gather_rules_of(self, int c, int64_t n, bint siblings) noexcept
    cdef bint _grow_log(self) noexcept nogil
    cdef void _log(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil
    cdef void _apply_below(self, int cmd, int scope, int64_t idx, int64_t tick) noexcept nogil
    cdef void fill_bank_counts(self, int64_t* out) noexcept nogil
    cdef void _open_rows(self, int64_t first, int64_t last, int64_t row, int64_t tick) noexcept nogil
    cdef void _close_rows(self, int64_t first, int64_t last, int64_t tick) noexcept nogil
    cdef void apply(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil
    cdef int issue(self, int cmd, const int64_t* addr, int64_t row, int64_t col, int64_t tick) noexcept nogil


cdef inline const int64_t* scope_counts(TimingEngine eng, int cmd) noexcept nogil:
    """Issues of `cmd` at each node of its scope, node i at [i * num_commands]: `apply` counts an issue
    once, at the node of its scope it was addressed to (`TimingEngine.bank_counts` spreads them)."""
    return &eng.node_count_p[eng.level_offset[eng.cmd_scope[cmd]] * eng.num_commands + cmd]


# The two questions the request controller asks for every waiting request, inline so that it calls no
# method across modules: the engine's `align` and `timing_ready_from` are these.

cdef inline int64_t align_tick(TimingEngine eng, int cmd, int64_t tick) noexcept nogil:
    """Round `tick` up to a tick on which `cmd` may issue (column commands on the rising edge)."""
    cdef int64_t phase = eng.cmd_phase[cmd]
    if phase < 0:
        return tick
    cdef int64_t r = tick % eng.ticks_per_ck
    if r <= phase:
        return tick + (phase - r)
    return tick + eng.ticks_per_ck - r + phase


cdef inline int64_t ready_gate(TimingEngine eng, int cmd, const int64_t* addr, int64_t* slot) noexcept nogil:
    """Earliest tick the timing rules allow `cmd` at the nodes of `addr` down to its scope, and in `slot`
    the entry of the ready table that sets it (the highest level's on a tie); -1 (with the answer of
    `timing_ready`) when rules below the command's scope take part."""
    cdef int scope = eng.cmd_scope[cmd]
    cdef int64_t C = eng.num_commands
    cdef const int64_t* ready = eng.ready_p
    cdef int64_t t = -1, k, idx = 0
    cdef int l
    if eng.cmd_next_levels[cmd] >> (scope + 1):
        slot[0] = -1
        return eng.timing_ready(cmd, addr)
    for l in range(scope + 1):
        idx = idx * eng.fanout[l] + addr[l]
        k = (eng.level_offset[l] + idx) * C + cmd
        if ready[k] > t:
            t = ready[k]
            slot[0] = k
    return t


cdef inline int prerequisite_on_bank(TimingEngine eng, int cmd, int64_t bank, const int64_t* addr,
                                     int64_t row) noexcept nogil:
    """`prerequisite` of a command at `addr`, whose flat bank id is `bank`: read from that bank's row
    buffer when the command needs its row open on that one bank (a read or a write), else the engine's
    general answer."""
    cdef int64_t r
    if eng.cmd_needs[cmd] != 1 or eng.cmd_scope[cmd] != eng.num_levels - 1:
        return eng.prerequisite(cmd, addr, row)
    r = eng.open_row[bank]
    if r == row:
        return cmd
    if r < 0:
        return eng.cmd_opener[cmd]
    return eng.cmd_closer[cmd]
