"""Palette search: weighted k-means over an image's distinct colors.

The search minimises the weighted squared error, which is exactly what PSNR
measures.  It works on bins first and on the exact colors last:

1. **Adaptive bins.**  Colors are grouped into cubes of 8, 4 or 2 levels, or
   kept single, so that no bin holds more than a small share of the error
   one cluster is expected to have.  A bin keeps the sum and count of its
   colors, so centroids computed from bins are exact; only the assignment
   is coarse.  Where pixels crowd into few colors (a night sky, a flat
   graphic) the bins are fine; where they spread, coarse.
2. **Initial centres** by a deterministic divisive split: the cluster with
   the largest error is cut across its principal axis at the point that
   minimises the two halves' error, until there are k.
3. **Lloyd iterations** to convergence, then **swaps**: the centre whose
   removal costs least moves to split the cluster whose split gains most,
   Lloyd runs again, and the swap is kept only if the error went down.  This
   escapes the local minima Lloyd stops in, most visibly on graphics.
4. **Exact iterations** on the distinct colors, each inheriting its bin's
   bounds by the triangle inequality, so that only colors near a cluster
   boundary are searched again.

Points are "features": the quantizer passes RGB or premultiplied RGBA values
shifted by -128.  An empty cluster is moved to the worst-served point.
"""

from dataclasses import dataclass

import numpy as np

from ._kernels import kmeans as kernels
from .defaults import DEFAULT_SPEED, ENGINES
from .nearest import Assignment
from .threads import one_openmp_thread

__all__ = ["KMeansResult", "Shared", "weighted_kmeans", "sklearn_kmeans", "divisive_split",
           "merge_errors", "ENGINES"]


# Sums that decide a split or a swap use einsum (numpy's own loops) or a
# kernel, never ``@``: BLAS picks its kernels by processor, fused
# multiply-add or not, and their last bits would move a cut from one
# machine to another (tests/test_determinism.py compares with an older
# processor's kernels).

# Up to this many distinct colors the search runs on them directly.
_DIRECT_POINTS = 8000

# Beyond this many distinct colors the last iterations run on bins of side 2.
_LARGE_POINTS = 40_000

# Side of the bins that estimate the error before the adaptive bins are made.
_COARSE_CELL = 8.0

# A bin may hold at most 1/_BIN_SHARE of a cluster's expected error.
_BIN_SHARE = 8.0

# Lloyd iterations: to convergence on the bins (and in each swap trial, a
# bounded number); a few on the exact colors, where each costs more, set by
# the speed (see _exact_iter).
_COARSE_ITER = 100
_TRIAL_ITER = 12

# Lloyd iterations on the exact colors after a warm start (see weighted_kmeans).
_WARM_ITER = 8

# Swap trials stop after this many in a row fail to lower the error.
_PATIENCE = 4

# Stop iterating when fewer than this fraction of the points change cluster.
_STOP_FRACTION = 1e-4


@dataclass
class KMeansResult:
    """Centres found by :func:`weighted_kmeans`, with the state that found them.

    Attributes
    ----------
    centres : (k, C) float32 ndarray
    assignment : Assignment
        Bounds of the exact points for `centres`; labels exact after the
        next :meth:`Assignment.move`.
    swaps : int
        Swaps kept by the coarse search.
    """

    centres: np.ndarray
    assignment: Assignment
    swaps: int


def divisive_split(points, weights, k):
    """Deterministic initial centres by repeated principal-axis splits.

    Parameters
    ----------
    points : (M, C) float ndarray
    weights : (M,) float ndarray
        Positive.
    k : int
        Number of centres wanted; fewer are returned only if fewer than k
        distinct points exist.

    Returns
    -------
    (k', C) float64 ndarray
        Weighted means of the k' <= k final clusters.
    """
    return _Splits.whole(points, weights).means(k)


class _Splits:
    """Clusters cut worst first, one cut at a time, and the means after any number of cuts.

    The cluster with the largest error is cut across its principal axis,
    until there are as many as wanted.  Which one is cut next does not
    depend on how many are wanted: the splits into k clusters are the first
    cuts of the splits into any larger number, and one sequence of cuts,
    made as far as the largest k asks, serves every smaller k with the same
    means (see :class:`Shared`).

    `clusters` holds each starting cluster's member indices, `means` and
    `errors` its weighted mean and weighted squared error.
    """

    def __init__(self, points, weights, clusters, means, errors):
        self.points, self.weights = points, weights
        self._clusters = list(clusters)
        self._first = list(means)
        # The errors of every cluster to come, in an array: np.argmax over a
        # list would convert the whole list at every cut.
        self._errors = np.asarray(errors, np.float64)
        self._cuts = []  # (cluster cut, mean of its first half, of its second)
        self._ended = False

    @classmethod
    def whole(cls, points, weights):
        """The splits of all `points` as one starting cluster."""
        points = np.ascontiguousarray(points, np.float64)
        weights = np.ascontiguousarray(weights, np.float64)
        mean, _, _, error = _principal(points, weights)
        return cls(points, weights, [np.arange(len(points))], [mean], [error])

    def means(self, k):
        """(k', C) float64 ndarray: the clusters' means once there are k (k' < k if no more cut)."""
        while len(self._clusters) < k and not self._ended:
            self._cut()
        means = list(self._first)
        for worst, first, second in self._cuts[:max(k - len(self._first), 0)]:
            means[worst] = first
            means.append(second)
        return np.array(means)

    def _cut(self):
        count = len(self._clusters)
        if len(self._errors) <= count:
            self._errors = np.concatenate([self._errors, np.zeros(max(count, 16))])
        worst = int(np.argmax(self._errors[:count]))
        if self._errors[worst] <= 0:
            self._ended = True
            return
        members = self._clusters[worst]
        cut = _split(self.points[members].astype(np.float64, copy=False), self.weights[members])
        if cut is None:
            self._errors[worst] = 0.0
            return
        (first, second), halves, halves_errors = cut
        self._clusters[worst] = members[first]
        self._clusters.append(members[second])
        self._errors[worst], self._errors[count] = halves_errors
        self._cuts.append((worst, halves[0], halves[1]))


def _principal(points, weights):
    """Weighted mean, centred points, projections on the principal axis, and the error.

    Compiled (see ``kernels.principal_axis``): BLAS and LAPACK give other
    last bits on other processors, and the cuts that follow would move.

    Parameters
    ----------
    points : (M, C) float64 C-contiguous ndarray, M >= 1
    weights : (M,) float64 C-contiguous ndarray, positive

    Returns
    -------
    mean : (C,) float64 ndarray
    centred : (M, C) float64 ndarray
    proj : (M,) float64 ndarray
    error : float
        The weighted squared error about the mean.
    """
    points = np.ascontiguousarray(points, np.float64)
    weights = np.ascontiguousarray(weights, np.float64)
    mean, axis = np.empty(points.shape[1]), np.empty(points.shape[1])
    centred = np.empty_like(points)
    proj = np.empty(len(points))
    error = kernels.principal_axis(points, weights, mean, centred, axis, proj)
    return mean, centred, proj, error


def _split(points, weights):
    """Cut a cluster across its principal axis where the summed error is least.

    Returns
    -------
    ((first, second), (mean1, mean2), (error1, error2)) or None
        Index arrays into `points`, the halves' weighted means and squared
        errors; None if the points cannot be cut (all equal).
    """
    mean, centred, proj, _ = _principal(points, weights)
    order = np.argsort(proj, kind="stable")
    # Every cut's error at once, from prefix sums, in one compiled pass:
    # the same values as numpy's cumsum over the sorted points.
    channels = points.shape[1]
    sums = np.empty(2 * channels + 4)
    c = kernels.best_cut(centred, weights, order, proj, sums)
    if c < 0:
        return None
    halves = (order[: c + 1], order[c + 1 :])
    centres = (mean + sums[1:1 + channels] / sums[0],
               mean + sums[2 + channels:2 + 2 * channels] / sums[1 + channels])
    return halves, centres, (max(float(sums[-2]), 0.0), max(float(sums[-1]), 0.0))


def _cells(points, weights, cell):
    """Exact sums of the points in each cube of side `cell`.

    Returns
    -------
    members : (M,) int64 ndarray
        The cube of every point; cubes are numbered in the order of their
        coordinates (the first most significant).
    totals : (B,) float64 ndarray
        Summed weight of each cube.
    sums : (B, C) float64 ndarray
        Weighted sum of each cube's points.
    """
    members = np.empty(len(points), np.int64)
    count = kernels.number_cells(points, cell, members)
    totals, sums = np.zeros(count), np.zeros((count, points.shape[1]))
    kernels.weighted_sums(points, weights, members, totals, sums)
    return members, totals, sums


def _bin(points, weights, cell):
    """Group points into cubes of side `cell`: exact sums, coarse positions.

    Parameters
    ----------
    points : (M, C) float32 ndarray
    weights : (M,) float64 ndarray
    cell : float
        Side of the cubes, > 0.

    Returns
    -------
    means : (B, C) float32 ndarray
        Weighted mean of each bin's points.
    totals : (B,) float64 ndarray
        Summed weight of each bin.
    members : (M,) int64 ndarray
        The bin of every point (see :func:`_cells`).
    """
    members, totals, sums = _cells(points, weights, cell)
    return (sums / totals[:, None]).astype(np.float32), totals, members


def _lloyd(assignment, weights, max_iter):
    """Lloyd iterations on an :class:`Assignment`, until few points change cluster."""
    k, channels = assignment.centres.shape
    points = assignment.points
    weights = np.ascontiguousarray(weights, np.float64)
    for _ in range(max_iter):
        mass = np.zeros(k)
        sums = np.zeros((k, channels))
        kernels.weighted_sums(points, weights, assignment.labels, mass, sums)
        centres = assignment.centres.astype(np.float64)
        filled = mass > 0
        centres[filled] = sums[filled] / mass[filled, None]
        if not filled.all():
            centres = _refill(centres, ~filled, assignment, weights)
        moved = assignment.move(centres)
        if filled.all() and moved <= _STOP_FRACTION * len(points):
            return


def _refill(centres, empty, assignment, weights):
    """Move empty clusters onto the worst-served points (largest weighted error)."""
    error = weights * assignment.upper.astype(np.float64) ** 2
    worst = np.argsort(-error, kind="stable")[: int(empty.sum())]
    centres = centres.copy()
    centres[np.flatnonzero(empty)[: len(worst)]] = assignment.points[worst]
    return centres


def _error(assignment, weights):
    """Weighted squared error of the current labels (exact, not bounds)."""
    diff = assignment.points - assignment.centres[assignment.labels]
    squared = np.einsum("ij,ij->i", diff, diff).astype(np.float64)
    return float(np.einsum("i,i->", weights, squared))


def _swap_search(assignment, weights, trials):
    """Improve a converged clustering by remove-one, split-another swaps.

    Removing centre j costs about the error its points gain by moving to
    their second-nearest centre; splitting cluster i gains the error its best
    principal-axis cut removes.  The most promising pairs are tried, each
    followed by Lloyd iterations, and a swap is kept only if the total error
    falls.  Deterministic: ties go to the lower index.

    Returns
    -------
    Assignment, int
        The best clustering found and the number of swaps kept.
    """
    k = len(assignment.centres)
    if k < 3 or trials <= 0:
        return assignment, 0
    best = assignment
    best_error = _error(best, weights)
    kept = failures = 0
    options = _swap_options(best, weights)
    for _ in range(trials):
        if not options or failures >= _PATIENCE:
            break
        (i, j), halves = options.pop(0)
        centres = best.centres.copy()
        centres[i], centres[j] = halves
        trial = best.copy()
        trial.move(centres)
        _lloyd(trial, weights, _TRIAL_ITER)
        error = _error(trial, weights)
        if error < best_error * (1 - 1e-7):
            best, best_error = trial, error
            kept += 1
            failures = 0
            options = _swap_options(best, weights)
        else:
            failures += 1
    return best, kept


def _swap_options(assignment, weights, width=4):
    """Promising (split i, remove j) pairs with i's two halves, best first.

    Removing centre j costs about the error its points gain by moving to
    their second-nearest centre; splitting cluster i gains what its best
    principal-axis cut removes.  Pairs are ranked by gain minus cost among
    the `width` largest clusters and the `width` cheapest removals.
    """
    k = len(assignment.centres)
    labels = assignment.labels
    first, second = assignment.own_and_next()
    removal = np.bincount(labels, weights=weights * (second - first), minlength=k)
    spread = np.bincount(labels, weights=weights * first, minlength=k)
    splits = {}
    for i in np.argsort(-spread, kind="stable")[:width]:
        members = np.flatnonzero(labels == i)
        if len(members) < 2:
            continue
        cut = _split(assignment.points[members].astype(np.float64), weights[members])
        if cut is not None:
            splits[int(i)] = (spread[i] - sum(cut[2]), cut[1])
    cheapest = [int(j) for j in np.argsort(removal, kind="stable")[:width]]
    ranked = sorted(
        ((splits[i][0] - removal[j], i, j) for i in splits for j in cheapest if i != j),
        key=lambda o: (-o[0], o[1], o[2]),
    )
    return [((i, j), splits[i][1]) for _, i, j in ranked]


def _swap_trials(k, speed):
    """Swap trials by palette size and speed: cheap and most useful for small palettes."""
    trials = 10 if k <= 128 else 4
    if speed <= 3:
        return 2 * trials
    if speed <= 6:
        return trials
    return {7: trials // 2, 8: trials // 2, 9: 1}.get(speed, 0)


def _exact_iter(speed):
    """Lloyd iterations on the exact colors (or bins of side 2) by speed."""
    return 6 if speed <= 3 else 4 if speed <= 6 else 2 if speed <= 8 else 1


def _inherit(parent, points, members, weights, max_iter):
    """Refine a parent level's clustering on finer points inside its bins.

    Each point starts with its bin's label and bounds widened by its distance
    from the bin mean, then Lloyd runs for `max_iter` iterations.  With none,
    the labels are left unsettled: the bounds are valid, and the caller's
    next :meth:`Assignment.move` makes the labels exact.
    """
    offset = np.sqrt(((points - parent.points[members]) ** 2).sum(axis=1))
    child = Assignment(
        points,
        parent.centres,
        labels=parent.labels[members],  # a new array already
        upper=parent.upper[members] + offset,
        lower=parent.lower[members] - offset,
    )
    if max_iter:
        child.move(parent.centres)  # settle the points whose bounds overlap
        _lloyd(child, weights, max_iter)
    return child


def _adaptive_bins(points, weights, limit, cells=(8.0, 4.0, 2.0, 0.0), first=None):
    """Bins of 8, 4, 2 levels or single colors, as fine as the error needs.

    A bin whose own squared error (its colors about its mean) exceeds
    `limit` is replaced by its eight sub-bins, down to the last of `cells`
    (0: single colors).  Where the pixels crowd into a few colors (a dark
    sky, a flat graphic) the bins become fine; where they spread, coarse.
    Sums and counts stay exact, and the grids nest: a bin of side 2 lies in
    exactly one adaptive bin.

    `first`, if given, is what :func:`_cells` returns for the first of
    `cells` (the caller may have it already).

    Returns
    -------
    means : (B, C) float32, totals : (B,) float64, members : (M,) int64
    """
    members = np.empty(len(points), np.int64)
    means, totals = [], []
    active = np.arange(len(points))
    found = 0
    for level, cell in enumerate(cells):
        if level == 0 and first is not None:
            pts, w = points, weights
            inside, total, sums = first
            count = len(total)
        elif cell:
            pts, w = points[active], weights[active]
            inside, total, sums = _cells(pts, w, cell)
            count = len(total)
        else:
            pts, w = points[active], weights[active]
            inside = np.arange(len(pts))
            count = len(pts)
            total, sums = np.zeros(count), np.zeros((count, pts.shape[1]))
            kernels.weighted_sums(pts, w, inside, total, sums)
        square = np.bincount(inside, weights=w * np.einsum("ij,ij->i", pts, pts).astype(np.float64),
                             minlength=count)
        error = square - (sums**2).sum(axis=1) / total
        keep = (error <= limit) if cell != cells[-1] else np.ones(count, bool)
        renumber = np.cumsum(keep) - 1 + found
        kept_points = keep[inside]
        members[active[kept_points]] = renumber[inside[kept_points]]
        means.append(sums[keep] / total[keep, None])
        totals.append(total[keep])
        found += int(keep.sum())
        active = active[~kept_points]
        if not len(active):
            break
    return np.vstack(means).astype(np.float32), np.concatenate(totals), members


class Shared:
    """Points to cluster at several k, with what :func:`weighted_kmeans` makes of them for any k.

    A report encodes each picture at several k.  The coarse bins of the
    colors, the divisive split of those bins (or of the colors themselves,
    when they are few: see :class:`_Splits`) and the bins of side 2 do not
    depend on k: made for the first k, they are kept for the next, with the
    same values, so the palettes are those of separate searches.

    Parameters
    ----------
    points : (M, C) float32 ndarray
    weights : (M,) float64 ndarray
    """

    def __init__(self, points, weights):
        self.points = np.ascontiguousarray(points, np.float32)
        self.weights = np.ascontiguousarray(weights, np.float64)
        self._made = {}

    def get(self, name, make):
        """What `make()` returns, made on the first call for `name` only."""
        if name not in self._made:
            self._made[name] = make()
        return self._made[name]


def _made_now(name, make):
    return make()


def weighted_kmeans(points, weights, k, *, speed=DEFAULT_SPEED, init=None, shared=None):
    """Cluster weighted points into k centres minimising weighted squared error.

    Parameters
    ----------
    points : (M, C) float32 ndarray
        Distinct colors as features, centred near 0 (see module docs).
        Must hold more than k distinct points.
    weights : (M,) ndarray
        Pixel count of each point.
    k : int
        Number of centres, 2 <= k <= 256.
    speed : int
        Search effort, 1 (most swap trials and iterations) to 10 (fewest).
    init : (k, C) float ndarray, optional
        Starting centres (a warm start, see :func:`resize_centres`) instead
        of the divisive split.  They come from a converged clustering with a
        few more or fewer centres, which has escaped the local minima the
        swaps are for: only a few Lloyd iterations on the exact points
        follow, whatever the speed.
    shared : Shared, optional
        A :class:`Shared` of these `points` and `weights` (pass its own
        arrays), which keeps for the next call what does not depend on k.

    Returns
    -------
    KMeansResult
        Centres and the exact points' assignment to them.  Its bounds are
        valid; its labels are exact after the next :meth:`Assignment.move`
        (the quantizer moves the centres to the rounded palette).
    """
    points = np.ascontiguousarray(points, np.float32)
    weights = np.ascontiguousarray(weights, np.float64)
    if init is not None:
        # A warm start is close to a converged clustering already: Lloyd
        # iterations on the exact colors settle it, without bins or swaps.
        assignment = Assignment(points, np.asarray(init, np.float32))
        _lloyd(assignment, weights, _WARM_ITER)
        return KMeansResult(assignment.centres, assignment, 0)
    trials = _swap_trials(k, speed)
    made = shared.get if shared is not None else _made_now
    if len(points) <= _DIRECT_POINTS:
        coarse, coarse_w, members = points, weights, None
        start = made("splits", lambda: _Splits.whole(points, weights)).means(k).astype(np.float32)
    else:
        # Estimate the error of a k-clustering from the coarsest bins, then
        # make bins fine enough that none holds a sizeable part of a
        # cluster's share of it.
        first = made("cells", lambda: _cells(points, weights, _COARSE_CELL))
        _, totals, sums = first
        means = (sums / totals[:, None]).astype(np.float32)
        start = made("splits", lambda: _Splits.whole(means, totals)).means(k).astype(np.float32)
        estimate = float(np.einsum("i,i->", totals,
                                   Assignment(means, start).upper.astype(np.float64) ** 2))
        large = len(points) > _LARGE_POINTS
        # The coarsest bins are the first level of the adaptive ones.
        cells = (_COARSE_CELL, 4.0, 2.0) if large else (_COARSE_CELL, 4.0, 2.0, 0.0)
        coarse, coarse_w, members = _adaptive_bins(points, weights, estimate / (k * _BIN_SHARE),
                                                   cells, first)
        start = divisive_split(coarse, coarse_w, k).astype(np.float32)
    assignment = Assignment(coarse, start)
    _lloyd(assignment, coarse_w, _COARSE_ITER)
    assignment, swaps = _swap_search(assignment, coarse_w, trials)
    if members is None:
        return KMeansResult(assignment.centres, assignment, swaps)
    if large:
        # Many colors: the final iterations run on bins of side 2 (at most
        # 1.7 levels from any of their colors, and far fewer points), and the
        # exact colors only take their nearest centre.
        fine, fine_w, fine_of = made("bins", lambda: _bin(points, weights, 2.0))
        parent = np.empty(len(fine), np.int64)
        parent[fine_of] = members
        assignment = _inherit(assignment, fine, parent, fine_w, _exact_iter(speed))
        members, rounds = fine_of, 0
    else:
        rounds = _exact_iter(speed)
    assignment = _inherit(assignment, points, members, weights, rounds)
    return KMeansResult(assignment.centres, assignment, swaps)



def sklearn_kmeans(points, weights, k, *, seed=0):
    """The library route: scikit-learn's KMeans on the same weighted colors.

    Kept as a reference that kqcodec's own search is measured against (see
    ``benchmarks/``): same objective, k-means++ initialisation, no swaps.

    Parameters
    ----------
    points : (M, C) float32 ndarray
    weights : (M,) ndarray
    k : int
    seed : int
        ``random_state`` of the k-means++ initialisation.

    Returns
    -------
    KMeansResult
    """
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=1, random_state=seed)
    # Its centres depend on how many OpenMP threads share the points: one,
    # for the same palette on any machine.
    with one_openmp_thread():
        model.fit(points, sample_weight=np.asarray(weights, np.float64))
    centres = model.cluster_centers_.astype(np.float32)
    return KMeansResult(centres, Assignment(points, centres), 0)


def resize_centres(points, weights, labels, k):
    """Starting centres for k clusters from a clustering with another count.

    A search over k warm-starts each k-means from a clustering it has
    already found.  Its clusters' exact means are the start; fewer centres:
    the pair whose merge adds the least error (Ward's cost
    ``m_a m_b / (m_a + m_b) |c_a - c_b|^2``) is merged until k remain; more:
    the cluster with the largest error is cut across its principal axis, as
    in :func:`divisive_split`, until there are k.

    Parameters
    ----------
    points : (M, C) float32 ndarray
        Distinct colors as features (see module docs).
    weights : (M,) ndarray
        Pixel count of each point.
    labels : (M,) int ndarray
        The cluster of every point in the known clustering.
    k : int
        Number of centres wanted; fewer are returned only if the points have
        fewer than k distinct values.

    Returns
    -------
    (k', C) float32 ndarray
        k' <= k starting centres, deterministic for given inputs.
    """
    points = np.ascontiguousarray(points, np.float32)
    weights = np.asarray(weights, np.float64)
    labels = np.asarray(labels, np.int64)
    mass, sums = _cluster_sums(points, weights, labels)
    used = mass > 0
    # The exact means of the clusters, with empty ones dropped.
    means, mass = sums[used] / mass[used, None], mass[used]
    labels = (np.cumsum(used) - 1)[labels]
    if len(means) > k:
        return _merge(means, mass, k).astype(np.float32)
    return _grow(points, weights, means, labels, k).astype(np.float32)


def _merge(means, mass, k):
    """Ward merges of weighted centres down to k (see :func:`resize_centres`)."""
    means, mass = means.copy(), mass.copy()
    merges = _ward_merges(means, mass)
    for _ in range(len(means) - k):
        _, alive = next(merges)
    return means[alive]


def _ward_merges(means, mass):
    """Merge weighted centres two at a time, cheapest Ward cost first, down to one.

    Yields, after each merge, its cost (the rise in weighted squared error)
    and the mask of the centres still alive; `means` and `mass` are updated
    in place, a merged pair living on in the lower of its two rows.
    """
    alive = np.ones(len(means), bool)
    gap = ((means[:, None, :] - means[None, :, :]) ** 2).sum(axis=2)
    cost = mass[:, None] * mass[None, :] / (mass[:, None] + mass[None, :]) * gap
    np.fill_diagonal(cost, np.inf)
    for _ in range(len(means) - 1):
        a, b = np.unravel_index(int(np.argmin(cost)), cost.shape)
        merged = cost[a, b]
        a, b = min(a, b), max(a, b)
        total = mass[a] + mass[b]
        means[a] = (mass[a] * means[a] + mass[b] * means[b]) / total
        mass[a] = total
        alive[b] = False
        cost[b, :] = cost[:, b] = np.inf
        row = mass[a] * mass / (mass[a] + mass) * ((means - means[a]) ** 2).sum(axis=1)
        row[~alive] = np.inf
        row[a] = np.inf
        cost[a, :] = cost[:, a] = row
        yield merged, alive


def _grow(points, weights, means, labels, k):
    """Split the clusters with the largest error until there are k."""
    clusters = [np.flatnonzero(labels == j) for j in range(len(means))]
    means = list(means)
    errors = [float(np.einsum("i,i->", weights[m], ((points[m] - means[j]) ** 2).sum(axis=1)))
              for j, m in enumerate(clusters)]
    return _Splits(points, weights, clusters, means, errors).means(k)


def _cluster_sums(points, weights, labels):
    """Each cluster's weight and weighted sum of points, shapes (n,) and (n, C), float64."""
    count = int(labels.max()) + 1
    mass = np.bincount(labels, weights=weights, minlength=count)
    sums = np.stack([np.bincount(labels, weights=weights * points[:, j], minlength=count)
                     for j in range(points.shape[1])], axis=1)
    return mass, sums


def merge_errors(points, weights, labels):
    """The weighted squared error of a clustering merged down, Ward's way, to each smaller count.

    Merging two clusters raises the error about their means by exactly
    Ward's cost (see :func:`resize_centres`), so one pass of cheapest merges
    gives the error of a clustering with every count of centres below the
    one given.  Lloyd iterations from those merges only lower it: a search
    over k uses the curve to predict where a target lies.

    Parameters
    ----------
    points : (M, C) float ndarray
        Distinct colors as features.
    weights : (M,) ndarray
        Pixel count of each point.
    labels : (M,) int ndarray
        The cluster of every point.

    Returns
    -------
    (n + 1,) float64 ndarray
        Entry j is the error with j clusters, for 1 <= j <= n, the number of
        non-empty clusters; entry 0 is inf.
    """
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    labels = np.asarray(labels, np.int64)
    mass, sums = _cluster_sums(points, weights, labels)
    used = mass > 0
    means = np.zeros_like(sums)
    means[used] = sums[used] / mass[used, None]
    diff = points - means[labels]
    base = float(np.einsum("i,i->", weights, np.einsum("ij,ij->i", diff, diff)))
    means, mass = means[used], mass[used]
    n = len(means)
    errors = np.full(n + 1, np.inf)
    errors[n] = base
    for left, (merged, _) in zip(range(n - 1, 0, -1), _ward_merges(means, mass)):
        errors[left] = errors[left + 1] + merged
    return errors
