"""Reader for well-formed AiM trace text (``sieve.pim.aim_trace``), one pass over the bytes.

Reads the layouts the Python parser reads (blank- or comma-separated fields, ``#`` comments, empty
leading/trailing fields, ``ISR_`` prefixes, decimal or ``0x`` numbers) and stops after EOC. It takes
no decisions on bad input: on anything unusual (a malformed or huge number, an unknown opcode, an inner
empty field, control or non-ASCII bytes, no EOC) it answers ``status`` != 0 and the caller reruns the
Python parser, whose error messages are the project's.
"""

from libc.stdint cimport int64_t

import numpy as np

DEF MAX_TOKENS = 64  # fields of a line, empty ones included
DEF MAX_VALUES = 6   # operands after the line type and opcode
DEF MAX_VALUE = 4611686018427387904  # 2**62

cdef enum:
    _OK = 0
    _UNUSUAL = 1


cdef inline bint _blank(unsigned char c) noexcept nogil:
    return c == 32 or c == 9


cdef inline unsigned char _upper(unsigned char c) noexcept nogil:
    return c - 32 if 97 <= c <= 122 else c


cdef int _tokens(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t* start, Py_ssize_t* end) noexcept nogil:
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


cdef int64_t _number(const unsigned char* s, Py_ssize_t a, Py_ssize_t b) noexcept nogil:
    """Decimal or 0x-hexadecimal digits only; -1 for anything else or a value beyond 2**62."""
    cdef int64_t v = 0, d
    cdef int base = 10
    cdef Py_ssize_t i
    cdef unsigned char c
    if b - a > 2 and s[a] == 48 and (s[a + 1] == 120 or s[a + 1] == 88):
        base, a = 16, a + 2
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
        if v > (<int64_t>MAX_VALUE - d) // base:
            return -1
        v = v * base + d
    return v


cdef bint _same(const unsigned char* s, Py_ssize_t a, Py_ssize_t b, bytes name) noexcept:
    cdef Py_ssize_t k, n = len(name)
    cdef const unsigned char* t = name
    if b - a != n:
        return False
    for k in range(n):
        if _upper(s[a + k]) != t[k]:
            return False
    return True


cdef int _code(const unsigned char* s, Py_ssize_t* start, Py_ssize_t* end, list opcodes, list regions) noexcept:
    """Opcode index: AiM opcodes first, then R GPR/CFR/MEM, then W GPR/CFR/MEM; -1 if unknown."""
    cdef Py_ssize_t a = start[1], b = end[1]
    cdef int k
    if _same(s, start[0], end[0], b"AIM"):
        if b - a > 4 and _same(s, a, a + 4, b"ISR_"):
            a += 4
        for k in range(len(opcodes)):
            if _same(s, a, b, opcodes[k]):
                return k
        return -1
    for k in range(len(regions)):
        if _same(s, a, b, regions[k]):
            if _same(s, start[0], end[0], b"R"):
                return len(opcodes) + k
            if _same(s, start[0], end[0], b"W"):
                return len(opcodes) + len(regions) + k
    return -1


def parse(const unsigned char[::1] data, list opcodes, list regions, int eoc):
    """Returns (status, line_no, code, nvalues, values [n, MAX_VALUES]) of the lines up to and
    including the one whose code is `eoc`; status != 0 when the text needs the Python parser."""
    cdef Py_ssize_t n = data.shape[0], i = 0, a, b, c, m = 0
    cdef Py_ssize_t start[MAX_TOKENS]
    cdef Py_ssize_t end[MAX_TOKENS]
    cdef int64_t line_no = 0, v
    cdef int k, nt, code = -1
    cdef const unsigned char* s = &data[0] if n else NULL
    for i in range(n):
        if (data[i] < 32 and data[i] != 9 and data[i] != 10 and data[i] != 13) or data[i] >= 127:
            return _UNUSUAL, None, None, None, None
    cdef Py_ssize_t lines = 1
    for i in range(n):
        if data[i] == 10 or data[i] == 13:
            lines += 1
    line_arr = np.empty(lines, dtype=np.int64)
    code_arr = np.empty(lines, dtype=np.int64)
    nval_arr = np.empty(lines, dtype=np.int64)
    val_arr = np.zeros((lines, MAX_VALUES), dtype=np.int64)
    cdef int64_t[::1] ln = line_arr, cd = code_arr, nv = nval_arr
    cdef int64_t[:, ::1] val = val_arr
    i = 0
    while i < n and code != eoc:
        line_no += 1
        a = i
        while i < n and data[i] != 10 and data[i] != 13:
            i += 1
        b = i
        if i < n and data[i] == 13 and i + 1 < n and data[i + 1] == 10:
            i += 1
        i += 1
        for c in range(a, b):
            if data[c] == 35:  # '#'
                b = c
                break
        nt = _tokens(s, a, b, start, end)
        if nt == 0:
            continue
        if nt < 2 or nt - 2 > MAX_VALUES:
            return _UNUSUAL, None, None, None, None
        code = _code(s, start, end, opcodes, regions)
        if code < 0:
            return _UNUSUAL, None, None, None, None
        ln[m], cd[m], nv[m] = line_no, code, nt - 2
        for k in range(2, nt):
            v = _number(s, start[k], end[k])
            if v < 0:
                return _UNUSUAL, None, None, None, None
            val[m, k - 2] = v
        m += 1
    if code != eoc:
        return _UNUSUAL, None, None, None, None
    return _OK, line_arr[:m], code_arr[:m], nval_arr[:m], val_arr[:m]
