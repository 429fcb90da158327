# cython: language_level=3
"""Counting distinct colors with an open-addressing hash table.

The table grows with the number of distinct colors, not with the color
space: a 12-megapixel photo's few hundred thousand colors fit in a few
megabytes, where a dense count of every 24-bit value takes 128 MB.
"""

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cnp.import_array()

# Fibonacci hashing: the top bits of key * 2**64 / golden ratio.
cdef uint64_t _GOLDEN = 11400714819323198485ULL


cdef inline Py_ssize_t _find(const uint64_t[::1] table, uint64_t key, int bits) noexcept nogil:
    """Slot of `key` (stored as key + 1), or of the empty slot where it goes."""
    cdef Py_ssize_t mask = (<Py_ssize_t>1 << bits) - 1
    cdef Py_ssize_t s = <Py_ssize_t>((key * _GOLDEN) >> (64 - bits))
    while table[s] != 0 and table[s] != key + 1:
        s = (s + 1) & mask
    return s


def count_colors(const uint8_t[:, ::1] pixels):
    """Distinct packed colors, their counts, and each pixel's color number.

    Parameters
    ----------
    pixels : (N, C) uint8 memoryview, C = 3 or 4
        Colors are packed big-endian: ``r << 16 | g << 8 | b`` (C = 3) or
        ``r << 24 | g << 16 | b << 8 | a`` (C = 4).

    Returns
    -------
    keys : (U,) uint32 ndarray
        The distinct packed colors, ascending.
    counts : (U,) int64 ndarray
        Pixels of each.
    inverse : (N,) int32 ndarray
        Position of every pixel's color in `keys`.
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1]
    cdef Py_ssize_t i, c, s = 0, used = 0, start = 0
    cdef int bits = 12
    cdef uint64_t key, last_key = <uint64_t>-1
    # A slot holds key + 1 (0 = empty) and its count.
    table_np = np.zeros(1 << bits, np.uint64)
    count_np = np.zeros(1 << bits, np.int64)
    cdef uint64_t[::1] table = table_np
    cdef int64_t[::1] count = count_np
    inverse_np = np.empty(n, np.uint32)
    cdef uint32_t[::1] packed = inverse_np
    while start < n:
        # Fill until the table is half full, then double it and go on.
        with nogil:
            i = start
            while i < n and 2 * used < (<Py_ssize_t>1 << bits):
                key = 0
                for c in range(channels):
                    key = (key << 8) | pixels[i, c]
                packed[i] = <uint32_t>key
                if key != last_key:  # runs of one color are common
                    s = _find(table, key, bits)
                    if table[s] == 0:
                        table[s] = key + 1
                        used += 1
                    last_key = key
                count[s] += 1
                i += 1
        if i < n:
            bits += 1
            table_np, count_np = _rehash(table_np, count_np, bits)
            table, count = table_np, count_np
            last_key = <uint64_t>-1
        start = i
    # Rank the colors by key, then give every pixel its color's rank.
    occupied = np.flatnonzero(table_np)
    keys = (table_np[occupied] - 1).astype(np.uint32)
    order = np.argsort(keys, kind="stable")
    rank_np = np.zeros(len(table_np), np.int32)
    rank_np[occupied[order]] = np.arange(len(order), dtype=np.int32)
    cdef int32_t[::1] rank = rank_np
    cdef int32_t[::1] inverse = inverse_np.view(np.int32)
    with nogil:
        for i in prange(n, schedule="static"):
            inverse[i] = rank[_find(table, packed[i], bits)]
    return keys[order], count_np[occupied[order]], inverse_np.view(np.int32)


def _rehash(table_np, count_np, int bits):
    """The same entries in a table of 2**bits slots."""
    cdef const uint64_t[::1] old = table_np
    cdef const int64_t[::1] old_count = count_np
    cdef Py_ssize_t j, s
    new_np = np.zeros(1 << bits, np.uint64)
    new_count_np = np.zeros(1 << bits, np.int64)
    cdef uint64_t[::1] new = new_np
    cdef int64_t[::1] new_count = new_count_np
    with nogil:
        for j in range(old.shape[0]):
            if old[j] != 0:
                s = _find(new, old[j] - 1, bits)
                new[s] = old[j]
                new_count[s] = old_count[j]
    return new_np, new_count_np
