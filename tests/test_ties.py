"""Near ties settled towards a neighbour's entry: the kernels against plain Python, and the cap."""

import numpy as np
import pytest

from kqcodec import metrics, quantizer, ties
from kqcodec._kernels.ties import follow_neighbours, tie_costs


def distance(pixel, entry):
    """Squared distance as PSNR measures it, x 255^2 for RGBA (exact integers)."""
    pixel, entry = pixel.astype(np.int64), entry.astype(np.int64)
    if len(pixel) == 3:
        return int(((pixel - entry) ** 2).sum())
    colors = pixel[:3] * pixel[3] - entry[:3] * entry[3]
    return int((colors**2).sum() + ((pixel[3] - entry[3]) * 255) ** 2)


def candidate(pixels, width, palette, indices, i, tolerance):
    """The entry pixel i may take and its extra error, or None (the kernels' rule)."""
    own = indices[i]
    left = indices[i - 1] if i % width else own
    up = indices[i - width] if i >= width else own
    # Only entries of the same alpha as the pixel's own are candidates.
    left_ok = left != own and palette[left, -1] == palette[own, -1] if len(pixels[i]) == 4 else left != own
    up_ok = up != own and palette[up, -1] == palette[own, -1] if len(pixels[i]) == 4 else up != own
    if not left_ok and not up_ok:
        return None
    base = distance(pixels[i], palette[own])
    if left_ok:
        extra = distance(pixels[i], palette[left]) - base
        if extra <= tolerance or not up_ok or up == left:
            return left, extra
    return up, distance(pixels[i], palette[up]) - base


def nearest(pixels, palette):
    return np.array([min(range(len(palette)), key=lambda e: (distance(p, palette[e]), e))
                     for p in pixels], np.uint8)


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("seed", [0, 1])
def test_kernels_match_plain_python(channels, seed):
    rng = np.random.default_rng(seed)
    height, width = 9, 13
    palette = rng.integers(0, 256, (6, channels), dtype=np.uint8)
    if channels == 4:
        palette[:, 3] = [0, 255, 255, 255, 128, 128]  # transparent, opaque and translucent entries
    # Pixels near the entries, so that many have a close second entry.
    pixels = palette[rng.integers(0, 6, height * width)].astype(np.int64)
    pixels = np.clip(pixels + rng.integers(-60, 61, pixels.shape), 0, 255).astype(np.uint8)
    indices = nearest(pixels, palette)
    scale = 255**2 if channels == 4 else 1
    tolerance, budget = 1500 * scale, 6000 * scale

    unit, sums = 37 * scale, np.zeros(20, np.int64)
    tie_costs(pixels, width, palette, indices, 2, unit, sums)
    expected = np.zeros(20, np.int64)
    for row in range(0, height, 2):
        for i in range(row * width, (row + 1) * width):
            found = candidate(pixels, width, palette, indices, i, unit * 20)
            if found and 0 <= found[1] < unit * 20:
                expected[found[1] // unit] += found[1]
    np.testing.assert_array_equal(sums, expected)

    mine = indices.copy()
    added = follow_neighbours(pixels, width, palette, mine, tolerance, budget)
    reference, spent = indices.copy(), 0
    for i in range(height * width):
        found = candidate(pixels, width, palette, reference, i, tolerance)
        if found and 0 <= found[1] <= tolerance and spent + found[1] <= budget:
            reference[i] = found[0]
            spent += found[1]
    np.testing.assert_array_equal(mine, reference)
    assert added == spent > 0
    assert (mine != indices).any()


@pytest.mark.parametrize("picture, k", [("coffee", 32), ("present", 16)])
def test_fewer_bytes_for_at_most_the_budgeted_error(request, picture, k):
    pixels = request.getfixturevalue(picture)
    image = quantizer.quantize(pixels, k)
    nearest_image = quantizer.remap(pixels, image.palette)
    # The reported error is the one measured on the pixels, within the cap.
    assert image.psnr == pytest.approx(metrics.psnr(pixels, image.to_pixels()), abs=1e-9)
    assert nearest_image.psnr - image.psnr <= 10 * np.log10(1 + ties.BUDGET) + 1e-9
    assert (image.indices != nearest_image.indices).any()
    assert len(image.to_png()) < len(nearest_image.to_png())


def test_alpha_classes_are_kept():
    # Random RGBA noise: the mean error is large, so the tolerance is too,
    # yet no pixel changes between transparent, translucent and opaque.
    rng = np.random.default_rng(3)
    pixels = rng.integers(0, 256, (40, 50, 4), dtype=np.uint8)
    pixels[..., 3] = rng.choice([0, 255, 200, 16], (40, 50))
    image = quantizer.quantize(pixels, 12)
    nearest_image = quantizer.remap(pixels, image.palette)
    assert (image.indices != nearest_image.indices).any()
    alpha = image.palette[image.indices][..., 3]
    np.testing.assert_array_equal(alpha, nearest_image.palette[nearest_image.indices][..., 3])
    assert (alpha[pixels[..., 3] == 0] == 0).all()
