"""Quantization on arrays: pixels in, a palette and indices out, no files.

This module ties the arrays-only stages together: :mod:`histogram` counts
the colors, :mod:`kmeans` finds the centres, :class:`nearest.Assignment`
maps every color to its nearest *rounded* entry, and the histogram spreads
those entries back to the pixels.  Reading and writing files is
:mod:`codec`'s job.
"""

import math
from dataclasses import replace

import numpy as np

from . import oklab
from .defaults import DEFAULT_SPEED, K_RANGE, SPACES, SPEEDS
from .dither import Reuse, check_reuse, check_strength, dither_indices, visibility
from .errors import UsageError, option
from ._kernels import quantizer as kernels
from .histogram import Histogram, color_histogram
from .kmeans import ENGINES, Shared, merge_errors, resize_centres, sklearn_kmeans, weighted_kmeans
from .metrics import psnr, visible
from .nearest import Assignment
from .paletteimage import PaletteImage
from .pngfile import bit_depth_for, check_speed, color_chunks
from .search import Choice, Trial, find_k
from .threads import one_blas_thread
from .ties import follow_neighbours_within

__all__ = ["quantize", "choose_k", "SizeEstimates", "shared_palette", "remap", "prepare", "check_k",
           "check_space", "check_speed", "check_seed", "check_engine", "K_RANGE"]

# Colors whose nearest and second-nearest entries may be closer than this
# (in color levels, from the bounds) are settled exactly: well above the
# float32 rounding of the bounds (about 0.001 level: the search kernel sums
# squared differences, no matrix products), and equal to the search's own
# margin, so that every color it may have mislabelled is settled.
_TIE_GAP = 0.25

# dB that k-means gains over the Ward merges of a clustering with 1.6 times
# as many centres or more: 0.4 to 0.7 on the photos and graphics of
# ../shared/corpus/public at k = 16 to 128 (a search only uses it to place
# its ks; see choose_k).
_LLOYD_GAIN = 0.6

# The final deflate level's gain over the trial's changes with k: on
# ../shared/corpus/public/seed_image_square.png the gain measured at
# k = 256 put the estimate at k = 38 7% above the real size.  A size
# search measures it again when k moves by more than this factor from
# where it was measured.
_SAME_GAIN = 1.25

# How far below these estimates a file's real size can be (find_k's
# `estimate_error`): at least _LOWEST_RATIO times the estimate, and within
# two ks of a k of the same bit depth, level and layout compressed for
# real, at least that k's real/estimated ratio less _DRIFT.  On
# ../shared/corpus/public, within three ks of the answers at half and a
# third of the k = 256 size (benchmarks/estimate_error.py), the smallest
# ratio was 0.945 (223 estimates), and the ratio fell by at most 2.75% to a
# k of the same kind one k away, 3.43% two ks away: the margins are 5% and
# 1.6%.
_LOWEST_RATIO = 0.90
_DRIFT = 0.05

#: Weight of the Oklab distance beside the RGB one in the ``rgb+oklab``
#: space: squared distance = RGB + (OKLAB_WEIGHT x Oklab x 255)^2.  Measured
#: on photos against the reference SSIMULACRA2 tool (README, "Perceptual
#: quality"): lighter weights gain less score per byte, heavier ones cost
#: more than half a dB of PSNR.
OKLAB_WEIGHT = 2.5

#: With `reuse`, how many times the palette is fitted again to the mapping:
#: each entry moves to the mean of the pixels it holds once entries are
#: reused, then every pixel is mapped again (nearest, then
#: reused), as a k-means step that knows the mapping.  On the photos of
#: ../shared/corpus/public it gains score and bytes at every k (README,
#: "Smaller files for the same look"); further steps move little.
REUSE_REFITS = 3

# The spaces whose features are Oklab alone; ``perceptual`` differs from
# ``oklab`` only in how much each color weighs (see _search_weights).
_OKLAB_SPACES = ("oklab", "perceptual")


def check_k(k):
    """Return `k` as an int if it is a palette size kqcodec allows (2..256).

    Parameters
    ----------
    k : int

    Returns
    -------
    int

    Raises
    ------
    UsageError
        For anything but an integer from 2 to 256.
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k not in K_RANGE:
        raise UsageError(f"k must be an integer from 2 to 256, not {k!r}")
    return int(k)


def check_engine(engine):
    """Refuse an engine other than those of :data:`defaults.ENGINES`.

    Parameters
    ----------
    engine : str

    Raises
    ------
    UsageError
        For any other value.
    """
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")


def check_seed(seed):
    """Refuse a seed that is not an integer from 0 to 2**32 - 1.

    Parameters
    ----------
    seed : int

    Raises
    ------
    UsageError
        For anything else.
    """
    if (isinstance(seed, bool) or not isinstance(seed, (int, np.integer))
            or not 0 <= seed < 2**32):
        raise UsageError(f"seed must be an integer from 0 to 2**32 - 1, not {seed!r}")


def check_space(space):
    """Return `space` if the palette search knows it (see :data:`defaults.SPACES`).

    Parameters
    ----------
    space : str

    Returns
    -------
    str

    Raises
    ------
    UsageError
        For any other value.
    """
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    return space


def _features(colors, space="rgb"):
    """Colors (U, C) uint8 -> float32 features the error is measured in.

    RGB stays RGB; ``oklab`` is Oklab scaled by :data:`oklab.SCALE`, so that
    a unit is about one grey level; ``rgb+oklab`` is RGB followed by Oklab
    scaled by :data:`OKLAB_WEIGHT` times that, so that squared distances are
    the RGB one plus the weighted Oklab one.  RGBA is premultiplied (the
    color coordinates times alpha / 255), so that the color of a nearly
    transparent pixel matters as little as it shows, and alpha comes last.
    Then everything but Oklab's a and b is shifted to be centred near 0; for
    RGB, float32 distances of integers stay exact.  ``perceptual`` has
    ``oklab``'s features.
    """
    rgb = colors[:, :3]
    if space in _OKLAB_SPACES:
        raw = oklab.rgb_to_oklab(rgb) * oklab.SCALE
    elif space == "rgb+oklab":
        raw = np.hstack([rgb.astype(np.float64),
                         oklab.rgb_to_oklab(rgb) * (oklab.SCALE * OKLAB_WEIGHT)])
    else:
        raw = rgb.astype(np.float64)
    if colors.shape[1] == 4:
        alpha = colors[:, 3:].astype(np.float64)
        raw = np.hstack([raw * (alpha / 255), alpha])
    return (raw - _offset(colors.shape[1], space)).astype(np.float32)


def _offset(channels, space):
    """The shift of each feature: 128 levels, none for Oklab's a and b."""
    color = {"rgb": [128.0] * 3, "oklab": [128.0, 0.0, 0.0], "perceptual": [128.0, 0.0, 0.0],
             "rgb+oklab": [128.0] * 3 + [128.0 * OKLAB_WEIGHT, 0.0, 0.0]}[space]
    return np.array(color + [128.0] * (channels - 3))


def _entries(centres, channels, space="rgb"):
    """Round feature-space centres to uint8 palette entries (straight alpha).

    An ``rgb+oklab`` centre's RGB part is the mean RGB of its colors, which
    is the entry; its Oklab part, a mean of Oklab values, has served only to
    group them.
    """
    values = centres.astype(np.float64) + _offset(channels, space)
    color = values[:, :3]
    if channels == 4:
        alpha = np.clip(np.round(values[:, -1]), 0, 255)
        with np.errstate(divide="ignore", invalid="ignore"):
            color = np.where(alpha[:, None] > 0, color * 255 / alpha[:, None], 0)
    if space in _OKLAB_SPACES:
        color = oklab.oklab_to_rgb(color / oklab.SCALE)
    if channels == 4:
        color = np.column_stack([color, alpha])
    return np.clip(np.round(color), 0, 255).astype(np.uint8)


def quantize(pixels, k, *, seed=0, histogram=None, engine="kqcodec", space="rgb", dither=0.0,
             speed=DEFAULT_SPEED, target_psnr=None, max_bytes=None, max_colors=256, reuse=0.0):
    """Reduce an image to at most k colors by weighted k-means.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray, or PIL.Image.Image
        RGB or straight RGBA (RGBA whose every pixel is opaque is taken as
        RGB, as a file is); a Pillow image of any mode is converted as
        :func:`imageio.from_pil` does.
    k : int or 'auto'
        Palette size, 2..256; or ``"auto"`` with `target_psnr` or
        `max_bytes`: the k that :func:`choose_k` finds.
    seed : int
        Seed of randomised search steps.  kqcodec's own search is
        deterministic and ignores it; the ``sklearn`` engine uses it.
    histogram : Histogram, optional
        ``prepare(pixels)`` if already computed (for several k).
    engine : {'kqcodec', 'sklearn'}
        The palette search: kqcodec's own, or scikit-learn's KMeans on the
        same weighted colors (slower, for comparison).
    dither : float
        Floyd-Steinberg error diffusion strength, 0..1 (see :mod:`dither`);
        0, the default, maps every pixel to its nearest entry.
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
        Where distances are measured, for the search and the mapping:
        ``rgb`` minimises the error PSNR measures; ``oklab`` the error in a
        perceptual space (see :mod:`oklab`), which spends entries where eyes
        tell colors apart, at some cost in PSNR; ``rgb+oklab`` the sum of
        both errors (the Oklab one weighted by :data:`OKLAB_WEIGHT`), which
        keeps most of RGB's PSNR and most of Oklab's perceptual gain;
        ``perceptual`` the Oklab error with each pixel weighted by how
        visible it is (:func:`dither.visibility`: smooth areas count more
        than edges and texture, which hide errors).
    speed : int
        Search effort, 1 (best palette, slowest) to 10 (fastest).  The
        compression effort is given when writing (:meth:`PaletteImage.to_png`),
        except with ``k="auto"``, whose search measures the files as
        written at this speed (see :func:`choose_k`).
    target_psnr : float, optional
    max_bytes : int, optional
    max_colors : int
        The target of ``k="auto"`` (one of the first two) and the largest
        k it considers, 2..256; see :func:`choose_k`.  ``k="auto"`` does
        not dither: `dither` must be 0 with it.
    reuse : float
        Margin, in Oklab levels (0..16), within which a pixel may take
        another entry than its nearest, where that makes runs along the row
        or repeats the row above (a Viterbi pass per row): smaller files for
        a small, mostly hidden error (see :func:`dither.reuse_indices`); the
        palette is then refitted to that mapping :data:`REUSE_REFITS` times.
        0, the default, keeps nearest mapping.  Not with `dither` nor ``k="auto"``.

    Returns
    -------
    PaletteImage
        With at most k entries, transparent ones first, and its ``mse``.  An image with k or
        fewer colors is kept exactly.  Every pixel maps to the nearest
        rounded entry in Euclidean distance in `space` (premultiplied by
        alpha for RGBA), except, in the ``rgb`` space, near ties: a pixel
        almost as near its left or upper neighbour's entry may take it,
        for at most :data:`ties.BUDGET` more squared error over the
        picture (see :mod:`ties`).  With `dither`, the indices come from
        error diffusion instead (see :mod:`dither`), from the nearest
        entries, with the same palette; with `reuse`, some pixels take a
        neighbour's entry, from the nearest entries of the refitted palette
        (near ties settled, in the ``rgb`` space).

    Raises
    ------
    UsageError
        For a k, engine, space or seed kqcodec does not allow, pixels that
        are not a non-empty (H, W, 3|4) uint8 array, or a `histogram` of
        other pixels.
    """
    pixels = _as_pixels(pixels)
    if isinstance(k, str) and k == "auto":
        if engine != "kqcodec":
            raise UsageError("k='auto' searches with kqcodec's own engine")
        if check_strength(dither):
            raise UsageError(f"{option('dither')} goes with a fixed k")
        if check_reuse(reuse):
            raise UsageError(f"{option('reuse')} goes with a fixed k")
        check_seed(seed)
        return choose_k(pixels, target_psnr=target_psnr, max_bytes=max_bytes,
                        max_colors=max_colors, histogram=histogram, space=space,
                        speed=speed).image
    if target_psnr is not None or max_bytes is not None:
        raise UsageError("a target PSNR or size goes with k='auto'")
    k = check_k(k)
    check_engine(engine)
    check_space(space)
    dither = check_strength(dither)
    if check_reuse(reuse) and dither:
        raise UsageError(f"{option('reuse')} does not go with {option('dither')}")
    pixels = _check_pixels(pixels)
    check_speed(speed)
    check_seed(seed)
    hist = _histogram_of(pixels, histogram)
    # Error diffusion starts from the nearest entries, without near ties;
    # reuse from the mapping a plain encode writes (near ties settled, in rgb).
    # A histogram given is quantized at other ks too: the search keeps on it
    # what does not depend on k.
    image = _quantize(hist, k, seed=seed, engine=engine, space=space, speed=speed,
                      weights=_search_weights(pixels, hist, space),
                      ties=not dither, keep=histogram is not None)[0]
    if dither:
        indices = dither_indices(pixels, image.palette, image.indices, dither, histogram=hist)
        image = PaletteImage(image.palette, indices, _pixel_mse(pixels, image.palette[indices]))
    elif reuse:
        image = _reuse(pixels, hist, image, reuse, space)
    return image


def _reuse(pixels, hist, image, margin, space, refits=None, masked=None):
    """`image` with reused indices and its palette refitted to them (see :data:`REUSE_REFITS`).

    Prior validation is assumed; `refits` is :data:`REUSE_REFITS` and
    `masked` :data:`dither.REUSE_MASKED` when None (other values are for
    the benchmarks).
    """
    refits = REUSE_REFITS if refits is None else refits
    palette = image.palette
    reuse = Reuse(pixels, margin, histogram=hist,
                  **({} if masked is None else {"masked": masked}))
    indices = reuse.indices(palette, image.indices)
    if refits:
        feats = _features(hist.colors, space)
        numbers = hist.spread(np.arange(len(hist.colors), dtype=np.int32)).ravel()
        weight = (visibility(pixels).ravel().astype(np.float64) if space == "perceptual"
                  else np.ones(len(numbers)))
        if pixels.shape[2] == 4:
            weight *= (hist.colors[:, 3] == 255)[numbers]
    for _ in range(refits):
        palette = _refit(palette, indices.ravel(), feats, numbers, weight, space)
        nearest = hist.spread(_settled(Assignment(feats, _features(palette, space))).astype(np.uint8))
        if space == "rgb":
            # Reuse starts from the mapping a plain encode writes, near ties
            # settled: from the nearest entries alone, small margins made
            # larger files than no reuse (skimage_coffee at k=64, 0.1: 82,275
            # bytes against 81,607; 81,063 from the settled mapping).
            follow_neighbours_within(hist.pixels, hist.shape, palette, nearest,
                                     _pixel_mse(pixels, palette[nearest]))
        indices = reuse.indices(palette, nearest)
    used, flat = _tidy(palette, indices.ravel())
    indices = flat.reshape(indices.shape)
    return PaletteImage(used, indices, _pixel_mse(pixels, used[indices]))


def _refit(palette, indices, feats, numbers, weight, space):
    """The palette with each opaque entry moved to the mean of the opaque pixels it holds.

    `indices` (N,) each pixel's entry, `numbers` (N,) its color in `feats`
    (U, C), `weight` (N,) float64 its weight in the mean, 0 for pixels that
    are not opaque.  Entries that hold no such pixel, or are not opaque,
    stay as they are.  Sums run over the pixels in order, in float64: the
    same palette every run.
    """
    k = len(palette)
    held = np.bincount(indices, weights=weight, minlength=k)
    sums = np.column_stack([np.bincount(indices, weights=weight * feats[numbers, j], minlength=k)
                            for j in range(feats.shape[1])])
    moved = held > 0
    if palette.shape[1] == 4:
        moved &= palette[:, 3] == 255
    centres = sums[moved] / held[moved, None]
    out = palette.copy()
    out[moved] = _entries(centres, palette.shape[1], space)
    return out


def _quantize(hist, k, *, seed=0, engine="kqcodec", space="rgb", init=None,
              speed=DEFAULT_SPEED, weights=None, ties=True, keep=False):
    """The PaletteImage of a histogram at k, and each distinct color's entry.

    `init`: each color's entry in another quantization of the same
    histogram, to warm-start the k-means from (see
    :func:`kmeans.resize_centres`); `speed` as for :func:`quantize`;
    `weights`: each color's weight in the search, its pixel count if None;
    `ties`: in the ``rgb`` space, settle near ties towards the neighbours'
    entries (see :mod:`ties`), else every pixel keeps its nearest entry.
    Prior validation is assumed.
    """
    if len(hist.colors) <= k:
        palette, labels = hist.colors, np.arange(len(hist.colors))
    else:
        with one_blas_thread():
            palette, labels = _cluster(hist.colors, hist.counts if weights is None else weights,
                                       k, seed=seed, engine=engine, space=space, init=init,
                                       speed=speed,
                                       kept=hist.kept if keep and weights is None else None)
    used, per_color = _tidy(palette, labels)
    indices = hist.spread(per_color)
    mse = _mse(hist.colors, hist.counts, used[per_color])
    if ties and space == "rgb" and mse > 0:
        # Near ties go the neighbours' way: fewer bytes for at most 0.019 dB.
        mse = follow_neighbours_within(hist.pixels, hist.shape, used, indices, mse)
    return PaletteImage(used, indices, mse), per_color


def _cluster(colors, counts, k, *, seed=0, engine="kqcodec", space="rgb", init=None,
             speed=DEFAULT_SPEED, kept=None):
    """Palette entries for more than k weighted colors, and each color's nearest entry.

    `kept`, a dict, keeps the search's features and :class:`kmeans.Shared`
    of these colors and counts by space, for the next k.  Prior validation
    is assumed.  Returns (k', C) uint8 entries (possibly unused or
    repeated) and (U,) int64 labels.
    """
    channels = colors.shape[1]
    if kept is not None and space in kept:
        feats, search, shared = kept[space]
    else:
        feats = _features(colors, space)
        search = np.ones(len(feats), bool)
        if channels == 4 and (colors[:, 3] == 0).any():
            # One fully transparent entry stays out of the search, so that
            # invisible pixels stay invisible.
            search = colors[:, 3] > 0
        shared = Shared(feats[search], counts[search])
        if kept is not None:
            kept[space] = feats, search, shared
    wanted = k - int(not search.all())
    if engine == "sklearn":
        result = sklearn_kmeans(shared.points, shared.weights, wanted, seed=seed)
    else:
        start = None
        if init is not None:
            start = resize_centres(shared.points, shared.weights, init[search], wanted)
            start = start if len(start) == wanted else None
        result = weighted_kmeans(shared.points, shared.weights, wanted, speed=speed,
                                 init=start, shared=shared if kept is not None else None)
    centres = result.centres
    if channels == 4:
        # The labels may still be those of the bins (see weighted_kmeans):
        # close enough to tell which clusters are mostly opaque.
        centres = _keep_opaque(centres, result.assignment.labels, shared.points,
                               shared.weights, colors[search, 3] == 255)
    if not search.all():
        centres = np.vstack([centres, _features(np.zeros((1, 4), np.uint8), space)])
    palette = _entries(centres, channels, space)
    if search.all():
        assignment = result.assignment
        assignment.move(_features(palette, space))
    else:
        assignment = Assignment(feats, _features(palette, space))
    return palette, _settled(assignment, integer=space == "rgb" and channels == 3)


def _search_weights(pixels, hist, space):
    """Each distinct color's weight in the palette search, or None for its pixel count.

    In the ``perceptual`` space a color weighs the sum of its pixels'
    :func:`dither.visibility`, so that entries go where errors show.  Sums
    run over the pixels in order, in float64: the same weights every run.
    """
    if space != "perceptual":
        return None
    numbers = hist.spread(np.arange(len(hist.colors), dtype=np.int32))
    return np.bincount(numbers.ravel(), weights=visibility(pixels).ravel(),
                       minlength=len(hist.colors))


def _settled(assignment, integer=False):
    """The assignment's labels, with every color near a tie settled exactly.

    A color whose bounds leave a clear gap between its entry and any other
    keeps its label, whatever the rounding.  The others are searched again
    in float32, which makes their labels and bounds in `assignment` exact
    (most of them only had loose bounds), and where that leaves
    no clear gap either, take the nearest entry computed in float64 in a
    fixed order, ties to the lower index
    (:func:`_kernels.quantizer.nearest_entries`), so that no BLAS library or
    processor changes the result.  With `integer` (RGB colors and a rounded
    palette, shifted by whole levels) the float32 search is exact already:
    its squared distances are integers below 2**24, its ties go to the lower
    index too.
    """
    unsure = np.flatnonzero(assignment.lower - assignment.upper <= _TIE_GAP)
    if len(unsure):
        assignment.search(unsure)
        if not integer:
            unsure = unsure[assignment.lower[unsure] - assignment.upper[unsure] <= _TIE_GAP]
    labels = assignment.labels.astype(np.int32)
    if len(unsure) and not integer:
        exact = np.empty(len(unsure), np.int32)
        kernels.nearest_entries(assignment.points[unsure].astype(np.float64),
                                assignment.centres.astype(np.float64), exact)
        labels[unsure] = exact
    return labels


def _check_pixels(pixels):
    """`pixels` checked, RGBA whose every pixel is opaque taken as RGB.

    Files and Pillow images come as RGB when nothing is transparent (see
    :func:`imageio.read_picture`); an array is taken the same way, or its
    alpha, with no error at all, would count in the PSNR (1.25 dB more on
    a photo, and a PSNR target met with fewer colors than the eye needs).
    """
    pixels = np.asarray(pixels)
    if (pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4)
            or 0 in pixels.shape):
        raise UsageError(
            f"pixels must be a non-empty (H, W, 3|4) uint8 array, not {pixels.shape} {pixels.dtype}"
        )
    if pixels.shape[2] == 4 and (pixels[..., 3] == 255).all():
        pixels = np.ascontiguousarray(pixels[..., :3])
    return pixels


def _histogram_of(pixels, histogram):
    """The histogram of checked `pixels`, or `histogram` once checked to be of pixels of this shape."""
    if histogram is None:
        return _counted(pixels)
    if not isinstance(histogram, Histogram):
        raise UsageError(f"histogram must be what prepare() returns, not {type(histogram).__name__}")
    if tuple(histogram.shape) != pixels.shape[:2] or histogram.colors.shape[1] != pixels.shape[2]:
        raise UsageError(f"the histogram is of other pixels ({histogram.shape[1]}x"
                         f"{histogram.shape[0]}, {histogram.colors.shape[1]} channels) than these "
                         f"({pixels.shape[1]}x{pixels.shape[0]}, {pixels.shape[2]} channels)")
    # One pass over the pixels, against an encoding of another picture
    # under this one's name (and a PSNR of neither).
    counted = pixels if pixels.shape[2] == 3 else np.where(pixels[..., 3:] == 0, 0, pixels)
    if not np.array_equal(histogram.pixels, counted.reshape(-1, pixels.shape[2])):
        raise UsageError("the histogram is of other pixels than these, of the same size: "
                         "prepare() these")
    return histogram


def _as_pixels(image):
    """Pixels of an array, or of a Pillow image (converted by :mod:`imageio`)."""
    if type(image).__module__.startswith("PIL."):
        from . import imageio  # Pillow stays inside imageio

        return imageio.from_pil(image)
    return image


class SizeEstimates:
    """The size estimates of one picture's palette images, kept as a size search needs them.

    The ratio of a file's real size to its estimate jumps where the bit
    depth, the deflate level or the layout changes, and drifts slowly
    between.  So does the final level's gain over the trial's: measured
    afresh at each k, from a sample, it would move the estimates of
    neighbouring ks by more than their sizes differ, so it is kept, per bit
    depth, for the palettes within `_SAME_GAIN` of the size it was measured
    at.  Each image estimated keeps its estimate's trial for its file.

    Parameters
    ----------
    speed : int
        The speed the files are written at, 1..10.
    """

    def __init__(self, speed=DEFAULT_SPEED):
        self.speed = speed
        self._gains, self._estimates = {}, {}

    def estimate(self, image):
        """The estimated bytes of `image`'s file, and the kind of that estimate.

        Parameters
        ----------
        image : PaletteImage

        Returns
        -------
        (float, tuple)
            The estimate, and ``(bit depth, deflate level, layout, k)``, k
            being the palette size whose gain it uses: estimates of one kind
            are off by a ratio that changes slowly with k.
        """
        depth, colors = bit_depth_for(len(image.palette)), len(image.palette)
        near, kept = self._gains.get(depth, (0, None))
        if kept is None or abs(math.log(colors / near)) > math.log(_SAME_GAIN):
            near, kept = self._gains[depth] = (colors, {})
        estimate = image.estimated_png_size(speed=self.speed, gains=kept)
        # Keyed by id, with the image kept alive so that its id stays its own.
        self._estimates[id(image)] = (image, estimate)
        return estimate.size, (depth, estimate.level, estimate.layout, near)

    def write(self, image):
        """`image`'s PNG file at this speed, reusing its estimate's trial if it has one.

        Safe to call from two threads at once, for two images.

        Parameters
        ----------
        image : PaletteImage

        Returns
        -------
        bytes
            What :meth:`PaletteImage.to_png` gives at this speed.
        """
        kept = self._estimates.get(id(image))
        return image.to_png(speed=self.speed, plan=kept[1].plan if kept else None)

    def one_thread(self, image):
        """True if `image` was estimated and its file is compressed on one thread.

        Parameters
        ----------
        image : PaletteImage

        Returns
        -------
        bool
            False for an image not estimated here.
        """
        kept = self._estimates.get(id(image))
        return bool(kept and kept[1].one_thread)


def choose_k(pixels, *, target_psnr=None, max_bytes=None, max_colors=256, histogram=None,
             color=None, space="rgb", speed=DEFAULT_SPEED, shown=None):
    """Quantize to the palette size that meets a PSNR target or a size budget.

    The histogram is computed once, each k tried is warm-started from the
    palette of the nearest k tried before, and every k is measured as the
    file would be written; see :mod:`search` for the search and what its
    answer guarantees.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray, or PIL.Image.Image
    target_psnr : float, optional
        Reach at least this PSNR (dB) with as few colors as the search finds.
    max_bytes : int, optional
        Fit the PNG file in this many bytes with as many colors as it finds.
        Exactly one of `target_psnr` and `max_bytes`.
    max_colors : int
        The largest palette considered, 2..256.
    histogram : Histogram, optional
        ``prepare(pixels)`` if already computed.
    color : colorprofile.ColorTags, optional
        The color chunks the file will carry; counted in its size.
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
        Where the palette search measures distances (see :func:`quantize`);
        the target is PSNR whatever the space.
    speed : int
        1 (smallest files, slowest) to 10 (fastest): the effort of the
        first clustering and of every file's compression, as for
        :func:`quantize` and :meth:`PaletteImage.to_png`; the answer's
        ``data`` is compressed at it.
    shown : callable, optional
        ``shown(samples)``, (N, M, C) uint8 to (N, M, C) uint8: what a
        viewer shows for the values quantized, when that is not the values
        themselves (a file that keeps the input's color profile).  The PSNR
        of the target, and of every k tried, is then measured between
        ``shown(pixels)`` and the file's entries as shown.

    Returns
    -------
    search.Choice
        ``k``, the ``image``, its PNG ``data``, its ``psnr`` and the
        ``trials`` (every k encoded, in order, with PSNR and size).

    Raises
    ------
    TargetError
        If even `max_colors` colors fall short of the PSNR, or 2 colors do
        not fit in `max_bytes`.
    UsageError
        For bad pixels, targets or `color`.
    """
    pixels = _check_pixels(_as_pixels(pixels))
    speed = check_speed(speed)
    color_chunks(color)  # checked before the search, whose files carry them
    hist = _histogram_of(pixels, histogram)

    check_space(space)
    labels = {}
    weights = _search_weights(pixels, hist, space)

    # A size search needs its first clustering only to estimate sizes and
    # to start the others from: at the fastest speed it costs two thirds as
    # much, and the ks warm-started from it lose nothing (within 0.03 dB on
    # five pictures of ../shared/corpus/public at k = 45).
    first_speed = max(SPEEDS) if max_bytes is not None else speed

    def encode_at(k, near, effort=None):
        if effort is None:
            effort = first_speed if near is None else speed
        image, labels[k] = _quantize(hist, k, space=space, init=labels.get(near), weights=weights,
                                     speed=effort)
        return replace(image, color=color)

    curve = []

    def predict_psnr(k):
        # The first clustering merged down by Ward's cost gives its error at
        # every smaller k, in the units PSNR measures (RGB; premultiplied
        # RGBA).  k-means from those merges does better, by a gain that
        # grows over the first two thirds of a halving, then stays near
        # _LLOYD_GAIN.
        if not curve:
            first = next(iter(labels))
            errors = merge_errors(_features(hist.colors), hist.counts, labels[first])
            mse = errors / (float(hist.counts.sum()) * hist.colors.shape[1])
            with np.errstate(divide="ignore"):
                psnrs = 10 * np.log10(255.0**2 / mse)
            ks = np.arange(1, len(psnrs))
            psnrs[1:] += _LLOYD_GAIN * np.clip(1.5 * np.log2(first / ks), 0, 1)
            curve.append(psnrs)
        return float(curve[0][k]) if k < len(curve[0]) else math.inf

    sizes = SizeEstimates(speed)

    psnr_of = None
    if shown is not None:
        seen = shown(pixels)

        def psnr_of(image):
            return shown_psnr(seen, image, shown)

    choice = find_k(encode_at, target_psnr=target_psnr, max_bytes=max_bytes,
                    max_colors=max_colors,
                    exact_psnr=lambda image: psnr(pixels, image.to_pixels()),
                    predict_psnr=predict_psnr if space == "rgb" and shown is None else None,
                    estimate_size=sizes.estimate, write=sizes.write,
                    estimate_error=(_LOWEST_RATIO, _DRIFT), one_thread=sizes.one_thread,
                    psnr_of=psnr_of)
    first = choice.trials[0]
    if first_speed != speed and len(hist.colors) > first.k:
        # Said with the trial: the same k may come again, at the speed asked (below).
        choice = replace(choice, trials=(replace(first, speed=first_speed), *choice.trials[1:]))
    if choice.k >= max_colors - 1 and first_speed != speed and len(hist.colors) > max_colors:
        # The whole palette's encoding so far is the fastest speed's, which
        # only guided the search.  As the answer, or as the k + 1 that does
        # not fit, it is encoded as `quantize` would at this speed: the
        # answer if that file fits (it came out 4 bytes smaller than the
        # fastest one, under a budget the fastest one missed).
        image = encode_at(max_colors, None, speed)
        data = image.to_png(speed=speed)
        value = image.psnr if psnr_of is None else psnr_of(image)
        trial = Trial(max_colors, len(image.palette), value, len(data), image.palette)
        if len(data) <= max_bytes:
            choice = Choice(max_colors, image, data, value, choice.trials + (trial,))
        else:
            choice = replace(choice, trials=choice.trials + (trial,))
    return choice


def shown_psnr(seen, image, shown):
    """The PSNR of `image` as a viewer shows it, against `seen`.

    Parameters
    ----------
    seen : (H, W, C) uint8 ndarray
        The picture as shown: ``shown(pixels)``.
    image : PaletteImage
    shown : callable
        As for :func:`choose_k`.

    Returns
    -------
    float
    """
    # A pixel shows as its entry does: the palette alone is rendered.
    return psnr(seen, shown(image.palette[None])[0][image.indices])


def prepare(pixels):
    """Return the color histogram :func:`quantize` works on.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray, or PIL.Image.Image
        As :func:`quantize` takes them (RGBA whose every pixel is opaque
        counts as RGB).

    Returns
    -------
    Histogram
        Fully transparent pixels all count as (0, 0, 0, 0): their hidden
        color is not worth a palette entry.

    Raises
    ------
    UsageError
        For pixels that are not a non-empty (H, W, 3|4) uint8 array.
    """
    checked = _check_pixels(_as_pixels(pixels))
    if checked.shape[2] == 3 and isinstance(pixels, np.ndarray) \
            and np.may_share_memory(checked, pixels):
        # The histogram keeps the RGB pixels it counts, and outlives this
        # call: the caller's array may change.  (RGBA ones are copied anyway.)
        checked = checked.copy()
    return _counted(checked)


def _counted(pixels):
    """:func:`prepare` of pixels already checked, taken with the channels they have."""
    if pixels.shape[2] == 4:
        pixels = np.where(pixels[..., 3:] == 0, 0, pixels).astype(np.uint8)
    return color_histogram(pixels)


def _keep_opaque(centres, labels, feats, weights, opaque):
    """Make clusters whose pixels are mostly opaque exactly opaque.

    The mean of a few semi-transparent pixels and many opaque ones has an
    alpha of 254, which turns solid areas slightly see-through: the error is
    small but the change is one users notice.  Such a cluster's entry becomes
    the mean of its opaque members.
    """
    k = len(centres)
    total = np.bincount(labels, weights=weights, minlength=k)
    solid_w = np.bincount(labels, weights=weights * opaque, minlength=k)
    solid = (solid_w >= 0.5 * total) & (solid_w > 0)
    if not solid.any():
        return centres
    centres = centres.astype(np.float64)
    for j in range(feats.shape[1]):
        sums = np.bincount(labels, weights=weights * opaque * feats[:, j], minlength=k)
        centres[solid, j] = sums[solid] / solid_w[solid]
    return centres.astype(np.float32)


def _tidy(palette, labels):
    """Used, distinct entries (transparent ones first) and each color's new label."""
    present = np.flatnonzero(np.bincount(labels, minlength=len(palette)))
    used, inverse = np.unique(palette[present], axis=0, return_inverse=True)
    # Old entry -> position among the distinct used entries.
    remap = np.zeros(len(palette), np.int64)
    remap[present] = inverse.ravel()
    if palette.shape[1] == 4:
        order = np.argsort(used[:, 3] == 255, kind="stable")
        used = used[order]
        remap = np.argsort(order)[remap]
    return used, remap[labels].astype(np.uint8)


def _mse(colors, counts, decoded):
    """Mean squared error of every pixel, from its color's error.

    Exactly what :func:`metrics.psnr` measures on the pixels (for RGB the
    sums are of integers, exact in float64), without a pass over them.
    """
    diff = visible(colors) - visible(decoded)
    per_color = np.einsum("ij,ij->i", diff, diff)
    # einsum, not a BLAS dot product, whose rounding of RGBA's fractional
    # errors depends on the processor.
    total = np.einsum("i,i->", per_color, counts.astype(np.float64))
    return float(total) / (counts.sum() * diff.shape[1])


def _pixel_mse(pixels, decoded):
    """Mean squared error over the pixels themselves, when colors do not map one to one."""
    if pixels.shape[2] == 4:
        # Fully transparent pixels count as (0, 0, 0, 0), as in prepare.
        pixels = np.where(pixels[..., 3:] == 0, 0, pixels).astype(np.uint8)
    diff = visible(pixels) - visible(decoded)
    return float(np.einsum("ijk,ijk->", diff, diff)) / diff.size


def shared_palette(histograms, k):
    """One palette for several pictures: k-means over their summed histograms.

    Each picture weighs by its pixels: the counts are added, color by
    color.  Pictures without transparency count as opaque RGBA when another
    has some.

    Parameters
    ----------
    histograms : iterable of (colors, counts)
        ``colors`` (U, 3) or (U, 4) uint8 and ``counts`` (U,) int, as in
        :class:`histogram.Histogram` (see :func:`prepare`).
    k : int
        Palette size, 2..256.

    Returns
    -------
    (P, 3) or (P, 4) uint8 ndarray
        P <= k distinct entries, transparent ones first; every entry serves
        some pixel of some picture.

    Raises
    ------
    UsageError
        If `histograms` holds no pixel, one is not (colors, counts) of
        matching lengths as above with counts >= 0, or k is out of range.
    """
    k = check_k(k)
    try:
        histograms = [_colors_and_counts(item) for item in histograms]
    except TypeError:  # not iterable
        raise UsageError(f"histograms must be an iterable of (colors, counts), not "
                         f"{type(histograms).__name__}") from None
    if not histograms or not any(counts.sum() for _, counts in histograms):
        raise UsageError("a shared palette needs at least one picture with pixels")
    # Summed in int64 below: beyond, a count would wrap to negative (in float
    # here, which cannot wrap, with room for its rounding).
    if sum(float(counts.sum(dtype=np.float64)) for _, counts in histograms) >= 2.0**62:
        raise UsageError("the histograms' counts must add up to less than 2**62 pixels")
    channels = max(colors.shape[1] for colors, _ in histograms)
    keys, weights = [], []
    for colors, counts in histograms:
        if colors.shape[1] < channels:
            colors = np.column_stack([colors, np.full(len(colors), 255, np.uint8)])
        keys.append(np.ascontiguousarray(colors).view(np.dtype((np.void, channels))).ravel())
        weights.append(np.asarray(counts, np.int64))
    unique, inverse = np.unique(np.concatenate(keys), return_inverse=True)
    # Added as integers: bincount's float weights lose counts above 2**53.
    counts = np.zeros(len(unique), np.int64)
    np.add.at(counts, inverse.ravel(), np.concatenate(weights))
    # A color no pixel has must not pull an entry its way (a bin of such
    # colors alone would have no mean).
    held = counts > 0
    colors = unique.view(np.uint8).reshape(-1, channels)[held]
    counts = counts[held]
    if len(colors) <= k:
        palette, labels = colors, np.arange(len(colors))
    else:
        palette, labels = _cluster(colors, counts, k)
    return _tidy(palette, labels)[0]


def _colors_and_counts(item):
    """One (colors, counts) of :func:`shared_palette`, checked."""
    try:
        colors, counts = item
    except (TypeError, ValueError):
        raise UsageError("each histogram must be a (colors, counts) pair, as "
                         "(h.colors, h.counts) of prepare()'s h") from None
    colors, counts = np.asarray(colors), np.asarray(counts)
    if (colors.dtype != np.uint8 or colors.ndim != 2 or colors.shape[1] not in (3, 4)
            or counts.ndim != 1 or len(counts) != len(colors) or counts.dtype.kind not in "ui"):
        raise UsageError(f"colors must be (U, 3|4) uint8 and counts (U,) integers, not "
                         f"{colors.shape} {colors.dtype} and {counts.shape} {counts.dtype}")
    if (counts < 0).any():
        raise UsageError("a histogram's counts must not be negative")
    return colors, counts


def remap(pixels, palette, *, histogram=None):
    """Map a picture onto a given palette, keeping every entry in its place.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray, or PIL.Image.Image
        RGB pixels go with an RGBA palette as opaque.
    palette : (P, 3) or (P, 4) uint8 ndarray
        1 <= P <= 256; RGBA when `pixels` has transparency.
    histogram : Histogram, optional
        ``prepare(pixels)`` if already computed.

    Returns
    -------
    PaletteImage
        ``palette`` itself (unused entries kept) and, per pixel, its nearest
        entry in RGB (premultiplied RGBA) distance, with the ``mse``.

    Raises
    ------
    UsageError
        If the palette has fewer channels than the pixels or a bad shape.
    """
    pixels = _check_pixels(_as_pixels(pixels))
    palette = np.asarray(palette)
    if (palette.dtype != np.uint8 or palette.ndim != 2 or palette.shape[1] not in (3, 4)
            or not 1 <= len(palette) <= 256):
        raise UsageError(f"palette must be (P, 3|4) uint8 with 1 <= P <= 256, not {palette.shape} "
                         f"{palette.dtype}")
    if palette.shape[1] < pixels.shape[2]:
        raise UsageError("pixels with transparency need an RGBA palette")
    hist = _histogram_of(pixels, histogram)
    colors = hist.colors
    if palette.shape[1] > colors.shape[1]:
        # Opaque pixels against RGBA entries.
        colors = np.column_stack([colors, np.full(len(colors), 255, np.uint8)])
    labels = Assignment(_features(colors), _features(palette)).labels
    decoded = palette[labels]
    if decoded.shape[1] == 4 and (decoded[:, 3] == 255).all():
        # Opaque throughout: measured on RGB, as metrics.psnr measures it.
        colors, decoded = colors[:, :3], decoded[:, :3]
    return PaletteImage(palette, hist.spread(labels.astype(np.uint8)),
                        _mse(colors, hist.counts, decoded))
