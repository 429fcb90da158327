"""Nearest-entry search: which palette entry is closest to each color.

k-means asks this question every iteration and the encoder asks it once
more for the rounded palette.  Both go through :class:`Assignment`, which
keeps Hamerly's bounds: an upper bound on each point's distance to its own
centre and a lower bound on its distance to any other.  When centres move,
the bounds move by at most the shift, and only points whose bounds overlap
are searched again.  Late k-means iterations and the final rounding move
centres by fractions of a level, so most points are never searched again.
"""

import numpy as np

__all__ = ["Assignment"]

# Rows per block of the distance matrix: bounds memory to about
# _BLOCK * k * 4 bytes whatever the image size.
_BLOCK = 16384

# Slack, in color levels, for float32 rounding in the bound tests.  Distances
# of nearly equal vectors lose about sqrt(eps * |x|^2) ~ 0.08 to cancellation.
_MARGIN = 0.25

# Centres searched around a point's own centre before a full search.
_NEIGHBOURS = 16


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
        Index of each point's nearest centre.
    upper : (M,) float32 ndarray
        Upper bound of the distance to ``centres[labels]``.
    lower : (M,) float32 ndarray
        Lower bound of the distance to every other centre.
    """

    def __init__(self, points, centres, labels=None, upper=None, lower=None):
        self.points = np.ascontiguousarray(points, np.float32)
        self.centres = np.array(centres, np.float32)
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
            dist = pts @ (-2.0 * centres.T)
            dist += norms
            best = dist.argmin(axis=1)
            rows = np.arange(len(idx))
            first = dist[rows, best]
            if dist.shape[1] > 1:
                dist[rows, best] = np.inf
                second = dist.min(axis=1)
            else:
                second = np.full(len(idx), np.inf, np.float32)
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
        shift = np.sqrt(((centres - self.centres) ** 2).sum(axis=1))
        self.centres = centres.copy()
        before = self.labels.copy()
        self.upper += shift[self.labels]
        # A point's lower bound falls by the largest shift among the *other*
        # centres: the second largest for the point owning the largest.
        order = np.argsort(shift)
        top = order[-1]
        runner_up = shift[order[-2]] if len(shift) > 1 else 0.0
        self.lower -= np.where(self.labels == top, runner_up, shift[top])
        neighbours, reach = self._neighbours()
        # Hamerly's second test: half the gap to the nearest other centre.
        floor = np.maximum(self.lower, reach[self.labels, 0])
        suspect = np.flatnonzero(self.upper + _MARGIN > floor)
        if len(suspect):
            # Tighten the upper bound first: most suspects are still fine.
            diff = self.points[suspect] - self.centres[self.labels[suspect]]
            self.upper[suspect] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
            again = suspect[self.upper[suspect] + _MARGIN > floor[suspect]]
            if neighbours is None:
                self._search(again)
            else:
                self._search_near(again, neighbours, reach[:, 1])
        return int(np.count_nonzero(self.labels != before))

    def _neighbours(self):
        """Each centre's nearest other centres, for a search local to them.

        Returns
        -------
        neighbours : (k, m) int64 ndarray or None
            The m nearest other centres of each centre; None when k is so
            small that a full search is as cheap.
        reach : (k, 2) float32 ndarray
            Column 0: half the distance to the nearest other centre (no point
            nearer than that to its centre can be nearer to another).
            Column 1: the distance to the nearest centre *not* listed.
        """
        c = self.centres.astype(np.float64)
        k = len(c)
        gram = c @ c.T
        norms = np.diag(gram)
        dist = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0))
        np.fill_diagonal(dist, np.inf)
        reach = np.empty((k, 2), np.float32)
        if k - 1 <= _NEIGHBOURS:
            reach[:, 0] = 0.5 * dist.min(axis=1)
            reach[:, 1] = np.inf
            return None, reach
        part = np.argpartition(dist, _NEIGHBOURS, axis=1)
        neighbours = part[:, :_NEIGHBOURS]
        rows = np.arange(k)[:, None]
        reach[:, 0] = 0.5 * dist[rows, neighbours].min(axis=1)
        reach[:, 1] = dist[np.arange(k), part[:, _NEIGHBOURS]]
        return neighbours, reach

    def _search_near(self, which, neighbours, reach):
        """Search points among their centre and its neighbours; full search if unsure.

        A centre not listed among c's neighbours is at least ``reach[c]``
        from c, so for a point within ``reach[c] / 2`` of c it cannot be the
        nearest: the listed ones suffice.
        """
        unsure = []
        centres = self.centres
        norms = np.einsum("ij,ij->i", centres, centres)
        table = np.column_stack([np.arange(len(centres)), neighbours])
        for start in range(0, len(which), _BLOCK):
            idx = which[start : start + _BLOCK]
            own = self.labels[idx]
            cand = table[own]
            pts = self.points[idx]
            dist = norms[cand]
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
            self.lower[idx] = np.minimum(dist.min(axis=1), reach[own] - current)
            far = current + _MARGIN >= 0.5 * reach[own]
            unsure.append(idx[far])
        rest = np.concatenate(unsure) if unsure else which[:0]
        if len(rest):
            self._search(rest)

    def refresh(self, which=None):
        """Search points `which` (all by default) again from scratch."""
        which = np.arange(len(self.points)) if which is None else which
        self._search(which)
