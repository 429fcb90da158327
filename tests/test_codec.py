"""Encoder and decoder end to end, on real pictures and hand-sized arrays."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import batch, metrics, quantizer
from kqcodec.errors import OutputExistsError, UsageError

from .conftest import ihdr, png_chunks


def test_round_trip_is_exactly_palette_of_indices(tmp_path, coffee):
    image = quantizer.quantize(coffee, 16)
    out = tmp_path / "c.png"
    image.save(out)
    decoded = kqcodec.decode(out)
    np.testing.assert_array_equal(decoded, image.palette[image.indices])
    # And an independent decoder agrees.
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), decoded)
    again = kqcodec.read_palette_png(out)
    np.testing.assert_array_equal(again.palette[again.indices][..., :3], decoded)


@pytest.mark.parametrize("k, depth", [(2, 1), (4, 2), (16, 4), (17, 8), (256, 8)])
def test_palette_size_and_minimal_bit_depth(tmp_path, pictures, k, depth):
    out = tmp_path / "o.png"
    image = kqcodec.encode(pictures["sklearn_china"], out, k)
    chunks = dict(png_chunks(out))
    entries = len(chunks[b"PLTE"]) // 3
    assert entries == len(image.palette) <= k
    assert entries > k // 2  # a photo has enough colors to use most of the palette
    assert ihdr(out)[2:4] == (depth, 3)
    assert b"tRNS" not in chunks  # opaque photo: no transparency chunk
    # Every index is used: the PLTE holds only entries in use.
    assert len(np.unique(image.indices)) == entries


def test_pixels_map_to_nearest_rounded_entry_or_a_near_tie_with_a_neighbour(coffee):
    image = quantizer.quantize(coffee, 32)
    pixels = coffee.reshape(-1, 3).astype(np.int64)[::97]
    indices = image.indices.astype(np.int64)
    chosen = indices.reshape(-1)[::97]
    pal = image.palette.astype(np.int64)
    dist = ((pixels[:, None, :] - pal[None, :, :]) ** 2).sum(axis=2)
    nearest = dist[np.arange(len(pixels)), chosen] == dist.min(axis=1)
    # The others took their left or upper neighbour's entry (see ties).
    rows, cols = np.divmod(np.arange(coffee.shape[0] * coffee.shape[1])[::97], coffee.shape[1])
    left = indices[rows, np.maximum(cols - 1, 0)]
    up = indices[np.maximum(rows - 1, 0), cols]
    assert (nearest | (chosen == left) | (chosen == up)).all()
    assert 0.9 < nearest.mean() < 1


def test_lossless_when_colors_fit():
    rng = np.random.default_rng(1)
    colors = rng.integers(0, 256, (5, 3), dtype=np.uint8)
    pixels = colors[rng.integers(0, 5, (20, 30))]
    for k in (5, 8, 256):
        image = quantizer.quantize(pixels, k)
        assert len(image.palette) == 5
        np.testing.assert_array_equal(image.to_pixels(), pixels)
        assert metrics.psnr(pixels, image.to_pixels()) == float("inf")


def test_two_colors_and_k_two_is_exact():
    pixels = np.zeros((3, 4, 3), np.uint8)
    pixels[1:, 2:] = 255
    image = quantizer.quantize(pixels, 2)
    np.testing.assert_array_equal(image.to_pixels(), pixels)


def test_determinism_byte_identical(tmp_path, pictures):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    kqcodec.encode(pictures["skimage_rocket"], a, 64)
    kqcodec.encode(pictures["skimage_rocket"], b, 64)
    assert a.read_bytes() == b.read_bytes()


def test_alpha_kept_and_invisible_pixels_stay_invisible(tmp_path, present):
    assert (present[..., 3] == 0).any() and ((present[..., 3] > 0) & (present[..., 3] < 255)).any()
    out = tmp_path / "p.png"
    kqcodec.encode(kqcodec_path(tmp_path, present), out, 16)
    decoded = kqcodec.decode(out)
    assert decoded.shape == present.shape
    clear = present[..., 3] == 0
    assert (decoded[clear][:, 3] == 0).all()
    opaque = present[..., 3] == 255
    # Nearly all fully opaque pixels stay fully opaque.
    assert (decoded[opaque][:, 3] == 255).mean() > 0.99
    chunks = dict(png_chunks(out))
    trns = chunks[b"tRNS"]
    # Transparent entries come first, so tRNS is as short as it can be.
    assert all(a < 255 for a in trns)
    assert len(trns) < len(chunks[b"PLTE"]) // 3


def kqcodec_path(tmp_path, pixels):
    path = tmp_path / "src.png"
    Image.fromarray(pixels).save(path)
    return path


def test_quality_improves_with_k(coffee):
    scores = [metrics.psnr(coffee, quantizer.quantize(coffee, k).to_pixels()) for k in (4, 16, 64)]
    assert scores[0] < scores[1] < scores[2]
    assert scores[1] > 28  # pngquant --nofs gets 29.6 dB on this photo at k=16


@pytest.mark.parametrize("k", [1, 257, 0, -3, 2.5, True])
def test_k_outside_range_is_refused(coffee, k):
    with pytest.raises(UsageError):
        quantizer.quantize(coffee, k)


def test_empty_or_malformed_arrays_are_usage_errors():
    from kqcodec import imageio
    with pytest.raises(UsageError):
        quantizer.quantize(np.zeros((0, 4, 3), np.uint8), 4)
    with pytest.raises(UsageError):
        quantizer.quantize(np.zeros((4, 4, 3), np.float32), 4)
    with pytest.raises(UsageError):
        imageio.write_image("never.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(UsageError):
        metrics.psnr(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5, 3), np.uint8))


@pytest.mark.parametrize("name, k", [("skimage_rocket", 16), ("mpl_present_rgba", 8)])
def test_encode_reports_size_and_psnr_of_what_it_wrote(tmp_path, pictures, name, k):
    out = tmp_path / "o.png"
    result = kqcodec.encode(pictures[name], out, k)
    assert result.encoded_bytes == out.stat().st_size
    original = kqcodec.read_image(pictures[name])
    measured = metrics.psnr(original, kqcodec.decode(out))
    assert result.psnr == pytest.approx(measured, abs=1e-9)
    assert 20 < result.psnr < 60


def test_lossless_result_has_zero_error():
    pixels = np.zeros((3, 4, 3), np.uint8)
    pixels[1:, 2:] = 200
    image = quantizer.quantize(pixels, 4)
    assert image.mse == 0 and image.psnr == float("inf")


def _assert_nearest_in_oklab(original, image, step):
    """Every `step`-th pixel of `original` takes its nearest palette entry in Oklab."""
    from kqcodec import oklab

    pixels = oklab.rgb_to_oklab(original.reshape(-1, 3)[::step])
    entries = oklab.rgb_to_oklab(image.palette)
    dist = ((pixels[:, None, :] - entries[None]) ** 2).sum(axis=2)
    chosen = image.indices.reshape(-1)[::step]
    assert (dist[np.arange(len(pixels)), chosen] <= dist.min(axis=1) + 1e-9).all()


def test_oklab_search_trades_psnr_for_oklab_error(coffee):
    from kqcodec import oklab

    hist = quantizer.prepare(coffee)
    rgb = quantizer.quantize(coffee, 16, histogram=hist)
    lab = quantizer.quantize(coffee, 16, histogram=hist, space="oklab")
    assert len(lab.palette) == 16 and lab.indices.max() < 16

    def oklab_error(image):
        return np.mean((oklab.rgb_to_oklab(coffee) - oklab.rgb_to_oklab(image.to_pixels())) ** 2)

    # Each search wins on the error it minimises.
    assert oklab_error(lab) < 0.9 * oklab_error(rgb)
    assert metrics.psnr(coffee, rgb.to_pixels()) > metrics.psnr(coffee, lab.to_pixels())
    # Every pixel is mapped to its nearest entry in Oklab.
    _assert_nearest_in_oklab(coffee, lab, step=89)
    # Deterministic.
    assert lab.to_png() == quantizer.quantize(coffee, 16, space="oklab").to_png()


def test_rgb_oklab_space_sits_between_rgb_and_oklab(coffee):
    from kqcodec import oklab

    hist = quantizer.prepare(coffee)
    images = {space: quantizer.quantize(coffee, 16, histogram=hist, space=space)
              for space in ("rgb", "oklab", "rgb+oklab")}
    mixed = images["rgb+oklab"]
    assert len(mixed.palette) == 16 and mixed.indices.max() < 16

    def errors(image):
        decoded = image.to_pixels()
        lab = np.mean((oklab.rgb_to_oklab(coffee) - oklab.rgb_to_oklab(decoded)) ** 2)
        return metrics.psnr(coffee, decoded), lab

    rgb_psnr, rgb_lab = errors(images["rgb"])
    lab_psnr, lab_lab = errors(images["oklab"])
    mixed_psnr, mixed_lab = errors(mixed)
    # Closer to RGB's PSNR than Oklab is, and a lower Oklab error than RGB.
    assert lab_psnr < mixed_psnr <= rgb_psnr
    assert rgb_psnr - mixed_psnr < 0.5 * (rgb_psnr - lab_psnr)
    assert mixed_lab < 0.95 * rgb_lab
    # Every pixel goes to the entry nearest in RGB plus weighted Oklab distance.
    def features(rgb):
        rgb = np.asarray(rgb, np.float64)
        return np.hstack([rgb, oklab.rgb_to_oklab(rgb) * 255 * quantizer.OKLAB_WEIGHT])

    pixels = features(coffee.reshape(-1, 3)[::89])
    entries = features(mixed.palette)
    dist = ((pixels[:, None, :] - entries[None]) ** 2).sum(axis=2)
    chosen = mixed.indices.reshape(-1)[::89]
    assert (dist[np.arange(len(pixels)), chosen] <= dist.min(axis=1) + 1e-6).all()
    assert mixed.to_png() == quantizer.quantize(coffee, 16, space="rgb+oklab").to_png()


def test_perceptual_space_scores_higher_than_rgb_and_oklab(pictures):
    # A night sky over a rocket: smooth areas that band, and busy detail.
    rocket = kqcodec.read_image(pictures["skimage_rocket"])
    hist = quantizer.prepare(rocket)
    images = {space: quantizer.quantize(rocket, 64, histogram=hist, space=space)
              for space in ("rgb", "oklab", "perceptual")}
    scores = {space: metrics.ssimulacra2(rocket, image.to_pixels())
              for space, image in images.items()}
    # By the port, at k=64: rgb 41.7, oklab 48.2, perceptual 54.2.
    assert scores["perceptual"] > scores["oklab"] + 3 > scores["rgb"] + 3
    # It pays in PSNR as much as Oklab, not more.
    assert images["perceptual"].psnr > images["oklab"].psnr - 0.3
    # Every pixel is mapped to its nearest entry in Oklab, as with oklab.
    image = images["perceptual"]
    _assert_nearest_in_oklab(rocket, image, step=97)
    assert image.to_png() == quantizer.quantize(rocket, 64, space="perceptual").to_png()


def test_perceptual_space_spends_entries_on_smooth_areas():
    # Left half: a smooth grey ramp; right half: reddish noise.  By pixel
    # count the halves are alike, so Oklab splits the entries between them;
    # weighted by visibility, the ramp gets more of them.
    ramp = np.repeat(np.tile(np.linspace(40, 200, 256), (256, 1))[..., None], 3, axis=2)
    noise = np.random.default_rng(0).uniform(-50, 50, (256, 256, 3)) + [180, 70, 60]
    pixels = np.round(np.hstack([ramp, noise])).astype(np.uint8)

    def ramp_error(space):
        image = quantizer.quantize(pixels, 8, space=space)
        decoded = image.to_pixels()[:, :256].astype(float)
        return np.mean((decoded - ramp) ** 2)

    assert ramp_error("perceptual") < 0.6 * ramp_error("oklab")  # 64 against 136


def test_visibility_is_one_where_smooth_and_low_on_edges(present):
    from kqcodec import dither

    flat = np.full((16, 16, 3), 90, np.uint8)
    edge = flat.copy()
    edge[:, 8:] = 250
    assert (dither.visibility(flat) == 1).all()
    weight = dither.visibility(edge)
    assert weight[:, 7:9].max() == pytest.approx(dither.MASKED) and weight[:, 0].min() == 1
    # Pixels that are not opaque keep their full weight.
    weight = dither.visibility(present)
    assert (weight[present[..., 3] < 255] == 1).all()
    assert weight.min() == pytest.approx(dither.MASKED)


@pytest.mark.parametrize("space", ["oklab", "rgb+oklab", "perceptual"])
def test_perceptual_spaces_keep_transparency(present, space):
    image = quantizer.quantize(present, 8, space=space)
    decoded = image.to_pixels()
    hidden = present[..., 3] == 0
    assert (decoded[hidden] == 0).all()
    assert (decoded[present[..., 3] == 255][:, 3] == 255).mean() > 0.99
    assert metrics.psnr(present, decoded) > 20


def test_unknown_space_is_a_usage_error(coffee):
    with pytest.raises(UsageError, match="space must be one of rgb, oklab, rgb\\+oklab, perceptual, not 'lab'"):
        quantizer.quantize(coffee, 16, space="lab")


def test_speed_one_writes_no_larger_file_than_speed_ten(coffee):
    image = quantizer.quantize(coffee, 64)
    slow, fast = image.to_png(speed=1), image.to_png(speed=10)
    assert len(slow) < len(fast)
    for data in (slow, fast):
        back = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
        np.testing.assert_array_equal(back, image.to_pixels())


def test_more_search_effort_gives_a_palette_at_least_as_good(coffee):
    scores = {speed: quantizer.quantize(coffee, 32, speed=speed).psnr for speed in (1, 4, 10)}
    assert scores[1] >= scores[4] - 0.01 and scores[4] >= scores[10] - 0.01
    assert scores[1] - scores[10] < 1.0  # the fastest search is still k-means


@pytest.mark.parametrize("speed", [0, 11, 2.5, True])
def test_speed_outside_one_to_ten_is_refused(coffee, speed):
    with pytest.raises(UsageError, match="speed"):
        quantizer.quantize(coffee, 4, speed=speed)


def test_encode_refuses_a_name_of_another_format(tmp_path, pictures):
    for name in ("out.jpg", "out.webp", "out"):
        with pytest.raises(UsageError, match="encode writes a PNG; give the output a .png name"):
            kqcodec.encode(pictures["skimage_rocket"], tmp_path / name, 8)
    assert list(tmp_path.iterdir()) == []
    assert kqcodec.encode(pictures["skimage_rocket"], tmp_path / "OUT.PNG", 8).encoded_bytes > 0


def test_an_encoding_shows_its_size_not_its_bytes(pictures):
    result = kqcodec.encode(pictures["skimage_coffee"], None, 64)
    assert "encoded_bytes=" in repr(result) and len(repr(result)) < len(result.data) / 10
    choice = kqcodec.choose_k(kqcodec.read_image(pictures["skimage_coffee"]), target_psnr=30)
    assert "data=" not in repr(choice) and len(repr(choice)) < len(choice.data)


@pytest.mark.parametrize("speed", [0, 11, 2.5, "fast", True])
def test_writing_refuses_a_speed_outside_1_to_10(coffee, speed):
    image = quantizer.quantize(coffee, 8)
    with pytest.raises(UsageError, match="speed must be an integer from 1 to 10"):
        image.to_png(speed=speed)


@pytest.mark.parametrize("palette", [[[300.0, 0, 0], [0, 0, 0]], [[-1, 0, 0], [0, 0, 0]],
                                     [[773, 0, 0], [0, 0, 0]]])
def test_a_palette_outside_0_to_255_is_refused_not_wrapped(palette):
    image = kqcodec.PaletteImage(np.array(palette), np.zeros((2, 2), np.uint8))
    with pytest.raises(UsageError, match="palette values must be integers from 0 to 255"):
        image.to_png()
    with pytest.raises(UsageError, match="palette values must be integers from 0 to 255"):
        image.to_pil()


def test_to_pil_and_to_pixels_refuse_an_index_past_the_palette():
    image = kqcodec.PaletteImage(np.zeros((2, 3), np.uint8), np.full((2, 2), 5, np.uint8))
    with pytest.raises(UsageError, match="index 5 is out of range for 2 palette entries"):
        image.to_pil()
    with pytest.raises(UsageError, match="index 5 is out of range for 2 palette entries"):
        image.to_pixels()
    # A negative index is refused, not taken from the end of the palette.
    image = kqcodec.PaletteImage(np.zeros((2, 3), np.uint8), np.full((2, 2), -1))
    with pytest.raises(UsageError, match="index -1 is negative"):
        image.to_pixels()


def test_warnings_and_prepare_are_exported():
    from kqcodec import colorprofile, imageio

    assert kqcodec.KqcodecWarning is imageio.KqcodecWarning
    assert kqcodec.ProfileWarning is colorprofile.ProfileWarning
    assert kqcodec.prepare is quantizer.prepare
    assert {"KqcodecWarning", "ProfileWarning", "prepare"} <= set(kqcodec.__all__)


def test_bytes_that_are_no_png_are_called_the_input():
    with pytest.raises(kqcodec.FormatError) as error:
        kqcodec.decode(b"garbage")
    assert str(error.value) == "the input: not a PNG file"


def test_decode_takes_the_bytes_of_a_png_as_a_file(tmp_path, coffee):
    data = quantizer.quantize(coffee, 8).to_png()
    (tmp_path / "p.png").write_bytes(data)
    pixels = kqcodec.decode(data, tmp_path / "d.png")
    np.testing.assert_array_equal(pixels, kqcodec.decode(tmp_path / "p.png"))
    np.testing.assert_array_equal(kqcodec.read_image(tmp_path / "d.png"), pixels)


@pytest.mark.parametrize("histograms", [[(np.zeros((3, 3), np.uint8), np.ones(2, np.int64))],
                                        [(np.zeros((3, 3)), np.ones(3, np.int64))],
                                        [(np.zeros((3, 2), np.uint8), np.ones(3, np.int64))],
                                        [np.zeros((3, 3), np.uint8)]])
def test_shared_palette_refuses_what_is_no_histogram(histograms):
    with pytest.raises(UsageError):
        kqcodec.shared_palette(histograms, 4)


def test_shared_palette_leaves_out_colors_no_pixel_has(coffee):
    # Colors with a count of 0 (a second picture's histogram may hold them)
    # are not there for the search: beyond 8000 colors they made empty bins,
    # NaN centres and a palette of one entry.
    hist = kqcodec.prepare(coffee)
    assert len(hist.colors) > 8000
    held = hist.counts.copy()
    held[::2] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        palette = kqcodec.shared_palette([(hist.colors, held)], 16)
    expected = kqcodec.shared_palette([(hist.colors[held > 0], held[held > 0])], 16)
    np.testing.assert_array_equal(palette, expected)
    assert palette.shape == (16, 3)
    # Counts too large for int64, alone or added up, are refused, not wrapped to negative.
    for histograms in ([(hist.colors[:2], np.array([1, 2**63], np.uint64))],
                       [(hist.colors[:1], np.array([2**62])), (hist.colors[:1], np.array([2**62]))]):
        with pytest.raises(UsageError, match="add up to less than 2\\*\\*62"):
            kqcodec.shared_palette(histograms, 2)


def test_a_histogram_of_other_pixels_is_refused_and_keeps_its_own(coffee):
    pixels = coffee.copy()
    hist = kqcodec.prepare(pixels)
    other = np.ascontiguousarray(pixels[::-1])  # the same size and colors, not the same picture
    with pytest.raises(UsageError, match="histogram is of other pixels"):
        kqcodec.quantize(other, 16, histogram=hist)
    with pytest.raises(UsageError, match="histogram is of other pixels"):
        kqcodec.remap(other, kqcodec.quantize(pixels, 4).palette, histogram=hist)
    # Changing the array afterwards changes neither the histogram nor what it encodes.
    before = kqcodec.quantize(pixels, 16, histogram=hist)
    pixels[:] = 0
    np.testing.assert_array_equal(hist.pixels.reshape(coffee.shape), coffee)
    after = kqcodec.quantize(coffee, 16, histogram=hist)
    assert after.psnr == before.psnr == kqcodec.psnr(coffee, after.to_pixels())


def test_color_must_be_color_tags(coffee):
    with pytest.raises(UsageError, match="color must be a colorprofile.ColorTags or None, not str"):
        kqcodec.choose_k(coffee, target_psnr=30, color="srgb")
    image = kqcodec.PaletteImage(np.zeros((2, 3), np.uint8), np.zeros((2, 2), np.uint8),
                                 color="srgb")
    with pytest.raises(UsageError, match="not str"):
        image.to_png()


def test_psnr_is_a_python_float(coffee):
    assert type(kqcodec.psnr(coffee, quantizer.quantize(coffee, 8).to_pixels())) is float


def test_save_checks_its_file_name_as_encode_does(tmp_path, coffee):
    image = kqcodec.quantize(coffee, 8)
    for name, error, words in (("x.jpg", UsageError, "save writes a PNG; give the output a .png name"),
                               ("folder.png", OutputExistsError, "is a directory; give a file name")):
        (tmp_path / "folder.png").mkdir(exist_ok=True)
        with pytest.raises(error, match=words):
            image.save(tmp_path / name, force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.png"]
    assert image.save(tmp_path / "x.PNG") == (tmp_path / "x.PNG").stat().st_size


@pytest.mark.parametrize("limit", [-1, 0, 2.5, True, "100"])
def test_a_pixel_limit_out_of_range_is_a_usage_error(tmp_path, pictures, limit):
    with pytest.raises(UsageError, match="pixel limit must be a positive number"):
        kqcodec.encode(pictures["skimage_rocket"], tmp_path / "o.png", 8, max_pixels=limit)
    assert list(tmp_path.iterdir()) == []


def test_a_file_object_instead_of_a_name_is_a_usage_error(tmp_path, pictures, coffee):
    data = pictures["skimage_rocket"].read_bytes()
    calls = [lambda: kqcodec.encode(io.BytesIO(data), tmp_path / "o.png", 8),
             lambda: kqcodec.encode(data, io.BytesIO(), 8),
             lambda: kqcodec.decode(io.BytesIO(data)),
             lambda: kqcodec.read_image(io.BytesIO(data)),
             lambda: kqcodec.quantize(coffee, 8).save(io.BytesIO())]
    for call in calls:
        with pytest.raises(UsageError, match="expected a file name .* not BytesIO"):
            call()
    assert list(tmp_path.iterdir()) == []
    # Bytes are the file's content, where the documentation says so.
    assert kqcodec.encode(data, tmp_path / "o.png", 8).k == 8


def test_api_arguments_of_the_wrong_kind_are_usage_errors(tmp_path, coffee, pictures):
    hist = kqcodec.prepare(coffee)
    # Any iterable of histograms; counts that hold no pixel, or negative ones, are refused.
    palette = kqcodec.shared_palette(((h.colors, h.counts) for h in [hist]), 8)
    assert palette.shape == (8, 3)
    for counts in (-hist.counts, 0 * hist.counts):
        with pytest.raises(UsageError):
            kqcodec.shared_palette([(hist.colors, counts)], 8)
    with pytest.raises(UsageError, match="target PSNR must be a number"):
        kqcodec.choose_k(coffee, target_psnr=True)
    with pytest.raises(UsageError, match="at least one picture or folder"):
        next(batch.encode_batch([], tmp_path / "out", 8))
    # One k for a report is a list of one.
    folder = tmp_path / "pics"
    folder.mkdir()
    Image.fromarray(coffee[:40, :60]).save(folder / "c.png")
    assert list(kqcodec.report(folder, 4, out=tmp_path / "enc", jobs=1)["k"]) == [4]
    # A search's answer prints in a line or two, not with its palettes.
    choice = kqcodec.choose_k(coffee, target_psnr=30)
    assert len(repr(choice.trials)) < 200 * len(choice.trials)


def test_decode_turns_a_png_by_its_exif_orientation_as_encode_does(tmp_path):
    # A 1x3 palette PNG whose eXIf says "turn 90 degrees clockwise" (6).
    stored = Image.fromarray(np.array([[0, 1, 1]], np.uint8), "L").convert("P")
    stored.putpalette([255, 0, 0, 0, 0, 255])
    exif = Image.Exif()
    exif[0x0112] = 6
    source = tmp_path / "turned.png"
    stored.save(source, "PNG", exif=exif.tobytes())
    shown = kqcodec.decode(source, tmp_path / "out.png")
    expected = np.array([[255, 0, 0], [0, 0, 255], [0, 0, 255]], np.uint8)[:, None, :]
    np.testing.assert_array_equal(shown, expected)
    np.testing.assert_array_equal(kqcodec.decode(tmp_path / "out.png"), shown)
    assert b"eXIf" not in (tmp_path / "out.png").read_bytes()  # turned once, not twice
    assert kqcodec.read_palette_png(source).indices.shape == (1, 3)  # as stored
    encoded = kqcodec.encode(source, tmp_path / "enc.png", 2)
    np.testing.assert_array_equal(kqcodec.decode(tmp_path / "enc.png"), shown)
    assert encoded.psnr == float("inf")


def test_api_names_that_path_would_read_as_others_are_refused(tmp_path, pictures, coffee):
    # "out.png/" wrote out.png; "" is '.'; a NUL failed in the system's call
    # with a ValueError.
    source = pictures["mpl_present_rgba"]
    image = kqcodec.quantize(coffee, 4)
    writes = {"save": lambda dest: image.save(dest),
              "encode": lambda dest: kqcodec.encode(source, dest, 4),
              "decode": lambda dest: kqcodec.decode(source, dest),
              "write_image": lambda dest: kqcodec.write_image(dest, coffee)}
    for name, write in writes.items():
        with pytest.raises(UsageError, match="names a folder; give the file to write"):
            write(f"{tmp_path}/out.png/")
        with pytest.raises(UsageError, match="NUL"):
            write(f"{tmp_path}/o\0ut.png")
        with pytest.raises(UsageError):  # decode says first that it names no format
            write("")
    for read in (kqcodec.read_image, kqcodec.decode, lambda p: kqcodec.encode(p, None, 4)):
        with pytest.raises(UsageError, match="NUL"):
            read(f"{source}\0")
    assert list(tmp_path.iterdir()) == []


def test_a_histogram_s_colors_and_counts_cannot_be_changed(coffee):
    # Changed in place, they gave an image whose psnr said inf at 5 dB.
    hist = kqcodec.prepare(coffee)
    for values in (hist.colors, hist.counts, hist.pixels):
        with pytest.raises(ValueError, match="read-only"):
            values[:1] = 7
    image = kqcodec.quantize(coffee, 16, histogram=hist)
    assert image.psnr == pytest.approx(metrics.psnr(coffee, image.to_pixels()), abs=1e-9)


def test_api_values_of_the_wrong_kind_are_usage_errors_not_python_s(tmp_path, coffee, pictures):
    # Each raised TypeError, ValueError, AttributeError or a numpy error.
    source = pictures["mpl_present_rgba"]
    folder = source.parent
    image = kqcodec.quantize(coffee, 4)
    calls = [lambda: kqcodec.decode(source, bytes(tmp_path / "o.png")),
             lambda: kqcodec.write_image(bytes(tmp_path / "o.png"), coffee),
             lambda: kqcodec.write_image(None, coffee),
             lambda: kqcodec.write_image(io.BytesIO(), coffee),
             lambda: kqcodec.write_image(tmp_path / "o.png", coffee[:0]),
             lambda: kqcodec.write_image(tmp_path / "o.png", coffee, color="srgb"),
             lambda: kqcodec.PaletteImage(image.palette, image.indices, color="srgb").to_pil(),
             lambda: kqcodec.PaletteImage("abc", image.indices).to_png(),
             lambda: kqcodec.shared_palette(None, 8),
             lambda: kqcodec.report(bytes(folder), [4], out=tmp_path / "out"),
             lambda: kqcodec.report_image(bytes(source), [4], out=tmp_path / "out")]
    for call in calls:
        with pytest.raises(UsageError):
            call()
    assert list(tmp_path.iterdir()) == []
