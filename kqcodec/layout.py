"""The bytes of a palette PNG's image data: packing, filters, palette order, deflate.

The pixels are fixed by the time the file is written, but their bytes are
not: the palette may be permuted, each row may use one of five filters, and
deflate has levels.  These choices change the file size by several percent:

* With filter type 0 (none) the order of the palette does not matter:
  deflate sees the same symbols under other names.  With a predicting filter
  it does: entries that often stand next to each other should have close
  numbers.  :func:`adjacency_order` chains the entries greedily by how often
  they are neighbours in the image.
* The per-row filter is chosen by the usual heuristic (least sum of
  absolute signed bytes, as libpng does).
* Palettes of up to 16 entries fit in fewer bits per index, but one byte
  per index often compresses better: deflate's repeats are whole bytes.
* The layouts (unfiltered, reordered + filtered, and unfiltered at one byte
  per index for small palettes) are built and given a fast trial
  compression.  The trial says how compressible the data is, which sets the
  deflate level together with the speed (see :func:`final_level`), and
  which layout to keep; on small data (all of them at the slowest speeds,
  those the trial finds within 7% of the best at the default one) and, at
  the slowest speeds, on larger data when the best two are close, those are
  compressed at the final level and the smallest is kept.  At the default
  speed, when one of them holds 128 KB or more, a sixth of their rows at
  the final level ranks them first, and only the best is compressed whole.
  libdeflate (the ``deflate`` package) at level 10 gives files about 5%
  smaller than zlib at level 9, at level 12 about 6%; zlib is the
  fallback.
* Deflate runs on one core.  From 4 MB of image data on (512 KB above
  speed 3), the chosen layout is deflated as two bands of rows on two
  threads, and the two streams are joined into one (as pigz does): at most
  0.04% larger on 6 and 12 MP photos, 0.7% on photos of 1-3 MP, in about
  half the time.  The bands do not depend on the number of threads, so
  neither do the bytes.

No function here knows about chunks; :mod:`pngfile` writes them.
"""

import struct
import threading
import zlib
from typing import NamedTuple

import numpy as np

from ._kernels import layout as kernels
from .defaults import DEFAULT_SPEED
from .errors import UsageError

try:  # libdeflate: smaller and faster than zlib at its high levels
    import deflate as _libdeflate
except ImportError:  # pragma: no cover - the fallback is plain zlib
    _libdeflate = None

__all__ = [
    "bit_depth_for",
    "pack_rows",
    "adjacency_order",
    "compress",
    "final_level",
    "image_data",
    "estimated_size",
    "Estimate",
]

# Deflate level by speed (1..10) and by the image data: up to 512 KB, up to
# 4 MB, and more; in each, for data a trial shrinks less than _FLAT_RATIO
# times (photos), then more (graphics, long runs).  libdeflate's level 10
# starts its near-optimal parsing: 7-14% smaller than level 6 on photos, at
# 5-15 times its time; level 12 is 1-3% smaller again on photos, 5-10% on
# flat data, where it is still fast up to a few MB.  Level 6 does poorly on
# long runs (up to 1.9x level 12's size on a large illustration): flat data
# gets at least 9.  Above 4 MB, level 8 is 4-5% smaller than 6 on photos at
# 3-4 times its time (0.5 s of one core for 12 MB), level 10 12% at 15 times.
_LEVELS = {
    1: (12, 12, 12, 12, 12, 12), 2: (12, 12, 12, 12, 10, 10), 3: (12, 12, 10, 12, 10, 10),
    4: (12, 12, 10, 12, 8, 9), 5: (10, 10, 10, 10, 6, 9), 6: (10, 10, 9, 9, 6, 9),
    7: (9, 9, 6, 9, 6, 8), 8: (9, 9, 6, 9, 6, 6), 9: (9, 9, 6, 9, 5, 6), 10: (9, 9, 6, 9, 4, 5),
}
_MEDIUM_FROM = 1 << 19
_LARGE_FROM = 4 << 20
# The trial's level, and the ratio by which a trial shrinking the data marks
# it as flat.  Level 6 ranks the two layouts as the stronger levels do far
# more often than level 1.
_TRIAL_LEVEL = 6
_FLAT_RATIO = 10.0
# estimated_size compresses at most this many bytes of the layout it
# estimates at the trial's level (in bands spread over the image), and
# measures the final level's gain over the trial's on a sample within these
# bounds.
_ESTIMATE_BYTES = 4 << 20
_GAIN_FROM = 32 << 10
_GAIN_UP_TO = 128 << 10
# The trial compresses at most this many bytes, in bands spread over the image.
_TRIAL_BYTES = 1 << 20
_TRIAL_BANDS = 16
# From this much image data on, one layout is deflated in two bands at once,
# one per core, and the two streams are joined into one.  Below it the
# second band's lost history costs more: 0.1-0.7% on photos of 1-3 MP.
# That is the price above _SLOW_UP_TO_SPEED from _MEDIUM_FROM on, for about
# half the wall time of the compression: on ../shared/corpus/public at the
# default speed (k = 16 to 256, data of 0.5 to 4 MB), 0.18% more bytes in
# all, 0.70% at most (a photo), 0.22-0.25% on a flat chart.
_BANDS_FROM = _LARGE_FROM
_FAST_BANDS_FROM = _MEDIUM_FROM
_SLOW_UP_TO_SPEED = 3
# Up to this speed every layout of data below _MEDIUM_FROM is compressed at
# the final level (the one-byte layout within _TRIAL_MARGIN), and up to
# the next one, those whose trial is within _TRIAL_MARGIN of the best:
# on the corpus the plain and filtered layouts of the same data swap places
# at level 12 with trials up to 5.4% apart, never further.  Up to
# _CLOSE_UP_TO_SPEED, the best two of larger data are compressed at the
# final level when the trial finds them this close: the trial cannot tell
# such layouts apart.
_ALL_UP_TO_SPEED = 3
_NEAR_UP_TO_SPEED = 4
_CLOSE_UP_TO_SPEED = 3
_CLOSE = 0.03
# The trial's fast level underrates the one-byte layout, whose long repeats
# only the near-optimal parsing of the final level finds: against 4-bit
# data, on the corpus, it came out smaller at level 12 with a trial up to 6%
# larger than the best, never with one more than 8% larger; beyond this
# margin it is not tried.  Against 1- and 2-bit data (4 or 8 indices a byte)
# the trial misjudges it by more (on a photo at k=4: a trial 11% larger, 5%
# smaller at level 12): it is always tried while it is small data itself
# (below _MEDIUM_FROM), and from there on only within the margin, since it
# holds 4 or 8 times the packed bytes: on the corpus at k = 2 to 4 such
# layouts (0.9 to 2.9 MB) took 58% of the small data's compression time
# (benchmarks/deflate_rules.py -k 2,3,4) and came out smaller once in 16,
# by 1.5%, with a trial 15% larger.
_TRIAL_MARGIN = 0.07
# At _NEAR_UP_TO_SPEED, when the largest of the layouts the trial lets in
# holds _RANK_FROM bytes or more (the one-byte layout of 1-bit data holds 8
# times the packed bytes), they are ranked by the final level itself on a
# sample, a sixth of the rows in four bands, and only the best is
# compressed whole.  On ../shared/corpus/public at k = 2 to 256 that is a
# third less CPU for the small data's compression, and 3 of 128 files
# larger (skimage_logo.png at k = 16 by 3.5%, the others by 0.4% or less);
# one band, two, or 16 short ones rank worse (up to 5-11% larger), and so
# does the sample below 128 KB, where the whole layouts cost little
# (mpl_logo2_rgba.png at k = 2: 11% larger): benchmarks/deflate_rules.py.
_RANK_FROM = 128 << 10
_RANK_SHARE = 6
_RANK_BANDS = 4


def bit_depth_for(entries):
    """Return the smallest PNG palette bit depth (1, 2, 4 or 8) that holds `entries`.

    Parameters
    ----------
    entries : int
        Palette size, 1 to 256.

    Returns
    -------
    {1, 2, 4, 8}

    Raises
    ------
    ValueError
        For more than 256 entries.
    """
    for depth in (1, 2, 4, 8):
        if entries <= 1 << depth:
            return depth
    raise ValueError(f"a palette holds at most 256 entries, not {entries}")


def pack_rows(indices, depth):
    """Pack indices into bytes, leftmost pixel in the high bits (PNG #7.2).

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
        Every value below ``2 ** depth``.
    depth : {1, 2, 4, 8}

    Returns
    -------
    (H, ceil(W * depth / 8)) uint8 ndarray
    """
    if depth == 8:
        return indices
    out = np.empty((indices.shape[0], -(-indices.shape[1] * depth // 8)), np.uint8)
    kernels.pack_rows(np.ascontiguousarray(indices), depth, out)
    return out


def _scanlines(rows, kinds):
    """Prefix each row with its filter type byte."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    out[:, 0] = kinds
    out[:, 1:] = rows
    return out


def _adaptive(rows):
    """Filter each row with the type whose output has the least absolute sum."""
    out = np.empty((rows.shape[0], rows.shape[1] + 1), np.uint8)
    kernels.adaptive_filter(np.ascontiguousarray(rows), out)
    return out


def adjacency_order(indices, entries, *, first=0):
    """A palette order that numbers often-adjacent entries consecutively.

    Builds the counts of horizontally and vertically adjacent index pairs
    and covers the entries with paths, taking the heaviest pairs first
    (greedy matching, as for a travelling-salesman tour), then joins the
    paths.  Entries ``0..first-1`` (the transparent ones) stay first.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
    entries : int
        Palette size P.
    first : int
        How many leading entries keep their place at the front.

    Returns
    -------
    (P,) int64 ndarray
        ``order[new] = old``.
    """
    counts = np.zeros((entries, entries), np.int64)
    popularity = np.zeros(entries, np.int64)
    kernels.neighbour_counts(np.ascontiguousarray(indices, np.uint8), counts, popularity)
    counts = counts + counts.T
    # The greedy path cover runs compiled (kernels.greedy_paths): a loop over
    # up to 32,640 pairs in Python took 10-17 ms on a 0.25 MP photo at k=256.
    movable = np.arange(first, entries)
    paths = np.empty(len(movable), np.int64)
    kernels.greedy_paths(np.ascontiguousarray(counts[first:, first:]),
                         np.ascontiguousarray(popularity[first:]), paths)
    return np.concatenate([np.arange(first, dtype=np.int64), movable[paths]])


def compress(data, level):
    """Return a zlib stream of `data`, any contiguous buffer (libdeflate when available).

    Parameters
    ----------
    data : bytes-like
    level : int
        1 to 12; zlib, the fallback, stops at 9.

    Returns
    -------
    bytes
    """
    if _libdeflate is not None:
        return _libdeflate.zlib_compress(data, level)
    return zlib.compress(data, min(level, 9))


def _joined(first, second):
    """One raw deflate stream that inflates to what `first` then `second` inflate to.

    `first`'s last block loses its BFINAL bit, and an empty stored block
    (header bits 000, then zeros up to a byte boundary, LEN 0, NLEN 0xFFFF:
    what zlib's sync flush writes) brings `second` to a byte boundary, so it
    is appended as it is.  `second` keeps its own final block.
    """
    start, end = kernels.last_block(np.frombuffer(first, np.uint8))
    head = bytearray(first)
    head[start // 8] &= 255 ^ (1 << (start % 8))
    if end % 8:
        head[-1] &= (1 << (end % 8)) - 1  # the stored block's header bits must be zeros
    if -end % 8 < 3:  # the 3 header bits do not fit in the last byte
        head.append(0)
    head += b"\x00\x00\xff\xff"
    return bytes(head) + second


def _compress_in_bands(scanlines, level):
    """A zlib stream of the (H, B) `scanlines`, deflated as two bands of rows on two threads.

    The second band starts without the first's history (32 KB), and a few
    bytes join them: on large image data the stream is a fraction of a
    percent larger than in one piece, in about half the time on two cores.
    """
    cut = scanlines.shape[0] // 2

    def first():
        stream = _libdeflate.zlib_compress(scanlines[:cut], level)
        return stream[:2], stream[2:-4]

    def second():
        return _libdeflate.deflate_compress(scanlines[cut:], level)

    (header, head), tail = _on_two_threads([first, second])
    return header + _joined(head, tail) + struct.pack(">I", zlib.adler32(scanlines))


def _on_two_threads(jobs):
    """Run the callables `jobs`, two at a time (deflate releases the GIL); their results.

    The calling thread takes jobs too, beside one helper thread: no pool to
    start, and no import of concurrent.futures (and logging) at start-up.
    The first job's error, in the order of `jobs`, is raised once both
    threads are done.
    """
    if len(jobs) == 1:
        return [jobs[0]()]
    outcomes = [None] * len(jobs)
    left = list(range(len(jobs) - 1, -1, -1))
    lock = threading.Lock()

    def work():
        while True:
            with lock:
                if not left:
                    return
                i = left.pop()
            try:
                outcomes[i] = (True, jobs[i]())
            except BaseException as exc:  # raised in the calling thread below
                outcomes[i] = (False, exc)

    helper = threading.Thread(target=work, daemon=True)
    helper.start()
    try:
        work()
    finally:
        helper.join()
    for done, value in outcomes:
        if not done:
            raise value
    return [value for _, value in outcomes]


def _trial_rows(height, row_bytes, limit=_TRIAL_BYTES):
    """The rows the trial compresses: bands spread over the image, `limit` bytes at most."""
    if height * row_bytes <= limit:
        return np.arange(height)
    rows = max(1, limit // (_TRIAL_BANDS * row_bytes))
    starts = np.linspace(0, height - rows, _TRIAL_BANDS).astype(np.int64)
    return _row_set(height, (starts[:, None] + np.arange(rows)).ravel())


def _band_rows(height, rows, bands):
    """Row numbers of `bands` contiguous bands of ``rows // bands`` rows each (at least one),
    spread evenly over `height` rows, sorted and without repeats."""
    per = max(rows // bands, 1)
    starts = np.linspace(0, height - per, bands).astype(np.int64)
    return _row_set(height, (starts[:, None] + np.arange(per)).ravel())


def _row_set(height, rows):
    """Row numbers below `height`, sorted and without repeats.

    A mask rather than ``np.unique``, whose first call imports ``numpy.ma``:
    9 ms of a 0.25 MP encode's 0.35 s.
    """
    mask = np.zeros(height, bool)
    mask[rows] = True
    return np.flatnonzero(mask)


def _best_by_sample(layouts, chosen, level):
    """The layout of `chosen` whose ranking rows compress smallest at `level`.

    Ties go to the lower layout number, as in :func:`image_data`.
    """
    height = layouts[chosen[0]][2].shape[0]
    rows = _band_rows(height, height // _RANK_SHARE, _RANK_BANDS)
    sizes = _on_two_threads([lambda i=i: len(compress(layouts[i][2][rows], level))
                             for i in chosen])
    return min(zip(sizes, chosen))[1]


def _ranks_by_sample(layouts, chosen, size, speed):
    """Whether the layouts `chosen` are ranked on a sample before one is compressed whole.

    Only at speed 4, for small image data (`size` bytes unfiltered, below
    _MEDIUM_FROM) with rows enough for four bands of a sixth of them to be
    a sample, when a layout of _RANK_FROM bytes or more is among them.
    """
    return (len(chosen) > 1 and _ALL_UP_TO_SPEED < speed <= _NEAR_UP_TO_SPEED
            and size < _MEDIUM_FROM and layouts[chosen[0]][2].shape[0] >= _RANK_SHARE * _RANK_BANDS
            and max(layouts[i][2].nbytes for i in chosen) >= _RANK_FROM)


def final_level(size, trial_ratio, speed):
    """The deflate level for `size` bytes of image data that a trial shrank `trial_ratio` times.

    Parameters
    ----------
    size : int
    trial_ratio : float
    speed : int
        1 to 10.

    Returns
    -------
    int
        1 to 12 (9 at most without libdeflate).
    """
    column = 0 if size < _MEDIUM_FROM else 2 if size < _LARGE_FROM else 4
    level = _LEVELS[speed][column + (trial_ratio >= _FLAT_RATIO)]
    return level if _libdeflate is not None else min(level, 9)


def _layouts(indices, palette, keep_order, only=None, rows=None, order=None):
    """The candidate layouts: (order, bit depth, scanlines) each, in order of preference on ties.

    With `only` (layout numbers), the others are None: their rows are not
    built.  With `rows` (sorted row numbers), the scanlines are those rows
    of the whole image's, filtered as there (the palette order is still the
    whole image's).  `order` is the filtered layout's palette order when
    already known.
    """
    entries = len(palette)
    depth = bit_depth_for(entries)
    identity = np.arange(entries)
    picked = indices if rows is None else indices[rows]
    wanted = (lambda i: True) if only is None else (lambda i: i in only)
    layouts = [(identity, depth, _scanlines(pack_rows(picked, depth), 0)) if wanted(0) else None]
    if entries >= 3:
        if wanted(1):
            first = int((palette[:, 3] < 255).sum()) if palette.shape[1] == 4 else 0
            if order is None:
                order = identity if keep_order else adjacency_order(indices, entries, first=first)
            layouts.append((order, depth, _filtered(indices, order, depth, rows)))
        else:
            layouts.append(None)
    if depth < 8:
        # One byte per index although fewer bits would do: deflate then finds
        # the repeats that packing splits across byte boundaries, and on
        # graphics and some photos the file is 3-10% smaller for it.
        layouts.append((identity, 8, _scanlines(picked, 0)) if wanted(len(layouts)) else None)
    return layouts


def _filtered(indices, order, depth, rows=None):
    """The scanlines of the indices renumbered by `order`, filtered; only `rows` of them if given.

    A row's filter depends on the row above alone, so the rows asked for
    are filtered together with the rows above them, and come out as in the
    whole image.
    """
    renumber = np.empty(len(order), np.uint8)
    renumber[order] = np.arange(len(order), dtype=np.uint8)
    if rows is None:
        return _adaptive(pack_rows(renumber[indices], depth))
    needed = _row_set(len(indices), np.concatenate([rows, rows[rows > 0] - 1]))
    out = _adaptive(pack_rows(renumber[indices[needed]], depth))
    return out[np.searchsorted(needed, rows)]


class Estimate(NamedTuple):
    """What :func:`estimated_size` found: the size, and the choices :func:`image_data` would make.

    Attributes
    ----------
    size : float
        Estimated bytes of the zlib stream.
    level : int
        The deflate level :func:`image_data` compresses it at.
    layout : int
        The layout estimated, numbered as :func:`image_data` numbers them
        (0 plain, then reordered and filtered, then one byte per index): the
        best of the trial, which :func:`image_data` compresses first.
    plan : tuple
        ``(level, layouts, order)``: the trial's decision and the filtered
        layout's palette order (None without one), which :func:`image_data`
        of the same indices, palette, speed and `keep_order` takes as its
        `plan` instead of making them again.
    one_thread : bool
        True when :func:`image_data` with that plan compresses on one
        thread: a single layout, too small to be deflated in bands.
    """

    size: float
    level: int
    layout: int
    plan: tuple
    one_thread: bool


def _size(indices, entries):
    """Bytes of the unfiltered image data: rows of packed indices, each with its filter byte."""
    height, width = indices.shape
    return (-(-width * bit_depth_for(entries) // 8) + 1) * height


def estimated_size(indices, palette, *, speed=DEFAULT_SPEED, keep_order=False, gains=None):
    """Estimate the size of :func:`image_data`'s zlib stream, in a fraction of its time.

    The layouts and the trial are :func:`image_data`'s own, so the layout
    estimated is the one it compresses: on large photos the plain and the
    filtered layouts swap places from one palette to the next, and their
    final sizes differ by 1 to 2% where their trials are within 0.8%.
    That layout is compressed at the trial's fast level on all its rows
    (the trial's rows when they are all of them, else up to 4 MB of rows in
    bands, in two halves on two threads), and the size is multiplied by
    the final level's gain over the trial's for this layout, measured on an
    eighth of those rows (32 to 128 KB, in bands).  The fast level follows
    the real size closely from one palette to the next (their ratio moves
    by 0.1 to 0.4% between neighbouring ks on the photos and graphics of
    ../shared/corpus/public),
    while a gain measured anew on each palette's sample moves the estimate
    by 1 to 2%: a search that estimates many palettes of one picture keeps
    the first gain measured at each level and layout in `gains`.

    Parameters
    ----------
    indices, palette, speed, keep_order
        As for :func:`image_data`.
    gains : dict, optional
        The gain by (deflate level, layout) from earlier estimates of the
        same picture at the same bit depth; one it lacks is measured and
        added to it.

    Returns
    -------
    Estimate
    """
    height, width = indices.shape
    size = _size(indices, len(palette))
    # The trial's own rows (see _trial; the one-byte layout, or any at 8
    # bits, is the widest), built alone when they are not all of them: the
    # trial then sees all of these.
    sampled = _trial_rows(height, width + 1)
    whole = len(sampled) == height
    layouts = _layouts(indices, palette, keep_order, rows=None if whole else sampled)
    level, chosen, trials, _ = _plan(layouts, size, speed)
    if trials is None:
        # The final level did not wait for a trial (small data, every layout
        # compressed at it): the estimate needs one all the same.
        trials = _on_two_threads([lambda rows=rows: len(compress(rows, _TRIAL_LEVEL))
                                  for _, _, rows in layouts])
        chosen = sorted(chosen, key=lambda i: (trials[i], i))
    best = chosen[0]
    order, depth, rows = layouts[best]
    if whole:
        fast = trials[best]
    else:
        # Up to 4 MB of the layout's rows, in bands: on a 12 MP photo the
        # ratio of the final size to the estimate then moves by 0.3 to 0.4%
        # from one k to the next, as on all the rows, at a third of the time.
        estimated = _trial_rows(height, width + 1, _ESTIMATE_BYTES)
        picked = None if len(estimated) == height else estimated
        rows = (_filtered(indices, order, depth, picked) if best == 1 and len(palette) >= 3
                else _scanlines(pack_rows(indices if picked is None else indices[picked], depth), 0))
        cut = len(rows) // 2
        fast = sum(_on_two_threads([lambda: len(compress(rows[:cut], _TRIAL_LEVEL)),
                                    lambda: len(compress(rows[cut:], _TRIAL_LEVEL))]))
        fast *= height / len(estimated)
    gains = {} if gains is None else gains
    if (level, best) not in gains:
        part = rows[_trial_rows(len(rows), rows.shape[1],
                                min(max(rows.nbytes // 8, _GAIN_FROM), _GAIN_UP_TO))]
        final, trial = _on_two_threads([lambda: len(compress(part, level)),
                                        lambda: len(compress(part, _TRIAL_LEVEL))])
        gains[level, best] = final / trial
    order = layouts[1][0] if len(palette) >= 3 else None
    one_thread = len(chosen) == 1 and not (size >= _bands_from(speed) and _libdeflate is not None)
    return Estimate(fast * gains[level, best], level, best, (level, tuple(chosen), order), one_thread)


def _bands_from(speed):
    """Bytes of image data from which a single layout is deflated in two bands."""
    return _BANDS_FROM if speed <= _SLOW_UP_TO_SPEED else _FAST_BANDS_FROM


def _checked_plan(plan, entries, keep_order):
    """`plan` as ``(level, chosen, order)``, if it can be the plan of a palette of `entries`.

    Raises
    ------
    UsageError
        If it is no plan, one of another palette size, or one that
        reorders the palette while `keep_order` keeps it.
    """
    try:
        level, chosen, order = plan
        chosen = tuple(int(i) for i in chosen)
        order = None if order is None else np.asarray(order)
    except (TypeError, ValueError):
        raise UsageError(f"plan must be the plan of an estimate, not {plan!r}") from None
    # The plain layout, the filtered one from 3 entries, the one-byte one below 8 bits.
    layouts = 1 + (entries >= 3) + (bit_depth_for(entries) < 8)
    identity = np.arange(entries)
    if (level not in range(1, 13) or not chosen or not all(0 <= i < layouts for i in chosen)
            or (order is not None and (order.shape != (entries,)
                                       or not np.array_equal(np.sort(order), identity)))):
        raise UsageError("plan is the plan of another picture: estimate this one")
    if keep_order and order is not None and not np.array_equal(order, identity):
        raise UsageError("plan reorders the palette, which keep_order keeps: estimate with "
                         "keep_order")
    return level, chosen, order


def _plan(layouts, size, speed):
    """The final level and the layouts to compress at it, best first where a trial ranked them.

    Returns ``(level, chosen, trials, whole)``: the trial's sizes by layout
    (None when no trial was needed) and whether it saw every row.
    """
    every = size < _MEDIUM_FROM and speed <= _NEAR_UP_TO_SPEED
    level = final_level(size, 1.0, speed)
    if (every and speed <= _ALL_UP_TO_SPEED and layouts[0][1] != 4
            and level == final_level(size, _FLAT_RATIO, speed)):
        # Every layout is compressed at a level the trial would not change,
        # and no one-byte layout waits for the trial to be let in: the trial
        # would decide nothing (the smallest file wins, ties to the first).
        return level, list(range(len(layouts))), None, False
    return _trial(layouts, size, speed, every)


def _trial(layouts, size, speed, every):
    """The final deflate level and the layouts to compress at it, best first, from a trial.

    Returns ``(level, chosen, trials, whole)``, `trials` the trial's sizes
    by layout and `whole` whether it saw every row.

    `size` is the image data's size in bytes, `every` whether every layout
    close enough is to be compressed at the final level (see
    :func:`image_data`): at the slowest speeds every one (the one-byte
    layout of 4-bit data within _TRIAL_MARGIN of the best trial), at the
    next one those within that margin, all of 1- and 2-bit data but a
    one-byte layout of _MEDIUM_FROM bytes or more.
    """
    height = layouts[0][2].shape[0]
    widest = max(rows.shape[1] for _, _, rows in layouts)
    sampled = _trial_rows(height, widest)
    whole = len(sampled) == height
    samples = [rows if whole else rows[sampled] for _, _, rows in layouts]
    trials = _on_two_threads([lambda data=data: len(compress(data, _TRIAL_LEVEL))
                              for data in samples])
    ranked = sorted(range(len(layouts)), key=lambda i: (trials[i], i))
    best = ranked[0]
    level = final_level(size, samples[best].nbytes / trials[best], speed)
    # The layouts' rows may be a sample (see estimated_size): their bytes
    # are counted over the whole image's rows.
    image_rows = size // layouts[0][2].shape[1]
    near = [i for i in ranked
            if (layouts[0][1] < 4 and layouts[i][2].shape[1] * image_rows < _MEDIUM_FROM)
            or trials[i] <= (1 + _TRIAL_MARGIN) * trials[best]]
    if every and speed <= _ALL_UP_TO_SPEED:
        chosen = [i for i in ranked if layouts[i][1] == layouts[0][1] or i in near]
    elif every:
        chosen = near
    elif (speed <= _CLOSE_UP_TO_SPEED and len(ranked) > 1
          and trials[ranked[1]] <= (1 + _CLOSE) * trials[best]):
        chosen = ranked[:2]
    else:
        chosen = [best]
    return level, chosen, trials, whole


def image_data(indices, palette, *, speed=DEFAULT_SPEED, keep_order=False, plan=None):
    """Choose the byte layout of a palette image and compress it.

    The candidate layouts are the plain one (palette as given, no filter),
    the reordered and filtered one, and for palettes of up to 16 entries the
    plain one at one byte per index.  A fast trial compression of each, on
    the same rows, tells how compressible the data is, which sets the final
    deflate level with the speed, and which layout to keep.  At the slower
    speeds every layout of small data (the one-byte one if its trial is
    close enough; at speed 4 every one whose trial is, and of 1- and 2-bit
    data every one but a one-byte layout of 512 KB or more), or the best two of
    larger data when the trial finds them close (speeds 1 to 3), are
    compressed at the final level and the smallest is kept (at speed 4,
    when one of them holds 128 KB or more, the smallest on a sixth of
    their rows is compressed alone); where
    that level does not depend on the trial and there is no one-byte layout
    of 4-bit data to let in or leave out, the trial is skipped.  From
    4 MB of image data on (512 KB above speed 3), a single layout is
    deflated in two bands on two threads, joined into one stream.

    Parameters
    ----------
    indices : (H, W) uint8 ndarray
    palette : (P, 3) or (P, 4) uint8 ndarray
        RGBA entries with alpha < 255 come first and stay first.
    speed : int
        1 (smallest) to 10 (fastest).
    keep_order : bool
        Keep the palette as given (files that must share their PLTE and
        tRNS bytes): the reordered layout keeps the identity order, and only
        the row filters are chosen.
    plan : tuple, optional
        The ``plan`` of an :class:`Estimate` of the same indices, palette,
        speed and `keep_order`: the trial it made decides, the palette order
        it found is kept, and the layouts it did not choose are not built.
        The bytes are the same.

    Returns
    -------
    order : (P,) int64 ndarray
        The palette order to write: entry ``order[i]`` becomes entry i.
    depth : {1, 2, 4, 8}
        The bit depth of the image data, for IHDR.
    data : bytes
        The zlib stream for IDAT.

    Raises
    ------
    UsageError
        For a `plan` that is none, or one of another palette size, or one
        reordering the palette with `keep_order`.
    """
    if plan is None:
        layouts = _layouts(indices, palette, keep_order)
        level, chosen, _, _ = _plan(layouts, layouts[0][2].nbytes, speed)
    else:
        # The trial and the palette order are the estimate's: only the
        # layouts it chose are built.
        level, chosen, order = _checked_plan(plan, len(palette), keep_order)
        layouts = _layouts(indices, palette, keep_order, only=chosen, order=order)
    size = _size(indices, len(palette))
    if _ranks_by_sample(layouts, chosen, size, speed):
        chosen = [_best_by_sample(layouts, chosen, level)]
    # The arrays themselves, not copies as bytes: the compressors read any buffer.
    if len(chosen) == 1 and size >= _bands_from(speed) and _libdeflate is not None:
        results = [(_compress_in_bands(layouts[chosen[0]][2], level), chosen[0])]
    else:
        results = _on_two_threads([lambda i=i: (compress(layouts[i][2], level), i)
                                   for i in chosen])
    data, i = min(results, key=lambda result: (len(result[0]), result[1]))
    order, depth, _ = layouts[i]
    return order, depth, data
