"""PSNR to the bit on either path; SSIMULACRA2 through the library, with transparency handled
like the reference tool."""

import subprocess
import sys

import numpy as np
import pytest
import ssimulacra2
from PIL import Image

import kqcodec
from kqcodec import metrics, quantizer


def library_score(tmp_path, reference, test):
    """The port called directly on two PNG files of RGB pixels."""
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    Image.fromarray(reference).save(a)
    Image.fromarray(test).save(b)
    return ssimulacra2.compute_ssimulacra2(str(a), str(b))


def test_opaque_score_is_the_librarys(tmp_path, coffee):
    crop = np.ascontiguousarray(coffee[100:260, 200:420])
    decoded = quantizer.quantize(crop, 16).to_pixels()
    score = metrics.ssimulacra2(crop, decoded)
    assert score == library_score(tmp_path, crop, decoded)
    assert 0 < score < 90
    assert metrics.ssimulacra2(crop, crop) == 100.0


def test_transparency_scores_over_dark_and_light_keeping_the_lower(tmp_path, present):
    decoded = quantizer.quantize(present, 8).to_pixels()

    def over(rgba, grey):
        alpha = rgba[..., 3:] / 255.0
        return np.round(rgba[..., :3] * alpha + (1 - alpha) * (grey * 255)).astype(np.uint8)

    dark = library_score(tmp_path, over(present, 0.1), over(decoded, 0.1))
    light = library_score(tmp_path, over(present, 0.9), over(decoded, 0.9))
    assert dark != light
    assert metrics.ssimulacra2(present, decoded) == min(dark, light)
    # The port alone drops alpha: the hidden colors under transparent pixels
    # would count. kqcodec's score does not see them.
    hidden = present.copy()
    hidden[present[..., 3] == 0, :3] = 255 - hidden[present[..., 3] == 0, :3]
    assert metrics.ssimulacra2(hidden, decoded) == metrics.ssimulacra2(present, decoded)


def test_too_small_to_score_is_nan():
    tiny = np.zeros((7, 20, 3), np.uint8)
    assert np.isnan(metrics.ssimulacra2(tiny, tiny))


@pytest.mark.parametrize("k", [2, 256])
def test_psnr_of_opaque_rgb_is_the_float64_mean_to_the_bit(coffee, k):
    decoded = quantizer.quantize(coffee, k).to_pixels()
    a, b = coffee.astype(np.float64), decoded.astype(np.float64)
    expected = 10 * np.log10(255.0**2 / float(np.mean((a - b) ** 2)))
    assert metrics.psnr(coffee, decoded) == expected
    # An alpha channel that is opaque everywhere is no channel to compare:
    # its zero differences would raise the PSNR by 10 log10(4/3), 1.25 dB.
    opaque = np.dstack([coffee, np.full(coffee.shape[:2], 255, np.uint8)])
    opaque_decoded = np.dstack([decoded, np.full(coffee.shape[:2], 255, np.uint8)])
    assert metrics.psnr(opaque, decoded) == expected == metrics.psnr(opaque, opaque_decoded)
    assert metrics.psnr(coffee, coffee) == float("inf")
    with pytest.raises(kqcodec.UsageError):
        metrics.psnr(coffee, decoded[:-1])


def test_preload_imports_what_ssim_calls():
    # Forked workers share what the parent imported: SciPy must be among it,
    # not only scikit-image's lazy stub.
    code = ("import sys; from kqcodec import metrics; metrics.preload(['ssim']); "
            "print('scipy.ndimage' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "True"


def skimage_ssim(reference, test):
    """scikit-image's SSIM on both images' visible channels, made float64 then float32.

    An alpha channel that is opaque everywhere is left out, as it is no
    channel to compare.
    """
    from skimage.metrics import structural_similarity

    def seen(pixels):
        return pixels[..., :3] if pixels.shape[-1] == 4 and (pixels[..., 3] == 255).all() else pixels

    a, b = metrics._pair(seen(reference), seen(test))
    return float(structural_similarity(a.astype(np.float32), b.astype(np.float32),
                                       channel_axis=2, data_range=255, win_size=7))


def test_a_prepared_reference_gives_the_same_ssim_bits(coffee, present):
    # The original is prepared once and compared with several decodings,
    # RGB and RGBA mixed: every value is the library's on the images as given.
    opaque = np.dstack([coffee, np.full(coffee.shape[:2], 255, np.uint8)])
    for original in (coffee, present, opaque):
        reference = metrics.Reference(original)
        for k in (4, 64):
            decoded = quantizer.quantize(original, k).to_pixels()
            for test in (decoded, decoded[..., :3], original):
                expected = skimage_ssim(original, test)
                assert reference.ssim(test) == expected == metrics.ssim(original, test)
    assert metrics.Reference(coffee).ssim(coffee) == 1.0
    with pytest.raises(kqcodec.UsageError):
        metrics.Reference(coffee).ssim(coffee[:-1])


@pytest.mark.parametrize("measure", [metrics.psnr, metrics.ssim, metrics.ssimulacra2])
@pytest.mark.parametrize("bad", ["float", "uint16", "grey", "empty"])
def test_measures_refuse_what_they_cannot_measure(coffee, measure, bad):
    image = {"float": coffee / 255.0, "uint16": coffee.astype(np.uint16) * 257,
             "grey": coffee[..., 0], "empty": coffee[:0]}[bad]
    with pytest.raises(kqcodec.UsageError, match=r"\(H, W, 3\|4\) uint8"):
        measure(image, image)
    with pytest.raises(kqcodec.UsageError, match=r"\(H, W, 3\|4\) uint8"):
        measure(coffee, image)
