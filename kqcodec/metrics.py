"""Quality measures between an original image and its decoded encoding.

PSNR and SSIM compare what a viewer sees: RGB as is (an RGBA image opaque
everywhere counts as RGB), and for images with transparency the color
premultiplied by alpha plus alpha itself, so the hidden color of an
invisible pixel counts for nothing.  SSIMULACRA2 (the
JPEG XL project's perceptual metric) comes from the ``ssimulacra2`` port on
PyPI, imported by this module only; transparency is handled here the way
the reference tool does, see :func:`ssimulacra2`.
"""

import numpy as np

from .errors import UsageError

__all__ = ["psnr", "ssim", "ssimulacra2", "visible", "preload", "Reference", "BACKGROUNDS"]

#: Backgrounds (sRGB, 0..1) a transparent picture is scored over, as the
#: reference SSIMULACRA2 tool does: the lower score counts.
BACKGROUNDS = (0.1, 0.9)

# The reference tool refuses pictures smaller than this on either side.
_SSIMULACRA2_MIN_SIDE = 8


def visible(pixels):
    """Return float64 channels as compared: RGB, or premultiplied RGB + alpha.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray

    Returns
    -------
    (H, W, 3) or (H, W, 4) float64 ndarray
        Values in 0..255.
    """
    values = np.asarray(pixels, np.float64)
    if values.shape[-1] == 4:
        values = values.copy()
        values[..., :3] *= values[..., 3:] / 255
    return values


def _checked(pixels, what):
    """`pixels` as an array, refused unless (H, W, 3|4) uint8 and not empty.

    Other arrays would give numbers that look right (a PSNR of floats in
    0..1 near 78 dB) or the scores of something else (SSIMULACRA2 reading
    the first columns of a grey image as channels).
    """
    pixels = np.asarray(pixels)
    if (pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4)
            or 0 in pixels.shape):
        raise UsageError(f"{what} must be a non-empty (H, W, 3|4) uint8 array, "
                         f"not {pixels.shape} {pixels.dtype}")
    return pixels


def _opaque_as_rgb(pixels):
    """RGBA whose every pixel is opaque as RGB: its alpha, with no error, would raise the score.

    The quantizer takes such pixels as RGB too (see ``quantizer._check_pixels``).
    """
    if pixels.shape[-1] == 4 and (pixels[..., 3] == 255).all():
        return pixels[..., :3]
    return pixels


def _pair(reference, test):
    reference = np.asarray(reference)
    test = np.asarray(test)
    if reference.shape[:2] != test.shape[:2]:
        raise UsageError(f"image sizes differ: {reference.shape[:2]} and {test.shape[:2]}")
    if reference.shape[-1] != test.shape[-1]:
        # An RGB image equals an RGBA one whose alpha is all 255.
        reference, test = (_as_rgba(reference), _as_rgba(test))
    return visible(reference), visible(test)


def _as_rgba(pixels):
    if pixels.shape[-1] == 4:
        return pixels
    return np.dstack([pixels, np.full(pixels.shape[:2], 255, pixels.dtype)])


def preload(names):
    """Import now the libraries that the measures `names` import on their first call.

    Worker processes forked afterwards then share them instead of each
    importing its own: scikit-image's SSIM brings SciPy, about 0.3 s of
    CPU per process.

    Parameters
    ----------
    names : collection of str
        Measures, of ``psnr``, ``ssim``, ``ssimulacra2``.
    """
    if "ssim" in names:
        # The function itself: ``skimage.metrics`` alone is a lazy stub,
        # which leaves SciPy to each worker's first call.
        from skimage.metrics import structural_similarity  # noqa: F401
    if "ssimulacra2" in names:
        import ssimulacra2  # noqa: F401


def psnr(reference, test):
    """Peak signal-to-noise ratio in dB, peak 255, over all pixels and channels.

    Parameters
    ----------
    reference, test : (H, W, 3) or (H, W, 4) uint8 ndarray
        The original and the decoded image (RGB and RGBA may be mixed).

    Returns
    -------
    float
        ``inf`` when the images are identical.

    Raises
    ------
    UsageError
        If either is not a non-empty (H, W, 3|4) uint8 array, or the sizes
        differ.
    """
    reference = _opaque_as_rgb(_checked(reference, "reference"))
    test = _opaque_as_rgb(_checked(test, "test"))
    if reference.shape == test.shape and reference.shape[-1] == 3:
        # Opaque RGB: the squared differences are integers, summed here in
        # int64 from 16-bit differences.  The float64 mean below sums the
        # same integers exactly too (every partial sum stays under 2**53),
        # so both give the same bits; this one in a fifth of the time.
        diff = np.subtract(reference, test, dtype=np.int16).ravel()
        mse = float(np.einsum("i,i->", diff, diff, dtype=np.int64)) / diff.size
    else:
        a, b = _pair(reference, test)
        mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(255.0**2 / mse))


def ssim(reference, test):
    """Mean structural similarity (scikit-image), data range 255.

    The channels are compared in float32, which scikit-image keeps: its
    filters then take half the time they take in float64, and the mean
    differs from the float64 one by about 1e-7 (0.9287688 against
    0.92876860 on a photo), far below the three decimals a report shows.

    Parameters
    ----------
    reference, test : (H, W, 3) or (H, W, 4) uint8 ndarray

    Returns
    -------
    float
        1.0 when identical.  Images smaller than 7x7 are compared with the
        largest odd window that fits; below 3x3, where SSIM is undefined,
        the value is 1 minus the mean absolute difference over 255.

    Raises
    ------
    UsageError
        If either is not a non-empty (H, W, 3|4) uint8 array, or the sizes
        differ.
    """
    return Reference(reference).ssim(test)


class Reference:
    """An original image to compare several decodings with, prepared once.

    What :func:`ssim` computes of the original alone (its channels in
    float32, premultiplied by alpha when it has one) is kept for the next
    comparison: about a tenth of the time of one SSIM at 0.24 MP.  Every
    value is the one scikit-image gives on both images' channels in
    float32.

    Parameters
    ----------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        The original.
    """

    def __init__(self, pixels):
        self.pixels = _opaque_as_rgb(_checked(pixels, "reference"))
        self._channels = {}

    def ssim(self, test):
        """:func:`ssim` of the original and `test`.

        Parameters
        ----------
        test : (H, W, 3) or (H, W, 4) uint8 ndarray

        Returns
        -------
        float

        Raises
        ------
        UsageError
            If `test` is not a non-empty (H, W, 3|4) uint8 array, or the
            sizes differ.
        """
        from skimage.metrics import structural_similarity

        test = _opaque_as_rgb(_checked(test, "test"))
        reference = self.pixels
        if reference.shape[:2] != test.shape[:2]:
            raise UsageError(f"image sizes differ: {reference.shape[:2]} and {test.shape[:2]}")
        side = min(reference.shape[0], reference.shape[1], 7)
        if side % 2 == 0:
            side -= 1
        if side < 3:
            a, b = _pair(reference, test)
            return 1.0 if np.array_equal(a, b) else float(1 - np.mean(np.abs(a - b)) / 255)
        # An RGB image equals an RGBA one whose alpha is all 255.
        channels = max(reference.shape[-1], test.shape[-1])
        if channels not in self._channels:
            self._channels[channels] = _compared(reference, channels)
        return float(structural_similarity(self._channels[channels], _compared(test, channels),
                                           channel_axis=0, data_range=255, win_size=side))


def _compared(pixels, channels):
    """The float32 channels SSIM compares, those of :func:`visible`, as `channels` planes.

    Returns a (C, H, W) array: scikit-image filters one channel at a time,
    and a contiguous plane filters faster (5% of the SSIM at 0.24 MP) than
    a strided one, to the same values.
    """
    if pixels.shape[-1] != channels:
        pixels = _as_rgba(pixels)
    if not (pixels.shape[-1] == 3 and pixels.dtype == np.uint8):
        pixels = visible(pixels)
    # Opaque RGB goes straight to float32: integers, exact in both, so the
    # values visible() would give without its float64 copy.
    planes = np.empty((channels, *pixels.shape[:2]), np.float32)
    planes[...] = np.moveaxis(pixels, -1, 0)
    return planes


def ssimulacra2(reference, test):
    """SSIMULACRA2 score (higher is better, 100 = identical) of `test` against `reference`.

    The score comes from the ``ssimulacra2`` package (a Python port of the
    reference C++ tool).  Transparency is handled as the reference tool
    does, which the port does not: when either picture has a pixel that is
    not opaque, both are blended over a dark (0.1) and a light (0.9) grey in
    sRGB, rounded to 8 bits, scored, and the lower score is returned.

    About 70 means artefacts hard to notice without the original, 50
    medium, 30 low, below 10 very low.  The port ranks distortions like the
    reference tool but its values can differ by several points (see the
    README).

    Parameters
    ----------
    reference, test : (H, W, 3) or (H, W, 4) uint8 ndarray
        The original and the decoded image (RGB and RGBA may be mixed).

    Returns
    -------
    float
        NaN for pictures smaller than 8x8, where the reference tool refuses
        to score.

    Raises
    ------
    UsageError
        If either is not a non-empty (H, W, 3|4) uint8 array, or the sizes
        differ.
    """
    import ssimulacra2 as library

    from .imageio import memory_file

    reference, test = _checked(reference, "reference"), _checked(test, "test")
    if reference.shape[:2] != test.shape[:2]:
        raise UsageError(f"image sizes differ: {reference.shape[:2]} and {test.shape[:2]}")
    if min(reference.shape[:2]) < _SSIMULACRA2_MIN_SIDE:
        return float("nan")
    transparent = any(p.shape[-1] == 4 and bool((p[..., 3] < 255).any()) for p in (reference, test))
    if not transparent:
        return float(library.compute_ssimulacra2(memory_file(reference[..., :3]),
                                                 memory_file(test[..., :3])))
    reference, test = _as_rgba(reference), _as_rgba(test)
    return min(
        float(library.compute_ssimulacra2(memory_file(_over(reference, background)),
                                          memory_file(_over(test, background))))
        for background in BACKGROUNDS
    )


def _over(rgba, background):
    """Blend straight RGBA over a grey `background` (0..1), in sRGB, to 8 bits."""
    alpha = rgba[..., 3:].astype(np.float64) / 255
    blended = rgba[..., :3] * alpha + (1 - alpha) * (background * 255)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)
