"""PNG bytes to checked pixels and warnings: the one reader of PNG files.

The policy follows libpng 1.6, the decoder behind most browsers and viewers:

- What changes pixels or makes them unknowable is refused in every mode: a
  bad signature or IHDR, damage to a critical chunk (IHDR, PLTE, IDAT,
  IEND), an unknown critical chunk, image data that is missing, truncated,
  not zlib or has an unknown row filter, and anything over the size limits.
- What cannot change a pixel is, by default, skipped and reported as one
  warning per file (:attr:`PngImage.problems`): an ancillary chunk with a bad
  CRC, the wrong length or in the wrong place, or data libpng finds invalid
  (see ``_CONTENT``), a tRNS or PLTE that does not
  fit the image, IDAT chunks after other chunks, data after the image data
  or after IEND, a broken animation behind an intact still image, palette
  indices past the palette (shown as opaque black, as libpng does), text
  chunks over :data:`MAX_TEXT_CHUNK`.
- With ``strict=True`` each of those is refused instead, with the rule named.

tRNS sample values are masked to the bit depth (the specification's rule for
decoders), in both modes.  EXIF orientation is taken only from an eXIf chunk
before the image data, the only place the third edition allows it; text
chunks and XMP are never read.

The chunks are framed here, not by pypng, because the policy needs the chunks
whose CRC fails and what follows them.  Image data is inflated once, a block
of rows at a time and never past the size the header implies, unfiltered by
the compiled kernel in :mod:`kqcodec._kernels.pngread` at every bit depth and
turned into 8-bit samples block by block, so that a read holds the file, the
samples and the result, not the inflated stream.  From two blocks on, zlib
inflates the next blocks on a second thread while the kernel unfilters
(both without the GIL): the pixels and the verdicts are the same, in the
same order.  References are to the PNG
specification, https://www.w3.org/TR/png/.
"""

import contextlib
import queue
import struct
import sys
import threading
import zlib
from dataclasses import dataclass, field

import numpy as np

from ._kernels.pngread import unfilter
from .defaults import MAX_PIXELS
from .errors import MAX_PIXELS_OPTION, FormatError

__all__ = [
    "SIGNATURE",
    "MAX_TEXT_CHUNK",
    "MAX_PROFILE",
    "PngHeader",
    "PngImage",
    "read_png",
    "inspect_png",
    "read_header",
]

SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: An iCCP profile inflating to more than this is skipped, or refused with
#: ``strict``; real profiles are a few kilobytes to a few hundred.
MAX_PROFILE = 16 << 20

#: Text chunks (tEXt, zTXt, iTXt) larger than this are skipped, or refused
#: with ``strict``.  kqcodec never reads text; the bound keeps a hostile file
#: from making a reader that does (an image library, a viewer) hold megabytes.
MAX_TEXT_CHUNK = 1 << 20

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

_TEXT = (b"tEXt", b"zTXt", b"iTXt")

# Ancillary chunks whose form the specification fixes, as libpng checks them
# (its read_chunks table): allowed data lengths, whether the chunk must come
# before PLTE ("color" chunks) or before IDAT, and whether it may repeat.
_RULES = {
    b"cHRM": ((32, 32), "PLTE", False),
    b"gAMA": ((4, 4), "PLTE", False),
    b"iCCP": ((3, None), "PLTE", False),
    b"sBIT": ((1, 4), "PLTE", False),
    b"sRGB": ((1, 1), "PLTE", False),
    b"cICP": ((4, 4), "PLTE", False),
    b"mDCV": ((24, 24), "PLTE", False),
    b"cLLI": ((8, 8), "PLTE", False),
    b"eXIf": ((4, None), "IDAT", False),
    b"bKGD": ((1, 6), "IDAT", False),
    b"hIST": ((0, 1024), "IDAT", False),
    b"pHYs": ((9, 9), "IDAT", False),
    b"sPLT": ((3, None), "IDAT", True),
    b"oFFs": ((9, 9), "IDAT", False),
    b"pCAL": ((14, None), "IDAT", False),
    b"sCAL": ((4, None), "IDAT", False),
    b"acTL": ((8, 8), "IDAT", False),
    b"tIME": ((7, 7), None, False),
    b"fcTL": ((26, 26), None, True),
    b"fdAT": ((4, None), None, True),
}

# 16-bit sample -> 8 bits, rounding v * 255 / 65535: one lookup per sample.
_SCALE16 = ((np.arange(65536, dtype=np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


@dataclass(frozen=True)
class PngHeader:
    """What a PNG declares, after the checks.

    Attributes
    ----------
    width, height : int
        Image size in pixels.
    bit_depth : int
        Bits per sample: 1, 2, 4 or 8, or 16.
    color_type : int
        0 grey, 2 RGB, 3 palette, 4 grey + alpha, 6 RGBA.
    interlaced : bool
        Adam7 interlacing.
    palette : (P, 3) uint8 ndarray or None
        The PLTE entries used (at most 2**bit_depth for a palette image).
    transparency : bytes or None
        The tRNS chunk data, if it was used.
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
        """Samples per pixel: 1, 2, 3 or 4."""
        return _COLOR_TYPES[self.color_type][0]

    def palette_alpha(self):
        """Return the palette as (P, 4) uint8 RGBA, tRNS applied (later entries opaque)."""
        rgba = np.full((len(self.palette), 4), 255, np.uint8)
        rgba[:, :3] = self.palette
        if self.transparency is not None:
            alpha = np.frombuffer(self.transparency, np.uint8)
            rgba[: len(alpha), 3] = alpha
        return rgba

    def transparent_sample(self):
        """Return the grey (1,) or RGB (3,) sample value tRNS makes transparent, or None.

        Masked to the bit depth, as #11tRNS asks of decoders.
        """
        if self.transparency is None or self.color_type not in (0, 2):
            return None
        key = np.array(struct.unpack(f">{self.channels}H", self.transparency))
        return key & ((1 << self.bit_depth) - 1)


@dataclass(frozen=True, eq=False)
class PngImage:
    """A decoded PNG.

    Attributes
    ----------
    header : PngHeader
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray, or None
        RGB, or straight RGBA when some pixel is not opaque; 16-bit samples
        are rounded to 8 bits.  None when the indices were asked for.
    indices : (H, W) uint8 ndarray or None
        For a palette image read with ``indexed=True``.
    palette : (P, 4) uint8 ndarray or None
        With `indices`: RGBA entries, tRNS applied, extended with opaque
        black up to the largest index used.
    exif : bytes or None
        The eXIf chunk's data, when one comes before the image data.
    frames : int
        Frames of a valid animation (APNG), else 1; only the still image is
        decoded.
    problems : tuple of str
        What was skipped or repaired, in kqcodec's words; empty for a file
        that breaks no rule (and always, with ``strict``).
    ancillary : tuple of (bytes, bytes)
        Type and data of the ancillary chunks that passed their checks, in
        file order (text chunks left out).
    info : dict
        The color information, under the keys Pillow uses: ``icc_profile``
        (the inflated iCCP profile), ``srgb`` (the rendering intent),
        ``gamma`` (gAMA / 100000) and ``chromaticity`` (cHRM's eight values
        / 100000), each present only if its chunk passed.
    """

    header: PngHeader
    pixels: object = None
    indices: object = None
    palette: object = None
    exif: bytes = None
    frames: int = 1
    problems: tuple = ()
    ancillary: tuple = field(default=(), repr=False)
    info: dict = field(default_factory=dict, repr=False)


class _Problems(list):
    """Rules broken that libpng would let pass: kept, or raised when strict."""

    def __init__(self, strict):
        super().__init__()
        self.strict = strict
        # A list's `in` made a file of 80,000 bad chunks of distinct names
        # take 46 s (each message compared with all the earlier ones).
        self._said = set()

    def add(self, rule, effect="skipped"):
        """Note that `rule` is broken, and what reading does about it."""
        if self.strict:
            raise FormatError(f"corrupt PNG: {rule}")
        message = f"{rule} ({effect})"
        if message not in self._said:
            self._said.add(message)
            self.append(message)


def read_png(data, *, max_pixels=MAX_PIXELS, strict=False, indexed=False):
    """Check and decode a PNG file.

    Parameters
    ----------
    data : bytes
        The complete file.
    max_pixels : int or None
        Refuse images with more pixels than this, from IHDR, before
        inflating anything.
    strict : bool
        Refuse a file that breaks any rule, instead of skipping what does
        not change the pixels (see the module notes).
    indexed : bool
        For a palette image, return the palette and indices instead of the
        pixels.

    Returns
    -------
    PngImage

    Raises
    ------
    FormatError
        On a bad signature, damage that libpng refuses too (see the module
        notes), more pixels than `max_pixels`, a non-palette image with
        `indexed`, or, with `strict`, any broken rule.
    """
    if not data.startswith(SIGNATURE):
        raise FormatError("not a PNG file (bad signature)")
    problems = _Problems(strict)
    layout = _walk(data, max_pixels, problems)
    header = layout["header"]
    if indexed and header.color_type != 3:
        raise FormatError(f"not a palette PNG (color type {header.color_type})")
    samples, clear = _decode(layout.pop("idat"), header, problems)
    result = dict(header=header, exif=layout["exif"], frames=layout["frames"],
                  ancillary=tuple(layout["ancillary"]),
                  info=_color_info(layout["ancillary"], header.color_type, problems))
    if header.color_type == 3:
        palette = _palette_for(samples, header, problems)
        if indexed:
            return PngImage(indices=samples, palette=palette, problems=tuple(problems), **result)
        pixels = _lookup(palette, samples)
    else:
        pixels = _assemble(samples, clear, header.color_type)
    return PngImage(pixels=pixels, problems=tuple(problems), **result)


def inspect_png(data, *, max_pixels=MAX_PIXELS, strict=True):
    """Check a whole PNG file (strictly by default) and return its header.

    Parameters
    ----------
    data : bytes
    max_pixels : int or None
    strict : bool

    Returns
    -------
    PngHeader

    Raises
    ------
    FormatError
        As :func:`read_png`.
    """
    return read_png(data, max_pixels=max_pixels, strict=strict).header


def read_header(data, *, max_pixels=MAX_PIXELS, strict=True):
    """Check a PNG file's chunks and return its header, without inflating the image data.

    The header of :func:`inspect_png`, in a fraction of its time: what only
    decoding shows (damaged image data, palette indices past the palette)
    is not checked.

    Parameters
    ----------
    data : bytes
    max_pixels : int or None
    strict : bool

    Returns
    -------
    PngHeader

    Raises
    ------
    FormatError
        As :func:`read_png`, for what the chunks show.
    """
    if not data.startswith(SIGNATURE):
        raise FormatError("not a PNG file (bad signature)")
    return _walk(data, max_pixels, _Problems(strict))["header"]


def _chunks(data):
    """Yield (type, data, crc_ok, end) for each chunk, up to the end of `data`."""
    view = memoryview(data)
    pos = len(SIGNATURE)
    while pos < len(data):
        if pos + 8 > len(data):
            raise FormatError("corrupt PNG: file ends inside a chunk header (truncated)")
        length, ctype = struct.unpack_from(">I4s", data, pos)
        if not (ctype.isalpha() and ctype.isascii()):
            raise FormatError(f"corrupt PNG: chunk type {ctype!r} is not four letters")
        name = ctype.decode("ascii")
        if length > 2**31 - 1:
            raise FormatError(f"corrupt PNG: {name} chunk length {length} is over 2**31 - 1")
        end = pos + 12 + length
        if end > len(data):
            raise FormatError(f"corrupt PNG: file ends inside the {name} chunk (truncated)")
        body = view[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        yield ctype, body, zlib.crc32(body, zlib.crc32(ctype)) == crc, end
        pos = end
    raise FormatError("corrupt PNG: file ends before IEND (truncated)")


def _check_ihdr(body, max_pixels):
    if len(body) != 13:
        raise FormatError(f"corrupt PNG: IHDR is {len(body)} bytes, not 13")
    width, height, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", body)
    if not (1 <= width < 2**31 and 1 <= height < 2**31):
        raise FormatError(f"corrupt PNG: image size {width}x{height} is not allowed")
    if ctype not in _COLOR_TYPES or depth not in _COLOR_TYPES[ctype][1]:
        raise FormatError(f"corrupt PNG: bit depth {depth} with color type {ctype} is not allowed")
    if comp != 0 or filt != 0 or interlace not in (0, 1):
        raise FormatError("corrupt PNG: unknown compression, filter or interlace method")
    if max_pixels is not None and width * height > max_pixels:
        raise FormatError(
            f"image of {width}x{height} = {width * height} pixels is over the limit of "
            f"{max_pixels} (raise it with {MAX_PIXELS_OPTION})")
    return PngHeader(width, height, depth, ctype, interlace == 1)


def _walk(data, max_pixels, problems):
    """Read the chunks in order, applying the policy; return what decoding needs."""
    header = palette = trns = exif = None
    idat, seen, ancillary, animation = [], set(), [], []
    idat_state = "before"  # "in" the first run of IDAT chunks, then "after" it
    for ctype, body, crc_ok, end in _chunks(data):
        name = ctype.decode("ascii")
        critical = not ctype[0] & 0x20
        if header is None:
            if ctype != b"IHDR":
                raise FormatError(f"corrupt PNG: first chunk is {name}, not IHDR")
            if not crc_ok:
                raise FormatError("corrupt PNG: IHDR chunk fails its CRC check")
            header = _check_ihdr(body, max_pixels)
            continue
        if not crc_ok:
            if critical:
                raise FormatError(f"corrupt PNG: {name} chunk fails its CRC check")
            problems.add(f"{name} chunk with a bad CRC")
            continue
        if idat_state == "in" and ctype != b"IDAT":
            idat_state = "after"
        if ctype == b"IDAT":
            if idat_state == "after":
                problems.add("IDAT chunks after other chunks (IDAT must be consecutive)",
                             "the later ones skipped")
                continue
            if header.color_type == 3 and palette is None:
                raise FormatError("corrupt PNG: palette image without a PLTE chunk before IDAT")
            idat_state = "in"
            idat.append(body)
        elif ctype == b"IEND":
            if body:
                problems.add("IEND chunk is not empty", "ignored")
            if end < len(data):
                problems.add(f"{len(data) - end} bytes after IEND")
            break
        elif ctype == b"IHDR":
            raise FormatError("corrupt PNG: more than one IHDR")
        elif ctype == b"PLTE":
            palette = _plte(body, header, palette, trns, idat_state, problems)
        elif ctype == b"tRNS":
            trns = _trns(body, header, palette, trns, idat_state, problems)
        elif critical:
            raise FormatError(f"corrupt PNG: unknown critical chunk {name}")
        elif _ancillary_ok(ctype, body, seen, header, palette, idat_state, problems):
            seen.add(ctype)
            if ctype == b"eXIf":
                if idat_state == "before":
                    exif = bytes(body)
                else:
                    problems.add("eXIf chunk after the image data",
                                 "skipped: its orientation is not applied")
                    continue
            if ctype in (b"acTL", b"fcTL", b"fdAT"):
                animation.append((ctype, body))
            elif ctype not in _TEXT:
                ancillary.append((bytes(ctype), bytes(body)))
    if not idat:
        raise FormatError("corrupt PNG: no IDAT chunk")
    frames = _check_animation(animation, header, problems)
    header = PngHeader(header.width, header.height, header.bit_depth, header.color_type,
                       header.interlaced, palette, trns)
    return dict(header=header, idat=idat, exif=exif, frames=frames, ancillary=ancillary)


def _plte(body, header, previous, trns, idat_state, problems):
    """The palette to use after this PLTE chunk.  libpng's rules: fatal in a palette image."""
    entries, rest = divmod(len(body), 3)
    error = None
    if previous is not None:
        error = "more than one PLTE"
    elif idat_state != "before":
        error = "PLTE after IDAT"
    elif header.color_type in (0, 4):
        problems.add("PLTE in a greyscale image")
        return None
    elif rest or not 1 <= entries <= 256:
        error = f"PLTE of {len(body)} bytes is not 1 to 256 RGB entries"
    elif header.color_type != 3 and trns is not None:
        error = "PLTE after tRNS"
    if error is not None:
        if header.color_type == 3:
            raise FormatError(f"corrupt PNG: {error}")
        problems.add(error)
        return previous
    palette = np.frombuffer(body, np.uint8).reshape(entries, 3)
    if header.color_type == 3 and entries > 1 << header.bit_depth:
        problems.add(f"{entries} palette entries at bit depth {header.bit_depth}",
                     f"the last {entries - (1 << header.bit_depth)} unused")
        palette = palette[: 1 << header.bit_depth]
    return palette.copy()


def _trns(body, header, palette, previous, idat_state, problems):
    """The tRNS data to use after this chunk; a tRNS that does not fit is skipped."""
    ctype = header.color_type
    error = None
    if previous is not None:
        error = "more than one tRNS"
    elif idat_state != "before":
        error = "tRNS after IDAT"
    elif ctype in (4, 6):
        error = "tRNS in an image with an alpha channel"
    elif ctype == 3 and palette is None:
        error = "tRNS before PLTE"
    elif ctype == 3 and not 1 <= len(body) <= len(palette):
        error = f"tRNS of {len(body)} entries for a {len(palette)}-entry palette"
    elif ctype != 3 and len(body) != (2 if ctype == 0 else 6):
        error = f"tRNS of {len(body)} bytes for color type {ctype}"
    if error is not None:
        problems.add(error)
        return previous
    return bytes(body)


def _ancillary_ok(ctype, body, seen, header, palette, idat_state, problems):
    """Whether an ancillary chunk fits the rules; one that does not is skipped."""
    name = ctype.decode("ascii")
    if ctype in _TEXT and len(body) > MAX_TEXT_CHUNK:
        problems.add(f"{name} chunk of {len(body)} bytes is over kqcodec's "
                     f"{MAX_TEXT_CHUNK // (1 << 20)} MiB limit for text")
        return False
    if ctype not in _RULES and ctype not in _TEXT:
        return True
    (low, high), before, multiple = _RULES.get(ctype, ((0, None), None, True))
    if before == "PLTE" and (palette is not None or idat_state != "before"):
        problems.add(f"{name} chunk after PLTE or IDAT")
    elif before == "IDAT" and idat_state != "before" and ctype != b"eXIf":
        problems.add(f"{name} chunk after IDAT")
    elif ctype in seen and not multiple:
        problems.add(f"more than one {name} chunk", "the later skipped")
    elif len(body) < low or (high is not None and len(body) > high):
        size = f"{low}" if low == high else f"{low} to {high}" if high else f"at least {low}"
        problems.add(f"{name} chunk of {len(body)} bytes, not {size}")
    else:
        broken = _CONTENT[ctype](bytes(body), header, palette) if ctype in _CONTENT else None
        if broken is None:
            return True
        problems.add(f"{name} chunk {broken}")
    return False


# What an ancillary chunk's data must be, beyond its length range, as libpng
# checks it before using or keeping the chunk (its png_handle_* functions):
# each function returns what is wrong, or None.  Such a chunk is skipped, so
# that it is neither used (an eXIf's orientation, a gAMA) nor copied into a
# decoded file.

# Data length of bKGD and sBIT by color type (#11bKGD, #11sBIT).
_BKGD_LENGTH = {0: 2, 2: 6, 3: 1, 4: 2, 6: 6}
_SBIT_LENGTH = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}

# The range of gAMA libpng accepts (png_colorspace_set_gamma): gamma
# 0.00016 to 6250, as 100000 times the exponent.
_GAMMA_RANGE = range(16, 625_000_001)


def _bkgd(body, header, palette):
    ctype, depth = header.color_type, header.bit_depth
    if ctype == 3 and palette is None:
        return "before PLTE"
    if len(body) != _BKGD_LENGTH[ctype]:
        return f"of {len(body)} bytes for color type {ctype}"
    if ctype == 3:
        return f"index {body[0]} past the {len(palette)}-entry palette" \
            if body[0] >= len(palette) else None
    values = struct.unpack(f">{len(body) // 2}H", body)
    if depth < 16 and max(values) >= 1 << depth:
        return f"value {max(values)} over bit depth {depth}"
    return None


def _sbit(body, header, palette):
    ctype = header.color_type
    if len(body) != _SBIT_LENGTH[ctype]:
        return f"of {len(body)} bytes for color type {ctype}"
    top = 8 if ctype == 3 else header.bit_depth
    if not all(1 <= bits <= top for bits in body):
        return f"of significant bits {', '.join(map(str, body))}, not 1 to {top}"
    return None


def _hist(body, header, palette):
    if palette is None:
        return "without a PLTE before it"
    if len(body) != 2 * len(palette):
        return f"of {len(body) // 2} entries for a {len(palette)}-entry palette"
    return None


def _chrm(body, header, palette):
    values = struct.unpack(">8I", body)
    if max(values) > 2**31 - 1:
        return "of invalid chromaticities"
    points = [(values[i] / 100000, values[i + 1] / 100000) for i in range(0, 8, 2)]
    (_, (rx, ry), (gx, gy), (bx, by)) = points
    # Each point a color (x, y > 0 and x + y <= 1, as libpng's check), the
    # primaries a triangle: otherwise no conversion to XYZ exists.
    if (any(not (0 <= x and 0 < y and x + y <= 1) for x, y in points)
            or (gx - rx) * (by - ry) - (bx - rx) * (gy - ry) == 0):
        return "of invalid chromaticities"
    return None


def _gama(body, header, palette):
    (gamma,) = struct.unpack(">I", body)
    return None if gamma in _GAMMA_RANGE else f"of {gamma}, out of range"


def _srgb(body, header, palette):
    return None if body[0] <= 3 else f"of rendering intent {body[0]}, not 0 to 3"


def _time(body, header, palette):
    _, month, day, hour, minute, second = struct.unpack(">HBBBBB", body)
    if 1 <= month <= 12 and 1 <= day <= 31 and hour <= 23 and minute <= 59 and second <= 60:
        return None
    return "of an invalid date or time"


def _exif(body, header, palette):
    return None if body[:2] in (b"MM", b"II") else "without a TIFF byte order (MM or II)"


def _compressed_text(ctype):
    """The check of a zTXt, or of an iTXt (compressed or not): keyword, method, zlib data."""
    def check(body, header, palette):
        keyword, nul, rest = body.partition(b"\0")
        if not nul or not 1 <= len(keyword) <= 79:
            return "without a keyword of 1 to 79 bytes"
        if ctype == b"iTXt":
            if len(rest) < 2 or rest[0] not in (0, 1) or rest[1] != 0:
                return "with an unknown compression flag or method"
            if not rest[0]:
                return None
            # Language tag and translated keyword, each ended by a NUL.
            parts = rest[2:].split(b"\0", 2)
            if len(parts) < 3:
                return "without its language tag and translated keyword"
            stream = parts[2]
        else:
            if not rest or rest[0] != 0:
                return "with an unknown compression method"
            stream = rest[1:]
        try:
            # As far as the text limit: enough to tell zlib from anything else.
            zlib.decompressobj().decompress(stream, MAX_TEXT_CHUNK)
        except zlib.error:
            return "whose text is not a valid zlib stream"
        return None
    return check


_CONTENT = {
    b"bKGD": _bkgd, b"sBIT": _sbit, b"hIST": _hist, b"cHRM": _chrm, b"gAMA": _gama,
    b"sRGB": _srgb, b"tIME": _time, b"eXIf": _exif,
    b"zTXt": _compressed_text(b"zTXt"), b"iTXt": _compressed_text(b"iTXt"),
}


def _check_animation(chunks, header, problems):
    """Check an APNG's frame chunks; a broken animation leaves the still image usable.

    kqcodec reads only the still image (IDAT), as the APNG specification
    asks of decoders that do not animate.  Returns the number of frames of a
    valid animation, else 1.
    """
    if not chunks:
        return 1
    if chunks[0][0] != b"acTL":
        problems.add("broken animation: frame chunks without acTL",
                     "skipped: the still image is used")
        return 1
    (frames, _plays) = struct.unpack(">II", chunks[0][1])
    controls = [body for c, body in chunks if c == b"fcTL"]
    numbers = [struct.unpack_from(">I", body)[0] for c, body in chunks if c != b"acTL"]
    reason = None
    if frames == 0 or len(controls) != frames:
        reason = f"acTL announces {frames} frames, fcTL chunks give {len(controls)}"
    elif numbers != list(range(len(numbers))):
        reason = "frame chunks out of sequence"
    else:
        for body in controls:
            width, height, x, y = struct.unpack_from(">IIII", body, 4)
            if not (width and height and x + width <= header.width and y + height <= header.height):
                reason = "a frame lies outside the image"
                break
    if reason:
        problems.add(f"broken animation: {reason}", "skipped: the still image is used")
        return 1
    return frames


def _color_info(ancillary, color_type, problems):
    """Pillow-style color information from the accepted ancillary chunks of a `color_type` image."""
    info = {}
    for ctype, body in ancillary:
        if ctype == b"sRGB":
            info["srgb"] = body[0]
        elif ctype == b"gAMA":
            info["gamma"] = struct.unpack(">I", body)[0] / 100000
        elif ctype == b"cHRM":
            info["chromaticity"] = tuple(v / 100000 for v in struct.unpack(">8I", body))
        elif ctype == b"iCCP":
            profile = _profile(body, problems)
            if profile is not None and _fits(profile, color_type, problems):
                info["icc_profile"] = profile
    if "srgb" in info and "icc_profile" in info:
        # The format allows one of the two; libpng keeps sRGB.
        del info["icc_profile"]
        problems.add("both sRGB and iCCP chunks", "the iCCP skipped, as libpng does")
    return info


def _profile(body, problems):
    """The ICC profile an iCCP chunk holds, or None (a problem noted)."""
    name, _, rest = body.partition(b"\0")
    if not 1 <= len(name) <= 79 or not rest or rest[0] != 0:
        problems.add("iCCP chunk without a valid name and compression method")
        return None
    inflater = zlib.decompressobj()
    try:
        profile = inflater.decompress(rest[1:], MAX_PROFILE + 1)
    except zlib.error:
        problems.add("iCCP chunk's profile is not a valid zlib stream")
        return None
    if len(profile) > MAX_PROFILE:
        problems.add(f"iCCP profile is over kqcodec's {MAX_PROFILE >> 20} MiB limit")
        return None
    if not inflater.eof:
        problems.add("iCCP chunk's profile is truncated")
        return None
    # libpng's first checks of a profile (png_icc_check_length, _header):
    # the 128-byte header and the tag count, its own length, and the
    # signature.  Anything else is no profile, kept or written.
    if len(profile) < 132 or struct.unpack_from(">I", profile)[0] != len(profile) \
            or profile[36:40] != b"acsp":
        problems.add("iCCP chunk's data is not an ICC profile (its header is wrong)")
        return None
    return profile


def _fits(profile, color_type, problems):
    """Whether the ICC `profile`'s color space is the image's (a problem noted if not).

    PNG allows an RGB profile in a color image, a grey one in a greyscale
    image, and nothing else; libpng drops any other profile, and so does
    kqcodec, rather than run the samples through a profile of another space.
    """
    space = profile[16:20]
    grey = color_type in (0, 4)
    if space == (b"GRAY" if grey else b"RGB "):
        return True
    kind = "greyscale" if grey else "color"
    problems.add(f"iCCP profile of the {space.decode('latin-1').strip() or 'unknown'} color "
                 f"space in a {kind} image")
    return False


def _passes(header):
    """Yield (x0, y0, dx, dy, rows, cols) per pass; one pass unless interlaced."""
    if not header.interlaced:
        yield 0, 0, 1, 1, header.height, header.width
        return
    for x0, y0, dx, dy in _ADAM7:
        cols = (header.width - x0 + dx - 1) // dx if header.width > x0 else 0
        rows = (header.height - y0 + dy - 1) // dy if header.height > y0 else 0
        if cols and rows:
            yield x0, y0, dx, dy, rows, cols


# Image data is inflated and unfiltered this many bytes at a time, so that
# memory holds the file, the 8-bit samples and the result, never the whole
# inflated stream.
_BLOCK = 1 << 20

# IDAT input is fed to zlib in pieces of at most this size, which bounds what
# zlib copies when it stops at a block's end.
_PIECE = 1 << 20

# From this much image data on (two blocks), zlib inflates the next blocks
# on another thread while this one unfilters; both run without the GIL.
# Reading a 12 MP photo's PNG took 0.15 s instead of 0.25, a 0.8 MP crop of
# it 0.012 s instead of 0.017 (the thread starts in about 0.1 ms).
_AHEAD_FROM = 2 * _BLOCK
_AHEAD = 2


def _decode(idat, header, problems):
    """Inflate, unfilter and unpack block by block.

    Returns 8-bit samples, (H, W) palette indices or (H, W, C) values scaled
    to 0..255, and for a tRNS key the (H, W) bool mask of the pixels it makes
    transparent (None if there is no key).
    """
    bits = header.channels * header.bit_depth
    passes = [(p, (p[5] * bits + 7) // 8) for p in _passes(header)]
    expected = sum(p[4] * (1 + nbytes) for p, nbytes in passes)
    if expected >= sys.maxsize:
        raise FormatError(f"image of {header.width}x{header.height} is too large to decode")
    shape = (header.height, header.width)
    if header.color_type != 3:
        shape += (header.channels,)
    samples = np.empty(shape, np.uint8)
    key = header.transparent_sample()
    clear = None if key is None else np.empty(shape[:2], bool)
    # Rows of 8-bit samples, not interlaced, are unfiltered where they belong.
    in_place = header.bit_depth == 8 and not header.interlaced
    blocks = _blocks(_Inflater(idat, expected), passes, problems)
    if expected >= _AHEAD_FROM:
        blocks = _read_ahead(blocks, _AHEAD)
    bpp = max(1, bits // 8)
    above = None
    try:
        for (x0, y0, dx, dy, rows, cols), nbytes, first, scanlines in blocks:
            count = len(scanlines)
            if first == 0:
                above = None
            if in_place:
                out = samples[first : first + count].reshape(count, nbytes)
            else:
                out = np.empty((count, nbytes), np.uint8)
            bad = unfilter(scanlines, out, bpp, above)
            if bad >= 0:
                raise FormatError(
                    f"corrupt PNG: unknown row filter type {int(scanlines[bad, 0])}")
            above = out[-1]
            values = _unpack(out, cols, header)
            where = (slice(y0 + first * dy, y0 + (first + count) * dy, dy), slice(x0, None, dx))
            if clear is not None:
                clear[where] = (values == key).all(axis=2)
            if not in_place:
                samples[where] = _scale(values, header.bit_depth, header.color_type)
    finally:
        # Now, not when an error's traceback lets go of this frame: the
        # inflating thread stops here.
        blocks.close()
    return samples, clear


def _blocks(stream, passes, problems):
    """Each pass's scanlines from `stream`, a block of rows at a time, then the stream's end judged.

    Yields ``(pass, row bytes, first row, (R, 1 + row bytes) uint8 scanlines)``.
    """
    for (x0, y0, dx, dy, rows, cols), nbytes in passes:
        step = max(1, _BLOCK // (nbytes + 1))
        for first in range(0, rows, step):
            count = min(step, rows - first)
            scanlines = np.frombuffer(stream.read(count * (nbytes + 1)), np.uint8)
            yield (x0, y0, dx, dy, rows, cols), nbytes, first, scanlines.reshape(count, nbytes + 1)
    stream.finish(problems)


def _read_ahead(items, depth):
    """The items of an iterator, made up to `depth` ahead on another thread.

    An exception the iterator raises is raised here, in its place in the
    order.  When the caller stops early (an error, Ctrl-C), the thread is
    told to stop and is waited for, so no thread outlives the decode.
    """
    ready = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def put(item):
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
        except BaseException as exc:  # handed over to the caller, who raises it
            put((done, exc))
            return
        put((done, None))

    thread = threading.Thread(target=produce, name="kqcodec-inflate", daemon=True)
    try:
        # Inside the try: a Ctrl-C while start() waits for the thread must
        # still stop it.
        thread.start()
        while True:
            item, error = ready.get()
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        # RuntimeError: start() was cut short before the thread said it was
        # up; it sees `stop` after at most one block and ends by itself.
        with contextlib.suppress(RuntimeError):
            thread.join()


class _Inflater:
    """The image data's zlib stream, read a block at a time, with libpng's verdicts."""

    def __init__(self, idat, expected):
        self._pieces = (chunk[i : i + _PIECE] for chunk in idat
                        for i in range(0, len(chunk), _PIECE))
        self._zlib = zlib.decompressobj()
        self._tail = b""
        self._expected = expected
        self._done = 0

    def _next_input(self):
        if not self._tail:
            self._tail = next(self._pieces, b"")
        return self._tail

    def read(self, size):
        """The next `size` bytes, or FormatError if the stream holds fewer."""
        parts, have = [], 0
        while have < size:
            if self._zlib.eof or not self._next_input():
                raise FormatError(f"corrupt PNG: image data ends early "
                                  f"({self._done + have} of {self._expected} bytes)")
            try:
                out = self._zlib.decompress(self._tail, size - have)
            except zlib.error:
                # Also a bad Adler-32 met with the last row: libpng refuses that too.
                raise FormatError("corrupt PNG: image data is not a valid zlib stream "
                                  "(or its checksum is wrong)") from None
            self._tail = self._zlib.unconsumed_tail
            parts.append(out)
            have += len(out)
        self._done += size
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def finish(self, problems):
        """Judge what follows the last row: it cannot change a pixel."""
        try:
            while not self._zlib.eof and self._next_input():
                more = self._zlib.decompress(self._tail, 1)
                self._tail = self._zlib.unconsumed_tail
                if more:
                    problems.add("more image data than the header's rows", "the rest skipped")
                    return
        except zlib.error:
            problems.add("image data stream damaged after the last row", "ignored")
            return
        if not self._zlib.eof:
            raise FormatError("corrupt PNG: image data stream does not end (truncated)")
        if self._zlib.unused_data or self._tail or next(self._pieces, b""):
            problems.add("data after the end of the image data stream")


def _unpack(rows, cols, header):
    """Unfiltered scanlines -> (r, cols) indices or (r, cols, C) samples, at their depth."""
    depth, channels = header.bit_depth, header.channels
    if depth == 16:
        samples = rows.view(">u2").reshape(len(rows), cols, channels)
    elif depth == 8:
        samples = rows.reshape(len(rows), cols, channels)
    else:
        shifts = np.arange(8 - depth, -1, -depth, dtype=np.uint8)
        values = (rows[:, :, None] >> shifts) & np.uint8((1 << depth) - 1)
        samples = values.reshape(len(rows), -1)[:, :cols, None]
    return samples[..., 0] if header.color_type == 3 else samples


def _palette_for(indices, header, problems):
    """The (P, 4) RGBA palette, extended with opaque black to cover every index used."""
    palette = header.palette_alpha()
    top = int(indices.max())
    if top >= len(palette):
        problems.add(f"pixel index {top} is past the {len(palette)}-entry palette",
                     "shown as opaque black, as libpng does")
        black = np.zeros((top + 1 - len(palette), 4), np.uint8)
        black[:, 3] = 255
        palette = np.vstack([palette, black])
    return palette


def _lookup(palette, indices):
    """Pixels of palette indices, at the width the result needs."""
    alpha = palette[:, 3]
    if (alpha == 255).all() or (alpha[indices] == 255).all():
        return palette[:, :3][indices]
    return palette[indices]


def _scale(samples, depth, color_type):
    """Samples of any bit depth -> 0..255 (palette indices stay as they are)."""
    if depth == 16:
        return _SCALE16[samples]
    if depth < 8 and color_type != 3:
        return samples * np.uint8(255 // ((1 << depth) - 1))
    return samples


def _assemble(samples, clear, color_type):
    """8-bit samples of color type 0, 2, 4 or 6 -> RGB, or RGBA if some pixel is not opaque."""
    if clear is not None and not clear.any():
        clear = None
    if color_type in (4, 6):
        alpha = samples[..., -1]
        if (alpha == 255).all():
            alpha = None
    else:
        alpha = None if clear is None else np.where(clear, np.uint8(0), np.uint8(255))
    del clear
    if alpha is None and color_type == 2:
        return samples
    if alpha is not None and color_type == 6:
        return samples
    color = samples[..., :1] if color_type in (0, 4) else samples[..., :3]
    pixels = np.empty(samples.shape[:2] + (3 if alpha is None else 4,), np.uint8)
    pixels[..., :3] = color
    if alpha is not None:
        pixels[..., 3] = alpha
    return pixels
