"""Palette PNG files: writing them, and checking any PNG strictly before use.

This is the only module that imports pypng.  pypng frames the chunks and
checks their CRCs; everything else a hostile file could abuse is checked
here, before any large allocation: header values, chunk order and sizes,
palette and transparency lengths, and the exact amount of image data, which
is inflated with a hard cap so that a zlib bomb stops early.

References are to the PNG specification, https://www.w3.org/TR/png/.
"""

import io
import struct
import sys
import zlib
from dataclasses import dataclass

import numpy as np
import png

from . import layout
from .defaults import MAX_PIXELS
from .errors import FormatError, UsageError
from .layout import bit_depth_for

__all__ = [
    "PngHeader",
    "check_header",
    "DEFAULT_MAX_PIXELS",
    "bit_depth_for",
    "inspect_png",
    "write_palette_png",
    "color_chunks",
    "read_16bit_samples",
]

#: Pillow's default decompression-bomb threshold, about 89.5 megapixels.
DEFAULT_MAX_PIXELS = MAX_PIXELS

SIGNATURE = png.signature

# Color type -> (channels, legal bit depths); see #11IHDR.
_COLOR_TYPES = {
    0: (1, (1, 2, 4, 8, 16)),
    2: (3, (8, 16)),
    3: (1, (1, 2, 4, 8)),
    4: (2, (8, 16)),
    6: (4, (8, 16)),
}

# Adam7 passes as (x0, y0, dx, dy); see #8Interlace.
_ADAM7 = (
    (0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
    (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2),
)


@dataclass(frozen=True)
class PngHeader:
    """What a checked PNG declares.

    Attributes
    ----------
    width, height : int
        Image size in pixels.
    bit_depth : int
        Bits per sample: 1, 2, 4, 8 or 16.
    color_type : int
        0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.
    interlaced : bool
        Adam7 interlacing.
    palette : (P, 3) uint8 ndarray or None
        The PLTE entries.
    transparency : bytes or None
        The raw tRNS chunk data.
    """

    width: int
    height: int
    bit_depth: int
    color_type: int
    interlaced: bool
    palette: object = None
    transparency: bytes = None

    @property
    def channels(self):
        return _COLOR_TYPES[self.color_type][0]

    def palette_alpha(self):
        """Return the palette as (P, 4) uint8 RGBA, tRNS applied.

        Entries past the end of tRNS are opaque (#11tRNS).
        """
        rgba = np.full((len(self.palette), 4), 255, np.uint8)
        rgba[:, :3] = self.palette
        if self.transparency is not None:
            alpha = np.frombuffer(self.transparency, np.uint8)
            rgba[: len(alpha), 3] = alpha
        return rgba

    def transparent_sample(self):
        """Return the grey (1,) or RGB (3,) sample value that tRNS makes transparent, or None."""
        if self.transparency is None or self.color_type not in (0, 2):
            return None
        return np.array(struct.unpack(f">{self.channels}H", self.transparency))


def _row_bytes(width, bits_per_pixel):
    return (width * bits_per_pixel + 7) // 8


def _scanline_layout(header):
    """Return (rows, row_bytes) per pass; one pass unless interlaced."""
    bpp = header.channels * header.bit_depth
    if not header.interlaced:
        return [(header.height, _row_bytes(header.width, bpp))]
    passes = []
    for x0, y0, dx, dy in _ADAM7:
        cols = (header.width - x0 + dx - 1) // dx if header.width > x0 else 0
        rows = (header.height - y0 + dy - 1) // dy if header.height > y0 else 0
        if cols and rows:
            passes.append((rows, _row_bytes(cols, bpp)))
    return passes


def _chunks(data):
    """Yield (type, data) for each chunk, CRCs checked by pypng."""
    reader = png.Reader(bytes=data)
    try:
        yield from reader.chunks()
    except png.Error as exc:
        message = " ".join(str(a) for a in exc.args).rstrip(".")
        if message == "No more chunks":
            message = "file ends before IEND (truncated)"
        raise FormatError(f"corrupt PNG: {message}") from None
    except EOFError:
        raise FormatError("corrupt PNG: empty file") from None


def _check_ihdr(data, max_pixels):
    if len(data) != 13:
        raise FormatError(f"corrupt PNG: IHDR is {len(data)} bytes, not 13")
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", data)
    if not (1 <= width < 2**31 and 1 <= height < 2**31):
        raise FormatError(f"corrupt PNG: image size {width}x{height} is not allowed")
    if ctype not in _COLOR_TYPES or depth not in _COLOR_TYPES[ctype][1]:
        raise FormatError(f"corrupt PNG: bit depth {depth} with color type {ctype} is not allowed")
    if comp != 0 or filt != 0 or interlace not in (0, 1):
        raise FormatError("corrupt PNG: unknown compression, filter or interlace method")
    if max_pixels is not None and width * height > max_pixels:
        raise FormatError(
            f"image of {width}x{height} = {width * height} pixels is over the limit of "
            f"{max_pixels} (raise it with --max-pixels)"
        )
    return width, height, depth, ctype, interlace == 1


def check_header(data, *, max_pixels=DEFAULT_MAX_PIXELS):
    """Check the signature and IHDR only, including the size limit.

    Cheap enough to run before anything is decoded.

    Parameters
    ----------
    data : bytes
        The file (only its first 33 bytes are read).
    max_pixels : int or None

    Returns
    -------
    int
        The bit depth.

    Raises
    ------
    FormatError
        On a bad signature, a first chunk that is not a valid IHDR (its CRC
        included), or more pixels than `max_pixels`.
    """
    if not data.startswith(SIGNATURE):
        raise FormatError("not a PNG file (bad signature)")
    if len(data) < 16:
        raise FormatError("corrupt PNG: file ends before IHDR (truncated)")
    if data[12:16] != b"IHDR":
        name = data[12:16].decode("ascii", "replace")
        raise FormatError(f"corrupt PNG: first chunk is {name!r}, not IHDR")
    for ctype, cdata in _chunks(data[:33]):
        if ctype != b"IHDR":
            raise FormatError(f"corrupt PNG: first chunk is {ctype.decode('ascii')}, not IHDR")
        return _check_ihdr(cdata, max_pixels)[2]
    raise FormatError("corrupt PNG: no IHDR chunk")  # pragma: no cover - _chunks raises first


def inspect_png(data, *, max_pixels=DEFAULT_MAX_PIXELS):
    """Check a whole PNG file strictly and return its header.

    Parameters
    ----------
    data : bytes
        The complete file.
    max_pixels : int or None
        Refuse images with more pixels than this, before inflating anything.

    Returns
    -------
    PngHeader

    Raises
    ------
    FormatError
        On a bad signature or CRC, an illegal or missing critical chunk,
        chunks out of order, a palette or tRNS of the wrong size, image data
        that is not a valid zlib stream, or that holds fewer or more bytes
        than the header implies, an unknown row filter, a missing IEND, or
        more pixels than `max_pixels`.
    """
    if not data.startswith(SIGNATURE):
        raise FormatError("not a PNG file (bad signature)")
    ihdr = None  # (width, height, depth, color type, interlaced) once read
    palette = transparency = None
    idat = []
    idat_done = False
    for ctype, cdata in _chunks(data):
        name = ctype.decode("ascii")
        if ihdr is None:
            if ctype != b"IHDR":
                raise FormatError(f"corrupt PNG: first chunk is {name}, not IHDR")
            ihdr = _check_ihdr(cdata, max_pixels)
            continue
        if ctype == b"IHDR":
            raise FormatError("corrupt PNG: more than one IHDR")
        if idat and ctype != b"IDAT":
            idat_done = True
        if ctype == b"IDAT":
            if idat_done:
                raise FormatError("corrupt PNG: IDAT chunks are not consecutive")
            idat.append(cdata)
        elif ctype == b"PLTE":
            if transparency is not None:
                raise FormatError("corrupt PNG: PLTE after tRNS")
            palette = _check_plte(cdata, ihdr, palette, idat)
        elif ctype == b"tRNS":
            transparency = _check_trns(cdata, ihdr, palette, transparency, idat)
        elif ctype == b"IEND":
            break
        elif ctype[0] & 0x20 == 0:
            raise FormatError(f"corrupt PNG: unknown critical chunk {name}")
    else:
        raise FormatError("corrupt PNG: no IEND chunk")
    width, height, depth, ctype, interlaced = ihdr
    if ctype == 3 and palette is None:
        raise FormatError("corrupt PNG: palette image without a PLTE chunk")
    if not idat:
        raise FormatError("corrupt PNG: no IDAT chunk")
    result = PngHeader(width, height, depth, ctype, interlaced, palette, transparency)
    _check_image_data(b"".join(idat), result)
    return result


def _check_plte(cdata, ihdr, previous, idat):
    width, height, depth, ctype, interlaced = ihdr
    if previous is not None:
        raise FormatError("corrupt PNG: more than one PLTE")
    if idat:
        raise FormatError("corrupt PNG: PLTE after IDAT")
    if ctype in (0, 4):
        raise FormatError("corrupt PNG: PLTE in a greyscale image")
    entries, rest = divmod(len(cdata), 3)
    if rest or not 1 <= entries <= 256:
        raise FormatError(
            f"corrupt PNG: PLTE of {len(cdata)} bytes is not 1 to 256 RGB entries"
        )
    if ctype == 3 and entries > 1 << depth:
        raise FormatError(f"corrupt PNG: {entries} palette entries at bit depth {depth}")
    return np.frombuffer(cdata, np.uint8).reshape(entries, 3)


def _check_trns(cdata, ihdr, palette, previous, idat):
    width, height, depth, ctype, interlaced = ihdr
    if previous is not None:
        raise FormatError("corrupt PNG: more than one tRNS")
    if idat:
        raise FormatError("corrupt PNG: tRNS after IDAT")
    if ctype in (4, 6):
        raise FormatError("corrupt PNG: tRNS in an image with an alpha channel")
    if ctype == 3:
        if palette is None:
            raise FormatError("corrupt PNG: tRNS before PLTE")
        if len(cdata) > len(palette):
            raise FormatError("corrupt PNG: tRNS has more entries than PLTE")
    elif len(cdata) != (2 if ctype == 0 else 6):
        raise FormatError(f"corrupt PNG: tRNS of {len(cdata)} bytes for color type {ctype}")
    return bytes(cdata)


def _check_image_data(compressed, header):
    """Inflate with a cap and check the row count and filter bytes."""
    passes = _scanline_layout(header)
    expected = sum(rows * (1 + nbytes) for rows, nbytes in passes)
    if expected >= sys.maxsize:
        raise FormatError(f"image of {header.width}x{header.height} is too large to decode")
    inflater = zlib.decompressobj()
    try:
        raw = inflater.decompress(compressed, expected + 1)
    except zlib.error as exc:
        raise FormatError(f"corrupt PNG: image data is not a valid zlib stream ({exc})") from None
    if len(raw) > expected:
        raise FormatError("corrupt PNG: more image data than the header's rows")
    if not inflater.eof:
        if len(raw) < expected:
            raise FormatError(
                f"corrupt PNG: image data ends early ({len(raw)} of {expected} bytes)"
            )
        raise FormatError("corrupt PNG: image data stream does not end (truncated)")
    if len(raw) < expected:
        raise FormatError(f"corrupt PNG: too little image data ({len(raw)} of {expected} bytes)")
    if inflater.unused_data:
        raise FormatError("corrupt PNG: data after the end of the image data stream")
    buf = np.frombuffer(raw, np.uint8)
    start = 0
    for rows, nbytes in passes:
        filters = buf[start : start + rows * (nbytes + 1) : nbytes + 1]
        if filters.size and filters.max() > 4:
            raise FormatError(f"corrupt PNG: unknown row filter type {int(filters.max())}")
        start += rows * (nbytes + 1)


def read_16bit_samples(data, header):
    """Decode a checked 16-bit PNG into its exact samples.

    Pillow keeps only the high byte of 16-bit color samples, which loses both
    precision and exact tRNS matches, so these few files go through pypng.

    Parameters
    ----------
    data : bytes
        The file, already accepted by :func:`inspect_png`.
    header : PngHeader

    Returns
    -------
    (H, W, C) uint16 ndarray
        C is the number of channels of the color type (1, 2, 3 or 4).
    """
    # Only the chunks pypng needs: ancillary ones (sBIT, gAMA...) are not
    # ours to interpret and have made pypng fail on valid files.
    keep = (b"IHDR", b"IDAT", b"IEND")
    stream = io.BytesIO()
    png.write_chunks(stream, [c for c in png.Reader(bytes=data).chunks() if c[0] in keep])
    width, height, rows, _ = png.Reader(bytes=stream.getvalue()).read()
    samples = np.vstack([np.asarray(row, np.uint16) for row in rows])
    return samples.reshape(height, width, header.channels)


def write_palette_png(stream, indices, palette, *, color=None):
    """Write a color type 3 PNG: IHDR, color chunks, PLTE, tRNS if needed, IDAT, IEND.

    The palette may be written in another order than given, with the indices
    renumbered to match: the decoded pixels are the same, the file smaller
    (see :mod:`layout`).

    Parameters
    ----------
    stream : binary file object
    indices : (H, W) uint8 ndarray
        Palette index of every pixel.
    palette : (P, 3) or (P, 4) uint8 ndarray
        RGB or RGBA entries, 1 <= P <= 256.  tRNS is written only when some
        alpha is below 255, cut after the last such entry, so put the
        transparent entries first.
    color : colorprofile.ColorTags, optional
        Written as ``iCCP``, or ``sRGB``, or ``gAMA`` and ``cHRM`` (see
        :func:`color_chunks`).

    Raises
    ------
    UsageError
        If the palette size is out of range or an index is not below P:
        pypng would write such a file without complaint.
    """
    palette = np.asarray(palette, np.uint8)
    indices = np.asarray(indices)
    entries = len(palette)
    if palette.ndim != 2 or palette.shape[1] not in (3, 4) or not 1 <= entries <= 256:
        raise UsageError(f"palette must be (P, 3) or (P, 4) with 1 <= P <= 256, not {palette.shape}")
    if indices.ndim != 2 or 0 in indices.shape or indices.dtype.kind not in "ui":
        raise UsageError(
            f"indices must be a non-empty (H, W) integer array, not {indices.shape} {indices.dtype}"
        )
    if int(indices.min()) < 0:
        raise UsageError(f"index {int(indices.min())} is negative")
    if int(indices.max()) >= entries:
        raise UsageError(f"index {int(indices.max())} is out of range for {entries} palette entries")
    indices = indices.astype(np.uint8, copy=False)
    height, width = indices.shape
    order, data = layout.image_data(indices, palette)
    palette = palette[order]
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", width, height, bit_depth_for(entries), 3, 0, 0, 0)),
    ]
    chunks += color_chunks(color)
    chunks.append((b"PLTE", palette[:, :3].tobytes()))
    if palette.shape[1] == 4 and (palette[:, 3] < 255).any():
        last = np.flatnonzero(palette[:, 3] < 255)[-1]
        chunks.append((b"tRNS", palette[: last + 1, 3].tobytes()))
    chunks.append((b"IDAT", data))
    chunks.append((b"IEND", b""))
    png.write_chunks(stream, chunks)


# The name PNG's iCCP chunk gives an embedded profile (Pillow's too).
_ICC_NAME = b"ICC Profile"


def color_chunks(tags):
    """The ancillary chunks that say how the samples are to be shown.

    An ICC profile becomes ``iCCP`` (#11iCCP), compressed at zlib's fixed
    level 9 so that a profile always gives the same bytes; otherwise an
    sRGB intent becomes
    ``sRGB`` (#11sRGB), and a gamma and chromaticities ``gAMA`` and
    ``cHRM``.  The PNG specification lets ``iCCP`` and ``sRGB`` override
    ``gAMA`` and ``cHRM``, and forbids ``iCCP`` with ``sRGB``.

    Parameters
    ----------
    tags : colorprofile.ColorTags or None

    Returns
    -------
    list of (bytes, bytes)
        (type, data) pairs, to go before PLTE.
    """
    if not tags:
        return []
    if tags.icc is not None:
        return [(b"iCCP", _ICC_NAME + b"\0\0" + zlib.compress(tags.icc, 9))]
    if tags.srgb is not None:
        return [(b"sRGB", bytes([tags.srgb]))]
    chunks = []
    if tags.chromaticity is not None:
        chunks.append((b"cHRM", struct.pack(">8I", *tags.chromaticity)))
    if tags.gamma is not None:
        chunks.append((b"gAMA", struct.pack(">I", tags.gamma)))
    return chunks
