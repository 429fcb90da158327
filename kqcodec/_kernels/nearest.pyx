# cython: language_level=3
"""Nearest centres with Hamerly's bounds, and the centres' neighbour lists: the loops of :mod:`nearest`.

Each point is handled on its own, so the points are shared among threads
(``prange``) and the result does not depend on how many there are.  A
squared distance is the sum of the squared coordinate differences in
float32, channel by channel in a fixed order, built without floating-point
contraction: the same value on every machine.  For integer points and
centres (RGB colors and a rounded palette) every squared distance is an
exact integer, so ties are exact.
"""

from cython.parallel cimport parallel, prange
from libc.math cimport INFINITY, sqrt, sqrtf
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc
from openmp cimport omp_get_max_threads

# Below this many point-centre pairs one thread does the work: waking the
# others costs more than it saves (much more on a busy machine, where a
# thread may wait a whole time slice to be scheduled).  From 2**18 (a
# search of some 4,000 bins at k = 64, a third of a millisecond) two
# threads pay on an idle machine: on photos of 1.5 to 2.9 MP the palette
# search took 4-27% less wall time than from 2**22, the whole encode 1-9%
# (benchmarks/stages.py --pipeline); with another process busy on one of
# the two cores, the encode took 5-7% longer.  Worker processes of a batch
# or a report run one thread each (workers.worker_start).
cdef Py_ssize_t _PARALLEL_WORK = 1 << 18


cdef int _threads(Py_ssize_t work) noexcept nogil:
    return omp_get_max_threads() if work >= _PARALLEL_WORK else 1


cdef inline float _squared(const float* point, const float* centre,
                           Py_ssize_t channels) noexcept nogil:
    """Squared distance of a point to a centre (the order of _two_nearest)."""
    cdef Py_ssize_t c
    cdef float total = 0, step
    for c in range(channels):
        step = point[c] - centre[c]
        total = total + step * step
    return total


cdef inline int64_t _two_nearest(const float* point, const float* columns, Py_ssize_t k,
                                 Py_ssize_t channels, float* dist) noexcept nogil:
    """Nearest centre of a point (ties: the lower index).

    `columns` holds the centres transposed, (C, k), so that the distances to
    all centres are computed a channel at a time over contiguous memory (the
    compiler vectorizes it).  `dist` is the caller's buffer of k + 2 floats;
    the squared distances to the nearest and the second nearest centre are
    left in ``dist[k]`` and ``dist[k + 1]``.
    """
    cdef Py_ssize_t j, c
    cdef const float* column
    cdef float p, step, value, best_value, next_value
    cdef int64_t best
    for j in range(k):
        dist[j] = 0
    for c in range(channels):
        p = point[c]
        column = columns + c * k
        for j in range(k):
            step = p - column[j]
            dist[j] = dist[j] + step * step
    best = 0
    best_value = dist[0]
    next_value = INFINITY
    for j in range(1, k):
        value = dist[j]
        if value < best_value:
            next_value = best_value
            best_value = value
            best = j
        elif value < next_value:
            next_value = value
    dist[k] = best_value
    dist[k + 1] = next_value
    return best


def search(const float[:, ::1] points, const int64_t[::1] which, const float[:, ::1] columns,
           int64_t[::1] labels, float[::1] upper, float[::1] lower):
    """Exact nearest centre of the points `which`, with both bounds.

    Parameters
    ----------
    points : (M, C) float32
    which : (m,) int64
        Rows of `points` to search.
    columns : (C, k) float32
        The centres, transposed.
    labels : (M,) int64, written at `which`
        The nearest centre; ties go to the lower index.
    upper, lower : (M,) float32, written at `which`
        Distance to the nearest centre and to the second nearest (inf when
        k == 1).
    """
    cdef Py_ssize_t n = which.shape[0], k = columns.shape[1], channels = columns.shape[0], r, i
    cdef float* dist
    cdef const float* start = &points[0, 0] if points.shape[0] else NULL
    cdef const float* table = &columns[0, 0]
    if n == 0:
        return
    with nogil, parallel(num_threads=_threads(n * k)):
        dist = <float*>malloc((k + 2) * sizeof(float))
        for r in prange(n, schedule="static"):
            i = which[r]
            labels[i] = _two_nearest(start + i * channels, table, k, channels, dist)
            upper[i] = sqrtf(dist[k])
            lower[i] = sqrtf(dist[k + 1])
        free(dist)


def move(const float[:, ::1] points, const float[:, ::1] centres, const float[:, ::1] columns,
         int64_t[::1] labels, float[::1] upper, float[::1] lower,
         const float[::1] shift, const float[::1] near_drop, const float[::1] far,
         const float[::1] half_gap, const float[:, ::1] reach, const int64_t[:, ::1] order,
         const int64_t[::1] sizes, float margin):
    """Restore exact nearest labels after the centres moved, searching as little as is safe.

    Each point's bounds move by the shifts (Hamerly): the upper bound up by
    its centre's shift, the lower bound down by `near_drop` of its centre
    and at most ``far - upper``.  A point whose bounds still leave a gap
    (larger than `margin`, and than half the distance from its centre to
    the nearest other) keeps its label.  Otherwise its upper bound is made
    exact; if the gap is still not there, it is searched among its centre
    and the first ``sizes[t]`` entries of its centre's `order`, for the
    smallest list that is safe (all centres outside list t are at least
    ``reach[centre, t]`` from the centre), or among all centres.

    Parameters
    ----------
    points : (M, C) float32
    centres : (k, C) float32
        The new centres; `columns` is the same, transposed (C, k).
    labels : (M,) int64, updated
    upper, lower : (M,) float32, updated
        Bounds of the distance to the point's centre and to any other.
    shift : (k,) float32
        How far each centre moved.
    near_drop, far, half_gap : (k,) float32
        Per centre: what the lower bound of its points loses to the shifts
        of its listed neighbours; a lower bound on the distance from it to
        every centre outside its widest list (inf without lists); half the
        distance to its nearest other centre (a lower bound).
    reach : (k, T) float32
        Lower bound on the distance from a centre to the nearest centre
        outside its first ``sizes[t]`` neighbours.
    order : (k, W) int64
        Each centre's nearest other centres, nearest first; W >= max(sizes).
    sizes : (T,) int64
        Increasing list lengths; T may be 0.
    margin : float
        Slack for float32 rounding in the bound tests.

    Returns
    -------
    int
        How many points changed label.
    """
    cdef Py_ssize_t n = points.shape[0], k = centres.shape[0], tiers = sizes.shape[0]
    cdef Py_ssize_t channels = centres.shape[1], i, m, t, tt
    cdef int64_t own, best, j, changed = 0
    cdef float up, low, near, floor_, own_squared, value, first, second
    cdef float* dist
    cdef const float* point
    if n == 0:
        return 0
    cdef const float* start = &points[0, 0]
    cdef const float* table = &centres[0, 0]
    cdef const float* transposed = &columns[0, 0]
    # Most points only update their bounds: a few operations each.
    with nogil, parallel(num_threads=_threads(n * 16)):
        dist = <float*>malloc((k + 2) * sizeof(float))
        for i in prange(n, schedule="static"):
            own = labels[i]
            point = start + i * channels
            up = upper[i] + shift[own]
            near = lower[i] - near_drop[own]
            low = near if near < far[own] - up else far[own] - up
            floor_ = low if low > half_gap[own] else half_gap[own]
            if up + margin > floor_:
                own_squared = _squared(point, table + own * channels, channels)
                up = sqrtf(own_squared)
                low = near if near < far[own] - up else far[own] - up
                floor_ = low if low > half_gap[own] else half_gap[own]
                if up + margin > floor_:
                    t = tiers
                    for tt in range(tiers - 1, -1, -1):
                        if up + margin < 0.5 * reach[own, tt]:
                            t = tt
                    if t < tiers:
                        # Among the centre and its neighbours, in list order:
                        # ties keep the earlier (the current centre first).
                        best = own
                        first = own_squared
                        second = INFINITY
                        for m in range(sizes[t]):
                            j = order[own, m]
                            value = _squared(point, table + j * channels, channels)
                            if value < first:
                                second = first
                                first = value
                                best = j
                            elif value < second:
                                second = value
                        low = sqrtf(second)
                        if reach[own, t] - up < low:
                            low = reach[own, t] - up
                        up = sqrtf(first)
                    else:
                        best = _two_nearest(point, transposed, k, channels, dist)
                        up = sqrtf(dist[k])
                        low = sqrtf(dist[k + 1])
                    if best != own:
                        labels[i] = best
                        changed += 1
            upper[i] = up
            lower[i] = low
        free(dist)
    return changed


def own_and_next(const float[:, ::1] points, const float[:, ::1] columns,
                 const int64_t[::1] labels, double[::1] own, double[::1] other):
    """Squared distance of every point to its labelled centre, and to the nearest other one.

    Each squared distance is summed channel after channel in float32, as in
    :func:`search` (a BLAS matrix product would round it otherwise on
    other processors).

    Parameters
    ----------
    points : (M, C) float32
    columns : (C, k) float32
        The centres, transposed.
    labels : (M,) int64
        Each point's centre, below k.
    own, other : (M,) float64, written
        The squared distance to ``labels[i]``, and the least to any other
        centre (inf when k == 1).
    """
    cdef Py_ssize_t n = points.shape[0], k = columns.shape[1], channels = columns.shape[0], i, j
    cdef float* dist
    cdef float nearest
    cdef int64_t label
    cdef const float* start = &points[0, 0] if points.shape[0] else NULL
    cdef const float* table = &columns[0, 0]
    if n == 0:
        return
    with nogil, parallel(num_threads=_threads(n * k)):
        dist = <float*>malloc((k + 2) * sizeof(float))
        for i in prange(n, schedule="static"):
            _two_nearest(start + i * channels, table, k, channels, dist)
            label = labels[i]
            nearest = INFINITY
            for j in range(k):
                if j != label and dist[j] < nearest:
                    nearest = dist[j]
            own[i] = dist[label]
            other[i] = nearest
        free(dist)


def centre_distances(const double[:, ::1] gram, double[:, ::1] dist):
    """Distances between centres from their Gram matrix; inf on the diagonal.

    ``dist[i, j] = sqrt(max((gram[i, i] + gram[j, j]) - 2 gram[i, j], 0))``
    in float64, the operations of numpy's ``norms[:, None] + norms[None, :]
    - 2 * gram`` in that order: the same values to the last bit, in one
    pass instead of five over a k x k array.

    Parameters
    ----------
    gram : (k, k) float64
        ``centres @ centres.T``.
    dist : (k, k) float64, written
    """
    cdef Py_ssize_t k = gram.shape[0], i, j
    cdef double value
    with nogil:
        for i in range(k):
            for j in range(k):
                value = (gram[i, i] + gram[j, j]) - 2 * gram[i, j]
                dist[i, j] = INFINITY if i == j else sqrt(value if value > 0 else 0)


def rank_neighbours(const double[:, ::1] dist, const int64_t[:, ::1] part,
                    int64_t[:, ::1] order, float[:, ::1] ranked):
    """Sort each centre's nearest others by distance, ties in the order given.

    A stable insertion sort of every row of `part` by ``dist[row, part]``:
    numpy's ``argsort(kind="stable")`` gives the same order, without three
    gathers of a k x (W + 1) array.

    Parameters
    ----------
    dist : (k, k) float64
        Distances between centres.
    part : (k, W + 1) int64
        Each centre's W + 1 nearest others, in any order.
    order : (k, W) int64, written
        The first W of each sorted row.
    ranked : (k, W + 1) float32, written
        The distances of each sorted row.
    """
    cdef Py_ssize_t k = part.shape[0], width = part.shape[1], i, m, back
    cdef int64_t index
    cdef double value
    cdef int64_t* row
    cdef double* values
    if k == 0 or width == 0:
        return
    with nogil:
        row = <int64_t*>malloc(width * sizeof(int64_t))
        values = <double*>malloc(width * sizeof(double))
        for i in range(k):
            for m in range(width):
                index = part[i, m]
                value = dist[i, index]
                # Past every earlier entry that is strictly farther.
                back = m
                while back > 0 and values[back - 1] > value:
                    values[back] = values[back - 1]
                    row[back] = row[back - 1]
                    back -= 1
                values[back] = value
                row[back] = index
            for m in range(width):
                if m < width - 1:
                    order[i, m] = row[m]
                ranked[i, m] = <float>values[m]
        free(row)
        free(values)
