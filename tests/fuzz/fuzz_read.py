#!/usr/bin/env python3
"""Coverage-guided fuzzing of kqcodec's input path with atheris.

Contract checked: for ANY bytes, reading them as a picture either returns a
uint8 ndarray of shape (H, W, 3|4) or raises ``kqcodec.errors.FormatError``.
Any other exception escapes ``TestOneInput`` and atheris reports it as a
crash.  See README.md beside this file for how to run it.

The first byte of an input chooses the entry point (``data[0] % 4``); the
rest is the file.  If bit 2 of the first byte is set (``data[0] & 4``) and
the file is a PNG, the harness first recomputes every chunk CRC and, when
the image data is one complete zlib stream, its Adler-32, so that mutations
reach the checks behind them instead of dying at the checksum:

    0  kqcodec.pngread.inspect_png(bytes)
    1  kqcodec.imageio.read_image(path), then, for a result under 4096
       pixels, quantize(pixels, 4).to_png() must read back as
       palette[indices]
    2  kqcodec.codec.read_palette_png(path); when it succeeds, read_image
       on the same file must give palette[indices] (unless it has EXIF)
    3  kqcodec.imageio.read_image(path, formats=("PNG",))  (the decode path)

The seed files in seeds/ carry that selector byte in front of the image;
``fuzz_read.py --make-seeds DIR`` writes them again.
This file is not a pytest test (it is named fuzz_*.py) and is the only
place atheris is imported.
"""

import os
import resource
import struct
import sys
import tempfile
import time
import warnings
import zlib

import atheris

# Heavy and already well-fuzzed dependencies are imported uninstrumented.
import numpy as np  # noqa: F401
import PIL  # noqa: F401
from PIL import Image  # noqa: F401

with atheris.instrument_imports(include=["kqcodec", "png", "PIL"]):
    import png  # noqa: F401
    from PIL import (  # noqa: F401
        BmpImagePlugin,
        GifImagePlugin,
        JpegImagePlugin,
        PngImagePlugin,
        TiffImagePlugin,
        WebPImagePlugin,
    )
    import kqcodec  # noqa: F401
    from kqcodec import codec, quantizer, imageio, pngfile, pngread
    from kqcodec.errors import FormatError

#: Inputs slower than this (seconds), or raising peak RSS by more than
#: SLOW_RSS_MB in one run, are written to $KQFUZZ_SLOW_DIR (not a crash: the
#: machine may be shared, so timing is noisy; atheris' -timeout and
#: -rss_limit_mb are the hard limits).
SLOW_SECONDS = float(os.environ.get("KQFUZZ_SLOW_SECONDS", "1.0"))
SLOW_RSS_MB = float(os.environ.get("KQFUZZ_SLOW_RSS_MB", "200"))
SLOW_DIR = os.environ.get("KQFUZZ_SLOW_DIR", os.path.join(tempfile.gettempdir(), "kqfuzz-slow"))

#: With KQFUZZ_KEEP_GOING=1, an exception that is not FormatError is saved
#: once per signature (its type, innermost kqcodec frame and innermost frame)
#: to $KQFUZZ_FINDINGS_DIR and swallowed, so that one known bug does not stop
#: the search for others.  Without it (the default) every such exception
#: escapes and atheris stops with a crash-* file.
KEEP_GOING = os.environ.get("KQFUZZ_KEEP_GOING") == "1"
FINDINGS_DIR = os.environ.get(
    "KQFUZZ_FINDINGS_DIR", os.path.join(tempfile.gettempdir(), "kqfuzz-findings"))
_seen = set()


class GuardedAllocation(MemoryError):
    """Pillow was asked to fill an image over kqcodec's own pixel limit."""


if KEEP_GOING:
    # Known bug (see README): with Image.MAX_IMAGE_PIXELS set to None by
    # read_image, Pillow's GIF reader fills frame-sized images of up to
    # 65535x65535 while opening.  Turning that into an exception here keeps
    # the fuzzer from stopping on out-of-memory every minute.
    _real_fill = Image.core.fill

    def _guarded_fill(mode, size, *args):
        if size[0] * size[1] > pngfile.DEFAULT_MAX_PIXELS:
            raise GuardedAllocation(f"Image.core.fill({mode!r}, {size}) over the pixel limit")
        return _real_fill(mode, size, *args)

    Image.core.fill = _guarded_fill

_TMPDIR = tempfile.mkdtemp(prefix="kqfuzz-")
_PATH = os.path.join(_TMPDIR, "input")
_peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ContractViolation(AssertionError):
    """A read succeeded but returned something the contract does not allow."""


def _check_pixels(pixels, what):
    if not isinstance(pixels, np.ndarray):
        raise ContractViolation(f"{what} returned {type(pixels)!r}, not an ndarray")
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise ContractViolation(f"{what} returned {pixels.dtype} {pixels.shape}")
    if 0 in pixels.shape:
        raise ContractViolation(f"{what} returned an empty image {pixels.shape}")


def _rgba(pixels):
    if pixels.shape[2] == 4:
        return pixels
    alpha = np.full(pixels.shape[:2] + (1,), 255, np.uint8)
    return np.concatenate([pixels, alpha], axis=2)


def _write(payload):
    with open(_PATH, "wb") as handle:
        handle.write(payload)
    return _PATH


def _roundtrip(pixels):
    """quantize -> to_png -> read_image must give palette[indices] back."""
    if pixels.shape[0] * pixels.shape[1] >= 4096:
        return
    image = quantizer.quantize(pixels, 4)
    expected = _rgba(image.palette[image.indices])
    encoded = image.to_png()
    pngread.inspect_png(encoded)  # must accept its own output
    decoded = imageio.read_image(_write(encoded))
    _check_pixels(decoded, "read_image(quantized PNG)")
    if not np.array_equal(_rgba(decoded), expected):
        raise ContractViolation("quantized PNG does not decode to palette[indices]")


def _fix_checksums(payload):
    """Recompute the chunk CRCs and the zlib Adler-32 of a PNG (best effort)."""
    if not payload.startswith(pngfile.SIGNATURE):
        return payload
    out = bytearray(payload)
    pos, idat = len(pngfile.SIGNATURE), []
    while pos + 12 <= len(out):
        length = struct.unpack_from(">I", out, pos)[0]
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        if out[pos + 4 : pos + 8] == b"IDAT":
            idat.append((pos + 8, end))
        pos = end + 4
    # Adler-32 of a complete zlib stream held in the IDAT chunks.
    stream = b"".join(bytes(out[a:b]) for a, b in idat)
    if len(stream) > 6:
        inflater = zlib.decompressobj(-15)
        try:
            raw = inflater.decompress(stream[2:], 1 << 24)
        except zlib.error:
            raw = None
        if raw is not None and inflater.eof and len(inflater.unused_data) >= 4:
            at = len(stream) - len(inflater.unused_data)  # offset of the Adler-32
            stream = stream[:at] + struct.pack(">I", zlib.adler32(raw)) + stream[at + 4 :]
            offset = 0
            for a, b in idat:
                out[a:b] = stream[offset : offset + b - a]
                offset += b - a
    pos = len(pngfile.SIGNATURE)
    while pos + 12 <= len(out):
        length = struct.unpack_from(">I", out, pos)[0]
        end = pos + 8 + length
        if end + 4 > len(out):
            break
        struct.pack_into(">I", out, end, zlib.crc32(out[pos + 4 : end]))
        pos = end + 4
    return bytes(out)


def _one(data):
    selector, payload = data[0] % 4, data[1:]
    if data[0] & 4:
        payload = _fix_checksums(payload)
    if selector == 0:
        header = pngread.inspect_png(payload)
        if not isinstance(header, pngread.PngHeader):
            raise ContractViolation(f"inspect_png returned {type(header)!r}")
        return
    path = _write(payload)
    if selector == 1:
        pixels = imageio.read_image(path)
        _check_pixels(pixels, "read_image")
        _roundtrip(pixels)
    elif selector == 2:
        image = codec.read_palette_png(path)
        if image.indices.dtype != np.uint8 or image.indices.ndim != 2:
            raise ContractViolation(f"read_palette_png indices {image.indices.dtype} {image.indices.shape}")
        if image.palette.ndim != 2 or image.palette.shape[1] != 4:
            raise ContractViolation(f"read_palette_png palette {image.palette.shape}")
        if image.indices.size and int(image.indices.max()) >= len(image.palette):
            raise ContractViolation("read_palette_png index past the palette")
        if b"eXIf" not in payload:  # read_indexed_png ignores orientation
            pixels = imageio.read_image(path)
            _check_pixels(pixels, "read_image")
            if not np.array_equal(_rgba(pixels), image.to_pixels()):
                raise ContractViolation("read_image and read_palette_png disagree")
    else:
        pixels = imageio.read_image(path, formats=("PNG",))
        _check_pixels(pixels, "read_image(formats=PNG)")


def _note_slow(data, seconds, grew_mb):
    import hashlib

    os.makedirs(SLOW_DIR, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(SLOW_DIR, f"slow-{name}"), "wb") as handle:
        handle.write(data)
    print(f"\n[kqfuzz] slow/big input slow-{name}: {len(data)} bytes, "
          f"{seconds:.2f} s, peak RSS +{grew_mb:.0f} MB", file=sys.stderr)


def _signature(exc):
    import traceback

    frames = traceback.extract_tb(exc.__traceback__)
    ours = [f for f in frames if f"{os.sep}kqcodec{os.sep}" in f.filename]
    where = f"{os.path.basename(ours[-1].filename)}:{ours[-1].name}" if ours else "?"
    last = frames[-1]
    return f"{type(exc).__name__} at {where} <- {os.path.basename(last.filename)}:{last.name}"


def _save_finding(data, exc):
    import hashlib
    import traceback

    sig = _signature(exc)
    if sig in _seen:
        return
    _seen.add(sig)
    os.makedirs(FINDINGS_DIR, exist_ok=True)
    name = hashlib.sha1(sig.encode()).hexdigest()[:12]
    with open(os.path.join(FINDINGS_DIR, f"finding-{name}.bin"), "wb") as handle:
        handle.write(data)
    with open(os.path.join(FINDINGS_DIR, f"finding-{name}.txt"), "w") as handle:
        handle.write(sig + "\n\n" + "".join(traceback.format_exception(exc)))
    print(f"\n[kqfuzz] NEW FINDING finding-{name}: {sig}: {exc}", file=sys.stderr)


def TestOneInput(data):
    global _peak_rss_mb
    if not data:
        return
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _one(data)
    except FormatError:
        pass
    except Exception as exc:  # noqa: BLE001 - a contract violation
        if not KEEP_GOING:
            raise
        _save_finding(data, exc)
    finally:
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        grew, _peak_rss_mb = rss - _peak_rss_mb, max(rss, _peak_rss_mb)
        if seconds > SLOW_SECONDS or grew > SLOW_RSS_MB:
            _note_slow(data, seconds, grew)


#: (seed name, selector, pngsuite file) of the PNG seeds.
_PNGSUITE_SEEDS = [
    ("png_palette8", 1, "basn3p08"),
    ("png_palette_trns_fixcrc", 6, "tbbn3p08"),
    ("png_grey1", 1, "basn0g01"),
    ("png_grey4_interlaced", 3, "basi0g04"),
    ("png_grey4_trns_fixcrc", 5, "tbbn0g04"),
    ("png_grey16_fixcrc", 5, "basn0g16"),
    ("png_rgb16_interlaced", 1, "basi2c16"),
    ("png_rgb8_trns", 1, "tbrn2c08"),
    ("png_rgba8", 1, "basn6a08"),
    ("png_greyalpha16", 3, "basn4a16"),
    ("png_exif", 1, "exif2c08"),
    ("png_inspect_palette_fixcrc", 4, "basi3p02"),
]


def make_seeds(folder):
    """Write the seed corpus: selector byte + a small valid file."""
    import io
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    suite = Path(__file__).resolve().parents[1] / "data" / "pngsuite" / "png"
    seeds = {name: bytes([sel]) + (suite / f"{stem}.png").read_bytes()
             for name, sel, stem in _PNGSUITE_SEEDS}

    y, x = np.mgrid[0:16, 0:16]
    rgb = np.dstack([x * 16, y * 16, (x + y) * 8]).astype(np.uint8)
    rgba = np.dstack([rgb, (x * 17).astype(np.uint8)])

    def save(image, fmt, **options):
        stream = io.BytesIO()
        image.save(stream, format=fmt, **options)
        return stream.getvalue()

    seeds["kqcodec_palette_rgba"] = b"\x02" + quantizer.quantize(rgba, 4).to_png()
    seeds["jpeg_rgb"] = b"\x01" + save(Image.fromarray(rgb), "JPEG", quality=50)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees
    seeds["jpeg_progressive_exif"] = b"\x01" + save(
        Image.fromarray(rgb[:8, :12]), "JPEG", quality=30, progressive=True, exif=exif)
    frames = [Image.fromarray(rgb).quantize(8), Image.fromarray(rgb[::-1]).quantize(8)]
    seeds["gif_two_frames_trns"] = b"\x01" + save(
        frames[0], "GIF", save_all=True, append_images=frames[1:], transparency=0, duration=10)
    seeds["bmp_palette"] = b"\x01" + save(Image.fromarray(rgb).quantize(16), "BMP")
    seeds["tiff_two_pages_deflate"] = b"\x01" + save(
        Image.fromarray(rgb), "TIFF", compression="tiff_deflate", save_all=True,
        append_images=[Image.fromarray(rgba)])
    seeds["tiff_grey16"] = b"\x01" + save(
        Image.fromarray((x * 4000 + y).astype(np.uint16)), "TIFF")
    seeds["webp_lossless_rgba"] = b"\x01" + save(Image.fromarray(rgba), "WEBP", lossless=True)
    for name, data in seeds.items():
        (folder / name).write_bytes(data)
    return seeds


def main():
    if sys.argv[1:2] == ["--make-seeds"]:
        seeds = make_seeds(sys.argv[2])
        print(f"{len(seeds)} seeds, {sum(map(len, seeds.values()))} bytes")
        return
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
