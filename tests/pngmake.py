"""Small PNG files made to order, for tests that need a rule broken on purpose.

Chunks are written by pypng (which computes every CRC); the image data is
filtered here with the definitions of the PNG specification, so that each
filter type can be chosen row by row.
"""

import io
import struct
import zlib

import numpy as np
import png

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def build(chunks):
    """PNG bytes from (type, data) chunks, CRCs computed by pypng."""
    out = io.BytesIO()
    png.write_chunks(out, chunks)
    return out.getvalue()


def chunks_of(data):
    """[(type, data)] of a PNG file, read with plain struct, CRCs ignored."""
    pos, chunks = len(SIGNATURE), []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append((data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
    return chunks


def ihdr(width, height, depth, ctype, interlace=0):
    return (b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, interlace))


def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    return a if pa <= pb and pa <= pc else b if pb <= pc else c


def filter_row(kind, row, prev, bpp):
    """One scanline filtered with `kind` (0-4), from plain Python ints."""
    out = []
    for i, x in enumerate(row):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
        out.append((x - pred) % 256)
    return bytes([kind] + out)


def unfilter_reference(raw, bpp):
    """The plain-Python inverse of :func:`filter_row` on (R, 1 + N) scanlines."""
    rows, prev = [], [0] * (raw.shape[1] - 1)
    for line in raw.tolist():
        kind, f = line[0], line[1:]
        x = []
        for i, v in enumerate(f):
            a = x[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            pred = (0, a, b, (a + b) // 2, _paeth(a, b, c))[kind]
            x.append((v + pred) % 256)
        rows.append(x)
        prev = x
    return np.array(rows, np.uint8).reshape(raw.shape[0], raw.shape[1] - 1)


def scanlines(samples, depth, kinds):
    """Filtered scanlines of (H, W, C) samples at 8 or 16 bits, one filter per row.

    `kinds` is one filter type for every row, or a sequence cycled over them.
    """
    samples = np.asarray(samples)
    height, width, channels = samples.shape
    raw = samples.astype(">u2" if depth == 16 else np.uint8).reshape(height, -1).view(np.uint8)
    bpp = channels * depth // 8
    kinds = [kinds] if isinstance(kinds, int) else list(kinds)
    out, prev = [], [0] * raw.shape[1]
    for y in range(height):
        row = raw[y].tolist()
        out.append(filter_row(kinds[y % len(kinds)], row, prev, bpp))
        prev = row
    return b"".join(out)


def image_png(samples, depth, ctype, *, kinds=0, before=(), after=(), palette=None,
              trns=None, data=None):
    """A non-interlaced PNG of (H, W, C) samples, with extra chunks around IDAT."""
    samples = np.asarray(samples)
    height, width = samples.shape[:2]
    chunks = [ihdr(width, height, depth, ctype)]
    if palette is not None:
        chunks.append((b"PLTE", bytes(np.asarray(palette, np.uint8).ravel())))
    if trns is not None:
        chunks.append((b"tRNS", trns))
    chunks += list(before)
    if data is None:
        data = zlib.compress(scanlines(samples, depth, kinds))
    chunks.append((b"IDAT", data))
    chunks += list(after)
    chunks.append((b"IEND", b""))
    return build(chunks)


def packed_png(values, depth, ctype, *, trns=None, palette=None):
    """A PNG of (H, W) grey or index values at 1, 2 or 4 bits (filter 0)."""
    values = np.asarray(values, np.uint8)
    height, width = values.shape
    per_byte = 8 // depth
    padded = np.zeros((height, -(-width // per_byte) * per_byte), np.uint8)
    padded[:, :width] = values
    groups = padded.reshape(height, -1, per_byte)
    shifts = np.arange(8 - depth, -1, -depth)
    packed = (groups << shifts).sum(axis=2).astype(np.uint8)
    rows = np.hstack([np.zeros((height, 1), np.uint8), packed]).tobytes()
    chunks = [ihdr(width, height, depth, ctype)]
    if palette is not None:
        chunks.append((b"PLTE", bytes(np.asarray(palette, np.uint8).ravel())))
    if trns is not None:
        chunks.append((b"tRNS", trns))
    chunks += [(b"IDAT", zlib.compress(rows)), (b"IEND", b"")]
    return build(chunks)


def pypng_rgba8(data):
    """Pixels as pypng decodes them (tRNS applied), rounded to 8 bits: (H, W, 4) uint8."""
    width, height, rows, info = png.Reader(bytes=data).asRGBA()
    samples = np.vstack([np.asarray(r, np.uint32) for r in rows]).reshape(height, width, 4)
    top = (1 << info["bitdepth"]) - 1
    return ((samples * 255 + top // 2) // top).astype(np.uint8)
