"""Parser for memory request traces: one ``LD <addr>`` or ``ST <addr>`` per line.

Addresses are decimal or ``0x`` hexadecimal. Blank lines and lines starting with ``#`` are skipped.
"""

from libc.stdint cimport int64_t, uint64_t

import numpy as np


def parse(const unsigned char[::1] data):
    """Return (is_write uint8[n], addr uint64[n], line int64[n]) or raise ValueError(line_no, text)."""
    cdef Py_ssize_t n = data.shape[0]
    cdef Py_ssize_t i = 0, start, count = 0
    cdef Py_ssize_t est = 1
    for i in range(n):
        if data[i] == 10:
            est += 1
    is_write = np.empty(est, dtype=np.uint8)
    addr = np.empty(est, dtype=np.uint64)
    lines = np.empty(est, dtype=np.int64)
    cdef unsigned char[::1] w = is_write
    cdef uint64_t[::1] a = addr
    cdef int64_t[::1] ln = lines
    cdef int64_t line_no = 0
    cdef int kind, digits, d
    cdef unsigned char ch
    cdef uint64_t value
    cdef bint hexa, overflow
    cdef Py_ssize_t err_start = -1
    cdef int64_t err_line = 0
    i = 0
    with nogil:
        while i < n:
            line_no += 1
            start = i
            # skip leading blanks
            while i < n and (data[i] == 32 or data[i] == 9):
                i += 1
            if i >= n or data[i] == 10 or data[i] == 13 or data[i] == 35:  # blank, or '#' comment
                while i < n and data[i] != 10:
                    i += 1
                i += 1
                continue
            kind = -1
            if i + 1 < n and data[i] == 76 and data[i + 1] == 68:      # LD
                kind = 0
            elif i + 1 < n and data[i] == 83 and data[i + 1] == 84:    # ST
                kind = 1
            i += 2
            if kind < 0 or i >= n or not (data[i] == 32 or data[i] == 9):
                err_start = start
                err_line = line_no
                break
            while i < n and (data[i] == 32 or data[i] == 9):
                i += 1
            hexa = i + 1 < n and data[i] == 48 and (data[i + 1] == 120 or data[i + 1] == 88)
            if hexa:
                i += 2
            value = 0
            digits = 0
            overflow = False
            while i < n:
                ch = data[i]
                if 48 <= ch <= 57:
                    d = ch - 48
                elif hexa and 97 <= ch <= 102:
                    d = ch - 87
                elif hexa and 65 <= ch <= 70:
                    d = ch - 55
                else:
                    break
                if hexa:
                    if value >> 60:
                        overflow = True
                    value = (value << 4) | d
                else:
                    if value > (<uint64_t>0xFFFFFFFFFFFFFFFF - d) // 10:
                        overflow = True
                    value = value * 10 + d
                digits += 1
                i += 1
            # only trailing blanks may follow
            while i < n and (data[i] == 32 or data[i] == 9 or data[i] == 13):
                i += 1
            if digits == 0 or overflow or (i < n and data[i] != 10):
                err_start = start
                err_line = line_no
                break
            w[count] = kind
            a[count] = value
            ln[count] = line_no
            count += 1
            i += 1
    if err_start >= 0:
        end = err_start
        while end < n and data[end] != 10:
            end += 1
        text = bytes(data[err_start:end]).decode("utf-8", "replace").rstrip("\r")
        raise ValueError(err_line, text)
    return is_write[:count], addr[:count], lines[:count]
