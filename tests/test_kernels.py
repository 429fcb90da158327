"""Each compiled kernel against a brute-force numpy reference written here."""

import numpy as np
import pytest

from kqcodec._kernels import layout, quantizer
from kqcodec._kernels.histogram import count_colors


def reference_count(pixels):
    """Distinct rows of (N, C) uint8 `pixels` sorted as big-endian numbers, counts, inverse."""
    colors, inverse, counts = np.unique(pixels, axis=0, return_inverse=True, return_counts=True)
    return colors, counts, inverse.ravel()


def as_rows(keys, channels):
    return keys.astype(">u4").view(np.uint8).reshape(-1, 4)[:, 4 - channels:]


@pytest.mark.parametrize("channels", [3, 4])
@pytest.mark.parametrize("levels, n", [
    (1, 1),          # one pixel
    (1, 1000),       # one color
    (4, 5000),       # few colors, many repeats and runs
    (256, 20000),    # mostly distinct: the table grows several times
])
def test_count_colors_matches_numpy(channels, levels, n):
    rng = np.random.default_rng(levels * n + channels)
    pixels = (rng.integers(0, levels, (n, channels)) * (255 // max(levels - 1, 1))).astype(np.uint8)
    pixels[n // 2 : n // 2 + n // 10] = pixels[n // 2]  # a long run
    keys, counts, inverse = count_colors(pixels)
    colors, ref_counts, ref_inverse = reference_count(pixels)
    np.testing.assert_array_equal(as_rows(keys, channels), colors)
    np.testing.assert_array_equal(counts, ref_counts)
    np.testing.assert_array_equal(inverse, ref_inverse)
    assert keys.dtype == np.uint32 and counts.dtype == np.int64 and inverse.dtype == np.int32


def test_count_colors_orders_high_keys_as_unsigned():
    # Red >= 128 with alpha puts the top bit of the packed key: it must sort last.
    pixels = np.array([[200, 0, 0, 255], [1, 2, 3, 4], [200, 0, 0, 255], [0, 0, 0, 0]], np.uint8)
    keys, counts, inverse = count_colors(pixels)
    assert as_rows(keys, 4).tolist() == [[0, 0, 0, 0], [1, 2, 3, 4], [200, 0, 0, 255]]
    assert counts.tolist() == [1, 1, 2]
    assert inverse.tolist() == [2, 1, 2, 0]


def reference_filter(rows, kind):
    """PNG filter `kind` (0-4: None, Sub, Up, Average, Paeth; PNG #9.2) of every row, one byte a step."""
    raw = rows.astype(np.int16)
    left = np.zeros_like(raw)
    left[:, 1:] = raw[:, :-1]
    up = np.zeros_like(raw)
    up[1:] = raw[:-1]
    corner = np.zeros_like(raw)
    corner[1:, 1:] = raw[:-1, :-1]
    p = left + up - corner
    pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - corner)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, corner))
    pred = [np.zeros_like(raw), left, up, (left + up) >> 1, paeth][kind]
    return (raw - pred).astype(np.uint8)


def random_rows(seed, shape, levels):
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, levels, shape).astype(np.uint8)
    rows[:, shape[1] // 3 :] = np.cumsum(rows[:, shape[1] // 3 :], axis=1, dtype=np.uint8)  # ramps
    return rows


@pytest.mark.parametrize("shape, levels", [((1, 1), 256), ((7, 1), 3), ((1, 9), 256),
                                           ((40, 33), 256), ((25, 64), 2)])
def test_adaptive_filter_matches_numpy(shape, levels):
    rows = random_rows(shape[0] * shape[1], shape, levels)
    candidates = np.stack([reference_filter(rows, kind) for kind in range(5)])
    cost = np.abs(candidates.view(np.int8).astype(np.int64)).sum(axis=2)
    kinds = cost.argmin(axis=0)  # ties: the lower type, as libpng
    expected = np.column_stack([kinds, candidates[kinds, np.arange(shape[0])]]).astype(np.uint8)
    out = np.empty((shape[0], shape[1] + 1), np.uint8)
    layout.adaptive_filter(rows, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("depth", [1, 2, 4])
@pytest.mark.parametrize("width", [1, 3, 8, 13])
def test_pack_rows_matches_numpy(depth, width):
    rng = np.random.default_rng(depth * width)
    indices = rng.integers(0, 1 << depth, (5, width)).astype(np.uint8)
    per_byte = 8 // depth
    padded = np.zeros((5, -(-width // per_byte) * per_byte), np.uint8)
    padded[:, :width] = indices
    bits = np.unpackbits(padded[..., None], axis=2)[..., 8 - depth :]  # each index's low bits
    expected = np.packbits(bits.reshape(5, -1), axis=1)
    out = np.empty(expected.shape, np.uint8)
    layout.pack_rows(indices, depth, out)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (30, 41)])
def test_neighbour_counts_match_numpy(shape):
    rng = np.random.default_rng(shape[0] + shape[1])
    entries = 7
    indices = rng.integers(0, entries, shape).astype(np.uint8)
    flat = indices.astype(np.int64)
    pairs = np.concatenate([(flat[:, :-1] * entries + flat[:, 1:]).ravel(),
                            (flat[:-1] * entries + flat[1:]).ravel()])
    expected = np.bincount(pairs, minlength=entries * entries).reshape(entries, entries)
    counts = np.zeros((entries, entries), np.int64)
    layout.neighbour_counts(indices, counts)
    np.testing.assert_array_equal(counts, expected)


@pytest.mark.parametrize("seed", [0, 1])
def test_nearest_entries_match_numpy_with_ties_to_the_lower_index(seed):
    rng = np.random.default_rng(seed)
    entries = rng.integers(-128, 128, (40, 3)).astype(np.float64)
    entries[7] = entries[3]  # a duplicate: always a tie, the lower index wins
    points = np.vstack([rng.integers(-128, 128, (500, 3)), entries,
                        (entries[:20] + entries[1:21]) / 2])  # exact midpoints: more ties
    points = points.astype(np.float64)
    distances = ((points[:, None, :] - entries[None, :, :]) ** 2).sum(axis=2)
    expected = distances.argmin(axis=1)  # first of equal minima
    out = np.empty(len(points), np.int32)
    quantizer.nearest_entries(points, entries, out)
    np.testing.assert_array_equal(out, expected)
    assert 7 not in out
