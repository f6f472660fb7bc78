"""Address mapping of request traces: byte addresses split into fields in one pass.

Fields are peeled off from the least significant end in mapping order: a field whose size is a power of
two by mask and shift, any other by remainder and division (24 banks as 6 groups of 4 stay dense). Each
field goes to a level, to the row array, to the column array, or nowhere; the levels' fields make one
flat bank id (levels from the channel down).
"""

from libc.stdint cimport int32_t, int64_t, uint64_t


cdef struct Fields:
    int64_t n               # fields
    int64_t width           # levels: dest == width is the row, width + 1 the column
    int64_t shift[64]       # log2 of a power-of-two size
    bint pow2[64]


cdef int _check(const int64_t[::1] sizes, const int64_t[::1] dest, int64_t width, Fields* out) except -1:
    """Validate the field layout and precompute each field's shift."""
    cdef Py_ssize_t nf = sizes.shape[0], f
    cdef uint64_t size
    if dest.shape[0] != nf:
        raise ValueError("split_banks: array lengths disagree")
    if nf > 64:
        raise ValueError("split_banks: at most 64 fields")
    out.n = nf
    out.width = width
    for f in range(nf):
        if not -1 <= dest[f] <= width + 1:
            raise ValueError(f"split_banks: field {f} goes to {dest[f]}, not -1..{width + 1}")
        if sizes[f] <= 0:
            raise ValueError(f"split_banks: field {f} has size {sizes[f]}")
        size = <uint64_t>sizes[f]
        out.pow2[f] = size & (size - 1) == 0
        out.shift[f] = 0
        while out.pow2[f] and (<uint64_t>1 << out.shift[f]) < size:
            out.shift[f] += 1
    return 0


cdef inline uint64_t _peel(const Fields* fl, const int64_t* sizes, int64_t f, uint64_t* rest) noexcept nogil:
    """Field f's value from the low end of `rest`, which loses it."""
    cdef uint64_t size = <uint64_t>sizes[f], value
    if fl.pow2[f]:
        value = rest[0] & (size - 1)
        rest[0] = rest[0] >> fl.shift[f]
    else:
        value = rest[0] % size
        rest[0] = rest[0] // size
    return value


def split_banks(const uint64_t[::1] addr, const int64_t[::1] sizes, const int64_t[::1] dest,
                const int64_t[::1] weights, int32_t[::1] bank, int32_t[::1] row, int32_t[::1] col):
    """Field f of every address (sizes[f] values) to level dest[f] when 0 <= dest[f] < len(weights), where
    it adds its value times ``weights[dest[f]]`` to ``bank`` (with ``weights[l]`` the banks under one node
    of level l, the flat bank id); to ``row`` when dest[f] == len(weights), to ``col`` when it is one more,
    and nowhere when dest[f] < 0. Bits above the last field are dropped (the caller checks addresses against
    the capacity). Outputs are 32-bit: the caller checks that banks, rows and columns number below 2^31."""
    cdef Py_ssize_t n = addr.shape[0], width = weights.shape[0], i, f
    cdef Fields fl
    cdef uint64_t rest, value
    cdef int64_t to, b
    if bank.shape[0] != n or row.shape[0] != n or col.shape[0] != n:
        raise ValueError("split_banks: array lengths disagree")
    _check(sizes, dest, width, &fl)
    with nogil:
        for i in range(n):
            rest = addr[i]
            b = 0
            for f in range(fl.n):
                value = _peel(&fl, &sizes[0], f, &rest)
                to = dest[f]
                if to < 0:
                    continue
                if to < width:
                    b += <int64_t>value * weights[to]
                elif to == width:
                    row[i] = <int32_t>value
                else:
                    col[i] = <int32_t>value
            bank[i] = <int32_t>b
