"""Shared fixtures: the bundled pictures and small helpers to read PNG headers."""

import struct
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kqcodec import pngread

ROOT = Path(__file__).resolve().parents[1]
PICTURES = ROOT / "test_pictures"


@pytest.fixture(scope="session")
def pictures():
    """Paths of the bundled real pictures, by stem."""
    return {p.stem: p for p in sorted(PICTURES.iterdir()) if p.suffix in (".png", ".jpg")}


@pytest.fixture(scope="session")
def coffee():
    """A real photo, 600x400 RGB."""
    return np.asarray(Image.open(PICTURES / "skimage_coffee.png").convert("RGB"))


@pytest.fixture(scope="session")
def present():
    """A real clip-art picture with soft transparency, 128x128 RGBA."""
    return np.asarray(Image.open(PICTURES / "mpl_present_rgba.png").convert("RGBA"))


def png_chunks(path):
    """Return [(type, data)] of a PNG file, read with plain struct (independent of kqcodec)."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def ihdr(path):
    """(width, height, bit_depth, color_type, interlace) of a PNG file."""
    chunks = dict(png_chunks(path))
    w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    return w, h, depth, ctype, interlace


def synthetic_photo(height=960, width=1280):
    """A 1.2-megapixel RGB picture with hundreds of thousands of colors, the same everywhere.

    Smooth gradients, a few flat shapes and a fine texture from integer
    arithmetic (no random generator, whose streams may change between numpy
    versions): large enough for the large-picture paths of the histogram,
    the palette search and the compression.
    """
    y, x = np.mgrid[0:height, 0:width].astype(np.int64)
    texture = (x * 7919 + y * 104729 + (x * y) % 9973) % 23 - 11
    red = 255 * x // width + texture
    green = 255 * y // height + (texture * 3) // 4
    blue = (128 + 100 * np.sin(x / 97.0) * np.cos(y / 61.0)).astype(np.int64) + texture // 2
    pixels = np.clip(np.stack([red, green, blue], axis=2), 0, 255).astype(np.uint8)
    pixels[100:300, 200:600] = (20, 160, 40)  # flat shapes, as in graphics
    pixels[500:900, 900:1200] = (240, 240, 235)
    return pixels


@pytest.fixture(params=["in turn", "read ahead"])
def decoding(request, monkeypatch):
    """PNG image data inflated as it is unfiltered, or every row inflated ahead on another thread.

    Small files are decoded in turn; "read ahead" makes each row a block of
    its own and inflates it ahead, as larger files are.  Either way no
    inflating thread may outlive the test.
    """
    if request.param == "read ahead":
        monkeypatch.setattr(pngread, "_BLOCK", 1)
        monkeypatch.setattr(pngread, "_AHEAD_FROM", 0)
    yield request.param
    assert not [t for t in threading.enumerate() if t.name == "kqcodec-inflate"]
