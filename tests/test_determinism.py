"""Same input and options, same bytes: whatever the thread count, and pinned across changes."""

import hashlib
import io
import os
import platform
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
    ("skimage_coffee.png", 64): "ce69152cd5c8f3c8205e673ed96accf1f369d75a1de6021fe89573cff31a39be",
    ("mpl_present_rgba.png", 16): "0003b2270ed0b55748edebbc83310f5b68f3721e7fa568207ab13a79bfd9c72a",
}


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    path = tmp_path_factory.mktemp("large") / "synthetic.png"
    Image.fromarray(synthetic_photo()).save(path)
    return path


def encode_with_threads(source, dest, k, threads, *options):
    return encode_with_env(source, dest, k, {"OMP_NUM_THREADS": str(threads),
                                             "OPENBLAS_NUM_THREADS": str(threads),
                                             "MKL_NUM_THREADS": str(threads)}, *options)


def encode_with_env(source, dest, k, env, *options):
    proc = subprocess.run([sys.executable, "-m", "kqcodec", "encode", str(source), str(dest),
                           "-k", str(k), *options], capture_output=True, text=True,
                          env=dict(os.environ, **env))
    assert proc.returncode == 0, proc.stderr
    return dest.read_bytes()


def older_processor():
    """Environment that has OpenBLAS and numpy run the kernels of an older x86-64 processor.

    OpenBLAS's Nehalem kernels (no AVX, no fused multiply-add), and none of
    the SIMD loops numpy chooses at run time beyond its baseline.
    """
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # numpy < 2
        from numpy.core import _multiarray_umath as umath
    present = [name for name in umath.__cpu_dispatch__ if umath.__cpu_features__.get(name)]
    return {"OPENBLAS_CORETYPE": "Nehalem", "NPY_DISABLE_CPU_FEATURES": ",".join(present)}


def test_one_or_two_threads_give_the_same_bytes(tmp_path, large):
    one = encode_with_threads(large, tmp_path / "one.png", 256, 1)
    two = encode_with_threads(large, tmp_path / "two.png", 256, 2)
    assert one == two


def test_the_sklearn_engine_gives_the_same_bytes_on_one_or_two_threads(tmp_path):
    # scikit-learn's k-means sums each OpenMP thread's points apart: on 1, 2 and 4 threads
    # this photo at k = 16 came out as three different files.
    coffee = PICTURES / "skimage_coffee.png"
    one = encode_with_threads(coffee, tmp_path / "one.png", 16, 1, "--engine", "sklearn")
    two = encode_with_threads(coffee, tmp_path / "two.png", 16, 2, "--engine", "sklearn")
    four = encode_with_threads(coffee, tmp_path / "four.png", 16, 4, "--engine", "sklearn")
    assert one == two == four


def test_reuse_gives_the_same_bytes_on_one_or_two_threads(tmp_path):
    # The reuse pass and the palette refits (float64 sums over the pixels in order).
    rocket = PICTURES / "skimage_rocket.jpg"
    one = encode_with_threads(rocket, tmp_path / "one.png", 64, 1, "--space", "oklab", "--reuse")
    two = encode_with_threads(rocket, tmp_path / "two.png", 64, 2, "--space", "oklab", "--reuse")
    assert one == two


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="OpenBLAS's kernel names are those of x86-64 processors")
@pytest.mark.parametrize("name, k, options", [
    ("mpl_present_rgba.png", 256, ()),
    ("skimage_coffee.png", 64, ("--space", "rgb+oklab")),
    ("skimage_rocket.jpg", 256, ("--dither",)),
])
def test_the_processor_s_kernels_do_not_change_the_bytes(tmp_path, name, k, options):
    # BLAS and LAPACK pick kernels by processor (with fused multiply-add or
    # not, other orders of summation): a product's last bits once moved a
    # palette's principal-axis cut, and with it the file.
    here = encode_with_env(PICTURES / name, tmp_path / "here.png", k, {}, *options)
    there = encode_with_env(PICTURES / name, tmp_path / "there.png", k, older_processor(),
                            *options)
    assert here == there


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
