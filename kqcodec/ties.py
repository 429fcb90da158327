"""Near ties: a pixel almost as near another entry takes its neighbour's.

Mapping every pixel to its nearest entry minimises the error, but where two
entries are nearly as close (noise on a smooth gradient, the dark background
of a photo, the anti-aliased edge of an icon) the choice flips from pixel
to pixel for a difference nobody sees, and each flip breaks the repeats that
deflate compresses.  Here a pixel takes the entry of its left neighbour, or
else of its upper one, when that entry has the same alpha as its nearest one
(an opaque pixel stays opaque, a transparent one transparent) and its
squared distance exceeds the nearest one's by at most a tolerance.  The
tolerance is chosen so that the cheapest such changes spend a fixed share of
the picture's error, and a hard cap on the error added keeps the PSNR within
:data:`BUDGET` of the nearest mapping's (0.019 dB), while the files come out
up to several percent smaller at the same PSNR.
"""

import math

import numpy as np

from ._kernels.ties import follow_neighbours, tie_costs

__all__ = ["follow_neighbours_within", "BUDGET"]

#: The error added over the whole picture stays within this share of its
#: squared error: 10 log10(1.0044) = 0.019 dB of PSNR at most.
BUDGET = 0.0044

# The tolerance is looked for up to this multiple of the mean squared error
# per pixel, in this many steps.
_LARGEST = 4.0
_BUCKETS = 512

# The tolerance is estimated from every _STEP-th row, where changes do not
# chain along a row as they do in the real pass: it aims at this share of
# the budget, the cap seeing to the rest.
_STEP = 4
_AIM = 0.7


def follow_neighbours_within(pixels, shape, palette, indices, mse):
    """Settle near ties towards the neighbouring pixels' entries, in place.

    Parameters
    ----------
    pixels : (H*W, C) uint8 ndarray
        The pixels, C = 3 (RGB) or 4 (straight RGBA, fully transparent ones
        as (0, 0, 0, 0)).
    shape : tuple of int
        (H, W).
    palette : (P, C) uint8 ndarray
    indices : (H, W) uint8 ndarray, C-contiguous
        Each pixel's nearest entry (in the distance PSNR measures); updated
        in place.
    mse : float
        Mean squared error per channel of `indices`, as :func:`metrics.psnr`
        measures it.

    Returns
    -------
    float
        The mean squared error per channel after the change, at most
        ``mse * (1 + BUDGET)``.
    """
    pixels = np.ascontiguousarray(pixels)
    palette = np.ascontiguousarray(palette, np.uint8)
    flat = indices.reshape(-1)
    channels = pixels.shape[1]
    height, width = int(shape[0]), int(shape[1])
    count = height * width
    scale = 255**2 if channels == 4 else 1  # the kernels' integer units for RGBA
    budget = int(BUDGET * mse * channels * scale * count)
    unit = max(1, math.ceil(_LARGEST * mse * channels * scale / _BUCKETS))
    sums = np.zeros(_BUCKETS, np.int64)
    step = _STEP if height >= 4 * _STEP else 1
    tie_costs(pixels, width, palette, flat, step, unit, sums)
    # The largest tolerance whose sampled changes stay within the aim.
    spent = np.cumsum(sums) * (height / math.ceil(height / step))
    within = int(np.searchsorted(spent, _AIM * budget, side="right"))
    tolerance = within * unit - 1 if within < _BUCKETS else _BUCKETS * unit
    added = follow_neighbours(pixels, width, palette, flat, max(tolerance, 0), budget)
    return mse + added / (scale * count * channels)
