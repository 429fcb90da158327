"""The palette search: exact assignments under bounds, weights, swaps, repair."""

import numpy as np
import pytest

from kqcodec import kmeans, quantizer
from kqcodec.nearest import Assignment


def brute_force(points, centres):
    d = ((points[:, None, :].astype(np.float64) - centres[None].astype(np.float64)) ** 2).sum(axis=2)
    return d.argmin(axis=1), d


@pytest.mark.parametrize("k", [2, 7, 16, 40, 256])
def test_assignment_stays_exact_as_centres_move(k):
    rng = np.random.default_rng(k)
    points = (rng.normal(0, 40, (6000, 3))).astype(np.float32)
    centres = points[rng.choice(len(points), k, replace=False)].copy()
    assignment = Assignment(points, centres)
    for step in range(12):
        # Moves of every size: tiny drifts, and now and then a jump.
        scale = 8.0 if step % 4 == 0 else 0.3
        centres = centres + rng.normal(0, scale, centres.shape).astype(np.float32)
        assignment.move(centres)
        labels, dist = brute_force(points, centres)
        chosen = dist[np.arange(len(points)), assignment.labels]
        # Same distance as the true nearest (a tie may pick either index).
        np.testing.assert_allclose(chosen, dist.min(axis=1), rtol=1e-5, atol=1e-3)
        assert (assignment.upper >= np.sqrt(chosen) - 1e-2).all()


def test_integer_points_map_exactly_to_nearest_rounded_centre():
    rng = np.random.default_rng(3)
    points = rng.integers(-128, 128, (20000, 3)).astype(np.float32)
    centres = rng.integers(-128, 128, (256, 3)).astype(np.float32)
    assignment = Assignment(points, centres + 0.4)
    assignment.move(centres)
    _, dist = brute_force(points, centres)
    assert (dist[np.arange(len(points)), assignment.labels] == dist.min(axis=1)).all()


def test_weighting_a_point_equals_repeating_it():
    rng = np.random.default_rng(0)
    points = rng.integers(-100, 100, (300, 3)).astype(np.float32)
    weights = rng.integers(1, 4, 300)
    repeated = np.repeat(points, weights, axis=0)
    a = kmeans.weighted_kmeans(points, weights, 8).centres
    b = kmeans.weighted_kmeans(*np.unique(repeated, axis=0, return_counts=True), 8).centres
    np.testing.assert_allclose(np.sort(a, axis=0), np.sort(b, axis=0), atol=1e-4)


def test_hand_sized_example():
    points = np.array([[0, 0, 0], [2, 0, 0], [100, 100, 100], [100, 104, 100]], np.float32)
    weights = np.array([1, 3, 1, 1])
    centres = kmeans.weighted_kmeans(points, weights, 2).centres
    assert sorted(map(tuple, centres.round(3))) == [(1.5, 0, 0), (100, 102, 100)]


def test_swaps_escape_a_local_minimum():
    # Three tight, far-apart groups; Lloyd started with two centres in one
    # group and one between the others stays stuck there.
    rng = np.random.default_rng(1)
    groups = [np.array(c, np.float32) + rng.normal(0, 1, (200, 3)).astype(np.float32)
              for c in ([-100, 0, 0], [0, 0, 0], [100, 0, 0])]
    points = np.vstack(groups)
    weights = np.ones(len(points))
    stuck = Assignment(points, np.array([[-101, 0, 0], [-99, 0, 0], [50, 0, 0]], np.float32))
    kmeans._lloyd(stuck, weights, 50)
    before = kmeans._error(stuck, weights)
    better, kept = kmeans._swap_search(stuck, weights, trials=6)
    after = kmeans._error(better, weights)
    assert kept >= 1 and after < before / 10
    np.testing.assert_allclose(np.sort(better.centres[:, 0]), [-100, 0, 100], atol=0.5)


def test_empty_cluster_moves_to_worst_served_point():
    points = np.array([[0, 0, 0], [1, 0, 0], [90, 0, 0]], np.float32)
    weights = np.array([5.0, 5.0, 1.0])
    assignment = Assignment(points, np.array([[0.5, 0, 0], [500, 500, 500]], np.float32))
    kmeans._lloyd(assignment, weights, 10)
    assert sorted(assignment.centres[:, 0].round(3).tolist()) == [0.5, 90.0]


def test_divisive_split_cuts_at_the_gap():
    points = np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0], [50, 0, 0], [51, 0, 0]], np.float64)
    centres = kmeans.divisive_split(points, np.ones(5), 2)
    assert sorted(centres[:, 0].tolist()) == [1.0, 50.5]


def test_sklearn_engine_agrees_on_easy_data(coffee):
    ours = quantizer.quantize(coffee[::4, ::4], 8)
    theirs = quantizer.quantize(coffee[::4, ::4], 8, engine="sklearn")
    from kqcodec import metrics
    assert abs(metrics.psnr(coffee[::4, ::4], ours.to_pixels())
               - metrics.psnr(coffee[::4, ::4], theirs.to_pixels())) < 1.0


def test_merge_errors_run_from_the_clustering_to_one_cluster():
    # Random weighted points in 3 clusters' worth of labels: the curve
    # starts at the clustering's own error and ends at the error about the
    # global mean, never rising as clusters merge.
    rng = np.random.default_rng(5)
    points = rng.integers(-128, 128, (400, 3)).astype(np.float32)
    weights = rng.integers(1, 50, 400).astype(np.float64)
    labels = rng.integers(0, 12, 400)
    errors = kmeans.merge_errors(points, weights, labels)
    assert len(errors) == 13 and errors[0] == np.inf

    def sse(groups):
        total = 0.0
        for g in np.unique(groups):
            m = groups == g
            mean = weights[m] @ points[m].astype(np.float64) / weights[m].sum()
            total += weights[m] @ ((points[m] - mean) ** 2).sum(axis=1)
        return total

    assert errors[12] == pytest.approx(sse(labels), rel=1e-9)
    assert errors[1] == pytest.approx(sse(np.zeros(400, int)), rel=1e-9)
    assert (np.diff(errors[1:]) <= 1e-6 * errors[1]).all()



@pytest.mark.parametrize("points", [3000, 20000])
def test_the_splits_into_k_are_the_first_cuts_of_any_larger_split(points):
    rng = np.random.default_rng(points)
    colors = rng.normal(0, 50, (points, 3)).astype(np.float32)
    weights = rng.integers(1, 50, points).astype(np.float64)
    splits = kmeans._Splits.whole(colors, weights)
    # Asked out of order: the cuts already made serve the smaller ks.
    for k in (256, 3, 40, 1, 2, 255, 100):
        np.testing.assert_array_equal(splits.means(k), kmeans.divisive_split(colors, weights, k))
    assert splits.means(1).shape == (1, 3)


def test_the_splits_stop_at_the_distinct_points():
    points = np.array([[0, 0, 0], [0, 0, 0], [9, 9, 9], [20, 0, 0]], np.float32)
    splits = kmeans._Splits.whole(points, np.ones(4))
    assert len(splits.means(10)) == 3
    np.testing.assert_array_equal(splits.means(2), kmeans.divisive_split(points, np.ones(4), 2))


def _picture(rng, side, channels=3, levels=256):
    """A smooth gradient with noise: many distinct colors, as in a photo."""
    y, x = np.mgrid[:side, :side] / side
    base = np.stack([x, y, (x + y) / 2, 1 - x * y][:channels], axis=-1) * (levels - 1)
    return np.clip(base + rng.normal(0, 6, base.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("case", ["many colors", "some colors", "few colors, transparency"])
def test_a_histogram_quantized_at_several_k_gives_the_palettes_of_separate_searches(case):
    rng = np.random.default_rng(5)
    if case == "many colors":  # beyond 40,000: the bins of side 2 are shared too
        pixels = _picture(rng, 300)
    elif case == "some colors":  # binned, from the colors themselves at the end
        pixels = _picture(rng, 120) // 2 * 2
    else:  # few enough to search the colors directly
        pixels = _picture(rng, 90, channels=4) // 8 * 8
        pixels[:10, :, 3] = 0
    hist = quantizer.prepare(pixels)
    for k in (256, 16, 70, 2):
        shared = quantizer.quantize(pixels, k, histogram=hist)
        alone = quantizer.quantize(pixels, k)
        np.testing.assert_array_equal(shared.palette, alone.palette)
        np.testing.assert_array_equal(shared.indices, alone.indices)
    assert "rgb" in hist.kept


@pytest.mark.parametrize("integer", [True, False])
def test_settled_labels_are_the_nearest_entries_ties_to_the_lower_index(integer):
    # Colors near ties (midpoints of entries, duplicated entries), labelled
    # through bounds loosened by a move: as in the encoder after rounding.
    rng = np.random.default_rng(5)
    palette = rng.integers(0, 256, (200, 3)).astype(np.uint8)
    palette[17] = palette[4]
    between = (palette[:60].astype(np.int64) + palette[1:61]) // 2
    colors = np.vstack([rng.integers(0, 256, (3000, 3)), between, palette]).astype(np.uint8)
    points = quantizer._features(colors)
    entries = quantizer._features(palette)
    assignment = Assignment(points, entries + rng.normal(0, 2, entries.shape).astype(np.float32))
    assignment.move(entries)
    assert (assignment.lower - assignment.upper <= quantizer._TIE_GAP).sum() > 100
    labels = quantizer._settled(assignment, integer=integer)
    distances = ((points[:, None, :].astype(np.float64) - entries[None, :, :]) ** 2).sum(axis=2)
    np.testing.assert_array_equal(labels, distances.argmin(axis=1))
    assert 17 not in labels
