"""Oklab, a perceptual color space: sRGB to Oklab and back.

Oklab (Björn Ottosson, 2020) is built so that Euclidean distances match how
different two colors look far better than distances in sRGB do: a step in
the dark blues counts as much as it shows, not as much as its code values
differ.  k-means in Oklab therefore spends palette entries where eyes tell
colors apart, at some cost in PSNR, which measures sRGB code values.

The conversion is sRGB -> linear light (the sRGB transfer curve) -> LMS
(a 3x3 matrix) -> cube root -> Oklab (a 3x3 matrix), with Ottosson's
published matrices; the inverse runs the same steps backwards.  All in
float64, so a round trip returns every 8-bit color to within 1e-6 levels.
"""

import numpy as np

__all__ = ["srgb_to_linear", "linear_to_srgb", "rgb_to_oklab", "oklab_to_rgb", "SCALE"]

#: Oklab lightness runs 0..1; features for the palette search are Oklab x SCALE,
#: so that one unit is about one sRGB level of grey and the search's bin sizes
#: and rounding margins, set in levels, keep their meaning.
SCALE = 255.0

_RGB_TO_LMS = np.array([
    [0.4122214708, 0.5363325363, 0.0514459929],
    [0.2119034982, 0.6806995451, 0.1073969566],
    [0.0883024619, 0.2817188376, 0.6299787005],
])
_LMS_TO_LAB = np.array([
    [0.2104542553, 0.7936177850, -0.0040720468],
    [1.9779984951, -2.4285922050, 0.4505937099],
    [0.0259040371, 0.7827717662, -0.8086757660],
])
# Exact inverses rather than the rounded published ones, so that the round
# trip is as tight as float64 allows.
_LMS_TO_RGB = np.linalg.inv(_RGB_TO_LMS)
_LAB_TO_LMS = np.linalg.inv(_LMS_TO_LAB)

# The 256 linear values of the 8-bit sRGB codes: a lookup beats the power law.
_LINEAR = None


def _linear_table():
    global _LINEAR
    if _LINEAR is None:
        _LINEAR = srgb_to_linear(np.arange(256, dtype=np.float64))
    return _LINEAR


def srgb_to_linear(values):
    """sRGB code values to linear light (the IEC 61966-2-1 curve).

    Parameters
    ----------
    values : ndarray
        Code values in 0..255, any shape, integer or float.

    Returns
    -------
    float64 ndarray
        Linear light in 0..1, same shape.
    """
    v = np.asarray(values, np.float64) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((np.maximum(v, 0.04045) + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(values):
    """Linear light to sRGB code values, the inverse of :func:`srgb_to_linear`.

    Parameters
    ----------
    values : ndarray
        Linear light, nominally 0..1 (values outside are extended with the
        curve's sign-symmetric form, not clipped).

    Returns
    -------
    float64 ndarray
        Code values, nominally 0..255, unrounded.
    """
    v = np.asarray(values, np.float64)
    a = np.abs(v)
    curve = np.where(a <= 0.0031308, a * 12.92, 1.055 * np.maximum(a, 0.0031308) ** (1 / 2.4) - 0.055)
    return np.copysign(curve, v) * 255.0


def rgb_to_oklab(rgb):
    """sRGB colors to Oklab.

    Parameters
    ----------
    rgb : (..., 3) ndarray
        sRGB code values 0..255; uint8 goes through a lookup table.

    Returns
    -------
    (..., 3) float64 ndarray
        L (0..1), a and b (about -0.4..0.4).
    """
    rgb = np.asarray(rgb)
    if rgb.dtype == np.uint8:
        linear = _linear_table()[rgb]
    else:
        linear = srgb_to_linear(rgb)
    # einsum rather than BLAS: a matrix product's rounding (fused
    # multiply-add or not) depends on the processor.
    lms = np.einsum("...j,kj->...k", linear, _RGB_TO_LMS)
    return np.einsum("...j,kj->...k", np.cbrt(lms), _LMS_TO_LAB)


def oklab_to_rgb(lab):
    """Oklab colors to sRGB code values, the inverse of :func:`rgb_to_oklab`.

    Parameters
    ----------
    lab : (..., 3) ndarray
        L, a, b.

    Returns
    -------
    (..., 3) float64 ndarray
        sRGB code values, unrounded and unclipped: a color outside the sRGB
        gamut comes back below 0 or above 255, and the caller decides.
    """
    lms = np.einsum("...j,kj->...k", np.asarray(lab, np.float64), _LAB_TO_LMS)
    return linear_to_srgb(np.einsum("...j,kj->...k", lms**3, _LMS_TO_RGB))
