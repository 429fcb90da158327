"""Dithering: Floyd-Steinberg error diffusion where it helps, and only there.

Nearest mapping turns a smooth gradient into flat bands.  Error diffusion
passes each pixel's error on to the neighbours not yet mapped, so that the
average color of an area is kept and bands become a fine pattern.  It also
adds noise, which costs bytes and PSNR, and on edges and textures it adds
nothing eyes would miss.  So, as libimagequant does:

- **A map** of where dithering helps: full strength in smooth areas, none
  across edges and in busy texture, where the picture hides the bands itself.
- **Small errors are not passed on**: an error shorter than :data:`FLOOR`
  levels is too small to see, and diffusing it only adds noise.
- **Clamped error**: the error a pixel takes is limited to :data:`LIMIT`
  levels a channel, so that it never adds up into a "gaudy" outlier color.
- **Transparency**: only opaque pixels take part, and a pixel only moves to
  an entry with the alpha of its nearest entry: transparent pixels neither
  take nor pass on error, and fully transparent ones stay as they are.

The error lives in Oklab (see :data:`ERROR_SPACE` for why).  The
per-pixel loop is the compiled kernel :func:`kqcodec._kernels.dither.floyd_steinberg`.
"""

import numpy as np

from . import oklab
from .errors import UsageError

__all__ = ["dither_indices", "dither_map", "visibility", "check_strength", "reuse_indices", "Reuse",
           "check_reuse", "LIMIT", "FLOOR", "ERROR_SPACE", "MASKED", "REUSE_MASKED"]

#: Where the error is measured and diffused: Oklab x 255 (see :mod:`oklab`).
#: On seven photos at k=16 and 64 it scored higher in SSIMULACRA2 than sRGB
#: code values or linear light, for about the same bytes
#: (``benchmarks/dither_choices.py``, figures in the README).
ERROR_SPACE = "oklab"

#: Largest error, in units of the error space a channel, that a pixel takes
#: from its neighbours: without a limit the score fell by half at k=16.
LIMIT = 6.0

#: Errors shorter than this (Euclidean, same units) are not passed on.
FLOOR = 2.0

# Local contrast, in levels, from which dithering fades (EDGE_LOW) to off
# (EDGE_HIGH).  Below EDGE_LOW an area is smooth enough to band.
EDGE_LOW = 16.0
EDGE_HIGH = 48.0


def _number(value, low, high, what):
    """`value` as a float from `low` to `high`; `what` names it in the error."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise UsageError(f"{what} must be a number from {low} to {high}, not {value!r}")
    value = float(value)
    if not low <= value <= high:
        raise UsageError(f"{what} must be from {low} to {high}, not {value:g}")
    return value


def check_strength(strength):
    """Return `strength` as a float if it is a dithering strength, 0..1.

    Parameters
    ----------
    strength : float

    Returns
    -------
    float

    Raises
    ------
    UsageError
        Outside 0..1 or not a number.
    """
    return _number(strength, 0, 1, "dither strength")


def _to_space(rgb, space):
    """(..., 3) uint8 sRGB -> float32 values of the error space, in levels."""
    if space == "linear":
        values = oklab.srgb_to_linear(rgb) * 255
    elif space == "oklab":
        values = oklab.rgb_to_oklab(rgb) * oklab.SCALE
    else:
        values = rgb
    return np.ascontiguousarray(values, np.float32)


def _pixels_in(space, pixels, histogram=None):
    """(H, W, 3) float32: each pixel's color in `space`.

    With the picture's histogram, each distinct color is converted once and
    spread, far faster than converting every pixel.
    """
    if histogram is not None and space != "srgb":
        numbers = histogram.spread(np.arange(len(histogram.colors), dtype=np.int32))
        return _to_space(histogram.colors[:, :3], space)[numbers]
    return _to_space(pixels[..., :3], space)


def _alpha_groups(palette):
    """(P,) int32: the entries a pixel may move between share a group, their alpha."""
    return (palette[:, 3].astype(np.int32) if palette.shape[1] == 4
            else np.zeros(len(palette), np.int32))


def _remap_arrays(pixels, palette, indices):
    """The arrays of a remap that starts from the nearest `indices`, checked to match.

    Raises
    ------
    UsageError
        When the shapes do not go together.
    """
    pixels = np.asarray(pixels)
    palette = np.asarray(palette)
    indices = np.ascontiguousarray(indices, np.uint8)
    if (pixels.ndim != 3 or indices.shape != pixels.shape[:2] or palette.ndim != 2
            or palette.shape[1] != pixels.shape[2] or not 1 <= len(palette) <= 256):
        raise UsageError(f"pixels {pixels.shape}, palette {palette.shape} and indices "
                         f"{indices.shape} do not match")
    return pixels, palette, indices


def dither_map(pixels, *, low=EDGE_LOW, high=EDGE_HIGH):
    """How much error each pixel may take: 1 in smooth areas, 0 on edges and texture.

    The local contrast of a pixel is the largest difference, over channels,
    between it and any of its 8 neighbours, taken as the largest over the
    3x3 area around it, so that an edge also keeps dithering off the pixels
    beside it (the compiled :func:`kqcodec._kernels.dither.local_contrast`).

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
    low, high : float
        Contrast in levels where the map starts to fall from 1, and reaches 0.

    Returns
    -------
    (H, W) float32 ndarray
        Values in 0..1; 0 for every pixel that is not fully opaque.
    """
    from ._kernels.dither import local_contrast

    contrast = np.empty(pixels.shape[:2], np.uint8)
    local_contrast(np.ascontiguousarray(pixels, np.uint8), contrast)
    levels = np.arange(256, dtype=np.float32)
    table = np.clip((high - levels) / np.float32(high - low), 0, 1).astype(np.float32)
    weight = table[contrast]
    if pixels.shape[2] == 4:
        weight[pixels[..., 3] != 255] = 0
    return weight


#: Weight, in the ``perceptual`` palette search, of a pixel on an edge or in
#: busy texture, against 1 in a smooth area: contrast hides most of an error
#: there, while in a smooth area it shows as a band.  Measured on photos
#: against the reference SSIMULACRA2 tool (README, "Perceptual quality").
MASKED = 0.3


def visibility(pixels, *, masked=MASKED):
    """How much each pixel's error shows, for weighting the palette search.

    1 in smooth areas, falling to `masked` across edges and texture, by the
    same local contrast as :func:`dither_map`.  Pixels that are not fully
    opaque weigh 1: their contrast is not measured.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
    masked : float
        The weight of a pixel in busy texture, 0..1.

    Returns
    -------
    (H, W) float32 ndarray
        Values in `masked`..1.
    """
    weight = dither_map(pixels)
    weight = np.float32(masked) + np.float32(1 - masked) * weight
    if pixels.shape[2] == 4:
        weight[pixels[..., 3] != 255] = 1
    return weight


#: How many times wider the reuse margin is on edges and in texture than in
#: smooth areas (the same contrast map as :func:`dither_map`): a band in a
#: smooth area shows, the same shift in texture hardly does.
REUSE_MASKED = 3.0

#: The reuse pass's costs, in margins (see :func:`reuse_indices`): of an
#: index that differs from its left neighbour's, and of one that differs
#: from the index above.  Measured against the reference SSIMULACRA2 tool
#: on the photos (README, "Smaller files for the same look").
REUSE_CHANGE = 1.0
REUSE_MISMATCH = 1.2


def check_reuse(margin):
    """Return `margin` as a float if it is a reuse margin, 0..16 Oklab levels.

    Parameters
    ----------
    margin : float

    Returns
    -------
    float

    Raises
    ------
    UsageError
        Outside 0..16 or not a number.
    """
    return _number(margin, 0, 16, "reuse margin")


def reuse_indices(pixels, palette, indices, margin=1.0, *, masked=REUSE_MASKED, histogram=None):
    """Indices that repeat a neighbour's where that costs little color error.

    Deflate stores a run of one index, or a row that repeats the one above,
    in a few bits; a pixel whose nearest entry differs from its neighbour's
    by a hair breaks the run for nothing eyes would see.  So each row, from
    the top, is mapped as a whole (the compiled
    :func:`kqcodec._kernels.dither.reuse_rows`, a Viterbi pass): each pixel
    may take, instead of its nearest entry, one at most `margin` Oklab
    levels (Oklab x 255, Euclidean) farther from its color, `masked` times
    that on edges and in texture; among those choices the row gets the one
    of least cost, the extra distance of each pixel in margins plus
    :data:`REUSE_CHANGE` per index change along the row and
    :data:`REUSE_MISMATCH` per index unlike the one above.  Each pixel
    stays within that margin of its nearest entry, so errors do not drift.
    :class:`Reuse` does the same for several palettes of one picture.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        The picture, straight alpha.
    palette : (P, 3) or (P, 4) uint8 ndarray
        Its entries; kept as they are.
    indices : (H, W) uint8 ndarray
        The nearest-mapping indices (every value below P).
    margin : float
        In smooth areas, in Oklab levels, 0..16; 0 returns `indices`.
    masked : float
        The factor of the margin on edges and in texture (:func:`dither_map` 0).
    histogram : Histogram, optional
        ``quantizer.prepare(pixels)``, to convert each distinct color once.

    Returns
    -------
    (H, W) uint8 ndarray
        Indices into `palette`.  Pixels that are not opaque keep theirs, and
        a pixel only takes an entry with the alpha of its own.

    Raises
    ------
    UsageError
        For a margin outside 0..16 or shapes that do not match.
    """
    return Reuse(pixels, margin, masked=masked, histogram=histogram).indices(palette, indices)


class Reuse:
    """The reuse pass of :func:`reuse_indices` for one picture, ready for any palette.

    The picture's Oklab colors and per-pixel margins are computed once, so
    that mapping it onto several palettes in turn (as the palette is
    refitted to the mapping) costs one compiled pass each.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
    margin, masked, histogram
        As for :func:`reuse_indices`.

    Raises
    ------
    UsageError
        For a margin outside 0..16.
    """

    def __init__(self, pixels, margin=1.0, *, masked=REUSE_MASKED, histogram=None):
        self.margin = check_reuse(margin)
        self.pixels = np.asarray(pixels)
        self._masked, self._histogram = masked, histogram
        self._target = self._widths = None

    def indices(self, palette, indices):
        """Reused indices of the picture on `palette`, from its nearest `indices`.

        Parameters
        ----------
        palette : (P, 3) or (P, 4) uint8 ndarray
        indices : (H, W) uint8 ndarray
            The nearest-mapping indices (every value below P).

        Returns
        -------
        (H, W) uint8 ndarray
            As for :func:`reuse_indices`.

        Raises
        ------
        UsageError
            When the shapes do not match.
        """
        from ._kernels.dither import reuse_rows

        pixels, palette, indices = _remap_arrays(self.pixels, palette, indices)
        if self.margin == 0 or len(palette) == 1:
            return indices.copy()
        if self._target is None:
            smooth = dither_map(pixels)
            masked = np.float32(self._masked)
            widths = np.float32(self.margin) * (masked - (masked - 1) * smooth)
            if pixels.shape[2] == 4:
                widths[pixels[..., 3] != 255] = 0
            self._widths = np.ascontiguousarray(widths, np.float32)
            self._target = _pixels_in("oklab", pixels, self._histogram)
        entries = _to_space(palette[:, :3], "oklab")
        order, reach = _by_distance(entries)
        out = np.empty_like(indices)
        reuse_rows(self._target, entries, indices, self._widths, _alpha_groups(palette),
                   order, reach, REUSE_CHANGE, REUSE_MISMATCH, out)
        return out


def _by_distance(entries):
    """For each of the entries (P, 3), all entries by increasing distance, itself first.

    Returns ``order`` (P, P) int32 and ``reach`` (P, P) float32, the distances
    in that order, both C-contiguous.
    """
    gap = np.sqrt(((entries[:, None, :].astype(np.float64) - entries[None, :, :]) ** 2).sum(axis=2))
    order = np.argsort(gap, axis=1, kind="stable").astype(np.int32)
    # Each entry itself comes first, even when another has the same color.
    own = np.arange(len(entries))
    first = order[:, 0].copy()
    where = np.argmax(order == own[:, None], axis=1)
    order[own, where] = first
    order[:, 0] = own
    reach = np.take_along_axis(gap, order, axis=1).astype(np.float32)
    return np.ascontiguousarray(order), np.ascontiguousarray(reach)


def dither_indices(pixels, palette, indices, strength=1.0, *, space=ERROR_SPACE, limit=LIMIT,
                   floor=FLOOR, weight=None, histogram=None):
    """Palette indices with Floyd-Steinberg error diffusion (serpentine).

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        The picture, straight alpha.
    palette : (P, 3) or (P, 4) uint8 ndarray
        The entries found for it; kept as they are.
    indices : (H, W) uint8 ndarray
        The nearest-mapping indices (every value below P): the starting
        point, and the answer wherever dithering is off.
    strength : float
        0..1, scales the error every pixel takes; 0 returns `indices`.
    space : {'srgb', 'linear', 'oklab'}
        Where the error is measured and diffused.
    limit, floor : float
        See :data:`LIMIT` and :data:`FLOOR`, in levels of `space`.
    weight : (H, W) float32 ndarray, optional
        The dithering map; :func:`dither_map` by default.
    histogram : Histogram, optional
        The picture's colors (``quantizer.prepare(pixels)``): converting
        each distinct color once and spreading the result is far faster
        than converting every pixel to Oklab.

    Returns
    -------
    (H, W) uint8 ndarray
        Indices into `palette`.  A pixel only moves to an entry whose alpha
        is that of its entry in `indices`; pixels that are not opaque keep
        theirs.

    Raises
    ------
    UsageError
        For a strength outside 0..1 or shapes that do not match.
    """
    from ._kernels.dither import floyd_steinberg

    strength = check_strength(strength)
    pixels, palette, indices = _remap_arrays(pixels, palette, indices)
    if strength == 0 or len(palette) == 1:
        return indices.copy()
    if weight is None:
        weight = dither_map(pixels)
    weight = np.ascontiguousarray(weight * np.float32(strength), np.float32)
    target = _pixels_in(space, pixels, histogram)
    entries = _to_space(palette[:, :3], space)
    order, reach = _by_distance(entries)
    group = _alpha_groups(palette)
    low, high = float(entries.min()), float(entries.max())
    out = np.empty_like(indices)
    floyd_steinberg(target, np.ascontiguousarray(entries), indices, weight,
                    order, reach, group,
                    float(limit), float(floor), min(low, float(target.min())),
                    max(high, float(target.max())), out)
    return out
