"""Oklab conversion: reference values, the round trip over a dense lattice of 8-bit colors, and
the same bits on any processor."""

import os
import platform
import subprocess
import sys
from decimal import Decimal, localcontext

import numpy as np
import pytest

from kqcodec import oklab

from .test_determinism import older_processor


def lattice(step):
    """Every color whose channels are multiples of `step` or 255: a dense sample of sRGB."""
    levels = np.unique(np.append(np.arange(0, 256, step), 255)).astype(np.uint8)
    r, g, b = np.meshgrid(levels, levels, levels, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], axis=1)


def test_round_trip_within_a_millionth_of_a_level():
    # 86^3 = 636,056 colors, every third level of each channel plus 255
    # (all 2^24 take 20 s here; the error is as small on the whole cube).
    rgb = lattice(3)
    back = oklab.oklab_to_rgb(oklab.rgb_to_oklab(rgb))
    assert np.abs(back - rgb).max() < 1e-6
    np.testing.assert_array_equal(np.round(back).astype(np.uint8), rgb)
    # Float input (not the lookup table) gives the same values.
    np.testing.assert_allclose(oklab.rgb_to_oklab(rgb[::97].astype(np.float64)),
                               oklab.rgb_to_oklab(rgb[::97]), atol=1e-12)


@pytest.mark.parametrize("rgb, lab", [
    # CSS Color Module Level 4, sample conversions of the named colors.
    ((255, 255, 255), (1.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (0.62796, 0.22486, 0.12585)),
    ((0, 255, 0), (0.86644, -0.23389, 0.17950)),
    ((0, 0, 255), (0.45201, -0.03246, -0.31153)),
])
def test_reference_values(rgb, lab):
    got = oklab.rgb_to_oklab(np.array([rgb], np.uint8))[0]
    np.testing.assert_allclose(got, lab, atol=5e-5)


def test_transfer_curve_inverts_and_is_monotonic():
    codes = np.arange(256.0)
    linear = oklab.srgb_to_linear(codes)
    assert (np.diff(linear) > 0).all() and linear[0] == 0 and linear[-1] == pytest.approx(1)
    np.testing.assert_allclose(oklab.linear_to_srgb(linear), codes, atol=1e-9)


def test_roots_are_the_true_roots_to_an_ulp():
    x = np.geomspace(1e-12, 1e6, 1001)
    for n in (3, 5):
        with localcontext() as context:
            context.prec = 50
            exact = np.array([float(Decimal(float(v)) ** (Decimal(1) / n)) for v in x])
        assert np.all(np.abs(oklab._root(x, n) - exact) <= np.spacing(exact))
    np.testing.assert_array_equal(oklab._root(np.array([-27.0, 0.0, 8.0]), 3), [-3.0, 0.0, 2.0])
    np.testing.assert_array_equal(oklab._root(np.array([32.0, 1.0, 0.0]), 5), [2.0, 1.0, 0.0])


_CONVERSIONS = """
import hashlib, sys
import numpy as np
from kqcodec import oklab
rgb = np.random.default_rng(5).integers(0, 256, (20000, 3)).astype(np.uint8)
lab = oklab.rgb_to_oklab(rgb)
parts = [lab, oklab.oklab_to_rgb(lab + 0.013), oklab.srgb_to_linear(rgb.astype(np.float64) + 0.3),
         oklab.linear_to_srgb(np.linspace(-0.1, 1.1, 5001))]
sys.stdout.write(hashlib.sha256(b"".join(np.ascontiguousarray(p).tobytes() for p in parts)).hexdigest())
"""


@pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                    reason="OpenBLAS's kernel names are those of x86-64 processors")
def test_conversions_give_the_same_bits_on_an_older_processor():
    # numpy's cbrt and power run SIMD code chosen by processor, and LAPACK's
    # inverse BLAS kernels: their last bits differed here with AVX-512 and
    # without.
    def digest(env):
        proc = subprocess.run([sys.executable, "-c", _CONVERSIONS], capture_output=True,
                              text=True, env=dict(os.environ, **env))
        assert proc.returncode == 0, proc.stderr
        return proc.stdout

    assert digest({}) == digest(older_processor())
