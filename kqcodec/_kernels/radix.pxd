# cython: language_level=3
"""A radix sort of integer keys, carrying a row number each or not, shared by the kernels that rank.

Defined here, inline, so that each module that cimports it compiles its own
copy: no extension module of its own, nothing to call across modules.
"""

from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy

# Most bits of the key sorted per pass: up to 65,536 counters, which stay
# in a fast cache.
cdef enum:
    RADIX_DIGIT = 16


cdef inline void radix_sort(uint64_t* keys, int64_t* rows, uint64_t* spare_keys,
                            int64_t* spare_rows, Py_ssize_t* counts, Py_ssize_t n,
                            int bits) noexcept nogil:
    """Sort the `n` `keys` by their low `bits` bits, stably, and their `rows` with them.

    Least significant digit first, in as few passes as digits of at most
    RADIX_DIGIT bits allow, the bits shared evenly.  `spare_keys` and
    `spare_rows` hold `n` entries each, `counts` ``2**RADIX_DIGIT``; the
    result is left in `keys` and `rows`.  `rows` and `spare_rows` may be
    NULL: a key's upper bits, left out of the sort, can carry its row at
    half the memory traffic.
    """
    cdef int passes = (bits + RADIX_DIGIT - 1) // RADIX_DIGIT
    cdef int digit = (bits + passes - 1) // passes if passes else 0
    cdef int shift = 0
    cdef uint64_t mask = (1ULL << digit) - 1
    cdef Py_ssize_t i, d, position, value
    cdef uint64_t* source_keys = keys
    cdef int64_t* source_rows = rows
    cdef uint64_t* target_keys = spare_keys
    cdef int64_t* target_rows = spare_rows
    cdef uint64_t* held_keys
    cdef int64_t* held_rows
    while shift < bits:
        for d in range(1 << digit):
            counts[d] = 0
        for i in range(n):
            counts[(source_keys[i] >> shift) & mask] += 1
        position = 0
        for d in range(1 << digit):
            value = counts[d]
            counts[d] = position
            position += value
        for i in range(n):
            d = (source_keys[i] >> shift) & mask
            target_keys[counts[d]] = source_keys[i]
            if rows != NULL:
                target_rows[counts[d]] = source_rows[i]
            counts[d] += 1
        held_keys, held_rows = source_keys, source_rows
        source_keys, source_rows = target_keys, target_rows
        target_keys, target_rows = held_keys, held_rows
        shift += digit
    if source_keys != keys:
        memcpy(keys, source_keys, n * sizeof(uint64_t))
        if rows != NULL:
            memcpy(rows, source_rows, n * sizeof(int64_t))
