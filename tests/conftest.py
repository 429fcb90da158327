"""Shared fixtures: the bundled pictures and small helpers to read PNG headers."""

import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

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
