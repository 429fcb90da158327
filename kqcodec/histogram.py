"""Counting an image's distinct colors, and mapping values back to pixels.

k-means over the distinct colors weighted by their pixel counts has exactly
the objective of k-means over every pixel, at a fraction of the work: a
12-megapixel photo has a few hundred thousand distinct colors.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["Histogram", "color_histogram"]

_RGB_KEYS = 1 << 24

# From this many pixels a dense count over all 2**24 RGB values beats
# sorting; below it the 128 MB table costs more than it saves.
_DENSE_FROM = 1 << 20


@dataclass(frozen=True, eq=False)
class Histogram:
    """The distinct colors of an image, their counts, and where they occur.

    Attributes
    ----------
    colors : (U, C) uint8 ndarray
        Distinct colors, C = 3 (RGB) or 4 (RGBA), sorted by their packed value.
    counts : (U,) int64 ndarray
        Number of pixels of each color; sums to H * W.
    shape : tuple of int
        (H, W) of the image.
    """

    colors: np.ndarray
    counts: np.ndarray
    shape: tuple
    _pixel_keys: np.ndarray  # (H*W,) packed RGB (dense, int32), or the color number
    _color_keys: np.ndarray  # (U,) packed RGB of `colors` (dense); None otherwise

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
        values = np.asarray(values)
        if self._color_keys is None:
            return values[self._pixel_keys].reshape(self.shape)
        # A 16 Mi-entry table beats a search: one gather per pixel.
        table = np.zeros(_RGB_KEYS, values.dtype)
        table[self._color_keys] = values
        return table[self._pixel_keys].reshape(self.shape)


def _pack_rgb(pixels):
    """Return (N,) int32 keys r << 16 | g << 8 | b of (..., 3) uint8 pixels."""
    flat = pixels.reshape(-1, 3)
    # Shifting straight into int32 saves the temporaries of astype.
    keys = np.left_shift(flat[:, 0], 16, dtype=np.int32)
    keys |= np.left_shift(flat[:, 1], 8, dtype=np.int32)
    keys |= flat[:, 2]
    return keys


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
    if channels == 3 and height * width >= _DENSE_FROM:
        keys = _pack_rgb(pixels)
        # bincount over all 2**24 RGB values is linear time, unlike a sort.
        counts = np.bincount(keys, minlength=_RGB_KEYS)
        color_keys = np.flatnonzero(counts).astype(np.int32)
        counts = counts[color_keys]
        colors = np.empty((len(color_keys), 3), np.uint8)
        colors[:, 0] = color_keys >> 16
        colors[:, 1] = color_keys >> 8
        colors[:, 2] = color_keys
        return Histogram(colors, counts, (height, width), keys, color_keys)
    if channels == 3:
        packed = _pack_rgb(pixels)
    else:
        packed = np.ascontiguousarray(pixels.reshape(-1, 4)).view(np.dtype(">u4")).ravel()
    unique, inverse, counts = np.unique(packed, return_inverse=True, return_counts=True)
    if channels == 3:
        colors = np.column_stack([unique >> 16, unique >> 8, unique]).astype(np.uint8)
    else:
        colors = unique.astype(">u4").view(np.uint8).reshape(-1, 4)
    return Histogram(colors, counts.astype(np.int64), (height, width), inverse.ravel(), None)
