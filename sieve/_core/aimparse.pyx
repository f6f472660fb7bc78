"""Reader for well-formed AiM trace text (``sieve.pim.aim_trace``), one pass over the bytes.

Reads the layouts the Python parser reads (blank- or comma-separated fields, ``#`` comments, empty
leading/trailing fields, ``ISR_`` prefixes, decimal or ``0x`` numbers) and stops after EOC. Each line's
values go to the operand fields its opcode's form names (``forms``), so the caller gets the program as
per-field arrays. It takes no decisions on bad input: on anything unusual (a malformed or huge number,
an unknown opcode, a number of fields no form of the opcode has, an inner empty field, control or
non-ASCII bytes, no EOC) it answers ``status`` != 0 and the caller reruns the Python parser, whose
error messages are the project's.
"""

from libc.stdint cimport int64_t
from libc.string cimport memchr

import numpy as np

DEF MAX_TOKENS = 64  # fields of a line, empty ones included
DEF MAX_VALUES = 6   # operands after the line type and opcode

DEF MAX_VALUE = 4611686018427387904  # 2**62
DEF MAX_NAMES = 32   # opcodes + regions
DEF MAX_NAME = 16    # bytes of an opcode or region name

cdef enum:
    _OK = 0
    _UNUSUAL = 1

MAX_VALUES_PER_LINE = MAX_VALUES


cdef struct _Names:
    int count                      # opcodes, then regions
    int opcodes
    int length[MAX_NAMES]
    unsigned char text[MAX_NAMES][MAX_NAME]


cdef inline bint _blank(unsigned char c) noexcept nogil:
    return c == 32 or c == 9


cdef inline unsigned char _upper(unsigned char c) noexcept nogil:
    return c - 32 if 97 <= c <= 122 else c


cdef inline int _tokens(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
    """Split s[a:b] (a line without its comment) into fields; returns their count, or -1 if unusual."""
    cdef Py_ssize_t i, j, k, lo, hi
    cdef int n = 0
    cdef bint commas = False
    for i in range(a, b):
        if s[i] == 44:
            commas = True
            break
    i = a
    while i < b or (commas and i == b):
        if commas:
            j = i
            while j < b and s[j] != 44:
                j += 1
            lo, hi = i, j
            while lo < hi and _blank(s[lo]):
                lo += 1
            while hi > lo and _blank(s[hi - 1]):
                hi -= 1
            i = j + 1
        else:
            while i < b and _blank(s[i]):
                i += 1
            if i >= b:
                break
            lo = i
            while i < b and not _blank(s[i]):
                i += 1
            hi = i
        if n == MAX_TOKENS:
            return -1
        start[n], end[n] = lo, hi
        n += 1
        if commas and i > b:
            break
    # drop empty leading and trailing fields; an inner empty field is the Python parser's to report
    lo, hi = 0, n
    while lo < hi and start[lo] == end[lo]:
        lo += 1
    while hi > lo and start[hi - 1] == end[hi - 1]:
        hi -= 1
    for k in range(lo, hi):
        if start[k] == end[k]:
            return -1
        start[k - lo], end[k - lo] = start[k], end[k]
    return <int>(hi - lo)


cdef inline int64_t _number(const unsigned char* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Decimal or 0x-hexadecimal digits only; -1 for anything else or a value beyond 2**62."""
    cdef int64_t v = 0, d
    cdef int base = 10
    # v * base + d > MAX_VALUE exactly when v > q, or v == q and d > r (no division per digit)
    cdef int64_t q = <int64_t>MAX_VALUE // 10, r = <int64_t>MAX_VALUE % 10
    cdef Py_ssize_t i
    cdef unsigned char c
    if b - a > 2 and s[a] == 48 and (s[a + 1] == 120 or s[a + 1] == 88):
        base, a = 16, a + 2
        q, r = <int64_t>MAX_VALUE // 16, <int64_t>MAX_VALUE % 16
    if a >= b:
        return -1
    for i in range(a, b):
        c = _upper(s[i])
        if 48 <= c <= 57:
            d = c - 48
        elif base == 16 and 65 <= c <= 70:
            d = c - 55
        else:
            return -1
        if v > q or (v == q and d > r):
            return -1
        v = v * base + d
    return v


cdef inline bint _same(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, const unsigned char* name, int n) noexcept nogil:
    cdef int k
    if b - a != n:
        return False
    for k in range(n):
        if _upper(s[a + k]) != name[k]:
            return False
    return True


cdef inline int _code(const unsigned char* s, Py_ssize_t* start, Py_ssize_t* end, const _Names* names,
                      int previous) noexcept nogil:
    """Opcode index: AiM opcodes first, then R GPR/CFR/MEM, then W GPR/CFR/MEM; -1 if unknown. The
    previous line's opcode is tried first (programs repeat opcodes)."""
    cdef Py_ssize_t a = start[1], b = end[1]
    cdef int k, regions = names.count - names.opcodes
    if _same(s, start[0], end[0], b"AIM", 3):
        if b - a > 4 and _same(s, a, a + 4, b"ISR_", 4):
            a += 4
        if 0 <= previous < names.opcodes and _same(s, a, b, names.text[previous], names.length[previous]):
            return previous
        for k in range(names.opcodes):
            if _same(s, a, b, names.text[k], names.length[k]):
                return k
        return -1
    for k in range(names.opcodes, names.count):
        if _same(s, a, b, names.text[k], names.length[k]):
            if _same(s, start[0], end[0], b"R", 1):
                return k
            if _same(s, start[0], end[0], b"W", 1):
                return k + regions
    return -1


cdef int _names(_Names* names, list opcodes, list regions) except -1:
    cdef bytes name
    cdef int k = 0, i
    if len(opcodes) + len(regions) > MAX_NAMES:
        raise ValueError(f"at most {MAX_NAMES} opcodes and regions")
    names.opcodes = len(opcodes)
    for name in opcodes + regions:
        if len(name) > MAX_NAME:
            raise ValueError(f"opcode {name!r} is longer than {MAX_NAME} bytes")
        names.length[k] = len(name)
        for i in range(len(name)):
            names.text[k][i] = name[i]
        k += 1
    names.count = k
    return 0


cdef Py_ssize_t _lines(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """Line breaks + 1, or -1 if the text holds control (other than tab, CR, LF) or non-ASCII bytes."""
    cdef Py_ssize_t i, lines = 1
    cdef int unusual = 0
    cdef unsigned char c
    for i in range(n):  # branch-free, so that the compiler vectorises it
        c = s[i]
        unusual |= ((c < 32) & (c != 9) & (c != 10) & (c != 13)) | (c >= 127)
        lines += (c == 10) | (c == 13)
    return -1 if unusual else lines


cdef inline Py_ssize_t _find(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, int byte) noexcept nogil:
    """Index of the first `byte` in s[a:b], or b."""
    cdef const unsigned char* p = <const unsigned char*>memchr(s + a, byte, b - a) if b > a else NULL
    return p - s if p != NULL else b


def parse(const unsigned char[::1] data, list opcodes, list regions, int eoc, const int64_t[:, :, ::1] forms,
          const int64_t[::1] defaults):
    """Returns (status, line_no, code, operand [fields, n]) of the lines up to and including the one
    whose code is `eoc`; status != 0 when the text needs the Python parser. A line of code c with k
    values puts value j in operand field ``forms[c, k, j]``; ``forms[c, k, 0] == -2`` when opcode c has
    no form with k values. Fields a line does not give hold ``defaults``."""
    cdef Py_ssize_t n = data.shape[0], i = 0, a, b, m = 0, lines
    cdef Py_ssize_t next_lf = -1, next_cr = -1  # the next LF and CR at or after them, each searched for once
    cdef Py_ssize_t start[MAX_TOKENS]
    cdef Py_ssize_t end[MAX_TOKENS]
    cdef int64_t line_no = 0, v
    cdef int k, nt, code = -1
    cdef _Names names
    cdef const unsigned char* s = &data[0] if n else NULL
    if forms.shape[1] != MAX_VALUES + 1 or forms.shape[2] != MAX_VALUES:
        raise ValueError(f"forms must have shape [codes, {MAX_VALUES + 1}, {MAX_VALUES}]")
    _names(&names, opcodes, regions)
    if forms.shape[0] != names.opcodes + 2 * (names.count - names.opcodes):
        raise ValueError("forms must have one row per opcode and per R/W region")
    lines = _lines(s, n)
    if lines < 0:
        return _UNUSUAL, None, None, None
    line_arr = np.empty(lines, dtype=np.int64)
    code_arr = np.empty(lines, dtype=np.int64)
    operand_arr = np.empty((defaults.shape[0], lines), dtype=np.int64)
    operand_arr[:] = np.asarray(defaults)[:, None]
    cdef int64_t[::1] ln = line_arr, cd = code_arr
    cdef int64_t[:, ::1] operand = operand_arr
    with nogil:
        while i < n and code != eoc:
            line_no += 1
            a = i
            if next_lf < a:
                next_lf = _find(s, a, n, 10)
            if next_cr < a:
                next_cr = _find(s, a, n, 13)
            b = next_lf if next_lf < next_cr else next_cr
            i = b
            if i < n and s[i] == 13 and i + 1 < n and s[i + 1] == 10:
                i += 1
            i += 1
            b = _find(s, a, b, 35)  # '#' starts a comment
            nt = _tokens(s, a, b, start, end)
            if nt == 0:
                continue
            if nt < 2 or nt - 2 > MAX_VALUES:
                break
            code = _code(s, start, end, &names, code)
            if code < 0 or forms[code, nt - 2, 0] == -2:
                break
            ln[m], cd[m] = line_no, code
            v = 0
            for k in range(2, nt):
                v = _number(s, start[k], end[k])
                if v < 0:
                    break
                operand[forms[code, nt - 2, k - 2], m] = v
            if v < 0:
                break
            m += 1
    if code != eoc or m == 0 or cd[m - 1] != eoc:
        return _UNUSUAL, None, None, None
    return _OK, line_arr[:m], code_arr[:m], operand_arr[:, :m]


def opcode_counts(const int64_t[::1] code, int ncodes):
    """Per opcode index below `ncodes`: the lines that have it and the index of the first (-1 if none)."""
    counts = np.zeros(ncodes, dtype=np.int64)
    first = np.full(ncodes, -1, dtype=np.int64)
    cdef int64_t[::1] n = counts, f = first
    cdef Py_ssize_t i
    cdef int64_t c
    for i in range(code.shape[0]):
        c = code[i]
        if not 0 <= c < ncodes:
            raise ValueError(f"opcode index {c} at line index {i} is outside 0..{ncodes - 1}")
        if n[c] == 0:
            f[c] = i
        n[c] += 1
    return counts, first
