# cython: language_level=3
"""Counting distinct colors with an open-addressing hash table.

The table grows with the number of distinct colors, not with the color
space: a 12-megapixel photo's few hundred thousand colors fit in a few
megabytes, where a dense count of every 24-bit value takes 128 MB.  A slot
is one 64-bit word, the packed color in its low half and its count in the
high half, so that a pixel costs one memory access, not two.  Once counted,
the high half holds the color's rank instead, and the table stays to
spread values back to the pixels: no color number per pixel is kept (48 MB
at 12 megapixels).
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int32_t, int64_t, uint8_t, uint32_t, uint64_t

from .radix cimport RADIX_DIGIT, radix_sort

# Fibonacci hashing: the top bits of key * 2**64 / golden ratio.
cdef uint64_t _GOLDEN = 11400714819323198485ULL

# One in the high half of a slot, and the mask of the low half.
cdef uint64_t _ONE = 1ULL << 32
cdef uint64_t _LOW = 0xFFFFFFFFULL

# The table starts with a slot for every _START_SHARE pixels, at most
# 2**_START_BITS_MAX slots (8 MB) and at least 4,096, rather than growing
# from 4,096 by doubling: photos hold a tenth to a third as many colors as
# pixels, and each doubling re-inserts every color so far into new memory,
# which the process touches for the first time.  Counting a 1.8 MP photo's
# 239,000 colors took 24.5 ms instead of 31, a 2.9 MP one's 321,000 colors
# 41 instead of 50 (first count in a fresh process, median of 5); a chart
# of 3,700 colors in 1 MP, 4.7 ms instead of 2.5.
cdef int _START_BITS_MAX = 20
cdef Py_ssize_t _START_SHARE = 4

# Pixels per block of spread's parallel loop.
cdef Py_ssize_t _SPREAD_BLOCK = 65536


cdef inline Py_ssize_t _find(const uint64_t* table, uint32_t key, int bits) noexcept nogil:
    """Slot of `key`, or of the empty slot where it goes.

    A slot in use is never 0: its high half (a count or a rank + 1) is not.
    """
    cdef Py_ssize_t mask = (<Py_ssize_t>1 << bits) - 1
    cdef Py_ssize_t s = <Py_ssize_t>((<uint64_t>key * _GOLDEN) >> (64 - bits))
    while table[s] != 0 and <uint32_t>table[s] != key:
        s = (s + 1) & mask
    return s


ctypedef fused value_t:
    uint8_t
    int32_t
    int64_t


cdef inline uint32_t _key(const uint8_t* pixel, Py_ssize_t channels) noexcept nogil:
    """A pixel's color packed big-endian into one number."""
    cdef Py_ssize_t c
    cdef uint32_t key = 0
    for c in range(channels):
        key = (key << 8) | pixel[c]
    return key


def count_colors(const uint8_t[:, ::1] pixels):
    """Distinct packed colors, their counts, and the table that finds them.

    Parameters
    ----------
    pixels : (N, C) uint8 memoryview, C = 3 or 4, N < 2**32
        Colors are packed big-endian: ``r << 16 | g << 8 | b`` (C = 3) or
        ``r << 24 | g << 16 | b << 8 | a`` (C = 4).

    Returns
    -------
    keys : (U,) uint32 ndarray
        The distinct packed colors, ascending.
    counts : (U,) int64 ndarray
        Pixels of each.
    table : (S,) uint64 ndarray
        The hash table, S a power of two: a slot holds a packed color in
        its low 32 bits and its position in `keys` + 1 in the high 32 bits,
        or 0.  What :func:`spread` needs.

    Raises
    ------
    ValueError
        For 2**32 pixels or more (a count must fit in 32 bits).
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1]
    cdef Py_ssize_t i, s = 0, used = 0, start = 0
    cdef int bits = 12
    cdef uint32_t key, last_key = 0
    cdef bint have_last = False
    cdef const uint8_t* first = &pixels[0, 0] if n else NULL
    if n >= (<Py_ssize_t>1 << 32):
        raise ValueError(f"at most 2**32 - 1 pixels can be counted, not {n}")
    while bits < _START_BITS_MAX and (<Py_ssize_t>1 << bits) < n // _START_SHARE:
        bits += 1
    table_np = np.zeros(1 << bits, np.uint64)
    cdef uint64_t[::1] table = table_np
    cdef uint64_t* slots
    while start < n:
        # Fill until the table is half full, then double it and go on.
        slots = &table[0]
        with nogil:
            i = start
            while i < n and 2 * used < (<Py_ssize_t>1 << bits):
                key = _key(first + i * channels, channels)
                if not have_last or key != last_key:  # runs of one color are common
                    s = _find(slots, key, bits)
                    if slots[s] == 0:
                        slots[s] = key
                        used += 1
                    last_key = key
                    have_last = True
                slots[s] += _ONE
                i += 1
        if i < n:
            bits += 1
            table_np = _rehash(table_np, bits)
            table = table_np
            have_last = False
        start = i
    # Rank the colors by key, and keep the rank (+ 1) where the count was.
    # Each used slot's key, with its place among the used slots in the
    # upper half of the word, is sorted by a radix sort, and the ranks are
    # written back in slot order, so that the table is walked, not jumped
    # about in.  On a 1.5 MP photo of 448,000 colors the whole count takes
    # 34 ms, against 54 ms with numpy's sort of the words (21 ms alone) and
    # the ranks written in key order.
    cdef Py_ssize_t colors = used, j, r
    cdef uint64_t[::1] word_memory = np.empty(2 * colors + 1, np.uint64)
    cdef Py_ssize_t[::1] tally_memory = np.empty(1 << RADIX_DIGIT, np.intp)
    cdef uint64_t* words = &word_memory[0]
    cdef Py_ssize_t* tally = &tally_memory[0]
    # Once sorted, each word's rank goes in the spare half.
    cdef uint64_t* rank_of = words + colors
    keys_np = np.empty(colors, np.uint32)
    counts_np = np.empty(colors, np.int64)
    cdef uint32_t[::1] keys = keys_np
    cdef int64_t[::1] counts = counts_np
    slots = &table[0]
    with nogil:
        j = 0
        for s in range(table.shape[0]):
            if slots[s] != 0:
                words[j] = (<uint64_t>j << 32) | (slots[s] & _LOW)
                j += 1
        radix_sort(words, NULL, words + colors, NULL, tally, colors, 8 * <int>channels)
        for r in range(colors):
            rank_of[words[r] >> 32] = <uint64_t>r
        j = 0
        for s in range(table.shape[0]):
            if slots[s] != 0:
                r = <Py_ssize_t>rank_of[j]
                keys[r] = <uint32_t>slots[s]
                counts[r] = <int64_t>(slots[s] >> 32)
                slots[s] = (<uint64_t>(r + 1) << 32) | keys[r]
                j += 1
    return keys_np, counts_np, table_np


def spread(const uint8_t[:, ::1] pixels, const uint64_t[::1] table, value_t[::1] values,
           value_t[::1] out):
    """Give every pixel the value of its color: ``out[i] = values[rank of pixel i's color]``.

    Parameters
    ----------
    pixels : (N, C) uint8
        The pixels :func:`count_colors` counted.
    table : (S,) uint64
        What :func:`count_colors` returned for them.
    values : (U,) uint8, int32 or int64
        One value per distinct color; writable (Cython 3.0.0, the lowest
        version the build allows, cannot compile a const fused memoryview).
    out : (N,) of the same dtype, written
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1], block, i, s
    cdef Py_ssize_t blocks = (n + _SPREAD_BLOCK - 1) // _SPREAD_BLOCK
    cdef int bits = 0
    cdef uint32_t key, last_key
    cdef value_t value
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
            i = block * _SPREAD_BLOCK
            last_key = _key(first + i * channels, channels)
            value = values[(slots[_find(slots, last_key, bits)] >> 32) - 1]
            for i in range(block * _SPREAD_BLOCK, min(n, (block + 1) * _SPREAD_BLOCK)):
                key = _key(first + i * channels, channels)
                if key != last_key:
                    s = _find(slots, key, bits)
                    value = values[(slots[s] >> 32) - 1]
                    last_key = key
                out[i] = value


def _rehash(table_np, int bits):
    """The same entries in a table of 2**bits slots."""
    cdef const uint64_t[::1] old = table_np
    cdef Py_ssize_t j, s
    new_np = np.zeros(1 << bits, np.uint64)
    cdef uint64_t[::1] new = new_np
    with nogil:
        for j in range(old.shape[0]):
            if old[j] != 0:
                s = _find(&new[0], <uint32_t>old[j], bits)
                new[s] = old[j]
    return new_np
