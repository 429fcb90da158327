# cython: language_level=3
"""Floyd-Steinberg error diffusion and the reuse pass, loops numpy cannot express.

Each pixel's choice depends on the error its already mapped neighbours
left, or on the entries chosen for the row above, so the image is one
sequential chain.  The caller (:mod:`kqcodec.dither`)
decides the error space, the per-pixel strength map and the limits; this
only walks the pixels, serpentine, without the GIL.  One thread, a fixed
order and float32 arithmetic in a fixed sequence: the same input gives the
same indices on every run and machine with IEEE floats.
"""

from libc.math cimport fabsf, sqrtf
from libc.stdlib cimport calloc, malloc, free
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


cdef enum:
    # Each pixel's own candidates in the reuse pass: its nearest entries
    # (the base entry first); the upper and left neighbours' come besides.
    NEAREST = 3
    # At most this many candidates per pixel (the rest of the left pixel's are dropped).
    MOST = 12


def reuse_rows(const float[:, :, ::1] target, const float[:, ::1] palette,
               const unsigned char[:, ::1] base, const float[:, ::1] margin,
               const int[::1] group, const int[:, ::1] order, const float[:, ::1] reach,
               float change, float mismatch, unsigned char[:, ::1] out):
    """Map each row, given the row above, to the entries that cost least in error plus runs.

    Row by row from the top, a Viterbi pass picks each pixel's entry among a
    few candidates: its ``NEAREST`` nearest entries, the entry of the pixel
    above, and the left pixel's candidates; only entries whose distance is
    within `margin` of its base entry's (same alpha group: nearer too, where
    the base entry is the nearest in another space).  The row's cost is the
    sum, over its pixels, of |distance - base distance| / margin, plus
    `change` for each index that differs from its left neighbour's and
    `mismatch` for each that differs from the one above.  Deflate and the
    PNG filters encode runs and repeated rows cheaply; the costs are in
    margins, so one margin bounds each pixel's extra error as before.
    float32 arithmetic in a fixed order, first candidate on ties: the same
    indices on every run.

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
    order : (P, P) int32 C-contiguous array
        For each entry, all entries by increasing distance from it (itself first).
    reach : (P, P) float32 C-contiguous array
        Those distances.
    change, mismatch : float
        Costs, in margins, of an index change along the row and of a
        difference from the pixel above.
    out : (H, W) uint8 C-contiguous array
        Receives the entry of every pixel (allocated by the caller).

    Raises
    ------
    ValueError
        When the shapes do not go together.
    MemoryError
    """
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t p = palette.shape[0]
    _check_remap(target, palette, base, margin, group, out, "margin")
    if order.shape[0] != p or order.shape[1] != p or reach.shape[0] != p or reach.shape[1] != p:
        raise ValueError("order and reach must be (P, P)")
    cdef int *cand = <int *>malloc(max(w, 1) * MOST * sizeof(int))
    cdef int *count = <int *>malloc(max(w, 1) * sizeof(int))
    cdef float *cost = <float *>malloc(max(w, 1) * MOST * sizeof(float))
    cdef float *total = <float *>malloc(max(w, 1) * MOST * sizeof(float))
    cdef signed char *back = <signed char *>malloc(max(w, 1) * MOST)
    if cand == NULL or count == NULL or cost == NULL or total == NULL or back == NULL:
        free(cand); free(count); free(cost); free(total); free(back)
        raise MemoryError()
    try:
        with nogil:
            _rows(target, palette, base, margin, group, order, reach, change, mismatch, out,
                  cand, count, cost, total, back)
    finally:
        free(cand); free(count); free(cost); free(total); free(back)


cdef inline bint _holds(const int *cand, Py_ssize_t n, int j) noexcept nogil:
    cdef Py_ssize_t i
    for i in range(n):
        if cand[i] == j:
            return True
    return False


cdef void _rows(const float[:, :, ::1] target, const float[:, ::1] palette,
                const unsigned char[:, ::1] base, const float[:, ::1] margin,
                const int[::1] group, const int[:, ::1] order, const float[:, ::1] reach,
                float change, float mismatch, unsigned char[:, ::1] out,
                int *cand, int *count, float *cost, float *total,
                signed char *back) noexcept nogil:
    cdef Py_ssize_t h = target.shape[0]
    cdef Py_ssize_t w = target.shape[1]
    cdef Py_ssize_t p = palette.shape[0]
    cdef Py_ssize_t y, x, i, k, n, m, g, j, pick
    cdef int *here
    cdef float near[NEAREST]
    cdef float width, db, bound, d, v, best, scan
    for y in range(h):
        # Candidates and their own costs.
        for x in range(w):
            here = cand + x * MOST
            g = base[y, x]
            width = margin[y, x]
            here[0] = g
            cost[x * MOST] = 0
            n = 1
            if width > 0:
                db = _distance(target, y, x, palette, g)
                bound = db + width
                # The nearest others within the bound, by distance then index.
                # An entry j can only be within it if its distance from the
                # base entry is at most db + bound (with slack for rounding).
                scan = (db + bound) * <float>1.001 + <float>0.01
                m = 0
                for i in range(1, p):
                    if reach[g, i] > scan:
                        break
                    j = order[g, i]
                    if group[j] != group[g]:
                        continue
                    d = _distance(target, y, x, palette, j)
                    if fabsf(d - db) > width:
                        continue
                    k = m
                    while k > 0 and (d < near[k - 1] or (d == near[k - 1] and j < here[k])):
                        if k < NEAREST - 1:
                            here[k + 1] = here[k]
                            near[k] = near[k - 1]
                        k -= 1
                    if k < NEAREST - 1:
                        here[k + 1] = <int>j
                        near[k] = d
                        if m < NEAREST - 1:
                            m += 1
                n = 1 + m
                if y > 0:
                    j = out[y - 1, x]
                    if group[j] == group[g] and not _holds(here, n, <int>j) \
                            and fabsf(_distance(target, y, x, palette, j) - db) <= width:
                        here[n] = <int>j
                        n += 1
                if x > 0:
                    for i in range(count[x - 1]):
                        if n == MOST:
                            break
                        j = cand[(x - 1) * MOST + i]
                        if group[j] == group[g] and not _holds(here, n, <int>j) \
                                and fabsf(_distance(target, y, x, palette, j) - db) <= width:
                            here[n] = <int>j
                            n += 1
                for i in range(n):
                    j = here[i]
                    # Nearer than the base entry counts as far off it too: where
                    # the base is the nearest in another space (RGB), the base
                    # stays the mapping a margin near 0 gives.
                    v = fabsf(_distance(target, y, x, palette, j) - db) / width
                    if y > 0 and j != out[y - 1, x]:
                        v = v + mismatch
                    cost[x * MOST + i] = v
            count[x] = <int>n
        # Least total cost of each candidate with the best path to its left.
        for i in range(count[0]):
            total[i] = cost[i]
            back[i] = -1
        for x in range(1, w):
            for i in range(count[x]):
                j = cand[x * MOST + i]
                pick = 0
                best = 0
                for k in range(count[x - 1]):
                    v = total[(x - 1) * MOST + k]
                    if cand[(x - 1) * MOST + k] != j:
                        v = v + change
                    if k == 0 or v < best:
                        best = v
                        pick = k
                total[x * MOST + i] = best + cost[x * MOST + i]
                back[x * MOST + i] = <signed char>pick
        pick = 0
        for i in range(1, count[w - 1]):
            if total[(w - 1) * MOST + i] < total[(w - 1) * MOST + pick]:
                pick = i
        x = w - 1
        while x >= 0:
            out[y, x] = <unsigned char>cand[x * MOST + pick]
            pick = back[x * MOST + pick]
            x -= 1


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
