# cython: language_level=3
"""The image data's bytes: bit packing, row filters, neighbour counts, deflate joins.

Rows are independent once packed, so the filters run on every core; each
row's output depends on that row and the one above only, whatever the
thread count.
"""

import numpy as np

from cython.parallel cimport prange
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport qsort
from libc.string cimport memset
from openmp cimport omp_get_max_threads

# Below this many pixels the neighbour counts use one thread.
cdef Py_ssize_t _PARALLEL_PIXELS = 1 << 20


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


cdef int64_t _cost(int kind, const uint8_t* cur, const uint8_t* prev,
                   Py_ssize_t width) noexcept nogil:
    """Sum of the bytes of one row filtered with `kind`, read as signed.

    The first byte, which has no left neighbour, is done apart so that each
    kind's loop has no branch (the compiler vectorizes them).
    """
    cdef Py_ssize_t x
    cdef int64_t total
    cdef signed char value
    value = <signed char>_filtered(kind, cur[0], 0, prev[0], 0)
    total = value if value >= 0 else -value
    if kind == 0:
        for x in range(1, width):
            value = <signed char>cur[x]
            total += value if value >= 0 else -value
    elif kind == 1:
        for x in range(1, width):
            value = <signed char>(cur[x] - cur[x - 1])
            total += value if value >= 0 else -value
    elif kind == 2:
        for x in range(1, width):
            value = <signed char>(cur[x] - prev[x])
            total += value if value >= 0 else -value
    elif kind == 3:
        for x in range(1, width):
            value = <signed char>(cur[x] - ((cur[x - 1] + prev[x]) >> 1))
            total += value if value >= 0 else -value
    else:
        for x in range(1, width):
            value = <signed char>(cur[x] - _paeth(cur[x - 1], prev[x], prev[x - 1]))
            total += value if value >= 0 else -value
    return total


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
    cdef int kind, best_kind
    cdef int64_t cost, best_cost
    cdef const uint8_t* cur
    cdef const uint8_t* prev
    cdef uint8_t* dest
    if height == 0 or width == 0:
        return
    zeros_np = np.zeros(width, np.uint8)  # the row above the first
    cdef const uint8_t[::1] zeros = zeros_np
    cdef const uint8_t* top = &zeros[0]
    cdef const uint8_t* first = &rows[0, 0]
    cdef uint8_t* target = &out[0, 0]
    with nogil:
        for y in prange(height, schedule="static"):
            cur = first + y * width
            prev = top if y == 0 else cur - width
            best_kind = 0
            best_cost = -1
            for kind in range(5):
                cost = _cost(kind, cur, prev, width)
                if best_cost < 0 or cost < best_cost:
                    best_cost = cost
                    best_kind = kind
            dest = target + y * (width + 1)
            dest[0] = <uint8_t>best_kind
            dest[1] = _filtered(best_kind, cur[0], 0, prev[0], 0)
            for x in range(1, width):
                dest[x + 1] = _filtered(best_kind, cur[x], cur[x - 1], prev[x], prev[x - 1])


def neighbour_counts(const uint8_t[:, ::1] indices, int64_t[:, ::1] counts,
                     int64_t[::1] popularity):
    """Add how often each pair of entries stands side by side or one above the other.

    The rows are split among the threads, each counting into a table of its
    own; the tables are added at the end.  Counts are integers, so the sum
    is the same whatever the split.

    Parameters
    ----------
    indices : (H, W) uint8
    counts : (P, P) int64, added to
        ``counts[a, b]`` counts a left of b and a above b; every index
        must be below P.
    popularity : (P,) int64, added to
        ``popularity[a]`` counts the pixels of entry a.
    """
    cdef Py_ssize_t height = indices.shape[0], width = indices.shape[1]
    cdef Py_ssize_t entries = counts.shape[0], parts, part, y, x, a, b, lo, hi
    if height == 0 or width == 0:
        return
    parts = min(omp_get_max_threads(), height) if height * width >= _PARALLEL_PIXELS else 1
    tables_np = np.zeros((parts, entries * entries + entries), np.int64)
    cdef int64_t[:, ::1] tables = tables_np
    cdef int64_t* table
    cdef const uint8_t* row
    with nogil:
        for part in prange(parts, schedule="static", num_threads=parts):
            table = &tables[part, 0]
            lo = height * part // parts
            hi = height * (part + 1) // parts
            for y in range(lo, hi):
                row = &indices[y, 0]
                for x in range(width - 1):
                    table[row[x] * entries + row[x + 1]] += 1
                for x in range(width):
                    table[entries * entries + row[x]] += 1
                if y + 1 < height:
                    for x in range(width):
                        table[row[x] * entries + row[x + width]] += 1
    total = tables_np.sum(axis=0)
    counts_np = np.asarray(counts)
    counts_np += total[: entries * entries].reshape(entries, entries)
    np.asarray(popularity)[:] += total[entries * entries :]


# Sort keys: (limit - weight) above 16 bits of position, so that ascending
# keys run by decreasing weight, ties in order of position.
cdef int64_t _KEY_LIMIT = 1 << 47


cdef int _ascending(const void* a, const void* b) noexcept nogil:
    cdef uint64_t x = (<const uint64_t*>a)[0], y = (<const uint64_t*>b)[0]
    return (x > y) - (x < y)


cdef Py_ssize_t _root(Py_ssize_t* parent, Py_ssize_t a) noexcept nogil:
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


cdef Py_ssize_t _next(const Py_ssize_t* links, const Py_ssize_t* degree, Py_ssize_t node,
                      Py_ssize_t previous) noexcept nogil:
    """The first neighbour of `node` on its path that is not `previous`; -1 at an end."""
    cdef Py_ssize_t t
    for t in range(degree[node]):
        if links[2 * node + t] != previous:
            return links[2 * node + t]
    return -1


def greedy_paths(const int64_t[:, ::1] weights, const int64_t[::1] popularity, int64_t[::1] out):
    """Cover the nodes with paths, heaviest pairs first, and list the paths end to end.

    The pairs (a, b), a < b, of positive weight are taken by decreasing
    weight, ties in the order of a then b; a pair joins two paths when
    neither node has two neighbours yet and they are not on the same path
    already (greedy matching, as for a travelling-salesman tour).  The
    paths are then listed from the most popular node not listed yet (ties:
    the lower node), each walked from one end: the end reached by always
    leaving a node through its first neighbour (in the order the pairs
    joined), then back.  All integers: the same list on every machine.

    Parameters
    ----------
    weights : (n, n) int64
        Symmetric, >= 0 and below 2**47; the diagonal is not read.  n <= 256.
    popularity : (n,) int64
        >= 0 and below 2**47.
    out : (n,) int64, written
        Every node once, path after path.

    Raises
    ------
    ValueError
        If the shapes disagree, n > 256, or a weight or popularity is out of range.
    """
    cdef Py_ssize_t n = weights.shape[0], a, b, m = 0, e, i, ra, rb, node, end, previous, step
    cdef Py_ssize_t written = 0
    cdef int64_t w
    if weights.shape[1] != n or popularity.shape[0] != n or out.shape[0] != n or n > 256:
        raise ValueError("weights must be (n, n), popularity and out (n,), n <= 256")
    keys_np = np.empty(max(n * (n - 1) // 2, 1), np.uint64)
    ends_np = np.empty((max(n * (n - 1) // 2, 1), 2), np.intp)
    starts_np = np.empty(max(n, 1), np.uint64)
    parent_np = np.arange(n, dtype=np.intp)
    degree_np = np.zeros(n, np.intp)
    links_np = np.full(2 * n, -1, np.intp)
    seen_np = np.zeros(n, np.uint8)
    cdef uint64_t[::1] keys = keys_np, starts = starts_np
    cdef Py_ssize_t[:, ::1] ends = ends_np
    cdef Py_ssize_t[::1] parent = parent_np, degree = degree_np, links = links_np
    cdef uint8_t[::1] seen = seen_np
    cdef Py_ssize_t* up = &parent[0] if n else NULL
    cdef Py_ssize_t* linked = &links[0] if n else NULL
    cdef Py_ssize_t* degrees = &degree[0] if n else NULL
    for a in range(n):
        if not 0 <= popularity[a] < _KEY_LIMIT:
            raise ValueError(f"popularity {popularity[a]} out of range")
        for b in range(a + 1, n):
            w = weights[a, b]
            if not 0 <= w < _KEY_LIMIT:
                raise ValueError(f"weight {w} out of range")
    with nogil:
        for a in range(n):
            for b in range(a + 1, n):
                w = weights[a, b]
                if w > 0:
                    keys[m] = (<uint64_t>(_KEY_LIMIT - w) << 16) | <uint64_t>m
                    ends[m, 0] = a
                    ends[m, 1] = b
                    m += 1
        qsort(&keys[0], m, sizeof(uint64_t), _ascending)
        for e in range(m):
            i = <Py_ssize_t>(keys[e] & 0xFFFF)
            a = ends[i, 0]
            b = ends[i, 1]
            if degree[a] == 2 or degree[b] == 2:
                continue
            ra = _root(up, a)
            rb = _root(up, b)
            if ra == rb:
                continue
            parent[ra] = rb
            links[2 * a + degree[a]] = b
            degree[a] += 1
            links[2 * b + degree[b]] = a
            degree[b] += 1
        for a in range(n):
            starts[a] = (<uint64_t>(_KEY_LIMIT - popularity[a]) << 16) | <uint64_t>a
        if n:
            qsort(&starts[0], n, sizeof(uint64_t), _ascending)
        for i in range(n):
            end = <Py_ssize_t>(starts[i] & 0xFFFF)
            if seen[end]:
                continue
            previous = -1
            step = _next(linked, degrees, end, previous)
            while step != -1:
                previous, end = end, step
                step = _next(linked, degrees, end, previous)
            previous, node = -1, end
            while node != -1:
                out[written] = node
                written += 1
                seen[node] = 1
                step = _next(linked, degrees, node, previous)
                previous, node = node, step


cdef extern from "zlib.h":
    ctypedef struct z_stream:
        const unsigned char* next_in
        unsigned int avail_in
        unsigned long total_in
        unsigned char* next_out
        unsigned int avail_out
        int data_type
    int inflateInit2(z_stream* strm, int window_bits) nogil
    int inflate(z_stream* strm, int flush) nogil
    int inflateEnd(z_stream* strm) nogil
    int Z_OK, Z_STREAM_END, Z_BUF_ERROR, Z_BLOCK


def last_block(const uint8_t[::1] stream):
    """Where the last block of a raw deflate stream starts, and where the stream ends.

    zlib inflates the stream with ``Z_BLOCK``, which stops at every block
    boundary and tells how many bits of the last byte read are still
    unused (as zlib's ``examples/gzjoin.c`` does to join gzip members).

    Parameters
    ----------
    stream : (N,) uint8
        A complete raw deflate stream (no zlib header), nothing after it.

    Returns
    -------
    start : int
        Bit offset of the last block's header: its first bit is BFINAL.
    end : int
        Bit offset just past the end-of-block code of the last block.

    Raises
    ------
    ValueError
        If zlib finds the stream damaged, incomplete, or followed by data.
    """
    cdef z_stream strm
    cdef unsigned char window[1 << 16]
    cdef int status = Z_OK
    cdef unsigned long start = 0, end = 0
    memset(&strm, 0, sizeof(strm))
    if inflateInit2(&strm, -15) != Z_OK:
        raise MemoryError("zlib could not start inflating")
    strm.next_in = &stream[0] if stream.shape[0] else NULL
    strm.avail_in = <unsigned int>stream.shape[0]
    with nogil:
        while True:
            # The output is not needed: zlib keeps its own window of it.
            strm.next_out = window
            strm.avail_out = sizeof(window)
            status = inflate(&strm, Z_BLOCK)
            if status != Z_OK:
                break
            if strm.data_type & 128:
                # At a block boundary: before the next block's header, or
                # (64: the last block was read) just past the stream's end.
                if strm.data_type & 64:
                    end = strm.total_in * 8 - (strm.data_type & 7)
                else:
                    start = strm.total_in * 8 - (strm.data_type & 7)
    inflateEnd(&strm)
    if status != Z_STREAM_END or strm.total_in != <unsigned long>stream.shape[0]:
        raise ValueError("not one complete raw deflate stream")
    return start, end
