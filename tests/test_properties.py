"""Property tests: random images round-trip; random damage only ever gives FormatError."""

import io
import time
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from kqcodec import imageio, layout, pngread, quantizer
from kqcodec.errors import FormatError, KqcodecWarning

MODES = ["RGB", "RGBA", "L", "LA", "P", "1", "I;16"]


@st.composite
def pictures(draw):
    """A small random picture in any mode, as PNG bytes, with few or many colors."""
    mode = draw(st.sampled_from(MODES))
    width, height = draw(st.integers(1, 64)), draw(st.integers(1, 64))
    seed = draw(st.integers(0, 2**32 - 1))
    levels = draw(st.sampled_from([2, 5, 256]))
    rng = np.random.default_rng(seed)
    channels = {"RGB": 3, "RGBA": 4, "LA": 2}.get(mode, 1)
    values = rng.integers(0, levels, (height, width, channels)) * (255 // (levels - 1))
    if mode == "I;16":
        img = Image.fromarray((values[..., 0] * 257).astype(np.uint16))
    elif mode == "P":
        img = Image.fromarray(values[..., 0].astype(np.uint8), "L").convert("P")
    elif mode == "1":
        img = Image.fromarray(values[..., 0].astype(np.uint8) > 127)
    else:
        img = Image.fromarray(values.astype(np.uint8).squeeze(axis=2) if channels == 1 else
                              values.astype(np.uint8), mode)
    buffer = io.BytesIO()
    img.save(buffer, format="PNG")
    return buffer.getvalue()


def read_bytes(tmp_path, data):
    path = tmp_path / "in.png"
    path.write_bytes(data)
    return imageio.read_image(path)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=pictures(), k=st.integers(2, 256))
def test_random_pictures_round_trip(tmp_path, data, k):
    pixels = read_bytes(tmp_path, data)
    image = quantizer.quantize(pixels, k)
    encoded = image.to_png()
    header = pngread.inspect_png(encoded)
    assert header.color_type == 3 and len(header.palette) == len(image.palette) <= k
    assert header.bit_depth in (layout.bit_depth_for(len(image.palette)), 8)
    decoded = read_bytes(tmp_path, encoded)
    as_rgba = lambda a: a if a.shape[2] == 4 else np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
    np.testing.assert_array_equal(as_rgba(decoded), as_rgba(image.to_pixels()))
    visible = as_rgba(pixels)
    visible = np.where(visible[..., 3:] == 0, 0, visible)
    if len(np.unique(visible.reshape(-1, 4), axis=0)) <= k:
        np.testing.assert_array_equal(as_rgba(decoded), visible)
    assert (as_rgba(decoded)[..., 3][visible[..., 3] == 0] == 0).all()


SEEDS = [
    quantizer.quantize(np.asarray(Image.new("RGB", (9, 7), (200, 30, 10))), 4).to_png(),
    quantizer.quantize(np.random.default_rng(0).integers(0, 256, (23, 17, 3), dtype=np.uint8), 16).to_png(),
    quantizer.quantize(np.random.default_rng(1).integers(0, 256, (12, 30, 4), dtype=np.uint8), 200).to_png(),
]


@st.composite
def damaged(draw):
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        action = draw(st.sampled_from(["flip", "set", "cut", "insert", "delete"]))
        at = draw(st.integers(0, len(data) - 1))
        if action == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif action == "set":
            data[at] = draw(st.integers(0, 255))
        elif action == "cut":
            del data[at:]
        elif action == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            del data[at : at + draw(st.integers(1, 16))]
        if not data:
            data = bytearray(b"\x89")
    return bytes(data)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=damaged())
def test_damaged_pngs_give_only_format_errors(tmp_path, data):
    # A damaged ancillary chunk is skipped with a KqcodecWarning (which names
    # it); any other warning would be a library complaining about our input.
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            pixels = read_bytes(tmp_path, data)
        except FormatError:
            pass
        else:
            assert pixels.dtype == np.uint8 and pixels.ndim == 3
    assert time.perf_counter() - start < 2.0
    others = [f"{w.category.__name__}: {w.message}" for w in caught
              if not issubclass(w.category, KqcodecWarning)]
    assert not others
