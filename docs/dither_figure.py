"""Make docs/dither_rocket.png: a crop of a night sky, nearest mapping beside dithering.

Run from the repository root: ``python docs/dither_figure.py``.  The crop is
taken from ``test_pictures/skimage_rocket.jpg`` (see its credits in
``test_pictures/README.md``), encoded whole at k=16, and shown at 2x with
no smoothing so that single pixels stay visible.
"""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

import kqcodec

ROOT = Path(__file__).resolve().parents[1]
K = 16
BOX = (0, 0, 200, 140)  # left, top, right, bottom: the smooth sky at the top left
ZOOM = 2


def main():
    original = kqcodec.read_image(ROOT / "test_pictures/skimage_rocket.jpg")
    panels = [("original", original)]
    for label, strength in ((f"k={K}, nearest", 0.0), (f"k={K}, --dither", 1.0)):
        image = kqcodec.quantize(original, K, dither=strength)
        panels.append((label, image.to_pixels()))
    left, top, right, bottom = BOX
    width, height = (right - left) * ZOOM, (bottom - top) * ZOOM
    sheet = Image.new("RGB", (3 * width + 20, height + 18), "white")
    draw = ImageDraw.Draw(sheet)
    for n, (label, pixels) in enumerate(panels):
        crop = Image.fromarray(np.ascontiguousarray(pixels[top:bottom, left:right, :3]))
        sheet.paste(crop.resize((width, height), Image.NEAREST), (n * (width + 10), 18))
        draw.text((n * (width + 10) + 2, 3), label, fill="black")
    sheet.save(ROOT / "docs/dither_rocket.png", optimize=True)


if __name__ == "__main__":
    import argparse

    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    main()
