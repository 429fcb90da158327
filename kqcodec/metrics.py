"""Quality measures between an original image and its decoded encoding.

Both measures compare what a viewer sees: RGB as is, and for images with
transparency the color premultiplied by alpha plus alpha itself, so the
hidden color of an invisible pixel counts for nothing.
"""

import numpy as np

from .errors import UsageError

__all__ = ["psnr", "ssim", "visible"]


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
    """
    a, b = _pair(reference, test)
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0**2 / mse)


def ssim(reference, test):
    """Mean structural similarity (scikit-image), data range 255.

    Parameters
    ----------
    reference, test : (H, W, 3) or (H, W, 4) uint8 ndarray

    Returns
    -------
    float
        1.0 when identical.  Images smaller than 7x7 are compared with the
        largest odd window that fits; below 3x3, where SSIM is undefined,
        the value is 1 minus the mean absolute difference over 255.
    """
    from skimage.metrics import structural_similarity

    a, b = _pair(reference, test)
    side = min(a.shape[0], a.shape[1], 7)
    if side % 2 == 0:
        side -= 1
    if side < 3:
        return 1.0 if np.array_equal(a, b) else float(1 - np.mean(np.abs(a - b)) / 255)
    return float(structural_similarity(a, b, channel_axis=2, data_range=255, win_size=side))
