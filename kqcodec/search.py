"""Choosing k from what the user wants: a PSNR to reach, or a size to fit.

Nobody wants k for its own sake.  :func:`find_k` takes a target and finds
the palette size that meets it, measuring each k it tries exactly as the
file would be written:

* its **PSNR** from the color histogram, which is what :func:`metrics.psnr`
  measures on the decoded pixels (the sums are the same, grouped by color);
* its **size** as the length of the PNG bytes that would be written.

The histogram is computed once.  Each k tried is a full k-means
warm-started from the palette of the nearest k already tried (see
:func:`kmeans.resize_centres`), so that neighbouring palettes are alike and
cheap to find.  The ks are chosen by interpolation in log k (PSNR and log
size are close to linear in log k), safeguarded by bisection.

What "exact" means
------------------
k-means gives no guarantee that PSNR grows with k, and deflate none that
size does, so "the smallest k that reaches the PSNR" cannot be certified
without encoding every k.  The search keeps a bracket instead, and returns:

* for a PSNR target, a k whose file reaches the target while the search's
  encoding at k - 1 falls short (or k is 2);
* for a size budget, a k whose file fits while the search's encoding at
  k + 1 does not (or k is the upper bound).

Both neighbours are encoded and measured, and the file returned is the one
measured: it never falls below the target nor goes over the budget.  k + 1's
size is measured too, by compressing it, unless its estimate is over the
budget by more than the estimates' measured error (see find_k's
`estimate_error`): its compression, as dear as the answer's, would only
confirm it.  When PSNR and size do grow with k, as on photos, this is the
smallest (largest) such k.  Where they do not, a k further away may also
qualify: the bracket guarantees only the neighbour.
"""

import contextlib
import math
import threading
from dataclasses import dataclass, field

import numpy as np

from .defaults import K_RANGE
from .errors import TargetError, UsageError

__all__ = ["Trial", "Choice", "find_k", "check_target"]

# PSNR gained per doubling of k, and log2 of size per doubling, used only to
# place the first guess below the upper bound.  Medians over
# ../shared/corpus/public between k = 16 and 256 (see benchmarks/).
_DB_PER_DOUBLING = 2.7
_SIZE_EXPONENT = 0.4

# The real size of a file over its estimate (see estimate_size in find_k)
# before any k is compressed for real: 0.94 to 1.02 on the pictures of
# ../shared/corpus/public.
_RATIO = 1.0

# How far apart, in log2, the estimates of neighbouring ks often err: 1%.
_NOISE = math.log2(1.01)

# How far a calibrated estimate is often off the real size, in log2: 0.4%
# within a few ks of a k compressed for real (see _Search.calibrated).
_CALIBRATED_NOISE = math.log2(1.004)

# How many ks from a k compressed for real its ratio of real to estimated
# size bounds another k's (see find_k's `estimate_error`).
_NEAR_DRIFT = 2

# Real compressions placed by the estimates before the real sizes alone
# narrow the bracket: 2 to 4 on the pictures of ../shared/corpus/public.
_GUIDED = 5

# The first k of each bit depth after the first (2, 4 and 8 bits): a palette
# PNG's image data doubles there, and its size jumps (on a flat chart of
# ../shared/corpus/public, by 41% from k = 4 to 5 and 8% from 16 to 17).
# These are ks asked for: a picture with fewer colors than k has a smaller
# depth, which only makes a guide less apt, never an answer less exact.
_DEPTH_STARTS = (3, 5, 17)

# A histogram PSNR this close to the target is checked on the pixels: the
# sums are the same, but float rounding could differ in the last bits.
_PSNR_SLACK = 1e-6

@dataclass(frozen=True, eq=False)
class Trial:
    """One palette size the search encoded.

    Attributes
    ----------
    k : int
        Palette size asked for.
    colors : int
        Entries actually used (fewer than k when the picture has few colors).
    psnr : float
        dB against the picture, ``inf`` when identical.
    size : int or None
        Bytes of the PNG file; None when the search did not need it.
    palette : (P, C) uint8 ndarray
        The palette found at k (every pixel takes its nearest entry).
    estimate : float or None
        The size search's estimate of the file's bytes, when it made one.
    speed : int or None
        The effort of the palette search at k, when it is not the speed
        asked: a size search clusters first at the fastest (see
        :func:`quantizer.choose_k`), and may try that k again at the speed
        asked.  None otherwise.
    """

    k: int
    colors: int
    psnr: float
    size: int = None
    palette: np.ndarray = field(default=None, repr=False)  # 256 rows would flood a notebook
    estimate: float = None
    speed: int = None


@dataclass(frozen=True, eq=False)
class Choice:
    """The palette size a target led to, with the file's bytes and the ks tried.

    Attributes
    ----------
    k : int
    image : PaletteImage
        The quantized picture at k.
    data : bytes
        Its PNG file, exactly as measured.
    psnr : float
    trials : tuple of Trial
        Every k encoded, in the order tried.
    """

    k: int
    image: object
    data: bytes = field(repr=False)  # a whole PNG file would flood a notebook
    psnr: float
    trials: tuple

    @property
    def size(self):
        """Bytes of the PNG file."""
        return len(self.data)


def check_target(target_psnr=None, max_bytes=None):
    """Check that exactly one target is given and valid; return it normalised.

    Returns
    -------
    (float or None, int or None)

    Raises
    ------
    UsageError
        If both or neither are given, the PSNR is not a finite positive
        number of dB, or the budget is not a positive integer.
    """
    if (target_psnr is None) == (max_bytes is None):
        raise UsageError("give one target: a PSNR to reach or a number of bytes to fit in")
    if target_psnr is not None:
        if isinstance(target_psnr, bool):
            raise UsageError(f"the target PSNR must be a number of dB, not {target_psnr!r}")
        try:
            target_psnr = float(target_psnr)
        except (TypeError, ValueError):
            raise UsageError(f"the target PSNR must be a number of dB, not {target_psnr!r}") from None
        if not 0 < target_psnr < math.inf:
            raise UsageError(f"the target PSNR must be a positive number of dB, not {target_psnr}")
    if max_bytes is not None:
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, (int, np.integer)) or max_bytes < 1:
            raise UsageError(f"the size budget must be a positive number of bytes, not {max_bytes!r}")
        max_bytes = int(max_bytes)
    return target_psnr, max_bytes


class _Search:
    """The encodings made so far at each k, and how to make one more."""

    def __init__(self, encode_at, exact_psnr, target_psnr=math.nan, estimate=None, write=None,
                 estimate_error=None, budget=None, one_thread=None, psnr_of=None):
        self.encode_at, self.exact_psnr, self.target_psnr = encode_at, exact_psnr, target_psnr
        self.psnr_of = psnr_of
        self.estimate, self.estimate_error = estimate, estimate_error
        self.write = write if write is not None else (lambda image: image.to_png())
        self.budget, self.one_thread = budget, one_thread
        self.images, self.psnrs, self.sizes, self.files = {}, {}, {}, {}
        self.estimates, self.kinds = {}, {}
        self.order = []
        # k -> file: a neighbour compressed beside another k (see data),
        # which the search has not asked for yet.
        self.spare = {}

    def image(self, k):
        """The encoding at k, warm-started from the nearest k encoded so far."""
        if k not in self.images:
            done = sorted(self.images, key=lambda j: (abs(math.log(j / k)), -j))
            image = self.encode_at(k, done[0] if done else None)
            self.images[k] = image
            self.psnrs[k] = self._psnr(image)
            self.order.append(k)
        return self.images[k]

    def _psnr(self, image):
        if self.psnr_of is not None:
            return self.psnr_of(image)
        value = image.psnr
        if (self.exact_psnr is not None and math.isfinite(value)
                and abs(value - self.target_psnr) < _PSNR_SLACK):
            # Too close to call from the histogram's float sums: measure the
            # pixels exactly as the report does.
            value = self.exact_psnr(image)
        return value

    def psnr(self, k):
        self.image(k)
        return self.psnrs[k]

    def size(self, k):
        """Bytes of the PNG file at k."""
        return len(self.data(k))

    def data(self, k):
        """The PNG file at k (kept: the search's answer is one of them).

        Where the compression at k leaves a core idle (see find_k's
        `one_thread`), a neighbour already encoded and estimated is
        compressed beside it, on a second thread, and kept aside until the
        search asks for it: what the search knows, and so the ks it tries,
        do not change.
        """
        if k not in self.files:
            data = self.spare.pop(k, None)
            if data is None:
                neighbour = self._neighbour(k)
                data = self.write(self.image(k)) if neighbour is None else self._beside(k, neighbour)
            self.files[k], self.sizes[k] = data, len(data)
        return self.files[k]

    def _neighbour(self, k):
        """The neighbour of k to compress beside it, or None.

        k + 1 first where k's calibrated estimate fits the budget (the
        search will need k + 1's size if k fits), k - 1 first otherwise;
        either only if already encoded and estimated, of the same kind as k
        (the same bit depth and deflate level: as dear to compress, so that
        k's compression does not wait for a longer one), compressed on one
        thread too, not yet compressed, and (k + 1) not surely over the
        budget.
        """
        if self.budget is None or self.one_thread is None or k not in self.estimates \
                or not self.one_thread(self.images[k]):
            return None
        order = (k + 1, k - 1) if self.calibrated(k) <= self.budget else (k - 1, k + 1)
        for j in order:
            if (j in self.estimates and j not in self.files and j not in self.spare
                    and self.kinds[j] == self.kinds[k] and self.one_thread(self.images[j])
                    and not (j == k + 1 and self.surely_over(j, self.budget))):
                return j
        return None

    def _beside(self, k, j):
        """The file at k, compressed while j's is compressed on a second thread (kept aside)."""
        spare = []

        def neighbour():
            # A neighbour that fails is only left out: the search compresses
            # it again, and meets the error then, if it needs it.
            with contextlib.suppress(Exception):
                spare.append(self.write(self.images[j]))

        thread = threading.Thread(target=neighbour, name="kqcodec-neighbour", daemon=True)
        thread.start()
        try:
            data = self.write(self.images[k])
        finally:
            thread.join()
        if spare:
            self.spare[j] = spare[0]
        return data

    def estimated(self, k):
        """The estimated bytes of the file at k, with what sets its ratio to the real size."""
        if k not in self.estimates:
            self.estimates[k], self.kinds[k] = self.estimate(self.image(k))
        return self.estimates[k]

    def calibrated(self, k):
        """The estimate at k scaled by the real/estimated ratio measured nearby.

        The ratio is interpolated in log k between the nearest ks of the same
        kind compressed for real on either side, or taken from the nearest
        one (of any kind when none is of the same kind; `_RATIO` when
        nothing was compressed).  Exact at a k compressed for real.
        """
        if k in self.sizes:
            return self.sizes[k]
        estimate = self.estimated(k)
        real = [j for j in self.sizes if j in self.estimates]
        same = [j for j in real if self.kinds[j] == self.kinds[k]] or real
        if not same:
            return estimate * _RATIO
        ratio = {j: self.sizes[j] / self.estimates[j] for j in same}
        below = max((j for j in same if j < k), default=None)
        above = min((j for j in same if j > k), default=None)
        if below is not None and above is not None:
            t = math.log(k / below) / math.log(above / below)
            return estimate * (ratio[below] + t * (ratio[above] - ratio[below]))
        return estimate * ratio[min(same, key=lambda j: (abs(math.log(j / k)), -j))]

    def surely_over(self, k, budget):
        """True if the estimate at k puts its file over `budget` by more than estimates err.

        See find_k's `estimate_error` for the least real size an estimate
        allows.  False without an estimate at k or a bound on its error.
        """
        if k not in self.estimates or self.estimate_error is None:
            return False
        lowest_ratio, drift = self.estimate_error
        lowest = self.estimates[k] * lowest_ratio
        for j in self.sizes:
            if j in self.estimates and self.kinds[j] == self.kinds[k] and abs(j - k) <= _NEAR_DRIFT:
                lowest = max(lowest, self.estimates[k] * self.sizes[j] / self.estimates[j] * (1 - drift))
        return lowest > budget

    def trials(self):
        return tuple(Trial(k, len(self.images[k].palette), self.psnrs[k], self.sizes.get(k),
                           self.images[k].palette, self.estimates.get(k)) for k in self.order)


def _middle(lo, hi):
    """Bisection point of (lo, hi): geometric while the bracket is wide."""
    k = round(math.sqrt(lo * hi)) if hi > 2 * lo else (lo + hi) // 2
    return min(max(k, lo + 1), hi - 1)


def _depth(k, starts):
    """The first and last k of k's bit depth, with `starts` the first k of each depth after 2."""
    first = max((s for s in starts if s <= k), default=2)
    return first, min((s for s in starts if s > k), default=257) - 1


def _within_depth(k, lo, hi, known, starts):
    """k, or the depth edge nearest the end of (lo, hi) that k is in another depth than.

    A value that jumps between depths cannot be interpolated across them:
    the edge's value, measured first, lets the next prediction stay within
    one depth.  That edge is the end's own depth's (its first or last k),
    or, where the end is that k already, the next depth's towards k.
    """
    first, _ = _depth(hi, starts)
    if k < first:
        edge = first if first < hi else first - 1
        if lo < edge < hi and edge not in known:
            return edge
    if lo >= 2:
        _, last = _depth(lo, starts)
        if k > last:
            edge = last if last > lo else last + 1
            if lo < edge < hi and edge not in known:
                return edge
    return k


def _predict(lo, hi, known, slope, model=None, starts=(), edges=True):
    """The k inside (lo, hi) where the value is predicted to cross 0.

    With a `model` of the value, the measured values correct it (see
    :func:`_corrected`).  Otherwise:

    Between two measured ends, linear interpolation in log2 k (regula
    falsi).  With one end only (lo = 1 stands for "below 2"), the value at
    `hi` is extrapolated with a gradient: the secant to another measured k
    at least a quarter doubling away, kept within a factor 4 of `slope`, or
    `slope` itself.

    With `starts` (the first k of each bit depth where the value jumps,
    see `_DEPTH_STARTS`), the secant is taken within hi's depth, and a k
    predicted in another depth than the measured end it comes from gives
    way to the depth edge nearest that end (see :func:`_within_depth`),
    unless `edges` is false.
    """
    if model is not None:
        k = _corrected(lo, hi, known, model)
        if k is not None:
            return k
    y_hi, y_lo = known.get(hi), known.get(lo)
    if y_hi is None or not math.isfinite(y_hi):
        return _middle(lo, hi)
    if y_lo is not None and math.isfinite(y_lo) and y_hi > y_lo:
        x = math.log2(lo) + (0 - y_lo) / (y_hi - y_lo) * (math.log2(hi) - math.log2(lo))
    elif y_lo is None:
        gradient = slope
        others = [k for k, y in known.items()
                  if k > hi + 0.19 * hi and math.isfinite(y)
                  and (not starts or _depth(k, starts) == _depth(hi, starts))]
        if others:
            k2 = min(others)
            secant = (known[k2] - y_hi) / (math.log2(k2) - math.log2(hi))
            gradient = min(max(secant, slope / 4), slope * 4)
        x = math.log2(hi) - y_hi / gradient
    else:
        return _middle(lo, hi)
    k = min(max(round(2**x), lo + 1), hi - 1)
    return _within_depth(k, lo, hi, known, starts) if starts and edges else k


def _corrected(lo, hi, known, model):
    """The first k inside (lo, hi) where the model plus its correction reaches 0.

    The correction is the measured value less the model's at the measured
    ks: interpolated in log2 k between the ends of the bracket, or, when
    one end is not measured, extrapolated from the other through the
    nearest measured k at least a quarter doubling beyond it (or constant
    without one).  None when
    neither end has a finite correction.

    With one end measured, the k returned is one below the predicted
    crossing: the answer needs its neighbour below measured as well, and a
    k that falls short brackets the answer from both sides at once.
    """
    def residual(k):
        y, m = known.get(k), model(k)
        return y - m if y is not None and math.isfinite(y) and math.isfinite(m) else None

    ends = [(k, residual(k)) for k in (lo, hi) if residual(k) is not None]
    if not ends:
        return None
    below = 1 if len(ends) == 1 else 0
    if len(ends) == 1:
        end = ends[0][0]
        # At least a quarter doubling away: neighbours' values differ by
        # less than their noise.
        beyond = [k for k in known if (k > hi if end == hi else k < lo)
                  and abs(math.log2(k / end)) >= 0.25 and residual(k) is not None]
        if beyond:
            nearest = min(beyond, key=lambda k: abs(math.log2(k / end)))
            ends.append((nearest, residual(nearest)))
    if len(ends) == 1:
        def correction(k):
            return ends[0][1]
    else:
        (k0, r0), (k1, r1) = ends

        def correction(k):
            return r0 + (math.log2(k / k0)) / math.log2(k1 / k0) * (r1 - r0)
    for k in range(lo + 1, hi):
        if model(k) + correction(k) >= 0:
            return max(k - below, lo + 1)
    return hi - 1


def _narrow(lo, hi, value, above, slope, seen=(), model=None, patience=3, settle=None,
            starts=()):
    """Shrink a bracket to two adjacent ks.

    Each k tried is placed where the measured values predict the target
    (see :func:`_predict`); when the same end of the bracket has moved
    `patience` times in a row the predictions are off, and the next k
    bisects instead.  A depth edge measured instead of a prediction (see
    :func:`_predict`) does not count as a move: it measures where the value
    jumps, and tells nothing of how far off the predictions are.
    A `model` predicts better, and is trusted for five moves.

    Parameters
    ----------
    lo, hi : int
        ``above(hi)`` is true, ``above(lo)`` false (lo = 1: nothing known).
    value : callable
        k -> value with the target at 0, increasing in k where the model
        holds; guides the choice of k.
    above : callable
        k -> bool, the side of the target k is on; decides the bracket.
    slope : float
        Value per doubling of k, to extrapolate from one end.
    seen : iterable of int
        ks already measured, whose values help the predictions.
    model : callable, optional
        k -> a prediction of the value, for every k (see :func:`_corrected`).
    patience : int
        Moves of the same end in a row before bisecting, without a model.
    settle : callable, optional
        k -> bool: a k tried for which it is true ends the narrowing at
        once, as (k, k).
    starts : tuple of int
        The first k of each bit depth, where the value jumps (see
        :func:`_predict`); empty for a value without jumps.

    Returns
    -------
    (lo, hi)
        With hi = lo + 1, the same invariant; or (k, k) for a k settled.
    """
    known = {k: value(k) for k in {*seen, lo, hi} if k >= 2 and k >= lo}
    moved = []
    while hi - lo > 1:
        run = next((i for i, m in enumerate(reversed(moved)) if m != moved[-1]), len(moved))
        edge = False
        if run >= (patience if model is None else 5):
            k = _middle(lo, hi)
        else:
            k = _predict(lo, hi, known, slope, model, starts)
            edge = bool(starts) and k != _predict(lo, hi, known, slope, model, starts, edges=False)
        known[k] = value(k)
        if settle is not None and settle(k):
            return k, k
        if above(k):
            hi = k
        else:
            lo = k
        if not edge:
            moved.append(k == hi)
    return lo, hi


def find_k(encode_at, *, target_psnr=None, max_bytes=None, max_colors=256, exact_psnr=None,
           predict_psnr=None, estimate_size=None, write=None, estimate_error=None,
           one_thread=None, psnr_of=None):
    """Find the palette size that meets a PSNR target or a size budget.

    Parameters
    ----------
    encode_at : callable
        ``encode_at(k, near)`` returns the :class:`PaletteImage` of the
        picture at k (with its ``psnr``), warm-started from the clustering
        it made at k = `near`, or cold when `near` is None.  The search
        expects the same answer for the same arguments.
    target_psnr : float, optional
        dB the file must reach; the search looks for the smallest such k.
    max_bytes : int, optional
        Bytes the PNG file must fit in; the search looks for the largest
        such k.  Exactly one of the two targets is given.
    max_colors : int
        The largest k considered, 2..256.
    exact_psnr : callable, optional
        ``exact_psnr(image)`` measures the PSNR on the pixels, used when the
        histogram's value is within 1e-6 dB of the target.
    predict_psnr : callable, optional
        ``predict_psnr(k)``, called after the first encoding (at
        `max_colors`): a prediction of the PSNR at any k, which the measured
        ks correct, to place the ks of a PSNR search.  It only guides the
        search; every k it places is encoded and measured.
    estimate_size : callable, optional
        ``estimate_size(image)`` returns ``(bytes, kind)``: a cheap estimate
        of the length of ``image.to_png()``, and a hashable kind such that
        estimates of one kind are off by a ratio that changes slowly with
        k.  A size search then places its ks by the estimates, calibrated
        on the ks it compresses for real, and compresses only those near
        the budget.  Like `predict_psnr` it only guides the search: the
        answer and its neighbour are compressed for real.
    write : callable, optional
        ``write(image)`` returns the PNG file of an image, as the answer
        will be written; ``image.to_png()`` if None.  With `one_thread` it
        may run on two threads at once, for two images.
    estimate_error : (float, float), optional
        ``(lowest, drift)``, bounds on how far below its estimate a file's
        real size can be: at least `lowest` times the estimate, and, within
        two ks of a k of the same kind compressed for real, at least the
        estimate times that k's real/estimated ratio times ``1 - drift``.
        With them, a k + 1 whose estimate these bounds put over the budget
        is not compressed: it does not fit.  Without them (the default)
        k + 1 is always compressed.
    one_thread : callable, optional
        ``one_thread(image)``, for an image whose size was estimated: True
        when ``write(image)`` runs on one thread.  A size search then
        compresses, beside such a k and on a second thread, a neighbour
        already estimated, of the same kind, that it is likely to need next
        (k + 1 when k's estimate fits the budget, else k - 1; the other one
        if that one is not estimated, and k + 1 only if not surely over the
        budget).  That file waits until the search asks for it, so the ks
        tried and the answer are the same as without.  A wrong guess costs
        CPU time on a core left idle, or taken from other work where every
        core is busy (several searches at once).
    psnr_of : callable, optional
        ``psnr_of(image)``: the PSNR of every encoding, measured by this
        instead of read from the image (and `exact_psnr`), when the target
        is measured elsewhere than in the values quantized.

    Returns
    -------
    Choice
        See the module docs for what is guaranteed of ``k``.

    Raises
    ------
    TargetError
        If the target cannot be met: `max_colors` colors fall short of the
        PSNR, or 2 colors do not fit in the budget.  Its ``closest`` is the
        Choice at that k.
    UsageError
        For a bad target or `max_colors`.
    """
    target_psnr, max_bytes = check_target(target_psnr, max_bytes)
    if isinstance(max_colors, bool) or not isinstance(max_colors, (int, np.integer)) \
            or max_colors not in K_RANGE:
        raise UsageError(f"the largest palette must be from {K_RANGE.start} to {K_RANGE[-1]} "
                         f"colors, not {max_colors!r}")
    max_colors = int(max_colors)
    search = _Search(encode_at, exact_psnr, math.nan if target_psnr is None else target_psnr,
                     estimate_size, write, estimate_error, max_bytes, one_thread, psnr_of)
    if target_psnr is not None:
        k = _search_psnr(search, target_psnr, max_colors, predict_psnr)
    elif estimate_size is not None:
        k = _search_size_estimated(search, max_bytes, max_colors)
    else:
        k = _search_size(search, max_bytes, max_colors)
    return _choice(search, k)


def _choice(search, k):
    data = search.data(k)
    return Choice(k, search.image(k), data, search.psnrs[k], search.trials())


def _unreachable(search, k, message):
    """The TargetError of a target out of reach, with the encoding at k nearest it."""
    error = TargetError(message)
    error._closest = lambda: _choice(search, k)
    return error


def _search_psnr(search, target, max_colors, predict=None):
    best = search.psnr(max_colors)
    if best < target:
        raise _unreachable(search, max_colors,
                           f"{max_colors} colors reach {best:.2f} dB, below the {target:g} dB asked")
    model = None if predict is None else (lambda k: predict(k) - target)
    _, hi = _narrow(1, max_colors, lambda k: search.psnr(k) - target,
                    lambda k: search.psnr(k) >= target, _DB_PER_DOUBLING, model=model)
    return hi


def _search_size(search, budget, max_colors):
    if search.size(max_colors) <= budget:
        return max_colors
    log_budget = math.log2(budget)
    lo, _ = _narrow(1, max_colors, lambda k: math.log2(search.size(k)) - log_budget,
                    lambda k: search.size(k) > budget, _SIZE_EXPONENT)
    return _fitting(search, budget, lo)


def _fitting(search, budget, lo):
    if lo < 2:
        raise _unreachable(search, 2,
                           f"2 colors take {search.size(2)} bytes, more than the {budget} allowed")
    return lo


def _search_size_estimated(search, budget, max_colors):
    """A size search that compresses for real only the ks the estimates place at the budget.

    The bracket (lo, hi) holds real sizes: the file at lo fits (lo = 1:
    nothing known), the one at hi does not (hi = max_colors + 1: nothing
    needed).  Each round narrows the estimates, calibrated on the real
    sizes (see :meth:`_Search.calibrated`), to the two adjacent ks they
    place on either side of the budget, and compresses for real the one
    of them whose estimate is nearer the budget: the other one's side is
    the surer.  Its real size moves an end of the bracket and recalibrates
    the estimates nearby.  After `_GUIDED` real compressions the estimates
    are off, and the real sizes alone narrow what is left of the bracket,
    as without estimates.  Once the file at lo fits, an estimate at lo + 1
    over the budget by more than the estimates err (see
    :meth:`_Search.surely_over`) ends the search without compressing it.
    """
    def closed(lo):
        # The file at lo fits, and the estimate at lo + 1 is over the
        # budget by more than estimates err: no need to compress it.
        return 2 <= lo < max_colors and search.surely_over(lo + 1, budget)

    lo, hi = 1, max_colors + 1
    for _ in range(_GUIDED):
        if closed(lo):
            return lo
        if hi - lo <= 1:
            break
        k, estimate = _nearest_budget(search, budget, lo, hi, max_colors)
        if estimate:
            search.estimated(k)
            if k == lo + 1 and closed(lo):
                return lo
        if search.size(k) > budget:
            hi = k
        else:
            lo = k
    if closed(lo):
        return lo
    if hi > max_colors:
        if search.size(max_colors) <= budget:
            return max_colors
        hi = max_colors
    if hi - lo > 1:
        log_budget = math.log2(budget)
        lo, _ = _narrow(lo, hi, lambda k: math.log2(search.size(k)) - log_budget,
                        lambda k: search.size(k) > budget, _SIZE_EXPONENT, seen=list(search.sizes))
    if lo < 2:
        lo = _larger_fitting(search, budget, max_colors) or lo
    return _fitting(search, budget, lo)


def _larger_fitting(search, budget, max_colors):
    """Where 2 colors do not fit: a larger k whose file does, with k + 1's not, or None.

    Small files do not always grow with k: on a 0.06 MP crop of a photo
    the search's files at k = 2 and 3 took 1,497 and 1,365 bytes, and
    k = 3's estimate (1,420) had put it over a budget of 1,400.  Before
    the target is called out of reach, each k estimated that the estimates'
    error leaves a chance of fitting is compressed, smallest first; from
    the first that fits, k goes up while k + 1 fits too.
    """
    for k in sorted(j for j in search.estimates if 2 < j <= max_colors):
        if search.surely_over(k, budget) or search.size(k) > budget:
            continue
        while k < max_colors:
            search.estimated(k + 1)
            if search.surely_over(k + 1, budget) or search.size(k + 1) > budget:
                break
            k += 1
        return k
    return None


def _nearest_budget(search, budget, lo, hi, max_colors):
    """The k in (lo, hi) to compress next, and whether to estimate it first.

    The last k between two real ends of the bracket (not estimated: its
    real size is needed whatever its estimate says); else a k estimated
    within the estimates' noise of the budget, or of the two adjacent ks
    the estimates place around the budget, the doubtful one.  hi =
    max_colors + 1 stands for "none over the budget yet".  The ks estimated
    so far narrow the estimates' bracket first, then :func:`_narrow` places
    new ones.
    """
    def value(k):
        return math.log2(search.calibrated(k) / budget)

    # The last k left needs its real size whatever its estimate says.  A
    # neighbour of a real end with more ks beyond it is estimated first:
    # where the sizes change by 0 to 0.7% a k near the budget, or fall (two
    # photos of ../shared/corpus/public at half their k = 256 size), the
    # sizes known, a real end and an estimate further away, placed the
    # budget next to that end three times in a row while it was two or three
    # ks further, and each step cost a compression.  The estimates (about a
    # fifth of a compression's time, their trial reused by it) tell which k
    # to compress.
    if lo >= 2 and hi <= max_colors and hi - lo == 2:
        return lo + 1, False

    # A k next to a real end of the bracket, estimated within the estimates'
    # noise of the budget or on the far side of it, may close the bracket
    # at once: compress it without estimating more ks.  A real size
    # calibrates them: within its smaller noise, so that where the sizes
    # grow by less than the first noise per k, the search does not step
    # down (up) from a real end one compression at a time.
    noise = _CALIBRATED_NOISE if search.sizes else _NOISE
    closing = [k for k, real in ((hi - 1, hi <= max_colors), (lo + 1, lo >= 2))
               if real and lo < k < hi and k in search.estimates
               and (value(k) <= noise if k == hi - 1 else value(k) >= -noise)]
    if closing:
        return min(closing, key=lambda k: abs(value(k))), True
    # A k estimated within the estimates' noise of the budget is as likely
    # to fit as its neighbours: estimating them would not tell which one is
    # the answer, and its real size will calibrate theirs.  Once a real size
    # calibrates them, the noise is smaller than the step between ks.
    settled = [k for k in search.estimates if lo < k < hi and k <= max_colors
               and abs(value(k)) <= noise]
    if settled:
        return min(settled, key=lambda k: (abs(value(k)), k)), True
    top = hi
    if hi > max_colors:
        if value(max_colors) <= 0:
            return max_colors, True
        top = max_colors
    top = min((k for k in search.estimates if lo < k <= top and value(k) > 0), default=top)
    low = max((k for k in search.estimates if lo < k < top and value(k) <= 0), default=lo)
    # Where log size bends in log k, interpolation may approach the budget
    # from one side for a few ks, and still land nearer it than a bisection
    # (whose k-means is as dear) would.
    pair = _narrow(low, top, value, lambda k: value(k) > 0, _SIZE_EXPONENT,
                   seen=list(search.estimates), patience=5,
                   settle=lambda k: abs(value(k)) <= noise, starts=_DEPTH_STARTS)
    inside = [k for k in pair if lo < k < hi]
    return min(inside, key=lambda k: abs(value(k))), True
