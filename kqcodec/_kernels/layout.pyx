# cython: language_level=3
"""The image data's bytes: bit packing, row filters, neighbour counts.

Rows are independent once packed, so the filters run on every core; each
row's output depends on that row and the one above only, whatever the
thread count.
"""

from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t


def pack_rows(const uint8_t[:, ::1] indices, int depth, uint8_t[:, ::1] out):
    """Pack indices below 2**depth into bytes, leftmost pixel in the high bits.

    Parameters
    ----------
    indices : (H, W) uint8
    depth : {1, 2, 4}
    out : (H, ceil(W * depth / 8)) uint8, written
    """
    cdef Py_ssize_t height = indices.shape[0], width = indices.shape[1]
    cdef Py_ssize_t y, x, per_byte = 8 // depth
    cdef int shift
    cdef uint8_t byte
    with nogil:
        for y in prange(height, schedule="static"):
            byte = 0
            for x in range(width):
                shift = 8 - depth * (x % per_byte + 1)
                byte = byte | (indices[y, x] << shift)
                if x % per_byte == per_byte - 1:
                    out[y, x // per_byte] = byte
                    byte = 0
            if width % per_byte:
                out[y, width // per_byte] = byte


cdef inline uint8_t _paeth(int a, int b, int c) noexcept nogil:
    cdef int p = a + b - c
    cdef int pa = abs(p - a), pb = abs(p - b), pc = abs(p - c)
    if pa <= pb and pa <= pc:
        return <uint8_t>a
    if pb <= pc:
        return <uint8_t>b
    return <uint8_t>c


cdef inline uint8_t _filtered(int kind, int raw, int left, int up, int corner) noexcept nogil:
    if kind == 0:
        return <uint8_t>raw
    if kind == 1:
        return <uint8_t>(raw - left)
    if kind == 2:
        return <uint8_t>(raw - up)
    if kind == 3:
        return <uint8_t>(raw - ((left + up) >> 1))
    return <uint8_t>(raw - _paeth(left, up, corner))


def adaptive_filter(const uint8_t[:, ::1] rows, uint8_t[:, ::1] out):
    """Filter each row with the PNG filter type whose output has the least absolute sum.

    The libpng heuristic: the sum of the filtered bytes read as signed;
    ties go to the lower filter type.  One byte per pixel step.

    Parameters
    ----------
    rows : (H, B) uint8
        Packed scanlines.
    out : (H, B + 1) uint8, written
        Scanlines with their filter type byte first.
    """
    cdef Py_ssize_t height = rows.shape[0], width = rows.shape[1]
    cdef Py_ssize_t y, x
    cdef int kind, best_kind, raw, left, up, corner
    cdef int64_t cost, best_cost
    cdef signed char value
    with nogil:
        for y in prange(height, schedule="static"):
            best_kind = 0
            best_cost = -1
            for kind in range(5):
                cost = 0
                for x in range(width):
                    raw = rows[y, x]
                    left = rows[y, x - 1] if x > 0 else 0
                    up = rows[y - 1, x] if y > 0 else 0
                    corner = rows[y - 1, x - 1] if x > 0 and y > 0 else 0
                    value = <signed char>_filtered(kind, raw, left, up, corner)
                    cost = cost + (value if value >= 0 else -value)
                if best_cost < 0 or cost < best_cost:
                    best_cost = cost
                    best_kind = kind
            out[y, 0] = <uint8_t>best_kind
            for x in range(width):
                raw = rows[y, x]
                left = rows[y, x - 1] if x > 0 else 0
                up = rows[y - 1, x] if y > 0 else 0
                corner = rows[y - 1, x - 1] if x > 0 and y > 0 else 0
                out[y, x + 1] = _filtered(best_kind, raw, left, up, corner)


def neighbour_counts(const uint8_t[:, ::1] indices, int64_t[:, ::1] counts):
    """Add how often each pair of entries stands side by side or one above the other.

    Parameters
    ----------
    indices : (H, W) uint8
    counts : (P, P) int64, added to
        ``counts[a, b]`` counts a left of b and a above b; every index
        must be below P.
    """
    cdef Py_ssize_t height = indices.shape[0], width = indices.shape[1], y, x
    with nogil:
        for y in range(height):
            for x in range(width - 1):
                counts[indices[y, x], indices[y, x + 1]] += 1
            if y + 1 < height:
                for x in range(width):
                    counts[indices[y, x], indices[y + 1, x]] += 1
