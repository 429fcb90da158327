"""Same input and options, same bytes: whatever the thread count, and pinned across changes."""

import hashlib
import io
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

import kqcodec
from kqcodec import histogram, layout, quantizer

from .conftest import PICTURES, synthetic_photo

# SHA-256 of the default encodings of two bundled pictures.  They change only
# when the algorithm does: update them deliberately, and say so in the commit.
PINNED = {
    ("skimage_coffee.png", 64): "1f80f956dc42980d564c7d42315a246e1424c1333ea0d7483563e4a56e25b1b3",
    ("mpl_present_rgba.png", 16): "0003b2270ed0b55748edebbc83310f5b68f3721e7fa568207ab13a79bfd9c72a",
}


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "synthetic.png"
    Image.fromarray(synthetic_photo()).save(path)
    return path


def encode_with_threads(source, dest, k, threads, *options):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", str(source), str(dest),
                           "-k", str(k), *options], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return dest.read_bytes()


def test_one_or_two_threads_give_the_same_bytes(tmp_path, large):
    one = encode_with_threads(large, tmp_path / "one.png", 256, 1)
    two = encode_with_threads(large, tmp_path / "two.png", 256, 2)
    assert one == two


def test_reuse_gives_the_same_bytes_on_one_or_two_threads(tmp_path):
    # The reuse pass and the palette refits (float64 sums over the pixels in order).
    rocket = PICTURES / "skimage_rocket.jpg"
    one = encode_with_threads(rocket, tmp_path / "one.png", 64, 1, "--space", "oklab", "--reuse")
    two = encode_with_threads(rocket, tmp_path / "two.png", 64, 2, "--space", "oklab", "--reuse")
    assert one == two


@pytest.mark.parametrize("name, k", sorted(PINNED))
def test_encodings_of_bundled_pictures_are_pinned(tmp_path, name, k):
    out = tmp_path / "o.png"
    kqcodec.encode(PICTURES / name, out, k)
    assert hashlib.sha256(out.read_bytes()).hexdigest() == PINNED[name, k]


def test_large_picture_takes_the_large_paths(large):
    pixels = np.asarray(Image.open(large))
    assert pixels.shape[0] * pixels.shape[1] > 1_200_000
    hist = histogram.color_histogram(pixels)
    colors, counts = np.unique(pixels.reshape(-1, 3), axis=0, return_counts=True)
    np.testing.assert_array_equal(hist.colors, colors)
    np.testing.assert_array_equal(hist.counts, counts)
    assert len(colors) > 40_000  # the search's last iterations run on bins
    image = quantizer.quantize(pixels, 256, histogram=hist)
    data = image.to_png()
    # More image data than the layout's trial compresses: it samples bands.
    assert image.indices.shape[0] * (image.indices.shape[1] + 1) > layout._TRIAL_BYTES
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")),
                                  image.to_pixels())
    assert 30 < image.psnr < 60
