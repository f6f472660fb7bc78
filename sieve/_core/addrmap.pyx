"""Address mapping of request traces: byte addresses split into fields in one pass.

Fields are peeled off from the least significant end in mapping order: a field whose size is a power of
two by mask and shift, any other by remainder and division (24 banks as 6 groups of 4 stay dense). Each
field goes to a column of the level array, to the row array, to the column array, or nowhere.
"""

from libc.stdint cimport int64_t, uint64_t


def split_fields(const uint64_t[::1] addr, const int64_t[::1] sizes, const int64_t[::1] dest,
                 int64_t[:, ::1] levels, int64_t[::1] row, int64_t[::1] col):
    """Field f of every address (sizes[f] values) into ``levels[:, dest[f]]`` when 0 <= dest[f] < levels'
    width, ``row`` when dest[f] == width, ``col`` when dest[f] == width + 1, and nowhere when dest[f] < 0.
    Bits above the last field are dropped (the caller checks addresses against the capacity)."""
    cdef Py_ssize_t n = addr.shape[0], nf = sizes.shape[0], width = levels.shape[1], i, f
    if dest.shape[0] != nf or levels.shape[0] != n or row.shape[0] != n or col.shape[0] != n:
        raise ValueError("split_fields: array lengths disagree")
    cdef int64_t shift[64]
    cdef bint pow2[64]
    cdef uint64_t size, rest, value
    cdef int64_t to
    if nf > 64:
        raise ValueError("split_fields: at most 64 fields")
    for f in range(nf):
        if not -1 <= dest[f] <= width + 1:
            raise ValueError(f"split_fields: field {f} goes to {dest[f]}, not -1..{width + 1}")
        if sizes[f] <= 0:
            raise ValueError(f"split_fields: field {f} has size {sizes[f]}")
        size = <uint64_t>sizes[f]
        pow2[f] = size & (size - 1) == 0
        shift[f] = 0
        while pow2[f] and (<uint64_t>1 << shift[f]) < size:
            shift[f] += 1
    with nogil:
        for i in range(n):
            rest = addr[i]
            for f in range(nf):
                size = <uint64_t>sizes[f]
                if pow2[f]:
                    value = rest & (size - 1)
                    rest = rest >> shift[f]
                else:
                    value = rest % size
                    rest = rest // size
                to = dest[f]
                if to < 0:
                    continue
                if to < width:
                    levels[i, to] = <int64_t>value
                elif to == width:
                    row[i] = <int64_t>value
                else:
                    col[i] = <int64_t>value
