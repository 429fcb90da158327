# cython: language_level=3
"""Floyd-Steinberg error diffusion, the one loop numpy cannot express.

Each pixel's choice depends on the error its already mapped neighbours
left, so the image is one sequential chain.  The caller (:mod:`kqcodec.dither`)
decides the error space, the per-pixel strength map and the limits; this
only walks the pixels, serpentine, without the GIL.  One thread, a fixed
order and float32 arithmetic in a fixed sequence: the same input gives the
same indices on every run and machine with IEEE floats.
"""

from libc.math cimport sqrtf
from libc.stdlib cimport calloc, free
from cython.view cimport array


def floyd_steinberg(const float[:, :, ::1] target, const float[:, ::1] palette,
                    const unsigned char[:, ::1] base, const float[:, ::1] weight,
                    const int[:, ::1] order, const float[:, ::1] reach,
                    const int[::1] group, float limit, float floor, float low, float high,
                    unsigned char[:, ::1] out):
    """Map pixels to palette entries, diffusing each one's error to its neighbours.

    Parameters
    ----------
    target : (H, W, 3) float32 C-contiguous array
        Pixel colors in the error space.
    palette : (P, 3) float32 C-contiguous array
        Entries in the same space.
    base : (H, W) uint8 C-contiguous array
        Each pixel's nearest entry without dithering: the first guess, and
        the answer where `weight` is 0.
    weight : (H, W) float32 C-contiguous array
        Share of the incoming error a pixel takes, 0..1.  0: the pixel
        neither takes nor passes on any error.
    order : (P, P) int32 C-contiguous array
        For each entry, all entries by increasing distance from it (itself first).
    reach : (P, P) float32 C-contiguous array
        Those distances.
    group : (P,) int32 array
        A pixel only moves to entries of its base entry's group (same alpha).
    limit : float
        Each channel of the error a pixel takes is clamped to +-limit.
    floor : float
        A pixel's own error is passed on only when its length is at least this.
    low, high : float
        The target plus its error is clamped to this range in every channel.
    out : (H, W) uint8 C-contiguous array
        Receives the entry of every pixel (allocated by the caller).
    """
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t p = palette.shape[0]
    _check_remap(target, palette, base, weight, group, out, "weight")
    if order.shape[0] != p or order.shape[1] != p or reach.shape[0] != p or reach.shape[1] != p:
        raise ValueError("order and reach must be (P, P)")
    # Errors of the current and next rows, with a pixel of margin each side.
    cdef float *here = <float *>calloc((w + 2) * 3, sizeof(float))
    cdef float *below = <float *>calloc((w + 2) * 3, sizeof(float))
    if here == NULL or below == NULL:
        free(here)
        free(below)
        raise MemoryError()
    try:
        with nogil:
            _diffuse(target, palette, base, weight, order, reach, group, limit, floor * floor,
                     low, high, out, here, below)
    finally:
        free(here)
        free(below)


cdef void _diffuse(const float[:, :, ::1] target, const float[:, ::1] palette,
                   const unsigned char[:, ::1] base, const float[:, ::1] weight,
                   const int[:, ::1] order, const float[:, ::1] reach,
                   const int[::1] group, float limit, float floor2, float low, float high,
                   unsigned char[:, ::1] out, float *here, float *below) noexcept nogil:
    cdef Py_ssize_t h = target.shape[0]
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t p = palette.shape[0]
    cdef Py_ssize_t y, x, i, c, step, start, stop, j, g, best
    cdef float t[3]
    cdef float q[3]
    cdef float d, dg, dbest, rg, rbest, diff, wt
    cdef float *swap
    for y in range(h):
        if y % 2 == 0:
            start, stop, step = 0, w, 1
        else:
            start, stop, step = w - 1, -1, -1
        for x in range(3 * (w + 2)):
            below[x] = 0
        x = start
        while x != stop:
            wt = weight[y, x]
            g = base[y, x]
            if wt <= 0:
                out[y, x] = <unsigned char>g
                x += step
                continue
            for c in range(3):
                diff = here[3 * (x + 1) + c] * wt
                if diff > limit:
                    diff = limit
                elif diff < -limit:
                    diff = -limit
                diff = target[y, x, c] + diff
                if diff < low:
                    diff = low
                elif diff > high:
                    diff = high
                t[c] = diff
            # Nearest entry of the same group, starting from the base
            # entry: an entry j cannot beat the best when its distance
            # from the base is at least dist(t, base) + dist(t, best).
            dg = 0
            for c in range(3):
                diff = t[c] - palette[g, c]
                dg = dg + diff * diff
            rg = sqrtf(dg)
            best = g
            dbest = dg
            rbest = rg
            for i in range(1, p):
                if reach[g, i] >= rg + rbest:
                    break
                j = order[g, i]
                if group[j] != group[g]:
                    continue
                d = 0
                for c in range(3):
                    diff = t[c] - palette[j, c]
                    d = d + diff * diff
                if d < dbest:
                    dbest = d
                    rbest = sqrtf(d)
                    best = j
            out[y, x] = <unsigned char>best
            d = 0
            for c in range(3):
                q[c] = t[c] - palette[best, c]
                d = d + q[c] * q[c]
            if d < floor2:
                x += step
                continue
            # 7/16 ahead, 3/16 behind below, 5/16 below, 1/16 ahead below
            # (float32 throughout, so that a numpy float32 reference agrees).
            for c in range(3):
                here[3 * (x + 1 + step) + c] += q[c] * <float>0.4375
                below[3 * (x + 1 - step) + c] += q[c] * <float>0.1875
                below[3 * (x + 1) + c] += q[c] * <float>0.3125
                below[3 * (x + 1 + step) + c] += q[c] * <float>0.0625
            x += step
        swap = here
        here = below
        below = swap


def follow_neighbours(const float[:, :, ::1] target, const float[:, ::1] palette,
                      const unsigned char[:, ::1] base, const float[:, ::1] margin,
                      const int[::1] group, unsigned char[:, ::1] out):
    """Map pixels to their nearest entry, or to a neighbour's entry that is nearly as close.

    One pass in raster order.  A pixel takes the entry of its left or upper
    neighbour (already mapped) when that entry's distance from it is within
    `margin` of its base entry's distance; of the two, the closer (the left
    one on a tie).  Repeating a neighbour's index is what deflate and the
    PNG filters encode cheaply.

    Parameters
    ----------
    target : (H, W, 3) float32 C-contiguous array
        Pixel colors in the space distances are measured in.
    palette : (P, 3) float32 C-contiguous array
        Entries in the same space.
    base : (H, W) uint8 C-contiguous array
        Each pixel's nearest entry.
    margin : (H, W) float32 C-contiguous array
        How much farther than its base entry a pixel's entry may be; 0 keeps
        the base entry.
    group : (P,) int32 array
        A pixel only takes an entry of its base entry's group (same alpha).
    out : (H, W) uint8 C-contiguous array
        Receives the entry of every pixel (allocated by the caller).
    """
    _check_remap(target, palette, base, margin, group, out, "margin")
    with nogil:
        _follow(target, palette, base, margin, group, out)


cdef _check_remap(const float[:, :, ::1] target, const float[:, ::1] palette,
                  const unsigned char[:, ::1] base, const float[:, ::1] per_pixel,
                  const int[::1] group, unsigned char[:, ::1] out, str name):
    """Raise ValueError unless the arrays of a remap go together; `name` is the per-pixel one's."""
    cdef Py_ssize_t h = target.shape[0]
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t p = palette.shape[0]
    if target.shape[2] != 3 or palette.shape[1] != 3 or p == 0 or p > 256:
        raise ValueError("target must be (H, W, 3) and palette (P, 3), 1 <= P <= 256")
    if (base.shape[0] != h or base.shape[1] != w or per_pixel.shape[0] != h
            or per_pixel.shape[1] != w or out.shape[0] != h or out.shape[1] != w
            or group.shape[0] != p):
        raise ValueError(f"base, {name}, out must be (H, W); group (P,)")


cdef inline float _distance(const float[:, :, ::1] target, Py_ssize_t y, Py_ssize_t x,
                            const float[:, ::1] palette, Py_ssize_t j) noexcept nogil:
    cdef float d = 0
    cdef float diff
    cdef Py_ssize_t c
    for c in range(3):
        diff = target[y, x, c] - palette[j, c]
        d = d + diff * diff
    return sqrtf(d)


cdef void _follow(const float[:, :, ::1] target, const float[:, ::1] palette,
                  const unsigned char[:, ::1] base, const float[:, ::1] margin,
                  const int[::1] group, unsigned char[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t h = target.shape[0]
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t y, x, g, j, best
    cdef float m, limit, d, dbest
    for y in range(h):
        for x in range(w):
            g = base[y, x]
            m = margin[y, x]
            out[y, x] = <unsigned char>g
            if m <= 0:
                continue
            limit = _distance(target, y, x, palette, g) + m
            best = g
            dbest = limit
            if x > 0:
                j = out[y, x - 1]
                if j != g and group[j] == group[g]:
                    d = _distance(target, y, x, palette, j)
                    if d <= dbest:
                        best = j
                        dbest = d
            if y > 0:
                j = out[y - 1, x]
                if j != g and j != best and group[j] == group[g]:
                    d = _distance(target, y, x, palette, j)
                    if d < dbest or (d <= dbest and best == g):
                        best = j
                        dbest = d
            out[y, x] = <unsigned char>best


def local_contrast(const unsigned char[:, :, ::1] pixels, unsigned char[:, ::1] out):
    """Largest channel difference between neighbours, anywhere in each pixel's 3x3 area.

    First each pixel's contrast, the largest difference between it and any
    of its 8 neighbours over the first three channels; then the largest of
    those over the 3x3 area around it, so that an edge also marks the pixels
    beside it.

    Parameters
    ----------
    pixels : (H, W, C) uint8 C-contiguous array
    out : (H, W) uint8 C-contiguous array
        Receives the result (allocated by the caller).
    """
    cdef Py_ssize_t h = pixels.shape[0]
    cdef Py_ssize_t w = pixels.shape[1]
    if pixels.shape[2] < 3 or out.shape[0] != h or out.shape[1] != w:
        raise ValueError("pixels must be (H, W, 3|4) and out (H, W)")
    cdef unsigned char[:, ::1] own = cvarray(h, w)
    with nogil:
        _contrast(pixels, own)
        _widest(own, out)


cdef unsigned char[:, ::1] cvarray(Py_ssize_t h, Py_ssize_t w):
    return array(shape=(max(h, 1), max(w, 1)), itemsize=1, format="B")


cdef void _contrast(const unsigned char[:, :, ::1] pixels, unsigned char[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t h = pixels.shape[0]
    cdef Py_ssize_t w = pixels.shape[1]
    cdef Py_ssize_t y, x, dy, dx, c, ny, nx
    cdef int most, step
    for y in range(h):
        for x in range(w):
            most = 0
            for dy in range(-1, 2):
                ny = y + dy
                if ny < 0 or ny >= h:
                    continue
                for dx in range(-1, 2):
                    nx = x + dx
                    if nx < 0 or nx >= w:
                        continue
                    for c in range(3):
                        step = <int>pixels[y, x, c] - <int>pixels[ny, nx, c]
                        if step < 0:
                            step = -step
                        if step > most:
                            most = step
            out[y, x] = <unsigned char>most


cdef void _widest(const unsigned char[:, ::1] values, unsigned char[:, ::1] out) noexcept nogil:
    cdef Py_ssize_t h = values.shape[0]
    cdef Py_ssize_t w = values.shape[1]
    cdef Py_ssize_t y, x, ny, nx
    cdef unsigned char most
    for y in range(h):
        for x in range(w):
            most = 0
            for ny in range(y - 1 if y > 0 else 0, y + 2 if y + 2 <= h else h):
                for nx in range(x - 1 if x > 0 else 0, x + 2 if x + 2 <= w else w):
                    if values[ny, nx] > most:
                        most = values[ny, nx]
            out[y, x] = most
