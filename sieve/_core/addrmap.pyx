"""Address mapping of request traces: byte addresses split into fields in one pass.

Fields are peeled off from the least significant end in mapping order: a field whose size is a power of
two by mask and shift, any other by remainder and division (24 banks as 6 groups of 4 stay dense). Each
field goes to a level, to the row array, to the column array, or nowhere; the levels' fields make one
flat bank id (levels from the channel down). When every field is a power of two (and at most one goes to the
row, one to the column), each is a fixed bit range of the address, and the pass reads those ranges directly.
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


# One bit range of the address, as the pass over a power-of-two layout reads it.
cdef struct BitField:
    int64_t shift           # its lowest bit
    uint64_t mask           # its size - 1
    int64_t weight          # a level's field: banks under one node of its level (else unused)


cdef struct BitLayout:
    int64_t levels          # level fields, in `level`
    BitField level[64]
    bint has_row, has_col
    BitField row, col


cdef bint _bit_layout(const Fields* fl, const int64_t[::1] sizes, const int64_t[::1] dest,
                      const int64_t[::1] weights, BitLayout* out) noexcept:
    """Whether the layout is one of fixed bit ranges (every field a power of two, below bit 64, at most one
    to the row and one to the column); if so, fill `out`."""
    cdef int64_t f, pos = 0, to, width = fl.width
    cdef BitField field
    out.levels = 0
    out.has_row = out.has_col = False
    for f in range(fl.n):
        if not fl.pow2[f] or pos + fl.shift[f] > 64:
            return False
        field = BitField(shift=pos, mask=<uint64_t>sizes[f] - 1, weight=0)
        pos += fl.shift[f]
        to = dest[f]
        if to < 0:
            continue
        if to < width:
            field.weight = weights[to]
            out.level[out.levels] = field
            out.levels += 1
        elif to == width:
            if out.has_row:
                return False
            out.row, out.has_row = field, True
        else:
            if out.has_col:
                return False
            out.col, out.has_col = field, True
    return True


cdef inline uint64_t _bits(const BitField* f, uint64_t a) noexcept nogil:
    return (a >> f.shift) & f.mask


cdef void _split_bit_fields(const BitLayout* bl, const uint64_t[::1] addr, int32_t[::1] bank,
                            int32_t[::1] row, int32_t[::1] col) noexcept nogil:
    cdef Py_ssize_t i
    cdef int64_t f, b
    cdef uint64_t a
    for i in range(addr.shape[0]):
        a = addr[i]
        b = 0
        for f in range(bl.levels):
            b += <int64_t>_bits(&bl.level[f], a) * bl.level[f].weight
        bank[i] = <int32_t>b
        if bl.has_row:
            row[i] = <int32_t>_bits(&bl.row, a)
        if bl.has_col:
            col[i] = <int32_t>_bits(&bl.col, a)


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
    cdef BitLayout bl
    if _bit_layout(&fl, sizes, dest, weights, &bl):
        with nogil:
            _split_bit_fields(&bl, addr, bank, row, col)
        return
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
