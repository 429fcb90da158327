# cython: language_level=3
"""The loops of :mod:`kmeans`: weighted sums, cube numbering, principal axes, best cuts.

One pass over the points, in their order, adds each point's weight and
weighted coordinates to its cluster's.  The order is fixed (no threads: the
pass is memory-bound and short), so every sum is the same whatever the
machine, and equal to numpy's ``bincount`` of the same products.
"""

from libc.math cimport INFINITY, fabs, sqrt
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc

from .radix cimport RADIX_DIGIT, radix_sort


cdef inline int64_t _floor(float value) noexcept nogil:
    """``floorf`` then a cast, without a call into libm (x86-64's baseline has no rounding instruction)."""
    cdef int64_t whole = <int64_t>value
    return whole - 1 if <float>whole > value else whole


def weighted_sums(const float[:, ::1] points, const double[::1] weights,
                  const int64_t[::1] labels, double[::1] mass, double[:, ::1] sums):
    """Add every point's weight and weight times coordinates to its cluster's.

    Parameters
    ----------
    points : (M, C) float32
    weights : (M,) float64
    labels : (M,) int64
        Every value below k.
    mass : (k,) float64, added to
        ``mass[j]`` gains the weights of the points labelled j.
    sums : (k, C) float64, added to
        ``sums[j, c]`` gains ``weight * points[i, c]`` (in float64) of the
        points labelled j.
    """
    cdef Py_ssize_t n = points.shape[0], channels = points.shape[1], i, c
    cdef int64_t j
    cdef double w
    with nogil:
        for i in range(n):
            j = labels[i]
            w = weights[i]
            mass[j] += w
            for c in range(channels):
                sums[j, c] += w * <double>points[i, c]


def number_cells(const float[:, ::1] points, float cell, int64_t[::1] members):
    """Number the cubes of side `cell` that hold the points, in the order of their keys.

    A point's cube is ``floor(points / cell)`` in float32 (as numpy computes
    it), less each column's minimum; its key puts the first column first
    (mixed radix, each column's span its base).  The cubes are numbered 0,
    1, ... by increasing key: what ``np.unique(keys, return_inverse=True)``
    gives, found by a radix sort in a few passes over the points instead of
    a comparison sort.

    Parameters
    ----------
    points : (M, C) float32
    cell : float
        Side of the cubes, > 0.
    members : (M,) int64, written
        The number of each point's cube.

    Returns
    -------
    int
        The number of cubes that hold a point.

    Raises
    ------
    ValueError
        If the keys would not fit in 62 bits (cubes far too many).
    """
    cdef Py_ssize_t n = points.shape[0], channels = points.shape[1], i, c
    cdef int64_t value, rank = -1
    cdef int bits = 0
    cdef uint64_t total = 1, key, previous = 0
    cdef int64_t lowest[64]
    cdef int64_t highest[64]
    cdef uint64_t span[64]
    if n == 0:
        return 0
    if channels > 64:
        raise ValueError(f"at most 64 channels, not {channels}")
    with nogil:
        for c in range(channels):
            lowest[c] = highest[c] = _floor(points[0, c] / cell)
        for i in range(n):
            for c in range(channels):
                value = _floor(points[i, c] / cell)
                if value < lowest[c]:
                    lowest[c] = value
                elif value > highest[c]:
                    highest[c] = value
    for c in range(channels):
        span[c] = <uint64_t>(highest[c] - lowest[c]) + 1
        if total > ((1ULL << 62) - 1) // span[c]:
            raise ValueError(f"too many cubes of side {cell} to number them")
        total *= span[c]
    while (total - 1) >> bits:
        bits += 1
    # Two buffers of keys (and of rows), each pass of the sort reading one
    # and writing the other.  Keys of up to 32 bits carry their row in their
    # upper half, left out of the sort: half the memory moved.  Numbering
    # 448,000 colors in cubes of 8, 4 and 2 took 5.0, 5.9 and 6.5 ms instead
    # of 6.2, 6.7 and 8.8 (239,000: 8.5 ms in all instead of 9.5).
    cdef bint packed = bits <= 32 and n <= (<Py_ssize_t>1 << 32)
    cdef uint64_t* key_buffer = <uint64_t*>malloc(2 * n * sizeof(uint64_t))
    cdef int64_t* row_buffer = NULL if packed else <int64_t*>malloc(2 * n * sizeof(int64_t))
    cdef Py_ssize_t* counts = <Py_ssize_t*>malloc((1 << RADIX_DIGIT) * sizeof(Py_ssize_t))
    if key_buffer == NULL or (row_buffer == NULL and not packed) or counts == NULL:
        free(key_buffer)
        free(row_buffer)
        free(counts)
        raise MemoryError()
    cdef uint64_t* keys = key_buffer
    cdef int64_t* rows = row_buffer
    cdef uint64_t low = 0xFFFFFFFFULL if packed else ~0ULL
    with nogil:
        for i in range(n):
            key = 0
            for c in range(channels):
                key = key * span[c] + <uint64_t>(_floor(points[i, c] / cell) - lowest[c])
            if packed:
                keys[i] = (<uint64_t>i << 32) | key
            else:
                keys[i] = key
                rows[i] = i
        radix_sort(keys, rows, key_buffer + n, NULL if packed else row_buffer + n, counts, n,
                   bits)
        for i in range(n):
            key = keys[i] & low
            if i == 0 or key != previous:
                rank += 1
                previous = key
            members[(keys[i] >> 32) if packed else rows[i]] = rank
    free(key_buffer)
    free(row_buffer)
    free(counts)
    return rank + 1


# Sweeps of Jacobi rotations at most; a 3x3 to 6x6 scatter matrix reaches
# its eigenvectors to the last bits in 4 to 8.
cdef int _SWEEPS = 50


def principal_axis(const double[:, ::1] points, const double[::1] weights, double[::1] mean,
                   double[:, ::1] centred, double[::1] axis, double[::1] proj):
    """Weighted mean, the points about it, and their projections on the principal axis.

    numpy's matrix products and ``linalg.eigh`` go through BLAS and LAPACK,
    whose kernels are chosen by the processor (with or without fused
    multiply-add, in other orders): their last bits, and so the order of
    nearly equal projections and the cut, would change from one machine to
    another.  Here every sum runs over the points in their order, channel
    after channel, and the eigenvector comes from cyclic Jacobi rotations
    that use only the four operations and ``sqrt``, which IEEE 754 rounds
    exactly: the same bits on every machine.

    Parameters
    ----------
    points : (M, C) float64, M >= 1, 1 <= C <= 64
    weights : (M,) float64
        Positive.
    mean : (C,) float64, written
        The weighted mean.
    centred : (M, C) float64, written
        ``points - mean``.
    axis : (C,) float64, written
        The unit eigenvector of the largest eigenvalue of the weighted
        scatter matrix (the first such on ties), its largest component made
        positive (the first such on ties).
    proj : (M,) float64, written
        Each centred point's dot product with `axis`.

    Returns
    -------
    float
        The weighted squared error about the mean: the scatter's trace.
    """
    cdef Py_ssize_t n = points.shape[0], channels = points.shape[1], i, c, d, p, q, best
    cdef double total = 0, w, value, off, theta, t, cs, sn, apq, x, y, trace = 0, top
    if n < 1 or channels < 1 or channels > 64:
        raise ValueError("points must be (M, C) with M >= 1 and 1 <= C <= 64")
    if (weights.shape[0] != n or mean.shape[0] != channels or axis.shape[0] != channels
            or centred.shape[0] != n or centred.shape[1] != channels or proj.shape[0] != n):
        raise ValueError("weights, mean, centred, axis and proj must match points")
    cdef double a[64 * 64]
    cdef double v[64 * 64]
    with nogil:
        for c in range(channels):
            mean[c] = 0
        for i in range(n):
            w = weights[i]
            total = total + w
            for c in range(channels):
                mean[c] = mean[c] + w * points[i, c]
        for c in range(channels):
            mean[c] = mean[c] / total
        for c in range(channels * channels):
            a[c] = 0
            v[c] = 0
        for c in range(channels):
            v[c * channels + c] = 1
        for i in range(n):
            w = weights[i]
            for c in range(channels):
                centred[i, c] = points[i, c] - mean[c]
            for c in range(channels):
                value = w * centred[i, c]
                for d in range(c, channels):
                    a[c * channels + d] = a[c * channels + d] + value * centred[i, d]
        for c in range(channels):
            trace = trace + a[c * channels + c]
            for d in range(c + 1, channels):
                a[d * channels + c] = a[c * channels + d]
        for _ in range(_SWEEPS):
            off = 0
            for p in range(channels):
                for q in range(p + 1, channels):
                    off = off + a[p * channels + q] * a[p * channels + q]
            if off == 0:
                break
            for p in range(channels - 1):
                for q in range(p + 1, channels):
                    apq = a[p * channels + q]
                    if apq == 0:
                        continue
                    # The rotation that zeroes a[p, q]: t = tan of its angle,
                    # the smaller root of t^2 + 2 theta t - 1 = 0.
                    theta = (a[q * channels + q] - a[p * channels + p]) / (2 * apq)
                    t = 1 / (fabs(theta) + sqrt(theta * theta + 1))
                    if theta < 0:
                        t = -t
                    cs = 1 / sqrt(t * t + 1)
                    sn = t * cs
                    for c in range(channels):
                        x = a[c * channels + p]
                        y = a[c * channels + q]
                        a[c * channels + p] = cs * x - sn * y
                        a[c * channels + q] = sn * x + cs * y
                    for c in range(channels):
                        x = a[p * channels + c]
                        y = a[q * channels + c]
                        a[p * channels + c] = cs * x - sn * y
                        a[q * channels + c] = sn * x + cs * y
                    a[p * channels + q] = 0
                    a[q * channels + p] = 0
                    for c in range(channels):
                        x = v[c * channels + p]
                        y = v[c * channels + q]
                        v[c * channels + p] = cs * x - sn * y
                        v[c * channels + q] = sn * x + cs * y
        best = 0
        for c in range(1, channels):
            if a[c * channels + c] > a[best * channels + best]:
                best = c
        top = 0
        d = 0
        for c in range(channels):
            axis[c] = v[c * channels + best]
            if fabs(axis[c]) > top:
                top = fabs(axis[c])
                d = c
        if axis[d] < 0:
            for c in range(channels):
                axis[c] = -axis[c]
        for i in range(n):
            value = 0
            for c in range(channels):
                value = value + centred[i, c] * axis[c]
            proj[i] = value
    return trace


def best_cut(const double[:, ::1] centred, const double[::1] weights,
             const int64_t[::1] order, const double[::1] proj, double[::1] out):
    """The cut of points sorted along an axis that leaves the least summed squared error.

    Cutting after the i-th point of `order` leaves two halves whose errors
    come from prefix sums: SSE = sum w|x|^2 - |sum w x|^2 / sum w.  Every
    sum is accumulated point after point in `order`, and each squared norm
    channel after channel, so the values are those of numpy's ``cumsum``
    and ``sum(axis=1)`` over the same arrays, to the last bit.  No cut falls
    between two points of equal projection.

    Parameters
    ----------
    centred : (M, C) float64
        The points, minus their weighted mean.
    weights : (M,) float64
        Positive.
    order : (M,) int64
        The points by increasing projection (a stable sort).
    proj : (M,) float64
        Each point's projection on the axis (in the points' own order).
    out : (2 C + 4,) float64, written
        For the best cut: the weight and the weighted sum of the first half
        (1 + C values), of the second half (1 + C), and the errors of the
        two halves.

    Returns
    -------
    int
        The number of points in the first half minus one, or -1 if no cut
        is allowed (all projections equal) or there is no point.
    """
    cdef Py_ssize_t n = order.shape[0], channels = centred.shape[1], i, c, best = -1
    cdef double tw = 0, txx = 0, lw = 0, lxx = 0, norm, left, right, cost
    cdef double best_cost = 0, value
    if n < 2 or channels > 64:
        return -1
    cdef double tx[64]
    cdef double lx[64]
    cdef double bx[64]
    cdef double best_left = 0, best_right = 0, best_lw = 0
    with nogil:
        # The totals: the last entries of the prefix sums.
        for i in range(n):
            _add_point(centred, order[i], weights[order[i]], channels, i == 0, &tw, tx, &txx)
        for i in range(n - 1):
            _add_point(centred, order[i], weights[order[i]], channels, i == 0, &lw, lx, &lxx)
            if proj[order[i + 1]] <= proj[order[i]]:
                continue
            # left = lxx - |lx|^2 / lw, right the same with the totals minus these.
            norm = 0
            for c in range(channels):
                if c == 0:
                    norm = lx[c] * lx[c]
                else:
                    norm = norm + lx[c] * lx[c]
            left = lxx - norm / lw
            norm = 0
            for c in range(channels):
                value = tx[c] - lx[c]
                if c == 0:
                    norm = value * value
                else:
                    norm = norm + value * value
            right = (txx - lxx) - norm / (tw - lw)
            cost = left + right
            if cost == cost and cost != INFINITY and (best < 0 or cost < best_cost):
                best, best_cost = i, cost
                best_left, best_right, best_lw = left, right, lw
                for c in range(channels):
                    bx[c] = lx[c]
    if best < 0:
        return -1
    out[0] = best_lw
    for c in range(channels):
        out[1 + c] = bx[c]
    out[1 + channels] = tw - best_lw
    for c in range(channels):
        out[2 + channels + c] = tx[c] - bx[c]
    out[2 + 2 * channels] = best_left
    out[3 + 2 * channels] = best_right
    return best


cdef inline void _add_point(const double[:, ::1] centred, int64_t row, double w,
                            Py_ssize_t channels, bint first, double *sw, double *sx,
                            double *sxx) noexcept nogil:
    """Add one point to running sums of weight, weighted coordinates and weighted squared norm.

    The first point is assigned rather than added to zero, and the norm is
    summed channel after channel, so the sums are numpy's ``cumsum`` and
    ``sum(axis=1)`` to the last bit.
    """
    cdef Py_ssize_t c
    cdef double value, norm = 0
    for c in range(channels):
        value = centred[row, c]
        if c == 0:
            norm = value * value
        else:
            norm = norm + value * value
        if first:
            sx[c] = value * w
        else:
            sx[c] = sx[c] + value * w
    if first:
        sw[0] = w
        sxx[0] = w * norm
    else:
        sw[0] = sw[0] + w
        sxx[0] = sxx[0] + w * norm
