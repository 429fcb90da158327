"""Counting an image's distinct colors, and mapping values back to pixels.

k-means over the distinct colors weighted by their pixel counts has exactly
the objective of k-means over every pixel, at a fraction of the work: a
12-megapixel photo has a few hundred thousand distinct colors.  The count is
a hash table (:mod:`_kernels.histogram`) whose size follows the number of
distinct colors, so memory stays a small multiple of the pixel data.
"""

from dataclasses import dataclass, field

import numpy as np

from ._kernels.histogram import count_colors, spread

__all__ = ["Histogram", "color_histogram"]


@dataclass(frozen=True, eq=False)
class Histogram:
    """The distinct colors of an image, their counts, and where they occur.

    Attributes
    ----------
    colors : (U, C) uint8 ndarray
        Distinct colors, C = 3 (RGB) or 4 (RGBA), sorted by their packed
        big-endian value; read-only.
    counts : (U,) int64 ndarray
        Number of pixels of each color; sums to H * W; read-only.
    shape : tuple of int
        (H, W) of the image.
    kept : dict
        What a palette search made of these colors for any palette size,
        kept by the quantizer for the next size (see :class:`kmeans.Shared`).
    """

    colors: np.ndarray
    counts: np.ndarray
    shape: tuple
    _pixels: np.ndarray  # (H*W, C) uint8: the pixels counted
    _table: np.ndarray  # the hash table that finds each pixel's row in `colors`
    kept: dict = field(default_factory=dict, repr=False)

    @property
    def pixels(self):
        """(H*W, C) uint8 ndarray: the pixels counted, in raster order (read-only view)."""
        view = self._pixels.view()
        view.flags.writeable = False
        return view

    def spread(self, values):
        """Give every pixel the value of its color.

        Parameters
        ----------
        values : (U,) uint8, int32 or int64 ndarray
            One value per distinct color (e.g. its palette index).

        Returns
        -------
        (H, W) ndarray of ``values.dtype``

        Raises
        ------
        TypeError
            For values of another dtype.
        """
        values = np.ascontiguousarray(values)
        if not values.flags.writeable:  # the kernel takes writable memory
            values = values.copy()
        if values.dtype not in (np.uint8, np.int32, np.int64):
            raise TypeError(f"spread takes uint8, int32 or int64 values, not {values.dtype}")
        out = np.empty(len(self._pixels), values.dtype)
        spread(self._pixels, self._table, values, out)
        return out.reshape(self.shape)


def color_histogram(pixels):
    """Count the distinct colors of an image.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        Kept (not copied) by the result, to spread values back.

    Returns
    -------
    Histogram
    """
    pixels = np.asarray(pixels, np.uint8)
    height, width, channels = pixels.shape
    flat = np.ascontiguousarray(pixels.reshape(-1, channels))
    keys, counts, table = count_colors(flat)
    colors = keys.astype(">u4").view(np.uint8).reshape(-1, 4)[:, 4 - channels:]
    colors = np.ascontiguousarray(colors)
    # Read-only: a search keeps results for these colors and counts, and an
    # image's error is measured on them (a change made an image's PSNR a lie).
    colors.flags.writeable = counts.flags.writeable = False
    return Histogram(colors, counts, (height, width), flat, table)
