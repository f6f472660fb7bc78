"""Reader for well-formed AiM trace text (``sieve.pim.aim_trace``), one pass over the bytes.

Reads the layouts the Python parser reads (blank- or comma-separated fields, ``#`` comments, empty
leading/trailing fields, ``ISR_`` prefixes, decimal or ``0x`` numbers) and stops after EOC. Each line's
values go to the operand fields its opcode's form names (``forms``), so the caller gets the program as
per-field arrays. It takes no decisions on bad input: on anything unusual (non-ASCII text, a malformed
or huge number, an unknown opcode, a number of fields no form of the opcode has, an inner empty field,
control bytes before the end of the EOC line, no EOC) it answers ``status`` != 0 and the caller reruns
the Python parser, whose error messages are the project's.

Each byte is looked at once, through its class (:data:`_class`): a line's fields are the runs of
field bytes; when the line has a comma before its comment, its fields must be in consecutive
comma-separated cells (one field per cell, none empty between the first and the last), as the Python
parser's ``split(",")`` then ``strip()`` demands. Programs repeat their lines but for a field or
two: a line whose bytes up to the end of the last instruction line's last field but one (else up to
the end of its opcode) are that line's is compared with it at once and read on from there, the scan
standing where it stood then, with the values read then.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcmp

import numpy as np

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object text, Py_ssize_t* size) except NULL

DEF MAX_VALUES = 6   # operands after the line type and opcode
DEF MAX_VALUE = 4611686018427387904  # 2**62
DEF MAX_NAMES = 32   # opcodes + regions
DEF MAX_NAME = 16    # bytes of an opcode or region name
DEF MAX_CODES = 64   # opcodes + R/W regions
DEF MAX_FIELDS = 16  # operand fields

cdef enum:
    _OK = 0
    _UNUSUAL = 1

MAX_VALUES_PER_LINE = MAX_VALUES

# byte classes
cdef enum:
    _FIELD = 0   # printable, not a separator: part of a field
    _BLANK = 1   # space, tab
    _COMMA = 2
    _HASH = 3    # starts a comment
    _BREAK = 4   # LF, CR
    _ODD = 5     # other control bytes, DEL, non-ASCII: the Python parser's

cdef unsigned char _class[256]
cdef unsigned char _digit[256]  # value of a hexadecimal digit (either case), else 255


cdef void _classes() noexcept:
    cdef int c
    for c in range(256):
        _class[c] = _FIELD if 33 <= c <= 126 else _ODD
        _digit[c] = c - 48 if 48 <= c <= 57 else c - 55 if 65 <= c <= 70 else c - 87 if 97 <= c <= 102 else 255
    _class[32] = _class[9] = _BLANK
    _class[44] = _COMMA
    _class[35] = _HASH
    _class[10] = _class[13] = _BREAK


_classes()


cdef struct _Names:
    int count                      # opcodes, then regions
    int opcodes
    int length[MAX_NAMES]
    unsigned char text[MAX_NAMES][MAX_NAME]


cdef inline unsigned char _upper(unsigned char c) noexcept nogil:
    return c - 32 if 97 <= c <= 122 else c


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


cdef struct _Scan:
    # where the scan of a line stands: the fields read so far and the cells they are in
    int fields
    int cells                     # commas passed
    int cell_of_last              # the cell of the last field, -1: none yet
    bint consecutive              # every field in the cell after the previous field's


cdef struct _Line:
    int fields                    # fields of the line (0: blank or comment only), -1: unusual
    Py_ssize_t start[2]           # line type and opcode (or region)
    Py_ssize_t end[2]
    int64_t value[MAX_VALUES]     # the numbers after them
    Py_ssize_t mark[MAX_VALUES + 3]   # from field 2 on: where the scan stood after each field it read,
    _Scan mark_scan[MAX_VALUES + 3]   # and how


cdef struct _Last:
    # the last instruction line, to read the lines after it that begin alike from where they differ
    Py_ssize_t at                 # where it starts in the text
    int fields                    # its fields, 0: none yet
    Py_ssize_t mark[MAX_VALUES + 3]   # from field 2 on: bytes from its start to the end of each field,
    _Scan mark_scan[MAX_VALUES + 3]   # and the scan there
    int64_t value[MAX_VALUES]


cdef inline Py_ssize_t _value(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, int64_t* value) noexcept nogil:
    """Reads the number field starting at s[i] (decimal or 0x-hexadecimal digits only) into `value`, -1
    for anything else or beyond 2**62; returns where the field ends. Up to 18 decimal or 15 hexadecimal
    digits cannot exceed 2**62; longer fields take `_number`'s checked path."""
    cdef Py_ssize_t a = i
    cdef uint64_t v = 0  # wraps harmlessly on fields too long for the fast path
    cdef unsigned char d, base = 10
    if s[i] == 48 and i + 2 < n and (s[i + 1] == 120 or s[i + 1] == 88) and _class[s[i + 2]] == _FIELD:
        base, i = 16, i + 2
    while i < n:
        d = _digit[s[i]]
        if d >= base:
            break
        v = v * base + d
        i += 1
    if i < n and _class[s[i]] == _FIELD:  # a byte that is no digit
        value[0] = -1
        while i < n and _class[s[i]] == _FIELD:
            i += 1
        return i
    if (base == 10 and i - a > 18) or (base == 16 and i - a > 17):
        value[0] = _number(s, a, i)
    else:
        value[0] = <int64_t>v
    return i


cdef Py_ssize_t _read_line(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, _Line* line, _Scan scan) noexcept nogil:
    """Reads the line from s[i] on, where the scan stands as `scan` says (a line's start: no field, no
    cell); returns where the next line starts."""
    cdef Py_ssize_t a
    cdef unsigned char k
    line.fields = -1
    while i < n:
        k = _class[s[i]]
        if k == _FIELD:
            if scan.fields < 2:
                a = i
                i += 1
                while i < n and _class[s[i]] == _FIELD:
                    i += 1
                line.start[scan.fields], line.end[scan.fields] = a, i
            elif scan.fields - 2 < MAX_VALUES:
                i = _value(s, i, n, &line.value[scan.fields - 2])
                if line.value[scan.fields - 2] < 0:
                    return i
            else:
                return i
            scan.consecutive = scan.consecutive and (scan.fields == 0 or scan.cells == scan.cell_of_last + 1)
            scan.cell_of_last = scan.cells
            scan.fields += 1
            if scan.fields >= 2:
                line.mark[scan.fields], line.mark_scan[scan.fields] = i, scan
        elif k == _BLANK:
            i += 1
        elif k == _COMMA:
            scan.cells += 1
            i += 1
        elif k == _HASH:
            i += 1
            while i < n and _class[s[i]] != _BREAK:
                if _class[s[i]] == _ODD:
                    return i
                i += 1
        elif k == _BREAK:
            break
        else:
            return i
    if i < n:  # a line break: CR LF, LF or CR
        i += 2 if s[i] == 13 and i + 1 < n and s[i + 1] == 10 else 1
    if scan.cells == 0 or scan.consecutive:
        line.fields = scan.fields
    return i


cdef inline bint _begins_alike(const unsigned char* s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t at,
                               Py_ssize_t length) noexcept nogil:
    """Whether the line at s[i] holds the `length` bytes at s[at] and its field there ends with them."""
    return i + length < n and _class[s[i + length]] != _FIELD and memcmp(s + at, s + i, length) == 0


cdef void _remember(_Last* last, const _Line* line, Py_ssize_t begin, int resumed) noexcept nogil:
    """Keep an accepted line (starting at s[begin], its scan resumed after field `resumed`, 0: read
    whole) as the last one. Its fields up to `resumed` are the last line's bytes: their marks stay."""
    cdef int j
    last.at = begin
    last.fields = line.fields
    for j in range(line.fields - 2):
        last.value[j] = line.value[j]
    for j in range(resumed + 1 if resumed >= 2 else 2, line.fields + 1):
        last.mark[j], last.mark_scan[j] = line.mark[j] - begin, line.mark_scan[j]


cdef Py_ssize_t _breaks(const unsigned char* s, Py_ssize_t n) noexcept nogil:
    """LF and CR bytes in s[:n] (the text has at most one line more), counted in blocks of 255 bytes
    so that the compiler vectorises the byte counts."""
    cdef Py_ssize_t i = 0, j, stop, total = 0
    cdef unsigned char block
    while i < n:
        stop = i + 255 if n - i > 255 else n
        block = 0
        for j in range(i, stop):
            block += (s[j] == 10) + (s[j] == 13)
        total += block
        i = stop
    return total


cdef void _fill(int64_t* a, Py_ssize_t n, int64_t value) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        a[i] = value


cdef class Reader:
    """The tables of one layout of opcodes and operand fields, built once; :meth:`parse` reads a text.

    ``opcodes`` and ``regions`` are the upper-case names (bytes); codes are the opcodes' indices, then
    R and W of each region. A line of code c with k values puts value j in operand field
    ``forms[c, k, j]``; ``forms[c, k, 0] == -2`` when opcode c has no form with k values. Fields a line
    does not give hold ``defaults``."""

    cdef _Names names
    cdef int eoc
    cdef int codes
    cdef int fields
    cdef int form[MAX_CODES][MAX_VALUES + 1][MAX_VALUES]
    cdef int64_t defaults[MAX_FIELDS]

    def __init__(self, list opcodes, list regions, int eoc, const int64_t[:, :, ::1] forms,
                 const int64_t[::1] defaults):
        cdef int c, k, j
        self._set_names(opcodes, regions)
        self.codes = self.names.opcodes + 2 * (self.names.count - self.names.opcodes)
        if forms.shape[0] != self.codes or forms.shape[1] != MAX_VALUES + 1 or forms.shape[2] != MAX_VALUES:
            raise ValueError(f"forms must have shape [{self.codes}, {MAX_VALUES + 1}, {MAX_VALUES}]: one row "
                             "per opcode and per R/W region")
        if defaults.shape[0] > MAX_FIELDS:
            raise ValueError(f"at most {MAX_FIELDS} operand fields")
        if not 0 <= eoc < self.names.opcodes:
            raise ValueError(f"EOC's code {eoc} is not an opcode's")
        self.eoc, self.fields = eoc, defaults.shape[0]
        for c in range(self.codes):
            for k in range(MAX_VALUES + 1):
                for j in range(MAX_VALUES):
                    if not (-2 <= forms[c, k, j] < self.fields):
                        raise ValueError(f"forms[{c}, {k}, {j}] = {forms[c, k, j]} is not an operand field")
                    self.form[c][k][j] = <int>forms[c, k, j]
        for j in range(self.fields):
            self.defaults[j] = defaults[j]

    cdef int _set_names(self, list opcodes, list regions) except -1:
        cdef bytes name
        cdef int k = 0, i
        if len(opcodes) + len(regions) > MAX_NAMES or len(opcodes) + 2 * len(regions) > MAX_CODES:
            raise ValueError(f"at most {MAX_NAMES} opcodes and regions")
        self.names.opcodes = len(opcodes)
        for name in opcodes + regions:
            if len(name) > MAX_NAME:
                raise ValueError(f"opcode {name!r} is longer than {MAX_NAME} bytes")
            self.names.length[k] = len(name)
            for i in range(len(name)):
                self.names.text[k][i] = name[i]
            k += 1
        self.names.count = k
        return 0

    cdef int _code(self, const unsigned char* s, const _Line* line, int previous) noexcept nogil:
        """Opcode index: AiM opcodes first, then R GPR/CFR/MEM, then W GPR/CFR/MEM; -1 if unknown. The
        previous line's opcode is tried first (programs repeat opcodes)."""
        cdef const _Names* names = &self.names
        cdef Py_ssize_t a = line.start[1], b = line.end[1]
        cdef int k, regions = names.count - names.opcodes
        if _same(s, line.start[0], line.end[0], b"AIM", 3):
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
                if _same(s, line.start[0], line.end[0], b"R", 1):
                    return k
                if _same(s, line.start[0], line.end[0], b"W", 1):
                    return k + regions
        return -1

    def parse(self, str text):
        """Returns (status, line_no, code, operand [fields, n], counts) of the lines up to and including
        EOC, ``counts`` as :func:`opcode_counts` gives them; status != 0 (and None for the rest) when the
        text needs the Python parser."""
        cdef Py_ssize_t n = 0, i = 0, m = 0, cap
        cdef Py_ssize_t begin
        cdef _Scan fresh
        cdef _Last last
        cdef int resumed
        cdef const unsigned char* s
        cdef int64_t line_no = 0
        cdef int64_t* out
        cdef int64_t[:, ::1] out_view
        cdef int j, values, code = -1
        cdef const int* form
        cdef _Line line
        cdef int64_t count[MAX_CODES]     # lines per code
        cdef int first[MAX_CODES]         # codes in the order of their first lines
        cdef int ncodes = 0
        if not text.isascii():
            return _UNUSUAL, None, None, None, None
        fresh.fields, fresh.cells, fresh.cell_of_last, fresh.consecutive = 0, 0, -1, True
        last.fields = 0
        s = <const unsigned char*>PyUnicode_AsUTF8AndSize(text, &n)
        cap = _breaks(s, n) + 1
        out_arr = np.empty((2 + self.fields, cap), dtype=np.int64)  # line number, code, operands
        out_view = out_arr
        out = &out_view[0, 0]
        with nogil:
            for j in range(self.codes):
                count[j] = 0
            for j in range(self.fields):  # fields a line does not give keep their defaults
                _fill(out + (2 + j) * cap, cap, self.defaults[j])
            while i < n and code != self.eoc:
                line_no += 1
                begin = i
                # A line that begins as the last instruction line did is read on from where it may
                # differ: after that line's last field but one, else after its opcode (same opcode).
                resumed = 0
                if last.fields >= 3 and _begins_alike(s, i, n, last.at, last.mark[last.fields - 1]):
                    resumed = last.fields - 1
                elif last.fields >= 2 and _begins_alike(s, i, n, last.at, last.mark[2]):
                    resumed = 2
                if resumed:
                    for j in range(resumed - 2):
                        line.value[j] = last.value[j]
                    i = _read_line(s, i + last.mark[resumed], n, &line, last.mark_scan[resumed])
                else:
                    i = _read_line(s, i, n, &line, fresh)
                    if line.fields == 0:
                        continue
                    if line.fields >= 2:
                        code = self._code(s, &line, code)
                if line.fields < 2:
                    break
                values = line.fields - 2
                if code < 0 or self.form[code][values][0] == -2:
                    break
                out[m], out[cap + m] = line_no, code
                form = self.form[code][values]
                for j in range(values):
                    out[(2 + form[j]) * cap + m] = line.value[j]
                m += 1
                if count[code] == 0:
                    first[ncodes] = code
                    ncodes += 1
                count[code] += 1
                _remember(&last, &line, begin, resumed)
        if code != self.eoc or m == 0 or out[cap + m - 1] != self.eoc:
            return _UNUSUAL, None, None, None, None
        return _OK, out_arr[0, :m], out_arr[1, :m], out_arr[2:, :m], [(first[j], count[first[j]]) for j in range(ncodes)]


def opcode_counts(const int64_t[::1] code, int ncodes):
    """Per opcode index below `ncodes` that some line has: (index, lines that have it), in the order of
    the opcodes' first lines."""
    cdef int64_t[::1] counts = np.zeros(ncodes, dtype=np.int64)
    cdef list order = []
    cdef Py_ssize_t i
    cdef int64_t c
    for i in range(code.shape[0]):
        c = code[i]
        if not 0 <= c < ncodes:
            raise ValueError(f"opcode index {c} at line index {i} is outside 0..{ncodes - 1}")
        if counts[c] == 0:
            order.append(c)
        counts[c] += 1
    return [(c, counts[c]) for c in order]
