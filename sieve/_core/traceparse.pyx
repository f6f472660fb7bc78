"""Parser for memory request traces: one ``LD <addr>`` or ``ST <addr>`` per line.

Addresses are decimal or ``0x`` hexadecimal. Blank lines and lines starting with ``#`` are skipped.
One pass over the bytes through a pointer, digits through a lookup table; a 2M-line trace parses in
about the time it takes to read it.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memchr

import numpy as np

cdef enum:
    NOT_DIGIT = 255

# value of each byte as a hexadecimal digit (NOT_DIGIT for others); decimal digits are those below 10
cdef unsigned char DIGIT[256]
for _b in range(256):
    DIGIT[_b] = NOT_DIGIT
for _b in range(10):
    DIGIT[48 + _b] = _b
for _b in range(6):
    DIGIT[97 + _b] = 10 + _b
    DIGIT[65 + _b] = 10 + _b

# the largest value that may take one more decimal digit d: value * 10 + d <= 2^64 - 1
cdef uint64_t DEC_LIMIT = 1844674407370955161ULL  # (2^64 - 1) // 10
cdef unsigned char DEC_LAST = 5                   # (2^64 - 1) % 10


cdef inline bint _blank(unsigned char ch) noexcept nogil:
    return ch == 32 or ch == 9


cdef Py_ssize_t _count_lines(const unsigned char* p, Py_ssize_t n) noexcept nogil:
    cdef Py_ssize_t count = 1
    cdef const unsigned char* end = p + n
    cdef const void* hit
    while p < end:
        hit = memchr(p, 10, end - p)
        if hit == NULL:
            break
        count += 1
        p = <const unsigned char*>hit + 1
    return count


def parse(const unsigned char[::1] data):
    """Return (is_write uint8[n], addr uint64[n], line int64[n] or None) or raise ValueError(line_no, text).
    The line numbers are None when they are 1 .. n (no blank or comment line before the last request):
    they are only made once a request's line number differs from its position."""
    cdef Py_ssize_t n = data.shape[0]
    cdef const unsigned char* base = &data[0] if n > 0 else NULL
    cdef Py_ssize_t est = _count_lines(base, n) if n > 0 else 1
    is_write = np.empty(est, dtype=np.uint8)
    addr = np.empty(est, dtype=np.uint64)
    lines = None
    cdef unsigned char[::1] w = is_write
    cdef uint64_t[::1] a = addr
    cdef int64_t[::1] ln
    cdef bint numbered = False
    cdef Py_ssize_t i = 0, start, count = 0, j, significant
    cdef int64_t line_no = 0
    cdef int kind
    cdef Py_ssize_t digits
    cdef unsigned char ch, d, radix
    cdef uint64_t value
    cdef bint overflow
    cdef Py_ssize_t err_start = -1
    cdef int64_t err_line = 0
    with nogil:
        while i < n:
            line_no += 1
            start = i
            while i < n and _blank(base[i]):  # leading blanks
                i += 1
            if i >= n or base[i] == 10 or base[i] == 13 or base[i] == 35:  # blank, or '#' comment
                while i < n and base[i] != 10:
                    i += 1
                i += 1
                continue
            kind = -1
            if i + 1 < n:
                if base[i] == 76 and base[i + 1] == 68:      # LD
                    kind = 0
                elif base[i] == 83 and base[i + 1] == 84:    # ST
                    kind = 1
            i += 2
            if kind < 0 or i >= n or not _blank(base[i]):
                err_start = start
                err_line = line_no
                break
            while i < n and _blank(base[i]):
                i += 1
            radix = 10
            if i + 1 < n and base[i] == 48 and (base[i + 1] == 120 or base[i + 1] == 88):  # 0x, 0X
                radix = 16
                i += 2
            value = 0
            digits = 0
            overflow = False
            if radix == 16:
                # leading zeros, then at most 16 significant digits fit: overflow is judged once, after them
                while i < n and base[i] == 48:
                    digits += 1
                    i += 1
                significant = i
                while i < n:
                    d = DIGIT[base[i]]
                    if d >= 16:
                        break
                    value = (value << 4) | d
                    i += 1
                digits += i - significant
                overflow = i - significant > 16
            else:
                while i < n:
                    d = DIGIT[base[i]]
                    if d >= 10:
                        break
                    overflow |= value > DEC_LIMIT or (value == DEC_LIMIT and d > DEC_LAST)
                    value = value * 10 + d
                    digits += 1
                    i += 1
            while i < n and (_blank(base[i]) or base[i] == 13):  # only trailing blanks may follow
                i += 1
            if digits == 0 or overflow or (i < n and base[i] != 10):
                err_start = start
                err_line = line_no
                break
            w[count] = kind
            a[count] = value
            if not numbered and line_no != count + 1:
                with gil:
                    lines = np.empty(est, dtype=np.int64)
                    ln = lines
                for j in range(count):
                    ln[j] = j + 1
                numbered = True
            if numbered:
                ln[count] = line_no
            count += 1
            i += 1
    if err_start >= 0:
        end = err_start
        while end < n and data[end] != 10:
            end += 1
        text = bytes(data[err_start:end]).decode("utf-8", "replace").rstrip("\r")
        raise ValueError(err_line, text)
    return is_write[:count], addr[:count], None if lines is None else lines[:count]
