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

Every step uses only the four operations and the square root, which IEEE 754
rounds the same way everywhere: numpy's ``cbrt`` and ``power`` and LAPACK's
inverse give other last bits on other processors (their SIMD and BLAS
kernels are chosen at run time), and a palette search or a dithered pixel
could then come out differently.  The roots are Newton's method (see
:func:`_root`), the inverses their cofactors.
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


def _inverse(m):
    """The inverse of a 3x3 matrix from its cofactors: the same bits on every machine."""
    rows = [[float(v) for v in row] for row in m]
    cof = [[rows[(i + 1) % 3][(j + 1) % 3] * rows[(i + 2) % 3][(j + 2) % 3]
            - rows[(i + 1) % 3][(j + 2) % 3] * rows[(i + 2) % 3][(j + 1) % 3]
            for j in range(3)] for i in range(3)]
    det = rows[0][0] * cof[0][0] + rows[0][1] * cof[0][1] + rows[0][2] * cof[0][2]
    return np.array([[cof[j][i] / det for j in range(3)] for i in range(3)])


# Exact inverses rather than the rounded published ones, so that the round
# trip is as tight as float64 allows.
_LMS_TO_RGB = _inverse(_RGB_TO_LMS)
_LAB_TO_LMS = _inverse(_LMS_TO_LAB)


# For _root: 0.5 ** (1/n), and 2 ** (i/n) for i < n, as literals (a pow
# call could round them otherwise elsewhere, and they start the iteration).
_ROOT_CONSTANTS = {
    3: (0.7937005259840998, (1.0, 1.2599210498948732, 1.5874010519681994)),
    5: (0.8705505632961241, (1.0, 1.148698354997035, 1.3195079107728942, 1.515716566510398,
                             1.7411011265922482)),
}


def _root(values, n):
    """The real n-th root of every value (n = 3 or 5), in the four operations only.

    Each value is scaled by a power of two to m in [0.5, 2**n) (exact), and
    Newton's method runs on y**n = m from a start a few percent above the
    root (a chord of the root on [0.5, 1), times 2**(shift/n)), so that y
    only falls; it stops when no y falls any more.  Within an ulp of the
    true root, and the same bits on every machine.
    """
    values = np.asarray(values, np.float64)
    mantissa, exponent = np.frexp(np.abs(values))
    shift = np.mod(exponent, n)
    m = np.ldexp(mantissa, shift)
    low, steps = _ROOT_CONSTANTS[n]
    # The chord lies below the concave root by at most 1.4%: 3% above it is above.
    y = 1.03 * (low + (mantissa - 0.5) * (2 * (1 - low))) * np.array(steps)[shift]
    for _ in range(100):
        power = y * y if n == 3 else y * y * y * y
        lower = y - (power * y - m) / (n * power)
        lower = np.where(np.isfinite(lower), np.minimum(lower, y), y)
        if np.array_equal(lower, y):
            break
        y = lower
    root = np.ldexp(y, (exponent - shift) // n)
    return np.copysign(np.where(values == 0, 0.0, root), values)

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
        Code values in 0..255, any shape, integer or float; uint8 goes
        through a table of the 256 values.

    Returns
    -------
    float64 ndarray
        Linear light in 0..1, same shape.
    """
    values = np.asarray(values)
    if values.dtype == np.uint8:
        return _linear_table()[values]
    v = np.asarray(values, np.float64) / 255.0
    x = (np.maximum(v, 0.04045) + 0.055) / 1.055
    square = x * x
    # x ** 2.4 = x**2 * (x**2) ** (1/5)
    return np.where(v <= 0.04045, v / 12.92, square * _root(square, 5))


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
    # a ** (1/2.4) = c ** (5/4) with c = a ** (1/3)
    c = _root(np.maximum(a, 0.0031308), 3)
    curve = np.where(a <= 0.0031308, a * 12.92, 1.055 * (c * np.sqrt(np.sqrt(c))) - 0.055)
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
    linear = srgb_to_linear(rgb)
    # einsum rather than BLAS: a matrix product's rounding (fused
    # multiply-add or not) depends on the processor.
    lms = np.einsum("...j,kj->...k", linear, _RGB_TO_LMS)
    return np.einsum("...j,kj->...k", _root(lms, 3), _LMS_TO_LAB)


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
    return linear_to_srgb(np.einsum("...j,kj->...k", lms * lms * lms, _LMS_TO_RGB))
