"""Nearest-entry search: which palette entry is closest to each color.

k-means asks this question every iteration and the encoder asks it once
more for the rounded palette.  Both go through :class:`Assignment`, which
keeps Hamerly's bounds: an upper bound on each point's distance to its own
centre and a lower bound on its distance to any other.  When centres move,
the bounds move by at most the shift, and only points whose bounds overlap
are searched again.  Late k-means iterations and the final rounding move
centres by fractions of a level, so most points are never searched again.
"""

from typing import NamedTuple

import numpy as np

__all__ = ["Assignment"]

# Rows per block of the distance matrix: bounds memory to about
# _BLOCK * k * 4 bytes whatever the image size.
_BLOCK = 16384

# Slack, in color levels, for float32 rounding in the bound tests.  Distances
# of nearly equal vectors lose about sqrt(eps * |x|^2) ~ 0.08 to cancellation.
_MARGIN = 0.25

# Up to this many centres the nearest two are found by a loop over centres.
_COLUMN_LOOP = 32

# Below this many point-centre pairs a full search is cheaper than bounds.
_SMALL_WORK = 1 << 19

# Neighbour lists are reused for this many moves while no centre moves more
# than _RING_SHIFT levels.
_RING_REUSE = 4
_RING_SHIFT = 1.0

# Sizes of the neighbour lists a local search may use before a full one.
_TIERS = (16, 64)


class _Ring(NamedTuple):
    """Neighbour lists of the centres (see :meth:`Assignment._ring`)."""

    order: np.ndarray  # (k, m) nearest other centres, nearest first; None if k is small
    reach: np.ndarray  # (k, len(sizes)) distance to the nearest centre past each list
    sizes: tuple  # list lengths, increasing
    half_gap: np.ndarray  # (k,) half the distance to the nearest other centre


def _two_smallest_rows(dist):
    """Index of the smallest value in each row of (n, k) `dist`, it and the next.

    Returns
    -------
    best : (n,) int64, first : (n,) float32, second : (n,) float32
        Ties go to the lower index.
    """
    best = dist.argmin(axis=1)
    rows = np.arange(len(dist))
    first = dist[rows, best]
    dist[rows, best] = np.inf
    return best, first, dist.min(axis=1)


def _two_smallest_columns(dist):
    """The same for the columns of (k, n) `dist`, for small k.

    numpy reduces short axes slowly (about 100 ns a row): for few centres a
    running minimum over k rows of length n is several times faster.
    ``second`` is inf when k == 1.
    """
    k, n = dist.shape
    best = np.zeros(n, np.int64)
    first = dist[0].copy()
    second = np.full(n, np.inf, np.float32)
    for j in range(1, k):
        row = dist[j]
        better = row < first
        np.minimum(second, np.where(better, first, row), out=second)
        best[better] = j
        np.minimum(first, row, out=first)
    return best, first, second


class Assignment:
    """Labels of points to their nearest centre, kept valid as centres move.

    Parameters
    ----------
    points : (M, C) float32 ndarray
        Point coordinates.  Centre them near zero (subtract 128): with
        integer coordinates and centres every squared distance is then an
        exact float32 integer, so ties and nearest entries are exact.
    centres : (k, C) float32 ndarray
    labels, upper, lower : ndarray, optional
        Bounds inherited from a coarser problem; must be valid bounds for
        `centres`.  Computed from scratch when omitted.

    Attributes
    ----------
    labels : (M,) int64 ndarray
        Index of each point's nearest centre.  When two centres are exactly
        as near, a full search picks the lower index and a local search
        keeps the current one: deterministic, but not always the lower.
    upper : (M,) float32 ndarray
        Upper bound of the distance to ``centres[labels]``.
    lower : (M,) float32 ndarray
        Lower bound of the distance to every other centre.
    """

    def __init__(self, points, centres, labels=None, upper=None, lower=None):
        self.points = np.ascontiguousarray(points, np.float32)
        self.centres = np.array(centres, np.float32)
        self._cached_ring, self._ring_age = None, 0
        if labels is None:
            everyone = np.arange(len(self.points))
            self.labels = np.zeros(len(self.points), np.int64)
            self.upper = np.empty(len(self.points), np.float32)
            self.lower = np.empty(len(self.points), np.float32)
            self._search(everyone)
        else:
            self.labels, self.upper, self.lower = labels, upper, lower

    def _search(self, which):
        """Find the two nearest centres of points `which` (exact search)."""
        centres = self.centres
        norms = np.einsum("ij,ij->i", centres, centres)
        for start in range(0, len(which), _BLOCK):
            idx = which[start : start + _BLOCK]
            pts = self.points[idx]
            if len(centres) > _COLUMN_LOOP:
                best, first, second = _two_smallest_rows(pts @ (-2.0 * centres.T) + norms)
            else:
                best, first, second = _two_smallest_columns((-2.0 * centres) @ pts.T + norms[:, None])
            own = np.einsum("ij,ij->i", pts, pts)
            self.labels[idx] = best
            self.upper[idx] = np.sqrt(np.maximum(first + own, 0))
            self.lower[idx] = np.sqrt(np.maximum(second + own, 0))

    def move(self, centres):
        """Move the centres and restore exact nearest labels.

        Parameters
        ----------
        centres : (k, C) ndarray
            The new centre positions (same k).

        Returns
        -------
        int
            How many points changed label.
        """
        centres = np.asarray(centres, np.float32)
        before = self.labels.copy()
        if len(self.points) * len(centres) <= _SMALL_WORK:
            # Bookkeeping would cost more than searching everything.
            self.centres = centres.copy()
            self._search(np.arange(len(self.points)))
            return int(np.count_nonzero(self.labels != before))
        shift = np.sqrt(((centres - self.centres) ** 2).sum(axis=1))
        self.centres = centres.copy()
        labels = self.labels
        self.upper += shift[labels]
        ring = self._ring(shift)
        # The lower bound covers every other centre in two parts.  The listed
        # neighbours of a point's centre: the old bound minus the largest of
        # their shifts.  All the others: at least (distance from the centre
        # to the nearest unlisted one) - upper, by the triangle inequality.
        if ring.order is None:
            order = np.argsort(shift)
            runner_up = shift[order[-2]] if len(shift) > 1 else 0.0
            near = self.lower - np.where(labels == order[-1], runner_up, shift[order[-1]])
            far = np.full(len(labels), np.inf, np.float32)
        else:
            near = self.lower - shift[ring.order].max(axis=1)[labels]
            far = ring.reach[labels, -1]
        self.lower = np.minimum(near, far - self.upper)
        # Hamerly's second test: half the gap to the nearest other centre.
        floor = np.maximum(self.lower, ring.half_gap[labels])
        suspect = np.flatnonzero(self.upper + _MARGIN > floor)
        if len(suspect):
            # Tighten the upper bound first: most suspects are still fine.
            diff = self.points[suspect] - self.centres[labels[suspect]]
            self.upper[suspect] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            self.lower[suspect] = np.minimum(near[suspect], far[suspect] - self.upper[suspect])
            floor = np.maximum(self.lower[suspect], ring.half_gap[labels[suspect]])
            self._search_near(suspect[self.upper[suspect] + _MARGIN > floor], ring)
        return int(np.count_nonzero(self.labels != before))

    def _ring(self, shift=None):
        """Each centre's nearest other centres, nearest first, for local searches.

        Rebuilding the lists costs a k x k distance matrix and a partial
        sort.  After small moves the previous lists are kept with their
        distances lowered by the shifts (still valid bounds, any list being
        a valid split of the centres); they are rebuilt every few moves or
        after a large one.
        """
        cached = self._cached_ring
        if cached is not None and shift is not None and self._ring_age < _RING_REUSE:
            largest = float(shift.max())
            if largest <= _RING_SHIFT:
                ring = cached._replace(
                    reach=cached.reach - (shift + largest)[:, None] if cached.reach is not None else None,
                    half_gap=cached.half_gap - 0.5 * (shift + largest),
                )
                self._cached_ring, self._ring_age = ring, self._ring_age + 1
                return ring
        ring = self._build_ring()
        self._cached_ring, self._ring_age = ring, 0
        return ring

    def _build_ring(self):
        c = self.centres.astype(np.float64)
        k = len(c)
        gram = c @ c.T
        norms = np.diag(gram)
        dist = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0))
        np.fill_diagonal(dist, np.inf)
        sizes = tuple(m for m in _TIERS if m < k - 1)
        if not sizes:
            return _Ring(None, None, (), (0.5 * dist.min(axis=1)).astype(np.float32))
        widest = sizes[-1]
        part = np.argpartition(dist, widest, axis=1)[:, : widest + 1]
        rows = np.arange(k)[:, None]
        part = part[rows, np.argsort(dist[rows, part], axis=1, kind="stable")]
        ranked = dist[rows, part].astype(np.float32)
        # reach[:, t]: distance to the nearest centre outside tier t's list.
        reach = ranked[:, list(sizes)]
        return _Ring(part[:, :widest], reach, sizes, 0.5 * ranked[:, 0])

    def _search_near(self, which, ring):
        """Exact nearest centres of `which`, searching as few centres as is safe.

        A centre outside the m nearest neighbours of a point's centre c is at
        least ``reach`` from c; for a point nearer than ``reach / 2`` to c it
        cannot beat c, so those m suffice.  Each point goes to the smallest
        list that is safe for it, or to a full search.
        """
        if not len(which):
            return
        if ring.order is None:
            self._search(which)
            return
        own = self.labels[which]
        distance = self.upper[which]  # exact here: tightened by the caller
        tier = np.full(len(which), len(ring.sizes), np.int64)
        for t in range(len(ring.sizes) - 1, -1, -1):
            tier[distance + _MARGIN < 0.5 * ring.reach[own, t]] = t
        for t, size in enumerate(ring.sizes):
            chosen = which[tier == t]
            for start in range(0, len(chosen), _BLOCK):
                self._search_among(chosen[start : start + _BLOCK], ring, t, size)
        self._search(which[tier == len(ring.sizes)])

    def _search_among(self, idx, ring, tier, size):
        """Search points `idx` among their centre and its `size` nearest neighbours."""
        centres = self.centres
        own = self.labels[idx]
        cand = np.column_stack([own, ring.order[own, :size]])
        pts = self.points[idx]
        dist = np.einsum("ij,ij->i", centres, centres)[cand]
        for c in range(pts.shape[1]):
            dist -= 2 * pts[:, c : c + 1] * centres[:, c][cand]
        dist += np.einsum("ij,ij->i", pts, pts)[:, None]
        np.maximum(dist, 0, out=dist)
        np.sqrt(dist, out=dist)
        rows = np.arange(len(idx))
        best = dist.argmin(axis=1)
        current = dist[:, 0].copy()
        first = dist[rows, best]
        dist[rows, best] = np.inf
        self.labels[idx] = cand[rows, best]
        self.upper[idx] = first
        self.lower[idx] = np.minimum(dist.min(axis=1), ring.reach[own, tier] - current)

    def copy(self):
        """An independent copy: same points (shared, read-only), own labels and bounds."""
        twin = Assignment.__new__(Assignment)
        twin.points = self.points
        twin.centres = self.centres.copy()
        twin.labels = self.labels.copy()
        twin.upper = self.upper.copy()
        twin.lower = self.lower.copy()
        twin._cached_ring, twin._ring_age = None, 0
        return twin
