"""Each compiled kernel against a brute-force numpy reference written here."""

import zlib

import deflate
import numpy as np
import pytest

from kqcodec import nearest as nearest_module
from kqcodec._kernels import kmeans, layout, nearest, quantizer
from kqcodec._kernels.histogram import count_colors, spread


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
    keys, counts, table = count_colors(pixels)
    colors, ref_counts, ref_inverse = reference_count(pixels)
    np.testing.assert_array_equal(as_rows(keys, channels), colors)
    np.testing.assert_array_equal(counts, ref_counts)
    assert keys.dtype == np.uint32 and counts.dtype == np.int64
    # Spreading the color numbers back gives numpy's inverse, in every dtype.
    for dtype in (np.int32, np.int64, np.uint8):
        values = (np.arange(len(keys)) * 7).astype(dtype)
        out = np.empty(n, dtype)
        spread(pixels, table, values, out)
        np.testing.assert_array_equal(out, values[ref_inverse])


def test_spread_crosses_its_blocks():
    # More pixels than one block of the parallel loop, in runs that straddle them.
    grey = np.repeat(np.arange(300) % 200, 1000)  # colors 0..199, then 0..99 again
    pixels = np.ascontiguousarray(np.repeat(grey[:, None], 3, axis=1).astype(np.uint8))
    keys, counts, table = count_colors(pixels)
    out = np.empty(len(pixels), np.int32)
    spread(pixels, table, np.arange(len(keys), dtype=np.int32), out)
    np.testing.assert_array_equal(out, grey)  # grey v is the v-th color


def test_count_colors_orders_high_keys_as_unsigned():
    # Red >= 128 with alpha puts the top bit of the packed key: it must sort last.
    pixels = np.array([[200, 0, 0, 255], [1, 2, 3, 4], [200, 0, 0, 255], [0, 0, 0, 0]], np.uint8)
    keys, counts, table = count_colors(pixels)
    assert as_rows(keys, 4).tolist() == [[0, 0, 0, 0], [1, 2, 3, 4], [200, 0, 0, 255]]
    assert counts.tolist() == [1, 1, 2]
    inverse = np.empty(4, np.int32)
    spread(pixels, table, np.arange(3, dtype=np.int32), inverse)
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


@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (6, 1), (30, 41), (1100, 1000)])
def test_neighbour_counts_match_numpy(shape):
    # The largest is split among the threads.
    rng = np.random.default_rng(shape[0] + shape[1])
    entries = 7
    indices = rng.integers(0, entries, shape).astype(np.uint8)
    flat = indices.astype(np.int64)
    pairs = np.concatenate([(flat[:, :-1] * entries + flat[:, 1:]).ravel(),
                            (flat[:-1] * entries + flat[1:]).ravel()])
    expected = np.bincount(pairs, minlength=entries * entries).reshape(entries, entries)
    counts = np.zeros((entries, entries), np.int64)
    popularity = np.zeros(entries, np.int64)
    layout.neighbour_counts(indices, counts, popularity)
    np.testing.assert_array_equal(counts, expected)
    np.testing.assert_array_equal(popularity, np.bincount(flat.ravel(), minlength=entries))


def closed_by_an_empty_final_block(stream, start, end):
    """`stream` cut at bit `end`, its bit `start` cleared, then an empty final fixed-Huffman block."""
    bits = np.unpackbits(np.frombuffer(stream, np.uint8), bitorder="little")[:end].copy()
    bits[start] = 0
    # BFINAL 1, BTYPE 01 (fixed codes, low bit first), end-of-block: seven zero bits.
    bits = np.concatenate([bits, [1, 1, 0], np.zeros(7, np.uint8)])
    return np.packbits(bits, bitorder="little").tobytes()


@pytest.mark.parametrize("level", [1, 6, 12])
@pytest.mark.parametrize("kind", ["random", "runs", "ramps", "photo"])
def test_last_block_is_where_zlib_agrees(level, kind, coffee):
    """Clearing BFINAL at `start` and ending the stream at `end` must still inflate to the data."""
    rng = np.random.default_rng(level)
    data = {"random": rng.integers(0, 256, 300_000, dtype=np.uint8),  # stored blocks
            "runs": np.repeat(rng.integers(0, 4, 3000), 97).astype(np.uint8),
            "ramps": random_rows(level, (300, 700), 5).ravel(),
            "photo": coffee.ravel()}[kind].tobytes()
    stream = deflate.deflate_compress(data, level)
    start, end = layout.last_block(np.frombuffer(stream, np.uint8))
    assert stream[start // 8] >> (start % 8) & 1  # a final block starts there
    assert 0 <= start < end <= 8 * len(stream) and -(-end // 8) == len(stream)
    inflater = zlib.decompressobj(-15)
    assert inflater.decompress(closed_by_an_empty_final_block(stream, start, end)) == data
    assert inflater.eof and not inflater.unused_data


def test_last_block_refuses_a_cut_or_padded_stream():
    stream = np.frombuffer(deflate.deflate_compress(bytes(range(256)) * 50, 6), np.uint8)
    with pytest.raises(ValueError):
        layout.last_block(stream[:-2].copy())
    with pytest.raises(ValueError):
        layout.last_block(np.concatenate([stream, np.zeros(3, np.uint8)]))


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


@pytest.mark.parametrize("count, channels", [(1, 3), (5, 4), (256, 3)])
def test_nearest_entries_sum_channel_by_channel_in_float64(count, channels):
    # Fractional coordinates (the oklab spaces): the distances are rounded,
    # and the kernel's must be these, summed channel by channel in order.
    rng = np.random.default_rng(count)
    entries = rng.normal(0, 40, (count, channels))
    points = np.vstack([rng.normal(0, 40, (900, channels)), entries + 1e-9])
    total = np.zeros((len(points), count))
    for c in range(channels):
        step = points[:, None, c] - entries[None, :, c]
        total = total + step * step
    out = np.empty(len(points), np.int32)
    quantizer.nearest_entries(points, entries, out)
    np.testing.assert_array_equal(out, total.argmin(axis=1))


def reference_squared(points, centres):
    """(N, k) float32 squared distances, summed channel by channel as the kernels do."""
    total = np.zeros((len(points), len(centres)), np.float32)
    for c in range(points.shape[1]):
        step = points[:, None, c] - centres[None, :, c]
        total = total + step * step
    return total


def points_and_centres(seed, k, channels=3):
    """Integer points and centres with duplicate centres and exact midpoints: many ties."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(-128, 128, (k, channels)).astype(np.float32)
    if k > 3:
        centres[k - 1] = centres[1]  # a duplicate: always a tie
    points = np.vstack([rng.integers(-128, 128, (700, channels)), centres,
                        (centres[:-1] + centres[1:]) / 2]).astype(np.float32)
    return points, centres


@pytest.mark.parametrize("k, channels", [(1, 3), (2, 3), (17, 4), (256, 3)])
def test_nearest_search_matches_numpy(k, channels):
    points, centres = points_and_centres(k, k, channels)
    which = np.arange(0, len(points), 2, dtype=np.int64)  # every other point only
    labels = np.full(len(points), -1, np.int64)
    upper = np.full(len(points), -1, np.float32)
    lower = np.full(len(points), -1, np.float32)
    nearest.search(points, which, np.ascontiguousarray(centres.T), labels, upper, lower)
    dist = reference_squared(points[which], centres)
    best = dist.argmin(axis=1)  # ties: the first, the lower index
    ranked = np.sort(dist, axis=1)
    second = ranked[:, 1] if k > 1 else np.full(len(which), np.inf, np.float32)
    np.testing.assert_array_equal(labels[which], best)
    np.testing.assert_array_equal(upper[which], np.sqrt(ranked[:, 0]))
    np.testing.assert_array_equal(lower[which], np.sqrt(second))
    assert (labels[1::2] == -1).all() and (upper[1::2] == -1).all()  # the others untouched
    if k > 3:
        assert k - 1 not in labels[which]


@pytest.mark.parametrize("k, channels", [(1, 3), (2, 3), (17, 4), (256, 3)])
def test_own_and_next_match_numpy(k, channels):
    points, centres = points_and_centres(k + 1, k, channels)
    centres = centres + np.float32(0.37)  # fractional centres: the sums round
    labels = np.random.default_rng(k).integers(0, k, len(points))  # not always the nearest
    own, other = np.full(len(points), np.nan), np.full(len(points), np.nan)
    nearest.own_and_next(points, np.ascontiguousarray(centres.T), labels, own, other)
    dist = reference_squared(points, centres)
    rows = np.arange(len(points))
    np.testing.assert_array_equal(own, dist[rows, labels])  # to the last bit
    dist[rows, labels] = np.inf
    np.testing.assert_array_equal(other, dist.min(axis=1))


@pytest.mark.parametrize("k", [5, 40, 256])
def test_bounded_move_keeps_exact_labels_and_valid_bounds(k, monkeypatch):
    # Through Assignment.move, which computes the per-centre bounds the kernel
    # takes (k = 5: no neighbour lists; 40: one; 256: two): after every move
    # each label is a nearest centre (numpy decides), the upper bound is at
    # least the distance to it and the lower bound at most the distance to
    # any other.
    monkeypatch.setattr(nearest_module, "_SMALL_WORK", 0)  # never the plain search
    rng = np.random.default_rng(k)
    points = np.vstack([rng.normal(0, 40, (15000, 3)),
                        rng.integers(-20, 20, (3000, 3))]).astype(np.float32)
    centres = points[rng.choice(len(points), k, replace=False)].copy()
    assignment = nearest_module.Assignment(points, centres)
    moved = 0
    for step in range(10):
        scale = 10.0 if step % 4 == 0 else 0.2  # jumps now and then, drifts between
        centres = (centres + rng.normal(0, scale, centres.shape)).astype(np.float32)
        if step == 9:
            centres = np.round(centres)  # integer centres: exact distances, exact ties
        before = assignment.labels.copy()
        changed = assignment.move(centres)
        moved += changed
        assert changed == np.count_nonzero(assignment.labels != before)
        dist = reference_squared(points, centres)
        rows = np.arange(len(points))
        own = dist[rows, assignment.labels]
        np.testing.assert_allclose(own, dist.min(axis=1), rtol=1e-6, atol=1e-3)
        if step == 9:
            assert (own == dist.min(axis=1)).all()
        assert (assignment.upper >= np.sqrt(own) - 1e-2).all()
        dist[rows, assignment.labels] = np.inf
        assert (assignment.lower <= np.sqrt(dist.min(axis=1)) + 1e-2).all()
    assert moved > 0


@pytest.mark.parametrize("k, integer", [(1, False), (7, False), (256, False), (200, True)])
def test_centre_distances_equal_numpy(k, integer):
    rng = np.random.default_rng(k)
    centres = rng.normal(0, 60, (k, 3))
    if integer:
        centres = np.round(centres / 8)  # many equal distances and coinciding centres
    gram = centres @ centres.T
    norms = np.diag(gram)
    expected = np.sqrt(np.maximum(norms[:, None] + norms[None, :] - 2 * gram, 0))
    np.fill_diagonal(expected, np.inf)
    dist = np.full((k, k), np.nan)
    nearest.centre_distances(gram, dist)
    np.testing.assert_array_equal(dist, expected)  # to the last bit


@pytest.mark.parametrize("k, width", [(30, 17), (256, 65), (3, 1)])
def test_rank_neighbours_equal_numpy_stable_argsort(k, width):
    rng = np.random.default_rng(width)
    centres = np.round(rng.normal(0, 6, (k, 3)))  # integer centres: ties in distance
    gram = centres @ centres.T
    dist = np.empty((k, k))
    nearest.centre_distances(gram, dist)
    part = np.ascontiguousarray(np.argpartition(dist, width - 1, axis=1)[:, :width])
    rows = np.arange(k)[:, None]
    by_distance = np.argsort(dist[rows, part], axis=1, kind="stable")
    order = np.full((k, width - 1), -1, np.int64)
    ranked = np.full((k, width), np.nan, np.float32)
    nearest.rank_neighbours(dist, part, order, ranked)
    np.testing.assert_array_equal(order, part[rows, by_distance][:, :width - 1])
    np.testing.assert_array_equal(ranked, dist[rows, part[rows, by_distance]].astype(np.float32))
    assert width == 1 or (np.diff(ranked, axis=1) == 0).any()  # the ties were there


def test_weighted_sums_equal_numpy_bincount():
    rng = np.random.default_rng(5)
    points = rng.normal(0, 50, (5000, 4)).astype(np.float32)
    weights = rng.integers(1, 1000, 5000).astype(np.float64)
    labels = rng.integers(0, 30, 5000)
    labels[labels == 7] = 8  # an empty cluster stays zero
    mass, sums = np.zeros(30), np.zeros((30, 4))
    kmeans.weighted_sums(points, weights, labels, mass, sums)
    # bincount adds in point order, as the kernel does: equal to the last bit.
    np.testing.assert_array_equal(mass, np.bincount(labels, weights=weights, minlength=30))
    for c in range(4):
        np.testing.assert_array_equal(
            sums[:, c], np.bincount(labels, weights=weights * points[:, c], minlength=30))
    assert mass[7] == 0 and (sums[7] == 0).all()


def reference_cells(points, cell):
    """Cube numbers the numpy way: floor, shift to 0, mixed-radix keys, np.unique."""
    grid = np.floor(points / np.float32(cell)).astype(np.int64)
    grid -= grid.min(axis=0)
    key = np.zeros(len(points), np.int64)
    for j in range(points.shape[1]):
        key = key * (int(grid[:, j].max()) + 1) + grid[:, j]
    uniq, inverse = np.unique(key, return_inverse=True)
    return len(uniq), inverse.ravel()


@pytest.mark.parametrize("channels, n, cell, scale", [
    (3, 20000, 8.0, 128),  # one pass of the radix sort
    (3, 20000, 2.0, 128),  # two passes
    (4, 5000, 2.0, 128),
    (6, 3000, 0.5, 128),  # more bits than two passes hold
    (3, 4000, 0.37, 3),  # a cell that is not a power of two, values near 0
    (3, 1, 4.0, 128),
    (3, 500, 8.0, 0),  # every point in one cube: no pass at all
])
def test_number_cells_equals_numpy_unique(channels, n, cell, scale):
    rng = np.random.default_rng(n + channels)
    points = rng.normal(0, scale / 2, (n, channels)).clip(-128, 127).astype(np.float32)
    points[::5] = np.round(points[::5])  # points on the cubes' faces
    members = np.full(n, -1, np.int64)
    count = kmeans.number_cells(points, cell, members)
    expected_count, expected = reference_cells(points, cell)
    assert count == expected_count
    np.testing.assert_array_equal(members, expected)


def test_number_cells_refuses_keys_too_long():
    points = np.array([[-1e6, -1e6, -1e6], [1e6, 1e6, 1e6]], np.float32)
    with pytest.raises(ValueError, match="too many cubes"):
        kmeans.number_cells(points, 1e-3, np.empty(2, np.int64))
    assert kmeans.number_cells(points[:0], 1.0, np.empty(0, np.int64)) == 0


def reference_cut(centred, weights, order, proj):
    """Every cut's error from numpy's prefix sums; the best cut's index and sums, or None."""
    w, x = weights[order], centred[order]
    cw, cx = np.cumsum(w), np.cumsum(x * w[:, None], axis=0)
    cxx = np.cumsum(w * (x * x).sum(axis=1))
    lw, lx, lxx = cw[:-1], cx[:-1], cxx[:-1]
    rw, rx, rxx = cw[-1] - lw, cx[-1] - lx, cxx[-1] - lxx
    left = lxx - (lx**2).sum(axis=1) / lw
    right = rxx - (rx**2).sum(axis=1) / rw
    cost = left + right
    sorted_proj = proj[order]
    cost[sorted_proj[1:] <= sorted_proj[:-1]] = np.inf
    if not np.isfinite(cost).any():
        return None
    c = int(np.argmin(cost))
    return c, np.concatenate([[lw[c]], lx[c], [rw[c]], rx[c], [left[c], right[c]]])


@pytest.mark.parametrize("channels, n, levels", [
    (3, 2, 256), (3, 3000, 256), (4, 500, 4), (6, 800, 16),
    (3, 50, 1),  # one projection: no cut
])
def test_best_cut_equals_numpy_prefix_sums(channels, n, levels):
    rng = np.random.default_rng(n + channels)
    points = rng.integers(0, levels, (n, channels)).astype(np.float64) * 1.37
    weights = rng.integers(1, 5000, n).astype(np.float64)
    centred = points - weights @ points / weights.sum()
    proj = centred @ rng.normal(size=channels)
    if levels > 1:
        proj[::7] = proj[0]  # runs of equal projections: no cut inside them
    order = np.argsort(proj, kind="stable")
    out = np.full(2 * channels + 4, np.nan)
    c = kmeans.best_cut(centred, weights, order, proj, out)
    expected = reference_cut(centred, weights, order, proj)
    if expected is None:
        assert c == -1
    else:
        assert c == expected[0]
        np.testing.assert_array_equal(out, expected[1])  # to the last bit


@pytest.mark.parametrize("channels, n, levels", [
    (3, 3000, 256), (4, 500, 4), (6, 800, 16), (3, 1, 256),
])
def test_principal_axis_matches_numpy(channels, n, levels):
    rng = np.random.default_rng(n + channels)
    stretch = rng.normal(size=(channels, channels))  # correlated channels: a slanted axis
    points = rng.integers(0, levels, (n, channels)).astype(np.float64) @ stretch
    weights = rng.integers(1, 5000, n).astype(np.float64)
    mean, centred, axis, proj = (np.full(channels, np.nan), np.full((n, channels), np.nan),
                                 np.full(channels, np.nan), np.full(n, np.nan))
    error = kmeans.principal_axis(points, weights, mean, centred, axis, proj)
    expected_mean = (weights[:, None] * points).sum(axis=0) / weights.sum()
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(centred, points - mean)
    scatter = (centred * weights[:, None]).T @ centred
    np.testing.assert_allclose(error, np.trace(scatter), rtol=1e-12)
    assert axis[np.argmax(np.abs(axis))] > 0
    np.testing.assert_allclose(np.linalg.norm(axis), 1.0, rtol=1e-12)
    if n > 1:  # one point: every axis is as good
        _, vectors = np.linalg.eigh(scatter)
        top = vectors[:, -1] * np.sign(vectors[np.argmax(np.abs(vectors[:, -1])), -1])
        np.testing.assert_allclose(axis, top, atol=1e-9)
    expected_proj = centred[:, 0] * axis[0]
    for c in range(1, channels):
        expected_proj = expected_proj + centred[:, c] * axis[c]
    np.testing.assert_array_equal(proj, expected_proj)  # channel after channel, to the last bit


def test_principal_axis_of_equal_spreads_is_an_eigenvector():
    # Two equal eigenvalues: no axis is preferred, and any the kernel picks
    # must still be a unit eigenvector of the top eigenvalue.
    points = np.array([[0, 0, 0], [2, 0, 0], [0, 2, 0], [2, 2, 0]], np.float64)
    weights = np.ones(4)
    mean, centred, axis, proj = np.empty(3), np.empty((4, 3)), np.empty(3), np.empty(4)
    kmeans.principal_axis(points, weights, mean, centred, axis, proj)
    scatter = centred.T @ centred
    np.testing.assert_allclose(scatter @ axis, 4.0 * axis, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(axis), 1.0, rtol=1e-12)


def test_principal_axis_refuses_mismatched_arrays():
    with pytest.raises(ValueError):
        kmeans.principal_axis(np.zeros((3, 3)), np.ones(2), np.empty(3), np.empty((3, 3)),
                              np.empty(3), np.empty(3))


def reference_paths(weights, popularity):
    """The greedy path cover as a plain Python loop over the pairs (numpy's sorts)."""
    n = len(popularity)
    rows, cols = np.triu_indices(n, 1)
    weight = weights[rows, cols]
    keep = weight > 0
    rows, cols, weight = rows[keep], cols[keep], weight[keep]
    degree, parent, links = [0] * n, list(range(n)), [[] for _ in range(n)]

    def root(a):
        while parent[a] != a:
            a = parent[a]
        return a

    for e in np.argsort(-weight, kind="stable"):
        a, b = int(rows[e]), int(cols[e])
        if degree[a] == 2 or degree[b] == 2 or root(a) == root(b):
            continue
        parent[root(a)] = root(b)
        degree[a] += 1
        degree[b] += 1
        links[a].append(b)
        links[b].append(a)
    seen, order = [False] * n, []
    for start in np.argsort(-popularity, kind="stable"):
        if seen[start]:
            continue
        end, previous = int(start), -1
        while True:
            step = [m for m in links[end] if m != previous]
            if not step:
                break
            previous, end = end, step[0]
        previous, node = -1, end
        while node != -1:
            order.append(node)
            seen[node] = True
            step = [m for m in links[node] if m != previous]
            previous, node = node, (step[0] if step else -1)
    return order


@pytest.mark.parametrize("n, top, seed", [(0, 1, 0), (1, 1, 0), (2, 3, 1), (40, 4, 2),
                                          (256, 3, 3), (256, 1000, 4)])
def test_greedy_paths_match_the_python_loop(n, top, seed):
    # Small weights: many ties, which go to the first pair in row order.
    rng = np.random.default_rng(seed)
    weights = np.triu(rng.integers(0, top, (n, n)), 1)
    weights = weights + weights.T
    popularity = rng.integers(0, 3, n)
    out = np.empty(n, np.int64)
    layout.greedy_paths(weights.astype(np.int64), popularity.astype(np.int64), out)
    assert out.tolist() == reference_paths(weights, popularity)
    assert sorted(out.tolist()) == list(range(n))


def test_greedy_paths_refuse_weights_out_of_range():
    out = np.empty(2, np.int64)
    with pytest.raises(ValueError):
        layout.greedy_paths(np.array([[0, -1], [-1, 0]], np.int64), np.zeros(2, np.int64), out)
    with pytest.raises(ValueError):
        layout.greedy_paths(np.zeros((3, 3), np.int64), np.zeros(2, np.int64), out)
