# cython: language_level=3
"""Near ties settled towards a neighbour's entry, in integers.

Distances are those PSNR measures (RGB, or premultiplied RGB and alpha),
scaled by 255 for RGBA so that every one is an exact integer: the same
choices on every machine.
"""

from libc.stdint cimport int64_t, uint8_t


cdef inline int64_t _distance(const uint8_t[:, ::1] pixels, Py_ssize_t i,
                              const uint8_t[:, ::1] palette, Py_ssize_t e,
                              Py_ssize_t channels) noexcept nogil:
    """Squared distance of pixel i to entry e: RGB, or 255 x premultiplied RGB and alpha."""
    cdef int64_t total = 0, step, alpha, entry_alpha
    cdef Py_ssize_t c
    if channels == 3:
        for c in range(3):
            step = <int64_t>pixels[i, c] - palette[e, c]
            total += step * step
        return total
    alpha = pixels[i, 3]
    entry_alpha = palette[e, 3]
    for c in range(3):
        step = <int64_t>pixels[i, c] * alpha - <int64_t>palette[e, c] * entry_alpha
        total += step * step
    step = (alpha - entry_alpha) * 255
    return total + step * step


cdef inline int64_t _extra(const uint8_t[:, ::1] pixels, Py_ssize_t i, Py_ssize_t width,
                           const uint8_t[:, ::1] palette, const uint8_t[::1] indices,
                           Py_ssize_t channels, int64_t tolerance, uint8_t *other) noexcept nogil:
    """What pixel i's error grows by if it takes its left neighbour's entry, else its upper one's.

    The left one is taken when within `tolerance`; -1 when neither
    neighbour has another entry of the same alpha as the pixel's own (an
    opaque pixel stays opaque, a transparent one transparent).
    """
    cdef uint8_t own = indices[i], left = own, up = own
    cdef bint left_ok = False, up_ok = False
    cdef int64_t own_distance, extra
    if i % width:
        left = indices[i - 1]
        left_ok = left != own and (channels == 3 or palette[left, 3] == palette[own, 3])
    if i >= width:
        up = indices[i - width]
        up_ok = up != own and (channels == 3 or palette[up, 3] == palette[own, 3])
    if not left_ok and not up_ok:
        return -1
    own_distance = _distance(pixels, i, palette, own, channels)
    if left_ok:
        extra = _distance(pixels, i, palette, left, channels) - own_distance
        if extra <= tolerance or not up_ok or up == left:
            other[0] = left
            return extra
    other[0] = up
    return _distance(pixels, i, palette, up, channels) - own_distance


def tie_costs(const uint8_t[:, ::1] pixels, Py_ssize_t width, const uint8_t[:, ::1] palette,
              const uint8_t[::1] indices, Py_ssize_t step, int64_t unit, int64_t[::1] sums):
    """Sum the extra errors of the possible changes in every `step`-th row, by size.

    The estimate behind :func:`follow_neighbours`'s tolerance: the change
    each pixel of the sampled rows would make with the current entries of
    its neighbours (left first, as there), its extra error added to
    ``sums[extra // unit]`` when that bucket exists.

    Parameters
    ----------
    pixels : (N, C) uint8, C = 3 (RGB) or 4 (straight RGBA), N = height x width
    width, step : int, >= 1
    palette : (P, C) uint8
    indices : (N,) uint8, each pixel's entry
    unit : int64, >= 1, the width of a bucket
    sums : (B,) int64, added to
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1], buckets = sums.shape[0]
    cdef Py_ssize_t sample, row, i, end, rows = n // width
    cdef int64_t extra, largest = unit * buckets
    cdef uint8_t other
    with nogil:
        for sample in range((rows + step - 1) // step):
            row = sample * step
            end = (row + 1) * width
            for i in range(row * width, end):
                extra = _extra(pixels, i, width, palette, indices, channels, largest, &other)
                if 0 <= extra < largest:
                    sums[extra // unit] += extra


def follow_neighbours(const uint8_t[:, ::1] pixels, Py_ssize_t width, const uint8_t[:, ::1] palette,
                      uint8_t[::1] indices, int64_t tolerance, int64_t budget):
    """Give a pixel its left (else upper) neighbour's entry when that costs little more.

    Pixels are visited in raster order; a pixel takes the entry its left
    neighbour now has, or else its upper neighbour's, if that entry has the
    same alpha as its own (RGBA), if that entry's
    squared distance exceeds its own entry's by at most `tolerance`, and
    while the added error stays within `budget`.

    Parameters
    ----------
    pixels : (N, C) uint8, C = 3 (RGB) or 4 (straight RGBA), N = height x width
    width : int, >= 1
    palette : (P, C) uint8
    indices : (N,) uint8, each pixel's entry; updated in place
    tolerance, budget : int64
        In squared levels (RGB) or squared levels x 255^2 (RGBA).

    Returns
    -------
    int
        The added squared error, in the units of `tolerance`.
    """
    cdef Py_ssize_t n = pixels.shape[0], channels = pixels.shape[1], i
    cdef int64_t added = 0, extra
    cdef uint8_t other
    with nogil:
        for i in range(n):
            extra = _extra(pixels, i, width, palette, indices, channels, tolerance, &other)
            if 0 <= extra <= tolerance and added + extra <= budget:
                indices[i] = other
                added += extra
    return added
