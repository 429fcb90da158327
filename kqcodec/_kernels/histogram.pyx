# cython: language_level=3
"""Counting distinct colors with an open-addressing hash table.

The table grows with the number of distinct colors, not with the color
space: a 12-megapixel photo's few hundred thousand colors fit in a few
megabytes, where a dense count of every 24-bit value takes 128 MB.  The
table stays to spread values back to the pixels, instead of a color number
per pixel (48 MB at 12 megapixels).
"""

import numpy as np

cimport numpy as cnp
from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

cnp.import_array()

# Fibonacci hashing: the top bits of key * 2**64 / golden ratio.
cdef uint64_t _GOLDEN = 11400714819323198485ULL

# Pixels per block of spread's parallel loop.
cdef Py_ssize_t _SPREAD_BLOCK = 65536


cdef inline Py_ssize_t _find(const uint64_t* table, uint64_t key, int bits) noexcept nogil:
    """Slot of `key` (stored as key + 1), or of the empty slot where it goes."""
    cdef Py_ssize_t mask = (<Py_ssize_t>1 << bits) - 1
    cdef Py_ssize_t s = <Py_ssize_t>((key * _GOLDEN) >> (64 - bits))
    while table[s] != 0 and table[s] != key + 1:
        s = (s + 1) & mask
    return s


ctypedef fused value_t:
    uint8_t
    int32_t
    int64_t


cdef inline uint64_t _key(const uint8_t* pixel, Py_ssize_t channels) noexcept nogil:
    """A pixel's color packed big-endian into one number."""
    cdef Py_ssize_t c
    cdef uint64_t key = 0
    for c in range(channels):
        key = (key << 8) | pixel[c]
    return key


def count_colors(const uint8_t[:, ::1] pixels):
    """Distinct packed colors, their counts, and the table that finds them.

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
    table : (S,) uint64 ndarray
        The hash table, S a power of two: a slot holds a key + 1, or 0.
    rank : (S,) int32 ndarray
        The position in `keys` of each slot's key.  With `table`, what
        :func:`spread` needs: no array of one number per pixel is kept.
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1]
    cdef Py_ssize_t i, s = 0, used = 0, start = 0
    cdef const uint8_t* first = &pixels[0, 0] if n else NULL
    cdef int bits = 12
    cdef uint64_t key, last_key = <uint64_t>-1
    # A slot holds key + 1 (0 = empty) and its count.
    table_np = np.zeros(1 << bits, np.uint64)
    count_np = np.zeros(1 << bits, np.int64)
    cdef uint64_t[::1] table = table_np
    cdef int64_t[::1] count = count_np
    while start < n:
        # Fill until the table is half full, then double it and go on.
        with nogil:
            i = start
            while i < n and 2 * used < (<Py_ssize_t>1 << bits):
                key = _key(first + i * channels, channels)
                if key != last_key:  # runs of one color are common
                    s = _find(&table[0], key, bits)
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
    # Rank the colors by key.
    occupied = np.flatnonzero(table_np)
    keys = (table_np[occupied] - 1).astype(np.uint32)
    order = np.argsort(keys, kind="stable")
    rank_np = np.zeros(len(table_np), np.int32)
    rank_np[occupied[order]] = np.arange(len(order), dtype=np.int32)
    return keys[order], count_np[occupied[order]], table_np, rank_np


def spread(const uint8_t[:, ::1] pixels, const uint64_t[::1] table, const int32_t[::1] rank,
           const value_t[::1] values, value_t[::1] out):
    """Give every pixel the value of its color: ``out[i] = values[rank of pixel i's color]``.

    Parameters
    ----------
    pixels : (N, C) uint8
        The pixels :func:`count_colors` counted.
    table, rank : (S,) ndarray
        What :func:`count_colors` returned for them.
    values : (U,) uint8, int32 or int64
        One value per distinct color.
    out : (N,) of the same dtype, written
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1], block, i, s
    cdef Py_ssize_t blocks = (n + _SPREAD_BLOCK - 1) // _SPREAD_BLOCK
    cdef int bits = 0
    cdef uint64_t key, last_key
    if n == 0:
        return
    cdef const uint8_t* first = &pixels[0, 0]
    cdef const uint64_t* slots = &table[0]
    while (<Py_ssize_t>1 << bits) < table.shape[0]:
        bits += 1
    with nogil:
        # Blocks of pixels on every core; within a block a run of one color
        # is looked up once.
        for block in prange(blocks, schedule="static"):
            last_key = <uint64_t>-1
            s = 0
            for i in range(block * _SPREAD_BLOCK, min(n, (block + 1) * _SPREAD_BLOCK)):
                key = _key(first + i * channels, channels)
                if key != last_key:
                    s = _find(slots, key, bits)
                    last_key = key
                out[i] = values[rank[s]]


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
                s = _find(&new[0], old[j] - 1, bits)
                new[s] = old[j]
                new_count[s] = old_count[j]
    return new_np, new_count_np
