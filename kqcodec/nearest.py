"""Nearest-entry search: which palette entry is closest to each color.

k-means asks this question every iteration and the encoder asks it once
more for the rounded palette.  Both go through :class:`Assignment`, which
keeps Hamerly's bounds: an upper bound on each point's distance to its own
centre and a lower bound on its distance to any other.  When centres move,
the bounds move by at most the shift, and only points whose bounds overlap
are searched again.  Late k-means iterations and the final rounding move
centres by fractions of a level, so most points are never searched again.
The loops over points are compiled (:mod:`_kernels.nearest`), and so are
the distances between centres and the sorting of each centre's neighbour
list; the per-centre bookkeeping (how far centres moved, which centres are
in a list) stays here.
"""

from typing import NamedTuple

import numpy as np

from ._kernels import nearest as kernels

__all__ = ["Assignment"]

# Slack, in color levels, for float32 rounding in the bound tests.
_MARGIN = 0.25

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
            self.search(everyone)
        else:
            # The kernels update these in place: contiguous, of their dtypes.
            self.labels = np.ascontiguousarray(labels, np.int64)
            self.upper = np.ascontiguousarray(upper, np.float32)
            self.lower = np.ascontiguousarray(lower, np.float32)

    def search(self, which):
        """Make the labels and both bounds of points `which` exact, by a full search.

        Parameters
        ----------
        which : (m,) int ndarray
            Rows of `points`.
        """
        kernels.search(self.points, np.ascontiguousarray(which, np.int64),
                       np.ascontiguousarray(self.centres.T), self.labels, self.upper, self.lower)

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
        if len(self.points) * len(centres) <= _SMALL_WORK:
            # Bookkeeping would cost more than searching everything.
            before = self.labels.copy()
            self.centres = centres.copy()
            self.search(np.arange(len(self.points)))
            return int(np.count_nonzero(self.labels != before))
        shift = np.sqrt(((centres - self.centres) ** 2).sum(axis=1)).astype(np.float32)
        self.centres = centres.copy()
        ring = self._ring(shift)
        # The lower bound covers every other centre in two parts.  The listed
        # neighbours of a point's centre: the old bound minus the largest of
        # their shifts.  All the others: at least (distance from the centre
        # to the nearest unlisted one) - upper, by the triangle inequality.
        k = len(centres)
        if ring.order is None:
            largest = int(np.argmax(shift))
            near_drop = np.full(k, shift[largest], np.float32)
            near_drop[largest] = np.delete(shift, largest).max() if k > 1 else 0.0
            far = np.full(k, np.inf, np.float32)
            reach = np.zeros((k, 0), np.float32)
            order = np.zeros((k, 0), np.int64)
        else:
            near_drop = shift[ring.order].max(axis=1)
            far = np.ascontiguousarray(ring.reach[:, -1])
            reach, order = np.ascontiguousarray(ring.reach), np.ascontiguousarray(ring.order)
        # Every per-centre array is float32 (int64 for the lists) already:
        # asarray, not astype, so as not to copy them at every move.
        return int(kernels.move(self.points, self.centres, np.ascontiguousarray(self.centres.T),
                                self.labels, self.upper, self.lower, shift,
                                np.asarray(near_drop, np.float32), np.asarray(far, np.float32),
                                np.asarray(ring.half_gap, np.float32),
                                np.asarray(reach, np.float32), np.asarray(order, np.int64),
                                np.array(ring.sizes, np.int64), _MARGIN))

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
        dist = np.empty((k, k))
        # einsum, not a BLAS product: these distances set the neighbour lists,
        # and a processor's own rounding would change which points a move
        # searches, and so which of two equally near centres they keep.
        kernels.centre_distances(np.einsum("ij,kj->ik", c, c), dist)
        sizes = tuple(m for m in _TIERS if m < k - 1)
        if not sizes:
            return _Ring(None, None, (), (0.5 * dist.min(axis=1)).astype(np.float32))
        widest = sizes[-1]
        # Which centres tie at the edge of a list, and the order of ties
        # within it, are argpartition's: the lists stay numpy's own.
        part = np.ascontiguousarray(np.argpartition(dist, widest, axis=1)[:, : widest + 1])
        order = np.empty((k, widest), np.int64)
        ranked = np.empty((k, widest + 1), np.float32)
        kernels.rank_neighbours(dist, part, order, ranked)
        # reach[:, t]: distance to the nearest centre outside tier t's list.
        reach = ranked[:, list(sizes)]
        return _Ring(order, reach, sizes, 0.5 * ranked[:, 0])

    def own_and_next(self):
        """Squared distances to each point's own centre and to the nearest other one.

        Returns
        -------
        own, other : (M,) float64 ndarray
            ``other`` is inf when there is one centre.
        """
        own, other = np.empty(len(self.points)), np.empty(len(self.points))
        kernels.own_and_next(self.points, np.ascontiguousarray(self.centres.T), self.labels,
                             own, other)
        return own, other

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
