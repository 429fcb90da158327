"""Palette search: weighted k-means over an image's distinct colors.

The search minimises the weighted squared error, which is exactly what PSNR
measures.  It starts from a deterministic divisive split (the cluster with
the largest error is cut across its principal axis at the point that
minimises the two halves' error), then runs Lloyd iterations, first over a
coarse grid of color bins and then over the exact colors:

* Bins keep the sum and count of their colors, so centroid updates are
  exact; only the assignment is coarse.
* Bounds carry over from a bin to its colors by the triangle inequality, so
  the exact phase re-searches only colors near a Voronoi boundary.
* A cluster left empty is moved to the color that is worst served.

Points are "features": the codec passes RGB or premultiplied RGBA values,
shifted by -128.
"""

from dataclasses import dataclass

import numpy as np

from .remap import Assignment

__all__ = ["KMeansResult", "weighted_kmeans", "divisive_split"]

# Below this many points the exact colors are clustered directly.
_DIRECT_POINTS = 40000


@dataclass
class KMeansResult:
    """Centres found by :func:`weighted_kmeans`, with the state that found them.

    Attributes
    ----------
    centres : (k, C) float32 ndarray
    assignment : Assignment
        Labels and bounds of the exact points for `centres`.
    iterations : int
        Lloyd iterations run in the exact phase.
    """

    centres: np.ndarray
    assignment: Assignment
    iterations: int


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
    points = np.asarray(points, np.float64)
    weights = np.asarray(weights, np.float64)
    clusters = [np.arange(len(points))]
    errors = [_cluster_error(points, weights)]
    while len(clusters) < k:
        worst = int(np.argmax(errors))
        if errors[worst] <= 0:
            break
        halves = _split(points[clusters[worst]], weights[clusters[worst]])
        if halves is None:
            errors[worst] = 0.0
            continue
        members = clusters[worst]
        for slot, half in zip((worst, len(clusters)), halves):
            idx = members[half]
            if slot == worst:
                clusters[worst] = idx
                errors[worst] = _cluster_error(points[idx], weights[idx])
            else:
                clusters.append(idx)
                errors.append(_cluster_error(points[idx], weights[idx]))
    return np.array([np.average(points[c], axis=0, weights=weights[c]) for c in clusters])


def _cluster_error(points, weights):
    mean = np.average(points, axis=0, weights=weights)
    return float(weights @ ((points - mean) ** 2).sum(axis=1))


def _split(points, weights):
    """Cut a cluster across its principal axis where the summed error is least.

    Returns the two member masks' index arrays, or None if it cannot be cut.
    """
    mean = np.average(points, axis=0, weights=weights)
    centred = points - mean
    scatter = (centred * weights[:, None]).T @ centred
    axis = np.linalg.eigh(scatter)[1][:, -1]
    proj = centred @ axis
    order = np.argsort(proj, kind="stable")
    w = weights[order]
    x = centred[order]
    # Prefix sums give each cut's error in O(M): SSE = sum w|x|^2 - |sum w x|^2 / sum w.
    cw = np.cumsum(w)[:-1]
    cx = np.cumsum(x * w[:, None], axis=0)[:-1]
    total_w, total_x = w.sum(), (x * w[:, None]).sum(axis=0)
    rw = total_w - cw
    rx = total_x - cx
    # The constant sum w|x|^2 drops out of the comparison.
    gain = (cx**2).sum(axis=1) / cw + (rx**2).sum(axis=1) / rw
    sorted_proj = proj[order]
    gain[sorted_proj[1:] <= sorted_proj[:-1]] = -np.inf  # never cut between equal points
    if not np.isfinite(gain).any():
        return None
    cut = int(np.argmax(gain)) + 1
    return order[:cut], order[cut:]


def _bin(points, weights, cell):
    """Group points into cubes of side `cell`: exact sums, coarse positions.

    Returns
    -------
    means : (B, C) float32, totals : (B,) float64, members : (M,) int64
        Each bin's weighted mean and weight, and each point's bin.
    """
    grid = np.floor(points / cell).astype(np.int64)
    grid -= grid.min(axis=0)
    span = grid.max(axis=0) + 1
    key = np.zeros(len(points), np.int64)
    for j in range(points.shape[1]):
        key = key * span[j] + grid[:, j]
    uniq, members = np.unique(key, return_inverse=True)
    members = members.ravel()
    totals = np.bincount(members, weights=weights, minlength=len(uniq))
    sums = np.stack(
        [np.bincount(members, weights=weights * points[:, j], minlength=len(uniq))
         for j in range(points.shape[1])],
        axis=1,
    )
    return (sums / totals[:, None]).astype(np.float32), totals, members


def _lloyd(assignment, weights, max_iter, stop_fraction):
    """Lloyd iterations on an :class:`Assignment`; returns iterations run."""
    k, channels = assignment.centres.shape
    points = assignment.points
    total = weights.sum()
    for iteration in range(1, max_iter + 1):
        labels = assignment.labels
        mass = np.bincount(labels, weights=weights, minlength=k)
        centres = assignment.centres.astype(np.float64)
        filled = mass > 0
        for j in range(channels):
            sums = np.bincount(labels, weights=weights * points[:, j], minlength=k)
            centres[filled, j] = sums[filled] / mass[filled]
        if not filled.all():
            centres = _refill(centres, ~filled, assignment, weights)
        moved = assignment.move(centres)
        if not filled.all():
            continue
        changed_weight = moved / max(len(points), 1)
        if moved == 0 or changed_weight < stop_fraction:
            return iteration
    return max_iter


def _refill(centres, empty, assignment, weights):
    """Move empty clusters onto the worst-served points (largest weighted error)."""
    error = weights * assignment.upper.astype(np.float64) ** 2
    worst = np.argsort(-error, kind="stable")[: int(empty.sum())]
    centres = centres.copy()
    centres[np.flatnonzero(empty)[: len(worst)]] = assignment.points[worst]
    # The jump invalidates bounds: make every point look suspect.
    assignment.lower[:] = 0
    return centres


def weighted_kmeans(points, weights, k, *, max_iter=60, stop_fraction=1e-4):
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
    max_iter : int
        Cap on Lloyd iterations per phase.
    stop_fraction : float
        Stop when fewer than this fraction of points change cluster.

    Returns
    -------
    KMeansResult
    """
    points = np.ascontiguousarray(points, np.float32)
    weights = np.asarray(weights, np.float64)
    if len(points) <= _DIRECT_POINTS:
        start = divisive_split(points, weights, k).astype(np.float32)
        assignment = Assignment(points, start)
        iterations = _lloyd(assignment, weights, max_iter, stop_fraction)
        return KMeansResult(assignment.centres, assignment, iterations)

    # Coarse phase on bins of side 4 levels (a 6-bit grid per channel).
    means, totals, members = _bin(points, weights, 4.0)
    start = divisive_split(means, totals, k).astype(np.float32)
    coarse = Assignment(means, start)
    _lloyd(coarse, totals, max_iter, stop_fraction)
    # Exact phase: each color inherits its bin's bounds, widened by its
    # distance from the bin mean.
    offset = np.sqrt(((points - means[members]) ** 2).sum(axis=1))
    assignment = Assignment(
        points,
        coarse.centres,
        labels=coarse.labels[members].copy(),
        upper=coarse.upper[members] + offset,
        lower=coarse.lower[members] - offset,
    )
    assignment.move(coarse.centres)  # settle colors whose bounds overlap
    iterations = _lloyd(assignment, weights, max_iter, stop_fraction)
    return KMeansResult(assignment.centres, assignment, iterations)
