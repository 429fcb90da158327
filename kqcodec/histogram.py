"""Counting an image's distinct colors, and mapping values back to pixels.

k-means over the distinct colors weighted by their pixel counts has exactly
the objective of k-means over every pixel, at a fraction of the work: a
12-megapixel photo has a few hundred thousand distinct colors.  The count is
a hash table (:mod:`_kernels.histogram`) whose size follows the number of
distinct colors, so memory stays a small multiple of the pixel data.
"""

from dataclasses import dataclass

import numpy as np

from ._kernels.histogram import count_colors

__all__ = ["Histogram", "color_histogram"]


@dataclass(frozen=True, eq=False)
class Histogram:
    """The distinct colors of an image, their counts, and where they occur.

    Attributes
    ----------
    colors : (U, C) uint8 ndarray
        Distinct colors, C = 3 (RGB) or 4 (RGBA), sorted by their packed
        big-endian value.
    counts : (U,) int64 ndarray
        Number of pixels of each color; sums to H * W.
    shape : tuple of int
        (H, W) of the image.
    """

    colors: np.ndarray
    counts: np.ndarray
    shape: tuple
    _inverse: np.ndarray  # (H*W,) int32: every pixel's row in `colors`

    def spread(self, values):
        """Give every pixel the value of its color.

        Parameters
        ----------
        values : (U,) ndarray
            One value per distinct color (e.g. its palette index).

        Returns
        -------
        (H, W) ndarray of ``values.dtype``
        """
        return np.asarray(values)[self._inverse].reshape(self.shape)


def color_histogram(pixels):
    """Count the distinct colors of an image.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray

    Returns
    -------
    Histogram
    """
    pixels = np.asarray(pixels, np.uint8)
    height, width, channels = pixels.shape
    keys, counts, inverse = count_colors(np.ascontiguousarray(pixels.reshape(-1, channels)))
    colors = keys.astype(">u4").view(np.uint8).reshape(-1, 4)[:, 4 - channels:]
    return Histogram(np.ascontiguousarray(colors), counts, (height, width), inverse)
