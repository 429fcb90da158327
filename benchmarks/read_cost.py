"""What reading a picture costs, per format and per pixel: time and peak memory.

    python benchmarks/read_cost.py [--quick] [--only NAME,...]

Each case is a picture made here, written to a temporary folder, and read by
``kqcodec.imageio.read_image`` in a fresh process, which reports the wall
time of the read and how far its resident memory rose above what it held
after the imports (VmHWM - VmRSS, from /proc).  The table gives both per
megapixel and the peak as a multiple of the decoded result.

The PNG cases pair every 16-bit file with an 8-bit one of the same size,
content (each 16-bit sample is the 8-bit one times 257) and row filter, so
consecutive rows show what 16-bit samples cost;
the 1 x 89,478,485 grey file sits exactly at the default pixel limit.
Times are from one run on whatever machine runs this; on a shared machine
they move by tens of percent.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

_CHILD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
from kqcodec import imageio

def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key):
            return int(line.split()[1]) * 1024

base = status("VmRSS:")
start = time.perf_counter()
pixels = imageio.read_image(sys.argv[1], max_pixels=None)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "peak": status("VmHWM:") - base,
                  "result": pixels.nbytes, "shape": list(pixels.shape)}))
"""


def _filtered(raw, bpp, kind):
    """Scanlines of (H, N) uint8 rows, every row filtered with `kind` (0-4)."""
    x = raw.astype(np.int16)
    a = np.zeros_like(x)
    a[:, bpp:] = x[:, :-bpp]
    b = np.zeros_like(x)
    b[1:] = x[:-1]
    c = np.zeros_like(x)
    c[1:, bpp:] = x[:-1, :-bpp]
    if kind == 0:
        pred = np.zeros_like(x)
    elif kind == 1:
        pred = a
    elif kind == 2:
        pred = b
    elif kind == 3:
        pred = (a + b) // 2
    else:
        p = a + b - c
        pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
        pred = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
    out = np.empty((raw.shape[0], raw.shape[1] + 1), np.uint8)
    out[:, 0] = kind
    out[:, 1:] = (x - pred).astype(np.uint8)
    return out


def _png(samples, depth, ctype, kind):
    """PNG bytes of (H, W, C) samples at 8 or 16 bits, every row filtered with `kind`."""
    import png  # only for the chunk framing

    height, width, channels = samples.shape
    raw = samples.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    data = zlib.compress(_filtered(raw, channels * depth // 8, kind).tobytes(), 6)
    header = np.array([width, height], ">u4").tobytes() + bytes([depth, ctype, 0, 0, 0])
    import io

    stream = io.BytesIO()
    png.write_chunks(stream, [(b"IHDR", header), (b"IDAT", data), (b"IEND", b"")])
    return stream.getvalue()


def _deeper(samples, depth):
    # A 16-bit copy of an 8-bit picture (v * 257): the same picture, twice the bytes.
    return samples.astype(np.uint16) * 257 if depth == 16 else samples


def _photo(height, width, channels, depth):
    """A smooth picture with some noise: compresses like a photo, not like a blank."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = [(np.sin(x / (37 + 11 * i)) * np.cos(y / (53 + 7 * i)) + 1) / 2 for i in range(channels)]
    image = np.stack(planes, axis=2) * 230 + rng.normal(0, 3, (height, width, channels))
    return _deeper(np.clip(image, 0, 255).astype(np.uint8), depth)


def _gradient(height, width, depth):
    y, x = np.mgrid[0:height, 0:width]
    return _deeper(((x + y) * 7 % 256).astype(np.uint8)[..., None], depth)


def cases(quick):
    """Yield (name, file name, bytes-maker)."""
    side = 1000 if quick else 2000
    for depth in (8, 16):
        for kind, label in ((1, "Sub"), (4, "Paeth")):
            yield (f"PNG RGB {depth}-bit {side}x{side} {label}", f"rgb{depth}_{label}.png",
                   lambda d=depth, k=kind: _png(_photo(side, side, 3, d), d, 2, k))
    for depth in (8, 16):
        yield (f"PNG grey {depth}-bit 4194304x1 (one row)", f"row{depth}.png",
               lambda d=depth: _png(_gradient(1, 4194304, d), d, 0, 4))
        yield (f"PNG grey {depth}-bit 1x1048576 (many rows)", f"col{depth}.png",
               lambda d=depth: _png(_gradient(1048576, 1, d), d, 0, 3))
    big = 3000 if quick else 9459
    for depth in (8, 16):
        yield (f"PNG grey {depth}-bit {big}x{big} Paeth", f"big{depth}.png",
               lambda d=depth: _png(_gradient(big, big, d), d, 0, 4))
    if not quick:
        yield ("PNG grey 8-bit 1x89478485 (at the pixel limit)", "limit.png",
               lambda: _png(np.zeros((89478485, 1, 1), np.uint8), 8, 0, 0))
    photo = _photo(side, side, 3, 8)
    for fmt, ext, options in (("JPEG", "jpg", {"quality": 90}), ("WEBP", "webp", {"quality": 90}),
                              ("GIF", "gif", {}), ("BMP", "bmp", {}),
                              ("TIFF", "tif", {"compression": "tiff_deflate"})):
        def make(fmt=fmt, options=options):
            import io

            stream = io.BytesIO()
            img = Image.fromarray(photo)
            (img.quantize(256) if fmt == "GIF" else img).save(stream, format=fmt, **options)
            return stream.getvalue()
        yield f"{fmt} RGB 8-bit {side}x{side}", f"photo.{ext}", make
    rle_width = 100000 if quick else 1000000
    yield (f"BMP RLE8 {rle_width}x89 (one colour)", "rle.bmp", lambda: _rle8_bmp(rle_width, 89))


def _rle8_bmp(width, height):
    """A BMP whose RLE8 rows are one pixel and "end of line": Pillow pads them byte by byte."""
    pixels = b"\x01\x00\x00\x00" * height + b"\x00\x01"
    palette = bytes(4 * 256)
    header_size = 14 + 40 + len(palette)
    info = (np.array([40, width, height], "<i4").tobytes() + np.array([1, 8], "<u2").tobytes()
            + np.array([1, len(pixels), 2835, 2835, 256, 0], "<u4").tobytes())
    head = b"BM" + np.array([header_size + len(pixels), 0, header_size], "<u4").tobytes()
    return head + info + palette + pixels


def measure(path):
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path)], capture_output=True,
                          text=True, timeout=600)
    if proc.returncode:
        return {"error": proc.stderr.strip().splitlines()[-1]}
    return json.loads(proc.stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller pictures, no 89 MP case")
    parser.add_argument("--only", help="comma-separated file names of the cases to run")
    args = parser.parse_args(argv)
    only = set(args.only.split(",")) if args.only else None
    print("| case | file | read | per megapixel | peak memory | peak / result |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for name, filename, make in cases(args.quick):
            if only and filename not in only:
                continue
            path = Path(folder) / filename
            path.write_bytes(make())
            size = os.path.getsize(path)
            result = measure(path)
            path.unlink()
            if "error" in result:
                print(f"| {name} | {size:,} B | {result['error']} | | | |", flush=True)
                continue
            megapixels = result["shape"][0] * result["shape"][1] / 1e6
            print(f"| {name} | {size:,} B | {result['seconds']:.3f} s "
                  f"| {result['seconds'] / megapixels * 1000:.1f} ms "
                  f"| {result['peak'] / 2**20:.0f} MB | {result['peak'] / result['result']:.2f} |",
                  flush=True)


if __name__ == "__main__":
    main()
