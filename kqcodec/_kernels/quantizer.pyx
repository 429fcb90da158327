# cython: language_level=3
"""The nearest palette entry of each color, exactly and with ties to the lower index.

The bounded search of :mod:`nearest` computes distances with matrix products
whose float32 rounding depends on the BLAS library and the processor; where
two entries are (nearly) as close, its answer may differ between machines.
This loop settles those colors in float64 with a fixed order of operations,
so the labels, and the file, are the same everywhere.
"""

from cython.parallel cimport prange
from libc.stdint cimport int32_t


def nearest_entries(const double[:, ::1] points, const double[:, ::1] entries, int32_t[::1] out):
    """Index of the nearest entry of every point; ties go to the lower index.

    Parameters
    ----------
    points : (N, C) float64
    entries : (P, C) float64, P >= 1
    out : (N,) int32, written
    """
    cdef Py_ssize_t n = points.shape[0], count = entries.shape[0], channels = points.shape[1]
    cdef Py_ssize_t i, j, c, best
    cdef double distance, nearest, step
    with nogil:
        for i in prange(n, schedule="static"):
            best = 0
            nearest = 0
            for j in range(count):
                distance = 0
                for c in range(channels):
                    step = points[i, c] - entries[j, c]
                    distance = distance + step * step
                if j == 0 or distance < nearest:
                    nearest = distance
                    best = j
            out[i] = <int32_t>best
