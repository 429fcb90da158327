# cython: language_level=3
"""The weighted sums of a Lloyd iteration: the loop of :mod:`kmeans`.

One pass over the points, in their order, adds each point's weight and
weighted coordinates to its cluster's.  The order is fixed (no threads: the
pass is memory-bound and short), so every sum is the same whatever the
machine, and equal to numpy's ``bincount`` of the same products.
"""

from libc.stdint cimport int64_t


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
