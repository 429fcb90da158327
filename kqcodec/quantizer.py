"""Quantization on arrays: pixels in, a palette and indices out, no files.

This module ties the arrays-only stages together: :mod:`histogram` counts
the colors, :mod:`kmeans` finds the centres, :class:`nearest.Assignment`
maps every color to its nearest *rounded* entry, and the histogram spreads
those entries back to the pixels.  Reading and writing files is
:mod:`codec`'s job.
"""

import numpy as np

from . import oklab
from .defaults import DEFAULT_SPEED, SPACES, SPEEDS
from .dither import check_strength, dither_indices
from .errors import UsageError
from ._kernels import quantizer as kernels
from .histogram import color_histogram
from .kmeans import ENGINES, sklearn_kmeans, weighted_kmeans
from .metrics import visible
from .nearest import Assignment
from .paletteimage import PaletteImage

__all__ = ["quantize", "prepare", "check_k", "check_space", "check_speed", "K_RANGE"]

# Colors whose nearest and second-nearest entries may be closer than this
# (in color levels, from the bounds) are settled exactly: well above the
# float32 rounding the bounds allow for.
_TIE_GAP = 1.0

#: Palette sizes kqcodec allows.
K_RANGE = range(2, 257)


def check_k(k):
    """Return `k` as an int if it is a palette size kqcodec allows (2..256)."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k not in K_RANGE:
        raise UsageError(f"k must be an integer from 2 to 256, not {k!r}")
    return int(k)


def check_speed(speed):
    """Return `speed` as an int if it is an effort level (1..10)."""
    if isinstance(speed, bool) or not isinstance(speed, (int, np.integer)) or speed not in SPEEDS:
        raise UsageError(f"speed must be an integer from 1 to 10, not {speed!r}")
    return int(speed)


def check_space(space):
    """Return `space` if the palette search knows it (see :data:`defaults.SPACES`)."""
    if space not in SPACES:
        raise UsageError(f"space must be one of {', '.join(SPACES)}, not {space!r}")
    return space


def _features(colors, space="rgb"):
    """Colors (U, C) uint8 -> float32 features the error is measured in.

    RGB stays RGB; ``oklab`` is Oklab scaled by :data:`oklab.SCALE`, so that
    a unit is about one grey level.  RGBA is premultiplied (the color
    coordinates times alpha / 255), so that the color of a nearly
    transparent pixel matters as little as it shows.  Then everything but
    Oklab's a and b is shifted by -128: centred near 0, and for RGB float32
    distances of integers stay exact.
    """
    if space == "oklab":
        raw = oklab.rgb_to_oklab(colors[:, :3]) * oklab.SCALE
    else:
        raw = colors[:, :3].astype(np.float64)
    if colors.shape[1] == 4:
        alpha = colors[:, 3:].astype(np.float64)
        raw = np.hstack([raw * (alpha / 255), alpha])
    return (raw - _offset(colors.shape[1], space)).astype(np.float32)


def _offset(channels, space):
    offset = np.full(channels, 128.0)
    if space == "oklab":
        offset[1:3] = 0
    return offset


def _entries(centres, channels, space="rgb"):
    """Round feature-space centres to uint8 palette entries (straight alpha)."""
    values = centres.astype(np.float64) + _offset(channels, space)
    if channels == 4:
        alpha = np.clip(np.round(values[:, 3]), 0, 255)
        with np.errstate(divide="ignore", invalid="ignore"):
            color = np.where(alpha[:, None] > 0, values[:, :3] * 255 / alpha[:, None], 0)
        values = np.column_stack([color, alpha])
    if space == "oklab":
        values[:, :3] = oklab.oklab_to_rgb(values[:, :3] / oklab.SCALE)
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def quantize(pixels, k, *, seed=0, histogram=None, engine="kqcodec", space="rgb", dither=0.0,
             speed=DEFAULT_SPEED):
    """Reduce an image to at most k colors by weighted k-means.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB or straight RGBA.
    k : int
        Palette size, 2..256.
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
    space : {'rgb', 'oklab'}
        Where distances are measured, for the search and the mapping:
        ``rgb`` minimises the error PSNR measures; ``oklab`` the error in a
        perceptual space (see :mod:`oklab`), which spends entries where eyes
        tell colors apart, at some cost in PSNR.
    speed : int
        Search effort, 1 (best palette, slowest) to 10 (fastest).  The
        compression effort is given when writing (:meth:`PaletteImage.to_png`).

    Returns
    -------
    PaletteImage
        With at most k entries, transparent ones first, and its ``mse``.  An image with k or
        fewer colors is kept exactly.  Every pixel maps to the nearest
        rounded entry in Euclidean distance in `space` (premultiplied by
        alpha for RGBA).  With `dither`, the indices come from error
        diffusion instead (see :mod:`dither`), with the same palette.

    Raises
    ------
    UsageError
        For a k, engine, space or seed kqcodec does not allow, or pixels
        that are not a non-empty (H, W, 3|4) uint8 array.
    """
    k = check_k(k)
    if engine not in ENGINES:
        raise UsageError(f"engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    check_space(space)
    dither = check_strength(dither)
    pixels = np.asarray(pixels)
    if (pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4)
            or 0 in pixels.shape):
        raise UsageError(
            f"pixels must be a non-empty (H, W, 3|4) uint8 array, not {pixels.shape} {pixels.dtype}"
        )
    check_speed(speed)
    if not 0 <= seed < 2**32:
        raise UsageError(f"seed must be from 0 to 2**32 - 1, not {seed}")
    channels = pixels.shape[2]
    hist = histogram if histogram is not None else prepare(pixels)
    if len(hist.colors) <= k:
        return _finish(hist.colors, np.arange(len(hist.colors)), hist)

    feats = _features(hist.colors, space)
    weights = hist.counts.astype(np.float64)
    search = np.ones(len(feats), bool)
    if channels == 4 and (hist.colors[:, 3] == 0).any():
        # One fully transparent entry stays out of the search, so that
        # invisible pixels stay invisible.
        search = hist.colors[:, 3] > 0
    wanted = k - int(not search.all())
    if engine == "sklearn":
        result = sklearn_kmeans(feats[search], weights[search], wanted, seed=seed)
    else:
        result = weighted_kmeans(feats[search], weights[search], wanted, speed=speed)
    centres = result.centres
    if channels == 4:
        # The labels may still be those of the bins (see weighted_kmeans):
        # close enough to tell which clusters are mostly opaque.
        centres = _keep_opaque(centres, result.assignment.labels, feats[search],
                               weights[search], hist.colors[search, 3] == 255)
    if not search.all():
        centres = np.vstack([centres, _features(np.zeros((1, 4), np.uint8), space)])
    palette = _entries(centres, channels, space)
    if search.all():
        assignment = result.assignment
        assignment.move(_features(palette, space))
    else:
        assignment = Assignment(feats, _features(palette, space))
    image = _finish(palette, _settled(assignment), hist)
    if dither:
        indices = dither_indices(pixels, image.palette, image.indices, dither, histogram=hist)
        image = PaletteImage(image.palette, indices, _pixel_mse(pixels, image.palette[indices]))
    return image


def _settled(assignment):
    """The assignment's labels, with every color near a tie settled exactly.

    A color whose bounds leave a clear gap between its entry and any other
    keeps its label, whatever the rounding; the others take the nearest
    entry computed in float64 in a fixed order, ties to the lower index
    (:func:`_kernels.quantizer.nearest_entries`), so that no BLAS library or
    processor changes the result.
    """
    labels = assignment.labels.astype(np.int32)
    unsure = np.flatnonzero(assignment.lower - assignment.upper <= _TIE_GAP)
    if len(unsure):
        exact = np.empty(len(unsure), np.int32)
        kernels.nearest_entries(assignment.points[unsure].astype(np.float64),
                                assignment.centres.astype(np.float64), exact)
        labels[unsure] = exact
    return labels


def prepare(pixels):
    """Return the color histogram :func:`quantize` works on.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray

    Returns
    -------
    Histogram
        Fully transparent pixels all count as (0, 0, 0, 0): their hidden
        color is not worth a palette entry.
    """
    pixels = np.asarray(pixels, np.uint8)
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


def _finish(palette, labels, hist):
    """Drop unused and duplicate entries, order transparent ones first, map pixels."""
    present = np.flatnonzero(np.bincount(labels, minlength=len(palette)))
    used, inverse = np.unique(palette[present], axis=0, return_inverse=True)
    # Old entry -> position among the distinct used entries.
    remap = np.zeros(len(palette), np.int64)
    remap[present] = inverse.ravel()
    if palette.shape[1] == 4:
        order = np.argsort(used[:, 3] == 255, kind="stable")
        used = used[order]
        remap = np.argsort(order)[remap]
    per_color = remap[labels].astype(np.uint8)
    return PaletteImage(used, hist.spread(per_color), _mse(hist, used[per_color]))


def _mse(hist, decoded):
    """Mean squared error of every pixel, from its color's error.

    Exactly what :func:`metrics.psnr` measures on the pixels (for RGB the
    sums are of integers, exact in float64), without a pass over them.
    """
    diff = visible(hist.colors) - visible(decoded)
    per_color = np.einsum("ij,ij->i", diff, diff)
    return float(per_color @ hist.counts.astype(np.float64)) / (hist.counts.sum() * diff.shape[1])


def _pixel_mse(pixels, decoded):
    """Mean squared error over the pixels themselves, when colors do not map one to one."""
    if pixels.shape[2] == 4:
        # Fully transparent pixels count as (0, 0, 0, 0), as in prepare.
        pixels = np.where(pixels[..., 3:] == 0, 0, pixels).astype(np.uint8)
    diff = visible(pixels) - visible(decoded)
    return float(np.einsum("ijk,ijk->", diff, diff)) / diff.size
