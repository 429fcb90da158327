"""Targets instead of k: the search's answer is exact for what it was asked."""

import io
import os
import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import imageio, metrics, paletteimage, quantizer, search, ties
from kqcodec.colorprofile import ColorTags
from kqcodec.errors import TargetError, UsageError

from .conftest import png_chunks
from .test_cli import one_line, run


def nearest_psnr(pixels, palette):
    """PSNR of `pixels` mapped to their nearest `palette` entry, by brute force.

    Independent of kqcodec's nearest-entry search: every pixel against every
    entry, in the space PSNR measures (RGB here).
    """
    flat = pixels.reshape(-1, 3).astype(np.int64)
    pal = palette[:, :3].astype(np.int64)
    best = np.full(len(flat), np.iinfo(np.int64).max)
    for entry in pal:
        best = np.minimum(best, ((flat - entry) ** 2).sum(axis=1))
    mse = best.sum() / flat.size
    return 10 * np.log10(255.0**2 / mse)


def within_near_ties(psnr, pixels, palette):
    """True if `psnr` is the nearest mapping's, or below it by no more than near ties may cost."""
    nearest = nearest_psnr(pixels, palette)
    return nearest - 10 * np.log10(1 + ties.BUDGET) - 1e-9 <= psnr <= nearest + 1e-9


def decoded(path):
    """The written file's pixels, decoded by Pillow (not kqcodec)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("RGBA" if "transparency" in img.info else "RGB"))


@pytest.mark.parametrize("target", [33.0, 37.5])
def test_psnr_target_is_met_and_one_color_fewer_falls_short(tmp_path, pictures, coffee, target):
    dest = tmp_path / "out.png"
    result = kqcodec.encode(pictures["skimage_coffee"], dest, "auto", target_psnr=target)
    assert metrics.psnr(coffee, decoded(dest)) >= target
    tried = {t.k: t for t in result.trials}
    below = tried[result.k - 1]
    assert below.psnr < target
    # The neighbour's PSNR, recomputed from its palette alone (each pixel
    # at its nearest entry but for near ties, see kqcodec.ties).
    assert within_near_ties(below.psnr, coffee, below.palette)
    assert dest.stat().st_size == result.encoded_bytes


def test_psnr_target_on_a_transparent_picture(tmp_path, pictures, present):
    dest = tmp_path / "out.png"
    result = kqcodec.encode(pictures["mpl_present_rgba"], dest, "auto", target_psnr=36)
    assert metrics.psnr(present, decoded(dest)) >= 36
    assert {t.k: t.psnr for t in result.trials}[result.k - 1] < 36


@pytest.mark.parametrize("budget", [60_000, 100_000])
def test_size_budget_is_met_and_one_color_more_does_not_fit(tmp_path, pictures, coffee, budget):
    dest = tmp_path / "out.png"
    result = kqcodec.encode(pictures["skimage_coffee"], dest, "auto", max_bytes=budget)
    assert dest.stat().st_size <= budget
    tried = {t.k: t for t in result.trials}
    assert tried[result.k + 1].size > budget
    # On this photo sizes grow with k: every k tried above the answer is
    # over the budget, every k below it fits.
    for k, trial in tried.items():
        if trial.size is not None:
            assert (trial.size > budget) == (k > result.k)
    # The neighbour is a real encoding: its palette, each pixel at its
    # nearest entry but for near ties, gives the PSNR it was measured with.
    above = tried[result.k + 1]
    assert within_near_ties(above.psnr, coffee, above.palette)


def test_a_budget_the_whole_palette_meets_gives_the_whole_palette(present):
    # The search's first encoding, of max_colors at the fastest speed, came
    # out 4 bytes over a budget that the encoding at the default speed
    # meets: k = 255 was chosen where k = 256 fits.
    whole = quantizer.quantize(present, 256).to_png()
    fast = quantizer.quantize(present, 256, speed=10).to_png()
    assert len(fast) > len(whole)  # what made the search stop short
    choice = quantizer.choose_k(present, max_bytes=len(whole))
    assert choice.k == 256 and choice.data == whole
    below = quantizer.choose_k(present, max_bytes=len(whole) - 1)
    assert below.k == 255 and len(below.data) < len(whole)
    assert {(t.k, t.size) for t in below.trials} >= {(256, len(whole))}


def test_choice_is_deterministic(present):
    first = quantizer.choose_k(present, max_bytes=3000)
    second = quantizer.choose_k(present, max_bytes=3000)
    assert first.k == second.k and first.data == second.data


def test_unreachable_psnr_exits_99_and_writes_nothing(tmp_path, pictures):
    dest = tmp_path / "out.png"
    code, _, err = run("encode", pictures["skimage_coffee"], dest, "-k", "auto",
                       "--target-psnr", "60", "--max-colors", "64")
    assert code == 99
    assert one_line(err).startswith(f"kqcodec: error: {pictures['skimage_coffee']}: 64 colors reach")
    assert not dest.exists() and list(tmp_path.iterdir()) == []


def test_unreachable_budget_exits_99_and_writes_nothing(tmp_path, pictures):
    dest = tmp_path / "out.png"
    code, _, err = run("encode", pictures["skimage_coffee"], dest, "-k", "auto",
                       "--max-bytes", "2000")
    assert code == 99
    assert one_line(err).startswith(f"kqcodec: error: {pictures['skimage_coffee']}: 2 colors take")
    assert list(tmp_path.iterdir()) == []


def test_a_budget_only_a_larger_k_fits_is_met_not_called_out_of_reach(coffee):
    # On this crop of a photo the search's file at k = 3 is smaller than at k = 2, and
    # k = 3's estimate was over the budget: 2 did not fit, and the search gave up
    # (TargetError, exit 99) while a budget 10 bytes larger got k = 3's file.
    pixels = np.ascontiguousarray(coffee[:200, :300])
    choice = kqcodec.choose_k(pixels, max_bytes=1400)
    sizes = {t.k: t.size for t in choice.trials}
    assert sizes[2] > 1400 and choice.k > 2
    assert choice.size <= 1400 and choice.size == len(choice.data)
    assert choice.size == len(choice.image.to_png())
    # k + 1 as the search encoded it does not fit: compressed, or its estimate over the
    # budget by more than estimates err (a whole 3-bit palette's PNG is larger still).
    above = next(t for t in choice.trials if t.k == choice.k + 1)
    assert above.size is None or above.size > 1400
    assert above.size is not None or above.estimate > 1400


def test_verbose_names_the_k_and_the_ks_tried(tmp_path, pictures):
    code, _, err = run("encode", pictures["mpl_present_rgba"], tmp_path / "o.png", "-k", "auto",
                       "--target-psnr", "35", "-v")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert "k=" in lines[0] and "bytes" in lines[0] and "PSNR" in lines[0]
    assert lines[1].startswith("kqcodec: ks tried: 256 (")


def test_verbose_tells_the_two_encodings_of_the_whole_palette_apart(tmp_path, pictures, coffee):
    # A size search clusters first at the fastest speed; at k = 256 it
    # tries again at the speed asked, and either file may be the answer.
    fast = quantizer.choose_k(coffee, max_bytes=10**9).trials[0]
    slow = kqcodec.quantize(coffee, 256)
    slow_size = len(slow.to_png())
    assert (fast.k, fast.speed) == (256, 10) and fast.size < slow_size
    budget = (fast.size + slow_size) // 2
    code, _, err = run("encode", pictures["skimage_coffee"], tmp_path / "o.png", "-k", "auto",
                       "--max-bytes", str(budget), "-v")
    assert code == 0, err
    assert (tmp_path / "o.png").stat().st_size == fast.size
    assert err.strip().splitlines()[1] == (
        f"kqcodec: ks tried: 256 at speed 10 ({fast.psnr:.2f} dB {fast.size} B), "
        f"256 ({slow.psnr:.2f} dB {slow_size} B)")


@pytest.mark.parametrize("args, words", [
    (["-k", "auto"], "needs one target"),
    (["-k", "auto", "--target-psnr", "30", "--max-bytes", "9000"], "needs one target"),
    (["-k", "16", "--target-psnr", "30"], "go with -k auto"),
    (["-k", "auto", "--target-psnr", "-3"], "positive"),
    (["-k", "auto", "--max-bytes", "0"], "from 1"),
])
def test_target_usage_errors_exit_2(tmp_path, pictures, args, words):
    code, _, err = run("encode", pictures["skimage_rocket"], tmp_path / "o.png", *args)
    assert code == 2
    assert words in one_line(err)


def test_api_checks_the_target(coffee):
    with pytest.raises(UsageError):
        quantizer.choose_k(coffee, target_psnr=30, max_bytes=1000)
    with pytest.raises(UsageError):
        quantizer.choose_k(coffee, target_psnr=float("nan"))
    with pytest.raises(UsageError):
        kqcodec.quantize(coffee, 16, target_psnr=30)
    with pytest.raises(TargetError):
        kqcodec.quantize(coffee, "auto", target_psnr=80)


def test_quantize_auto_returns_the_searched_image(coffee):
    image = kqcodec.quantize(coffee, "auto", target_psnr=34)
    assert image.psnr >= 34
    assert image.psnr == pytest.approx(metrics.psnr(coffee, image.to_pixels()), abs=1e-9)


def test_quantize_accepts_a_pillow_image(pictures, coffee, present):
    with Image.open(pictures["skimage_coffee"]) as img:
        from_pil = kqcodec.quantize(img, 16)
    np.testing.assert_array_equal(from_pil.palette, kqcodec.quantize(coffee, 16).palette)
    with Image.open(pictures["mpl_present_rgba"]) as img:
        image = kqcodec.quantize(img, "auto", target_psnr=30)
    assert image.palette.shape[1] == 4
    assert metrics.psnr(present, image.to_pixels()) >= 30


def test_a_pillow_palette_image_with_alpha_keeps_it(present):
    rgba = Image.fromarray(present, "RGBA")
    paletted = rgba.quantize(16)  # Pillow's palette holds the alpha
    assert paletted.palette.mode == "RGBA"
    image = kqcodec.quantize(paletted, 16)
    assert image.palette.shape[1] == 4
    got, expected = image.to_pixels(), np.asarray(paletted.convert("RGBA"))
    np.testing.assert_array_equal(got[..., 3], expected[..., 3])
    seen = expected[..., 3] > 0  # the hidden color of a clear pixel is not kept
    np.testing.assert_array_equal(got[seen], expected[seen])


def test_an_opaque_rgba_array_is_taken_as_rgb(coffee):
    rgba = np.dstack([coffee, np.full(coffee.shape[:2], 255, np.uint8)])
    image = kqcodec.quantize(rgba, 32)
    np.testing.assert_array_equal(image.palette, kqcodec.quantize(coffee, 32).palette)
    for original in (coffee, rgba):
        assert image.psnr == pytest.approx(metrics.psnr(original, image.to_pixels()), abs=1e-9)
    assert kqcodec.choose_k(rgba, target_psnr=33).k == kqcodec.choose_k(coffee, target_psnr=33).k


def test_remap_measures_as_psnr_does(coffee, present):
    opaque = kqcodec.quantize(coffee, 16).palette
    shared = kqcodec.shared_palette([(quantizer.prepare(p).colors, quantizer.prepare(p).counts)
                                     for p in (coffee, present)], 32)
    assert shared.shape[1] == 4 and (shared[:, 3] < 255).any()
    as_rgba = np.column_stack([opaque, np.full(len(opaque), 255, np.uint8)])
    for palette in (opaque, as_rgba, shared):
        hist = quantizer.prepare(coffee)
        image = kqcodec.remap(coffee, palette, histogram=hist)
        assert image.psnr == pytest.approx(metrics.psnr(coffee, image.to_pixels()), abs=1e-9)
    # An opaque RGBA palette maps and measures as its RGB one.
    assert kqcodec.remap(coffee, as_rgba).psnr == kqcodec.remap(coffee, opaque).psnr


def test_a_histogram_of_other_pixels_is_refused(coffee):
    with pytest.raises(UsageError, match="histogram is of other pixels"):
        kqcodec.quantize(coffee, 8, histogram=quantizer.prepare(coffee[:10]))
    with pytest.raises(UsageError, match="histogram is of other pixels"):
        kqcodec.remap(coffee, np.zeros((2, 3), np.uint8), histogram=quantizer.prepare(coffee[:, :9]))
    with pytest.raises(UsageError, match="what prepare"):
        kqcodec.quantize(coffee, 8, histogram=[1, 2, 3])


@pytest.mark.parametrize("seed", [None, 1.5, "a", True, -1, 2**32])
def test_a_seed_that_is_not_a_32_bit_integer_is_refused(coffee, seed):
    with pytest.raises(UsageError, match="seed must be an integer"):
        kqcodec.quantize(coffee, 8, seed=seed)


def test_prepare_refuses_what_quantize_refuses(coffee):
    with pytest.raises(UsageError, match="uint8"):
        quantizer.prepare(coffee / 255.0)
    assert quantizer.prepare(Image.fromarray(coffee)).counts.sum() == coffee.shape[0] * coffee.shape[1]


def test_premultiplied_and_closed_pillow_images(coffee, pictures):
    grey = np.dstack([coffee[..., 0], np.where(coffee[..., 1] > 60, 255, 128).astype(np.uint8)])
    la = Image.fromarray(grey, "LA")
    straight, premultiplied = imageio.from_pil(la), imageio.from_pil(la.convert("La"))
    np.testing.assert_array_equal(premultiplied[..., 3], straight[..., 3])
    # Premultiplied by half, the grey loses its last bit.
    assert np.abs(premultiplied.astype(int) - straight).max() <= 1
    assert kqcodec.quantize(la.convert("La"), 16).palette.shape[1] == 4
    closed = Image.fromarray(coffee)
    closed.close()
    with pytest.raises(UsageError, match="the image cannot be loaded"):
        kqcodec.quantize(closed, 8)
    # A chunk that breaks the PNG rules (Pillow's SyntaxError).
    data = pictures["skimage_coffee"].read_bytes()
    with pytest.raises(UsageError, match="the image cannot be loaded"):
        kqcodec.quantize(Image.open(io.BytesIO(data[:5000] + bytes(5000) + data[10000:])), 8)


def test_to_pil_round_trip(tmp_path, present):
    image = kqcodec.quantize(present, 24)
    pil = image.to_pil()
    assert pil.mode == "P"
    np.testing.assert_array_equal(np.asarray(pil), image.indices)
    np.testing.assert_array_equal(np.asarray(pil.convert("RGBA")), image.to_pixels())
    # Saved by Pillow, read back by Pillow: the transparency survives.
    pil.save(tmp_path / "p.png")
    with Image.open(tmp_path / "p.png") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGBA")), image.to_pixels())
    assert b"tRNS" in dict(png_chunks(tmp_path / "p.png"))


def test_to_pil_with_one_clear_entry_saves_as_gif_and_keeps_a_profile(tmp_path, present):
    # One fully transparent entry, every other opaque: Pillow's own form for
    # it is the entry's index, the only one its GIF writer takes.
    rgba = present.copy()
    rgba[..., 3] = np.where(rgba[..., 3] > 100, 255, 0)
    image = kqcodec.quantize(rgba, 8)
    assert (image.palette[:, 3] == 0).sum() == 1
    pil = image.to_pil()
    assert pil.info["transparency"] == int(np.flatnonzero(image.palette[:, 3] == 0)[0])
    pil.save(tmp_path / "p.gif")
    with Image.open(tmp_path / "p.gif") as back:
        np.testing.assert_array_equal(np.asarray(back.convert("RGBA"))[..., 3] == 0,
                                      image.to_pixels()[..., 3] == 0)
    # A file that keeps its profile keeps it through Pillow too.
    icc = (Path(__file__).parent / "data" / "icc" / "AdobeRGB1998.icc").read_bytes()
    kept = replace(image, color=ColorTags(icc=icc))
    kept.to_pil().save(tmp_path / "k.png")
    with Image.open(tmp_path / "k.png") as back:
        assert back.info["icc_profile"] == icc


def test_to_pil_of_an_opaque_image_has_no_transparency(coffee):
    pil = kqcodec.quantize(coffee, 8).to_pil()
    assert "transparency" not in pil.info
    np.testing.assert_array_equal(np.asarray(pil.convert("RGB")),
                                  kqcodec.quantize(coffee, 8).to_pixels())


def test_narrowing_keeps_its_invariant_on_a_non_monotone_function():
    # A made-up size curve with bumps: the bracket still ends on a k that
    # fits next to one that does not.
    sizes = {k: 1000 + 10 * k + (300 if k % 7 == 0 else 0) for k in range(1, 258)}
    budget = 2000
    lo, hi = search._narrow(1, 256, lambda k: np.log2(sizes[k] / budget),
                            lambda k: sizes[k] > budget, 0.4)
    assert hi == lo + 1
    assert sizes[hi] > budget and (lo == 1 or sizes[lo] <= budget)



def test_a_prediction_across_a_bit_depth_gives_way_to_the_depth_edge():
    # Sizes jump where the bit depth changes: between a 2-bit k = 4 and a
    # 4-bit k = 16, interpolation would place the budget at k = 12; the
    # edge of 16's depth, k = 5, is measured first.
    known = {4: -0.8, 16: 0.22}
    assert search._predict(4, 16, known, 0.4) == 12
    assert search._predict(4, 16, known, 0.4, starts=search._DEPTH_STARTS) == 5
    # From an 8-bit k alone, a k predicted in the 2-bit depth gives way to
    # 17, then 17 (measured over) to 16, the top of the depth below.
    assert search._predict(1, 44, {44: 0.6, 256: 1.0}, 0.4) == 3
    assert search._predict(1, 44, {44: 0.6, 256: 1.0}, 0.4, starts=search._DEPTH_STARTS) == 17
    assert search._predict(1, 17, {17: 0.31, 44: 0.6}, 0.4, starts=search._DEPTH_STARTS) == 16
    # Within one depth nothing changes.
    assert search._predict(5, 16, {5: -0.28, 16: 0.22}, 0.4, starts=search._DEPTH_STARTS) \
        == search._predict(5, 16, {5: -0.28, 16: 0.22}, 0.4)


def test_depth_edges_do_not_use_up_the_predictions_patience():
    # The estimates of mpl_chart_stocks.png (../shared/corpus/public) over
    # half its k = 256 size, at the ks a search estimated, log-linear in
    # between within a depth.  From 256 the predictions step down to 44,
    # the depth edges 17 and 16, then 10 and 9: five moves of the upper
    # end, of which two were edges.  Counting those, the narrowing bisected
    # to k = 3, far below the budget, and stepped back up through 4 and 5.
    measured = {256: 2.0270, 44: 1.4548, 17: 1.2977, 16: 1.1969, 10: 1.0258, 9: 1.0144,
                8: 0.9920, 5: 0.7481, 4: 0.5777, 3: 0.5207}

    def value(k):
        first, last = search._depth(k, search._DEPTH_STARTS)
        ks = sorted(j for j in measured if first <= j <= last)
        below = max((j for j in ks if j <= k), default=ks[0])
        above = min((j for j in ks if j >= k), default=ks[-1])
        ends = np.log2([measured[below], measured[above]])
        t = 0 if above == below else np.log2(k / below) / np.log2(above / below)
        return float(ends[0] + t * (ends[1] - ends[0]))

    tried = []

    def tracked(k):
        tried.append(k)
        return value(k)

    lo, hi = search._narrow(1, 256, tracked, lambda k: value(k) > 0, search._SIZE_EXPONENT,
                            patience=5, starts=search._DEPTH_STARTS)
    assert (lo, hi) == (8, 9)
    assert tried[tried.index(9) + 1:] == [8]


def test_a_size_search_does_not_interpolate_across_bit_depths(monkeypatch):
    # Sizes shaped like a flat chart's: a jump at each new bit depth, a slow
    # growth within one.  The answer is exact either way; measuring the
    # depth edges first takes fewer estimates than interpolating across.
    scale = {1: 0.45, 2: 0.55, 4: 0.8, 8: 1.25}

    def depth(k):
        return 1 if k <= 2 else 2 if k <= 4 else 4 if k <= 16 else 8

    def size(k):
        growth = (k / 5) ** 0.25 if depth(k) == 4 else (k / 17) ** 0.12 if depth(k) == 8 else 1
        return int(30000 * scale[depth(k)] * growth)

    def searched():
        estimated, written = [], []

        def encode_at(k, near):
            return paletteimage.PaletteImage(np.zeros((k, 3), np.uint8), np.zeros((1, 1), np.uint8),
                                             1.0)

        def estimate_size(image):
            estimated.append(len(image.palette))
            return 1.01 * size(len(image.palette)), depth(len(image.palette))

        def write(image):
            written.append(len(image.palette))
            return bytes(size(len(image.palette)))

        choice = search.find_k(encode_at, max_bytes=31000, estimate_size=estimate_size, write=write)
        return choice.k, estimated, sorted(written)

    k, estimated, written = searched()
    assert size(k) <= 31000 < size(k + 1) and written == [k, k + 1] == [13, 14]
    assert estimated.index(17) < min(estimated.index(j) for j in estimated if j < 17)
    monkeypatch.setattr(search, "_DEPTH_STARTS", ())
    k_across, across, _ = searched()
    assert k_across == k and len(estimated) < len(across)


@pytest.mark.parametrize("speed, k, alone", [(4, 8, False), (4, 64, True), (10, 64, True),
                                             (4, 256, False), (1, 64, False)])
def test_an_estimate_says_whether_its_compression_runs_on_one_thread(coffee, monkeypatch, speed, k,
                                                                     alone):
    # Two layouts at the final level (ranked on samples compressed on two
    # threads for 4-bit data at speed 4, every close layout at speed 1), or
    # two bands (0.96 MB at k = 256), or one layout.
    from kqcodec import layout

    pixels = np.concatenate([coffee] * 4) if k == 256 else coffee
    image = quantizer.quantize(pixels, k, speed=speed)
    estimate = image.estimated_png_size(speed=speed)
    threads = []
    on_two, in_bands = layout._on_two_threads, layout._compress_in_bands
    monkeypatch.setattr(layout, "_on_two_threads", lambda jobs: threads.append(len(jobs)) or on_two(jobs))
    monkeypatch.setattr(layout, "_compress_in_bands",
                        lambda *args: threads.append(2) or in_bands(*args))
    image.to_png(speed=speed, plan=estimate.plan)
    assert estimate.one_thread == (max(threads) == 1) == alone


def _neighbour_search(one_thread, sizes, budget, fail=()):
    """find_k on made-up sizes, recording every compression and the thread it ran on."""
    written = []

    def encode_at(k, near):
        return paletteimage.PaletteImage(np.zeros((k, 3), np.uint8), np.zeros((1, 1), np.uint8), 1.0)

    def estimate_size(image):
        return 1.01 * sizes(len(image.palette)), "kind"

    def write(image):
        k = len(image.palette)
        written.append((k, threading.current_thread() is threading.main_thread()))
        if k in fail:
            raise MemoryError(f"no room for k = {k}")
        return bytes(sizes(k))

    choice = search.find_k(encode_at, max_bytes=budget, estimate_size=estimate_size, write=write,
                           one_thread=one_thread)
    return choice, written


def test_a_size_search_on_a_photo_compresses_a_neighbour_beside_for_the_same_file(coffee, monkeypatch):
    # Half the k = 256 size: one of the ks the search compresses has an
    # estimated neighbour of the same kind, compressed beside it.
    budget = len(quantizer.quantize(coffee, 256).to_png()) // 2
    find_k, threads = quantizer.find_k, []

    def recording_find_k(encode_at, *, write, one_thread=None, **options):
        def compress(image):
            threads.append(threading.current_thread() is threading.main_thread())
            return write(image)

        return find_k(encode_at, write=compress, one_thread=one_thread if beside else None,
                      **options)

    monkeypatch.setattr(quantizer, "find_k", recording_find_k)
    choices = {}
    for beside in (False, True):
        threads.clear()
        choices[beside] = quantizer.choose_k(coffee, max_bytes=budget)
        assert any(not main for main in threads) == beside
    assert choices[True].k == choices[False].k and choices[True].data == choices[False].data
    assert [t.k for t in choices[True].trials] == [t.k for t in choices[False].trials]


def _wavy(k):
    """Sizes that grow with k, 1% up or down from one k to the next."""
    return int(4000 * (k / 40) ** 0.4 * (1 + 0.01 * np.sin(1.7 * k)))


@pytest.mark.parametrize("budget", [3500, 4000, 4150, 5000])
def test_a_neighbour_compressed_beside_changes_nothing_the_search_sees(budget):
    # Sizes near the budget in no steady order: the search compresses
    # several ks there.  Compressing an estimated neighbour on a second
    # thread beside one leaves the answer, its file and the ks tried as they
    # are; a neighbour the search asks for later is not compressed again.
    alone, written_alone = _neighbour_search(None, _wavy, budget)
    beside, written = _neighbour_search(lambda image: True, _wavy, budget)
    assert (beside.k, beside.data) == (alone.k, alone.data)
    assert [(t.k, t.size, t.estimate) for t in beside.trials] \
        == [(t.k, t.size, t.estimate) for t in alone.trials]
    assert all(main for _, main in written_alone)
    assert len({k for k, _ in written}) == len(written)
    assert {k for k, _ in written} >= {k for k, _ in written_alone}
    assert any(not main for _, main in written)


def test_a_neighbour_that_fails_beside_fails_the_search_only_if_needed():
    _, written = _neighbour_search(lambda image: True, _wavy, 4000)
    beside = [k for k, main in written if not main]
    assert beside
    # A neighbour the search needs: its error is raised when the search
    # compresses that k itself.
    with pytest.raises(MemoryError, match=f"k = {beside[0]}"):
        _neighbour_search(lambda image: True, _wavy, 4000, fail=(beside[0],))

    # One it does not need (sizes rising 0.2% a k near the budget): its
    # error is dropped with it.
    def slow(k):
        return int(4000 * (1 + 0.002 * (k - 40)) if 30 <= k <= 50 else 4000 * (k / 40) ** 0.4)

    alone = _neighbour_search(None, slow, 4100)[0]
    choice, written = _neighbour_search(lambda image: True, slow, 4100)
    unused = [k for k, main in written if not main and k not in {t.k for t in alone.trials
                                                                    if t.size is not None}]
    assert unused
    again, _ = _neighbour_search(lambda image: True, slow, 4100, fail=tuple(unused))
    assert (again.k, again.data) == (alone.k, alone.data)


def _warm_encoder(pixels):
    """An ``encode_at(k, near)`` for find_k: one histogram, each k warm-started from `near`'s labels."""
    hist = quantizer.prepare(pixels)
    labels = {}

    def encode_at(k, near):
        image, labels[k] = quantizer._quantize(hist, k, init=labels.get(near))
        return image

    return encode_at


@pytest.mark.parametrize("offset", [-10.0, 0.0, 10.0])
def test_a_wrong_model_costs_ks_never_exactness(coffee, offset):
    # The model only places the ks: 10 dB off, the answer still reaches the
    # target while its neighbour below, measured, falls short.
    encode_at = _warm_encoder(coffee)

    choice = search.find_k(encode_at, target_psnr=34.0,
                           predict_psnr=lambda k: 34.0 + 2.7 * np.log2(k / 40) + offset)
    tried = {t.k: t.psnr for t in choice.trials}
    assert tried[choice.k] >= 34.0 > tried[choice.k - 1]
    assert len(tried) <= 12


def test_size_search_compresses_only_the_ks_near_the_budget(coffee):
    # The estimates place the ks; the answer and its neighbour, and few
    # others, are compressed for real.  256 colors, estimated far over the
    # budget, are not.
    choice = quantizer.choose_k(coffee, max_bytes=60_000)
    real = {t.k: t.size for t in choice.trials if t.size is not None}
    assert real[choice.k] <= 60_000 < real[choice.k + 1]
    assert len(real) <= 3
    assert choice.trials[0].k == 256 and choice.trials[0].size is None
    assert len(choice.data) == real[choice.k]


def test_size_estimate_is_near_the_real_size(coffee, present):
    for pixels, k in [(coffee, 40), (coffee, 12), (present, 30)]:
        image = kqcodec.quantize(pixels, k)
        estimate = image.estimated_png_size()
        assert 0.9 < len(image.to_png()) / estimate.size < 1.1
        assert estimate.level in range(1, 13)
        # The estimate's trial is the one the file's compression makes.
        assert image.to_png(plan=estimate.plan) == image.to_png()


def test_the_estimate_makes_the_trial_the_file_makes(coffee):
    # Beyond 1 MB of image data the trial sees bands of rows: the estimate
    # builds those rows alone, filtered as in the whole image, and its
    # decision (level, layouts) is the one the file's compression makes,
    # which then reuses it for the same bytes.
    tiled = np.tile(coffee, (3, 3, 1))  # 1800 x 1200: 2.2 MB of image data at 8 bits
    image = kqcodec.quantize(tiled, 40, speed=10)
    height, width = image.indices.shape
    rows = kqcodec.layout._trial_rows(height, width + 1)
    assert len(rows) < height
    order = kqcodec.layout.adjacency_order(image.indices, 40)
    whole = kqcodec.layout._filtered(image.indices, order, 8)
    assert np.array_equal(kqcodec.layout._filtered(image.indices, order, 8, rows), whole[rows])
    estimate = image.estimated_png_size()
    assert estimate.plan[1][0] == estimate.layout
    assert image.to_png(plan=estimate.plan) == image.to_png()
    assert 0.97 < len(image.to_png()) / estimate.size < 1.03


@pytest.mark.parametrize("wrong", ["half", "double", "noisy", "backwards"])
def test_a_wrong_size_estimate_costs_ks_never_exactness(coffee, wrong):
    # The estimates only place the ks: scaled, noisy or even decreasing in
    # k, the answer still fits while its neighbour above, compressed for
    # real, does not.
    encode_at = _warm_encoder(coffee)

    def estimate_size(image):
        size, level = image.estimated_png_size()[:2]
        k = len(image.palette)
        size = {"half": size / 2, "double": size * 2, "noisy": size * (0.7 + (k * 37 % 61) / 100),
                "backwards": 1e7 / k}[wrong]
        return size, level

    budget = 70_000
    choice = search.find_k(encode_at, max_bytes=budget, estimate_size=estimate_size)
    real = {t.k: t.size for t in choice.trials if t.size is not None}
    assert choice.size == real[choice.k] <= budget < real[choice.k + 1]
    assert len(real) <= 14


def test_size_estimates_of_neighbouring_ks_move_with_the_real_sizes(coffee):
    # With the final level's gain measured once and kept, the estimates of
    # neighbouring palettes follow their real sizes far closer than the
    # step between them: the ratio of real to estimated size moves by less
    # than 1% from k = 38 to k = 42, and the gain is measured once.
    encode_at = _warm_encoder(coffee)
    gains, ratios, near = {}, [], 256
    encode_at(256, None)
    for k in range(38, 43):
        image = encode_at(k, near)
        near = k
        size, level, layout = image.estimated_png_size(gains=gains)[:3]
        ratios.append(len(image.to_png()) / size)
    assert list(gains) == [(level, layout)]
    assert max(ratios) / min(ratios) < 1.01
    # A gain given is used as it is: twice the gain, twice the image data.
    doubled = image.estimated_png_size(gains={(level, layout): 2 * gains[level, layout]})[0]
    framing = len(image.to_png()) - len(kqcodec.layout.image_data(image.indices,
                                                                 image.palette)[2])
    assert doubled - framing == pytest.approx(2 * (size - framing), rel=1e-9)


def test_a_budget_every_color_fits_gets_the_plain_encoding(coffee):
    # The search starts from a fast first clustering; when the whole palette
    # is the answer, the file is the one ``quantize`` writes at 256 colors.
    plain = kqcodec.quantize(coffee, 256).to_png()
    choice = quantizer.choose_k(coffee, max_bytes=len(plain) + 1000)
    assert choice.k == 256
    assert choice.data == plain


def test_the_search_writes_at_the_speed_asked(tmp_path, pictures, coffee):
    # At speed 10 every file the search measures is compressed as speed 10
    # compresses it, so the budget holds for the file written at that speed.
    budget = 60_000
    choice = quantizer.choose_k(coffee, max_bytes=budget, speed=10)
    real = {t.k: t.size for t in choice.trials if t.size is not None}
    assert len(choice.data) == real[choice.k] <= budget < real[choice.k + 1]
    assert choice.data == choice.image.to_png(speed=10)
    assert choice.data != choice.image.to_png()
    # The CLI's --speed reaches the search.
    dest = tmp_path / "out.png"
    code, _, err = run("encode", pictures["skimage_coffee"], dest, "-k", "auto",
                       "--max-bytes", str(budget), "--speed", "10")
    assert code == 0, err
    api = kqcodec.encode(pictures["skimage_coffee"], None, "auto", max_bytes=budget, speed=10)
    assert dest.read_bytes() == api.data


def test_calibrated_estimates_keep_the_search_from_stepping_one_compression_at_a_time():
    # Sizes growing by 0.2% a k around the budget, estimated 2% low: the
    # first k compressed (over the budget) calibrates the estimates, which
    # then place the answer; the search does not compress its way down from
    # that k one neighbour at a time (46, 45, 44, ...), as it did while a
    # neighbour estimated within 1% of the budget was compressed at once.
    estimated, written = [], []

    def size(k):
        return int(4000 * (1 + 0.002 * (k - 40)) if 30 <= k <= 50 else 4000 * (k / 40) ** 0.4)

    def encode_at(k, near):
        return paletteimage.PaletteImage(np.zeros((k, 3), np.uint8), np.zeros((1, 1), np.uint8), 1.0)

    def estimate_size(image):
        estimated.append(len(image.palette))
        return 0.98 * size(len(image.palette)), "kind"

    def write(image):
        written.append(len(image.palette))
        return bytes(size(len(image.palette)))

    choice = search.find_k(encode_at, max_bytes=4000, estimate_size=estimate_size, write=write)
    assert choice.k == 40 and size(41) > 4000
    assert sorted(written[-2:]) == [40, 41]
    assert 45 not in written and 44 not in written
    assert len(written) <= 4


def test_a_neighbour_estimated_far_over_the_budget_is_not_compressed(coffee, monkeypatch):
    # At 24,000 bytes the answer is k = 6.  k = 7's estimate is over the
    # budget by more than the estimates' measured error, so the search does
    # not compress it; compressed here, it does not fit indeed.
    images, written = {}, []
    find_k = quantizer.find_k

    def recording_find_k(encode_at, *, write, **options):
        def encode(k, near):
            images[k] = encode_at(k, near)
            return images[k]

        def compress(image):
            written.append(len(image.palette))
            return write(image)

        return find_k(encode, write=compress, **options)

    monkeypatch.setattr(quantizer, "find_k", recording_find_k)
    budget = 24_000
    choice = quantizer.choose_k(coffee, max_bytes=budget)
    assert choice.size <= budget
    above = {t.k: t for t in choice.trials}[choice.k + 1]
    assert choice.k + 1 not in written and above.size is None
    assert above.estimate * quantizer._LOWEST_RATIO < budget < above.estimate
    assert len(images[choice.k + 1].to_png()) > budget
    # Without the bound on the estimates' error, k + 1 is compressed.
    monkeypatch.setattr(quantizer, "_DRIFT", 1.0)
    written.clear()
    again = quantizer.choose_k(coffee, max_bytes=budget)
    assert again.k == choice.k and again.data == choice.data
    assert choice.k + 1 in written


def test_verbose_gives_the_estimate_of_a_k_not_compressed(tmp_path, pictures):
    code, _, err = run("encode", pictures["skimage_coffee"], tmp_path / "o.png", "-k", "auto",
                       "--max-bytes", "36000", "-v")
    assert code == 0, err
    assert "B estimated" in err.strip().splitlines()[1]


def test_searches_in_two_threads_leave_the_blas_threads_as_they_were(tmp_path, pictures):
    # In a process of its own, whose OpenBLAS has two threads, as a user's
    # program has: overlapping searches must give them back when they end.
    code = ("import os, threading\n"
            "from threadpoolctl import threadpool_info\n"
            "import kqcodec\n"
            "from kqcodec import imageio\n"
            f"pixels = imageio.read_image({str(pictures['skimage_coffee'])!r})\n"
            "def blas():\n"
            "    return sorted({i['num_threads'] for i in threadpool_info()\n"
            "                   if i['user_api'] == 'blas'})\n"
            "before = blas()\n"
            "start = threading.Barrier(3)\n"
            "def work(k):\n"
            "    start.wait()\n"
            "    for _ in range(3):\n"
            "        kqcodec.quantize(pixels, k)\n"
            "threads = [threading.Thread(target=work, args=(k,)) for k in (64, 128)]\n"
            "[t.start() for t in threads]\n"
            "work(32)  # the main thread too\n"
            "[t.join() for t in threads]\n"
            "print(before, blas())\n")
    env = {key: value for key, value in os.environ.items()
           if key not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=dict(env, OPENBLAS_NUM_THREADS="2"))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[2] [2]"
