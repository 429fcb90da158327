"""How well the size model of a size search follows the estimated sizes.

For every picture of FOLDER (default ../shared/corpus/public), clusters at
k = 256 as a size search first does (fastest speed), builds
:func:`kqcodec.quantizer.size_model` from that clustering's estimate, then
clusters at smaller ks warm-started from it, as the search does, and prints
at each k log2 of the estimated size against k = 256 ("size") and log2 of
the estimate over the model, less the same at k = 256 ("off"): what the
search has to correct.  Both in log2: 1 is a factor of 2.
"""

import argparse
import math
import sys
from pathlib import Path

from kqcodec import imageio, quantizer

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FOLDER = REPO.parent / "shared/corpus/public"
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}
KS = (128, 64, 32, 24, 16, 8)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="pictures or folders (default ../shared/corpus/public)")
    args = parser.parse_args(argv)
    paths = []
    for path in args.paths or [DEFAULT_FOLDER]:
        paths += sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES) \
            if path.is_dir() else [path]
    print("| picture | " + " | ".join(f"k={k} size, off" for k in KS) + " |")
    print("|---" * (len(KS) + 1) + "|")
    for path in paths:
        pixels = imageio.read_image(path, max_pixels=None)
        hist = quantizer.prepare(pixels)
        first, labels = quantizer._quantize(hist, 256, speed=10)
        size = first.estimated_png_size()[0]
        model = quantizer.size_model(hist, labels, first, size)
        cells = []
        for k in KS:
            if k >= len(model):
                cells.append("-")
                continue
            image, _ = quantizer._quantize(hist, k, init=labels)
            estimate = image.estimated_png_size()[0]
            cells.append(f"{math.log2(estimate / size):+.2f}, "
                         f"{math.log2(estimate / model[k - 1]) - math.log2(size / model[-1]):+.2f}")
        print(f"| {path.name} | " + " | ".join(cells) + " |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
