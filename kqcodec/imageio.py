"""Reading any supported picture into pixels, and writing pixels back out.

This is the only module that opens and saves files with Pillow (its sibling
:mod:`colorprofile` uses Pillow's ``ImageCms`` on arrays).  Reading returns
8-bit RGB or RGBA pixels with every source's transparency kept, 16-bit
samples scaled (not clipped) and EXIF orientation applied, and the color
tags the file carries; a picture in a non-sRGB profile is converted to sRGB
unless asked otherwise.  It chooses the reader by the format: PNG files are
read by :mod:`kqcodec.pngread` (Pillow accepts damaged ones and keeps only 8
bits of 16-bit color), the others by Pillow.  Pillow is imported by the
functions that call it: reading a PNG without EXIF data, the usual input of
``encode``, does not pay for its import.
"""

import contextlib
import io
import os
import stat
import struct
import threading
import warnings
from pathlib import Path

import numpy as np

from . import colorprofile, pngread
from .defaults import MAX_PIXELS
from .errors import (MAX_PIXELS_OPTION, FormatError, InputError, KqcodecWarning, UsageError,
                     WriteError, recorded_warnings)
from .safefile import atomic_output, check_input, file_path

__all__ = [
    "KqcodecWarning",
    "check_pixel_limit",
    "read_image",
    "read_picture",
    "read_stream",
    "read_indexed_png",
    "from_pil",
    "to_pil",
    "write_image",
    "output_format",
    "shown_as_read",
    "pixel_count",
    "INPUT_FORMATS",
    "OUTPUT_FORMATS",
]

#: Formats kqcodec reads; Pillow would otherwise sniff dozens, some of which
#: (EPS) run external programs.
INPUT_FORMATS = ("PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF")

#: Output formats by file extension, with the options that keep pixels as
#: decoded where the format allows it.
OUTPUT_FORMATS = {
    ".png": ("PNG", {}),
    # Full-resolution chroma: Pillow's 4:2:0 default smears the thin coloured
    # lines of palette graphics.
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".webp": ("WEBP", {"lossless": True, "exact": True}),
    ".bmp": ("BMP", {}),
    ".tif": ("TIFF", {"compression": "tiff_deflate"}),
    ".tiff": ("TIFF", {"compression": "tiff_deflate"}),
}

_EXIF_ORIENTATION = 0x0112

_PIXEL_LIMIT_LOCK = threading.RLock()

# Largest width or height each output format can store.
_MAX_SIDE = {"WEBP": 16383, "JPEG": 65535, "PNG": 2**31 - 1, "BMP": 2**31 - 1, "TIFF": 2**32 - 1}


def check_pixel_limit(max_pixels):
    """Refuse a pixel limit neither None (no limit) nor a positive whole number.

    Parameters
    ----------
    max_pixels : int or None

    Raises
    ------
    UsageError
        For anything else.
    """
    if max_pixels is None:
        return
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, (int, np.integer)) \
            or max_pixels < 1:
        raise UsageError(f"the pixel limit must be a positive number of pixels, or None for no "
                         f"limit, not {max_pixels!r}")


@contextlib.contextmanager
def _pixel_limit(max_pixels):
    """Make Pillow's own size check use kqcodec's limit, and fail rather than warn.

    Pillow checks sizes it meets while opening (a GIF frame larger than its
    screen, say) before allocating for them; with its limit lifted, 37 bytes
    of GIF can make it fill a 4-gigapixel image.
    """
    from PIL import Image

    # The setting is Pillow's global: threads reading at once take turns.
    with _PIXEL_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def read_image(path, *, max_pixels=MAX_PIXELS, formats=INPUT_FORMATS,
               color="srgb", strict=False):
    """Read a picture file into 8-bit pixels, as a viewer shows them.

    The pixels of :func:`read_picture`, without the tags: by default the
    sRGB rendering of a picture with a color profile.

    Parameters
    ----------
    path : path-like, binary file object, or bytes
    max_pixels : int or None
    formats : sequence of str
    color : {'srgb', 'keep', 'raw'}
    strict : bool
        All as for :func:`read_picture`.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray

    Raises
    ------
    InputError, FormatError, UsageError
        As :func:`read_picture`.
    """
    return read_picture(path, max_pixels=max_pixels, formats=formats, color=color,
                        strict=strict)[0]


def read_picture(path, *, max_pixels=MAX_PIXELS, formats=INPUT_FORMATS,
                 color="srgb", strict=False):
    """Read a picture file into 8-bit pixels and the color tags they carry.

    Parameters
    ----------
    path : path-like or bytes
        A PNG, JPEG, WebP, GIF, BMP or TIFF file, or its whole content (what
        standard input held, say).  Animated or multi-page files give their
        first frame (an animated PNG its still image), with a
        :class:`KqcodecWarning`.
    max_pixels : int or None
        Refuse larger images before decoding them.
    formats : sequence of str
        The formats accepted, a subset of :data:`INPUT_FORMATS`.
    strict : bool
        Refuse a PNG that breaks any rule.  By default what cannot change a
        pixel is skipped, as libpng does, with one :class:`KqcodecWarning`
        saying what (see :mod:`kqcodec.pngread`).
    color : {'srgb', 'keep', 'raw'}
        ``srgb``: pixels in a non-sRGB ICC profile are converted to sRGB
        (see :func:`colorprofile.rendered`).  ``keep``: the raw values, and
        the profile kept when a palette PNG can hold it.  ``raw``: the
        samples and tags as stored (CMYK is still converted to RGB).  An
        unusable profile gives a :class:`colorprofile.ProfileWarning` and the
        raw values.

    Returns
    -------
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB, or RGBA when some pixel is not fully opaque.  Alpha is straight
        (not premultiplied).
    tags : colorprofile.ColorTags
        The color information the pixels go with: what a PNG of them
        should carry.

    Raises
    ------
    InputError
        If the file is missing or cannot be opened.
    FormatError
        If it is not a supported picture, is corrupt or truncated, is over
        `max_pixels`, or is too large for the memory.
    UsageError
        For a `color`, `formats` or `max_pixels` out of range.
    """
    if color not in ("srgb", "keep", "raw"):
        raise UsageError(f"color must be 'srgb', 'keep' or 'raw', not {color!r}")
    check_pixel_limit(max_pixels)
    formats = _check_formats(formats)
    given = "the input"  # what messages call bytes: they have no name
    if not isinstance(path, (bytes, bytearray, memoryview)):
        streamed = _streamed(path, max_pixels)
        if streamed is not None:
            given, path = path, streamed
    if isinstance(path, (bytes, bytearray, memoryview)):
        content = bytes(path)
        if content.startswith(pngread.SIGNATURE):
            data, path = content, given
        else:
            data, path = None, io.BytesIO(content)
    else:
        data = _png_bytes(path)
    name = given if isinstance(path, io.BytesIO) else path
    if data is None and "PNG" in formats and len(formats) == 1:
        raise FormatError(f"{name}: not a PNG file")
    if data is not None and "PNG" not in formats:
        raise FormatError(f"{name}: PNG is not among the formats read here")
    if data is not None:
        with _named(path):
            image = _read_png(path, data, max_pixels=max_pixels, strict=strict)
        if image.frames > 1:
            warnings.warn(f"{path}: animated PNG of {image.frames} frames; only its still "
                          "image is used", KqcodecWarning, stacklevel=2)
        pixels, info = _orient(image.pixels, _exif_orientation(image.exif, path)), image.info
    else:
        with _named(name), _pixel_limit(max_pixels):
            pixels, info = _read_other(path, max_pixels, [f for f in formats if f != "PNG"], name)
    tags = colorprofile.tags_from_info(info, name=str(name))
    cmyk = info.get("mode") == "CMYK"
    if color == "raw" and not cmyk:
        return pixels, tags
    return colorprofile.rendered(pixels, tags, keep=color != "srgb", cmyk=cmyk, name=str(name))


def read_indexed_png(path, *, max_pixels=MAX_PIXELS, strict=False):
    """Read a palette PNG (color type 3) as its palette and its indices.

    Parameters
    ----------
    path : path-like
    max_pixels : int or None
    strict : bool
        As for :func:`read_picture`.

    Returns
    -------
    palette : (P, 4) uint8 ndarray
        RGBA entries, tRNS applied; indices past the file's palette get
        opaque black entries.
    indices : (H, W) uint8 ndarray
        As stored: EXIF orientation is not applied.

    Raises
    ------
    FormatError
        If the file is not a valid palette PNG.
    UsageError
        For a `max_pixels` out of range.
    """
    check_pixel_limit(max_pixels)
    data = _png_bytes(path)
    if data is None:
        raise FormatError(f"{path}: not a PNG file")
    with _named(path):
        image = _read_png(path, data, max_pixels=max_pixels, strict=strict, indexed=True)
    return image.palette, image.indices


@contextlib.contextmanager
def _named(name):
    """Put the file's name before the message of a FormatError raised while decoding it.

    The decoders know bytes, not files; a user with many files needs to
    know which one is damaged.  A picture too large for the memory (its
    header may claim any size once the pixel limit is lifted) is refused
    the same way, in one line.
    """
    try:
        yield
    except FormatError as exc:
        raise FormatError(f"{name}: {exc.args[0]}") from None
    except MemoryError as exc:
        detail = f" ({exc})" if str(exc) else ""
        raise FormatError(f"{name}: not enough memory to decode it{detail}") from None


# A warning names at most this many of a file's problems: a file of 80,000
# bad chunks of distinct names gave a warning line of 3 MB.
_PROBLEMS_SAID = 8


def _read_png(path, data, **options):
    """Decode with :mod:`pngread`; say once what it skipped."""
    image = pngread.read_png(data, **options)
    if image.problems:
        said = list(image.problems[:_PROBLEMS_SAID])
        if len(image.problems) > _PROBLEMS_SAID:
            said.append(f"and {len(image.problems) - _PROBLEMS_SAID} more")
        warnings.warn(f"{path}: {'; '.join(said)}", KqcodecWarning, stacklevel=3)
    return image


# A pipe or a device read whole holds at most this many bytes per pixel
# allowed (16-bit RGBA, uncompressed), and this many besides.
_STREAMED_PER_PIXEL = 8
_STREAMED_EXTRA = 64 << 20


def _streamed(path, max_pixels):
    """The bytes of `path` if it is a pipe or a device, read once; None for any other path.

    A pipe (``<(...)``, ``/dev/stdin``) can be read only once: the PNG
    signature read first, then the picture read again by name, found the
    first bytes gone.  No more is read than a picture of `max_pixels`
    pixels can hold (``/dev/zero`` never ends).
    """
    try:
        mode = os.stat(path).st_mode
    except (OSError, TypeError, ValueError):
        return None  # check_input says why, when the path is opened
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    try:
        with open(path, "rb") as handle:
            return read_stream(handle, path, max_pixels)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def read_stream(stream, name, max_pixels=MAX_PIXELS):
    """The bytes of a picture read from `stream` to its end, no more than it can hold.

    A pipe may never end (``/dev/zero``): no more is read than a picture
    of `max_pixels` pixels can hold, 16-bit RGBA uncompressed, and 64 MB
    besides.

    Parameters
    ----------
    stream : binary file object
        Standard input's buffer, say.
    name : str
        What messages call it.
    max_pixels : int or None
        The pixel limit; None reads it whole.

    Returns
    -------
    bytes

    Raises
    ------
    InputError
        If it cannot be read.
    FormatError
        If it holds more than a picture of `max_pixels` pixels can.
    UsageError
        For a `max_pixels` out of range.
    """
    check_pixel_limit(max_pixels)
    limit = None if max_pixels is None else _STREAMED_PER_PIXEL * max_pixels + _STREAMED_EXTRA
    try:
        content = stream.read() if limit is None else stream.read(limit + 1)
    except OSError as exc:
        raise InputError(f"{name}: cannot read: {exc.strerror}") from None
    if limit is not None and len(content) > limit:
        raise FormatError(f"{name}: more than {limit} bytes, more than a picture of "
                          f"{max_pixels} pixels holds (raise it with {MAX_PIXELS_OPTION})")
    return content


def _png_bytes(path):
    """The whole file if it starts with the PNG signature, else None."""
    path = check_input(path)
    with open(path, "rb") as handle:
        head = handle.read(len(pngread.SIGNATURE))
        return head + handle.read() if head == pngread.SIGNATURE else None


def _check_formats(formats):
    """`formats` as a tuple, if it is a sequence of names of :data:`INPUT_FORMATS`.

    Pillow would open any format it knows (EPS among them, which runs an
    outside program), and take a string for a list of one-letter names.
    """
    if isinstance(formats, (str, bytes)) or not hasattr(formats, "__iter__"):
        raise UsageError(f"formats must be a sequence of format names, not {formats!r}")
    formats = tuple(formats)
    unknown = [f for f in formats if f not in INPUT_FORMATS]
    if unknown:
        raise UsageError(f"formats must be among {', '.join(INPUT_FORMATS)}, not "
                         f"{', '.join(map(repr, unknown))}")
    return formats


def _open(source, formats):
    from PIL import Image

    try:
        return Image.open(source, formats=formats)
    except Image.UnidentifiedImageError:
        raise FormatError(
            "not a supported picture (PNG, JPEG, WebP, GIF, BMP or TIFF)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _over_limit() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error):
        raise FormatError("corrupt picture: its header cannot be read") from None


def _over_limit():
    from PIL import Image

    return FormatError(
        f"image is over the limit of {Image.MAX_IMAGE_PIXELS} pixels "
        f"(raise it with {MAX_PIXELS_OPTION})")


def _load(img):
    """Decode fully now, so that truncation shows before any output exists."""
    from PIL import Image

    try:
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _over_limit() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
            TypeError, ZeroDivisionError, struct.error) as exc:
        raise FormatError(_damage(img, exc)) from None


def _damage(img, exc):
    # Pillow's messages name its own internals ("could not create decoder
    # object", "29 bytes not processed"); the user needs the format and
    # whether the data ends early.
    what = "its image data is truncated" if "truncated" in str(exc) else "its image data cannot be decoded"
    return f"corrupt {img.format or 'picture'}: {what}"


def _warn_frames(img, name):
    from PIL import Image

    # Counting frames parses the whole file: a later frame can be damaged
    # while the first is fine, and Pillow then raises whatever it meets.
    try:
        frames = getattr(img, "n_frames", 1)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _over_limit() from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
            struct.error):
        raise FormatError(f"corrupt {img.format}: a later frame cannot be read") from None
    if frames > 1:
        warnings.warn(
            f"{name}: {img.format} has {frames} frames; only the first is used", KqcodecWarning,
            stacklevel=4
        )


def _scale16(samples):
    """Scale 16-bit samples to 8 bits by rounding v * 255 / 65535."""
    return ((samples.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _read_other(path, max_pixels, formats, name):
    if not formats:
        raise FormatError("not a PNG file")
    # Closed at the end: Pillow keeps the file of a picture of several
    # frames (GIF, TIFF) open after it loads the first.
    with _open(path, formats) as img:
        width, height = img.size
        if max_pixels is not None and width * height > max_pixels:
            raise FormatError(
                f"image of {width}x{height} = {width * height} pixels is over the limit of "
                f"{max_pixels} (raise it with {MAX_PIXELS_OPTION})")
        _warn_frames(img, name)
        if img.format == "TIFF":
            size = len(path.getbuffer()) if isinstance(path, io.BytesIO) else os.path.getsize(path)
            _check_tiff_strips(img, size)
        _load(img)
        pixels = _orient(_pixels_of(img), _image_orientation(img, name))
        info = dict(img.info)
        if img.mode == "CMYK":
            # Converted to RGB by the caller, through the profile if there is one.
            info["mode"] = "CMYK"
    return pixels, info


def _pixels_of(img):
    """8-bit RGB or RGBA pixels of a loaded Pillow image (CMYK stays CMYK)."""
    mode = img.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        grey = _scale16(np.clip(np.asarray(img, np.int64), 0, 65535))
        pixels = np.repeat(grey[..., None], 3, axis=2)
    elif (mode == "P" and img.palette is not None and img.palette.mode == "RGB"
          and not isinstance(img.info.get("transparency"), bytes)):
        pixels = _from_palette(img)
    elif mode in ("L", "1") and not isinstance(img.info.get("transparency"), (bytes, tuple)):
        grey = np.asarray(img.convert("L") if mode == "1" else img)
        clear = img.info.get("transparency")
        alpha = None if clear is None else np.where(grey == clear, 0, 255)
        pixels = _with_alpha(np.repeat(grey[..., None], 3, axis=2), alpha)
    elif mode == "RGB" and "transparency" not in img.info:
        pixels = _as_array(img)
    elif (mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
          or (mode == "P" and img.palette is not None and img.palette.mode == "RGBA")):
        # Pillow converts premultiplied grey (La) only to LA.
        pixels = np.asarray((img.convert("LA") if mode == "La" else img).convert("RGBA"))
        pixels = _with_alpha(pixels[..., :3], pixels[..., 3])
    elif mode == "CMYK":
        pixels = np.asarray(img)
    else:
        pixels = np.asarray(img.convert("RGB"))
    return pixels


def from_pil(img):
    """Pixels of an in-memory Pillow image, by the same rules as :func:`read_image`.

    Parameters
    ----------
    img : PIL.Image.Image
        Any mode.  It is used as it is: no EXIF orientation is applied.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB, or straight RGBA when some pixel is not fully opaque: in sRGB,
        as a viewer shows the image (CMYK, and an ICC profile in
        ``img.info``, converted as :func:`read_picture` converts them).

    Raises
    ------
    UsageError
        If `img` is not a Pillow image, is empty, or cannot be loaded
        (closed, say).
    """
    from PIL import Image

    if not isinstance(img, Image.Image):
        raise UsageError(f"expected a PIL.Image.Image, not {type(img).__name__}")
    if 0 in img.size:
        raise UsageError(f"the image is empty ({img.size[0]}x{img.size[1]})")
    try:
        img.load()
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError,
            TypeError, ZeroDivisionError, struct.error) as exc:
        # What _load turns into a FormatError for a file: Pillow raises
        # SyntaxError for a broken PNG chunk, for one.
        raise UsageError(f"the image cannot be loaded: {exc}") from None
    tags = colorprofile.tags_from_info(img.info, name="the image")
    pixels = colorprofile.rendered(_pixels_of(img), tags, cmyk=img.mode == "CMYK",
                                   name="the image")[0]
    return np.ascontiguousarray(pixels)


def to_pil(palette, indices, icc=None):
    """A Pillow mode ``P`` image with its palette and transparency.

    Parameters
    ----------
    palette : (P, 3) or (P, 4) uint8 ndarray
        RGB or straight RGBA entries, P <= 256.
    indices : (H, W) uint8 ndarray
    icc : bytes, optional
        An ICC profile the pixels are in, kept as ``info["icc_profile"]``
        (which Pillow's ``save`` writes).

    Returns
    -------
    PIL.Image.Image
        Mode ``P``; with RGBA entries, ``info["transparency"]`` as Pillow
        sets it when it opens a palette PNG with a tRNS chunk: the one
        fully transparent entry's index when every other entry is opaque,
        else the alpha of each entry as bytes.  ``convert("RGBA")`` and
        ``save`` as PNG keep it; ``save`` as GIF only in the first form
        (GIF holds one transparent index and no partial alpha: Pillow
        refuses the second).
    """
    from PIL import Image

    palette = np.asarray(palette, np.uint8)
    # Mode L, which a palette makes P (fromarray's mode argument is deprecated).
    img = Image.fromarray(np.ascontiguousarray(indices, np.uint8))
    img.putpalette(palette[:, :3].tobytes(), "RGB")
    alpha = palette[:, 3] if palette.shape[1] == 4 else np.full(len(palette), 255, np.uint8)
    clear = np.flatnonzero(alpha == 0)
    if len(clear) == 1 and np.count_nonzero(alpha == 255) == len(alpha) - 1:
        # GIF's save takes only this form.
        img.info["transparency"] = int(clear[0])
    elif (alpha < 255).any():
        img.info["transparency"] = alpha.tobytes()
    if icc is not None:
        img.info["icc_profile"] = bytes(icc)
    return img


def _as_array(img):
    """``np.asarray(img)`` a band of rows at a time.

    Pillow exports a picture as one bytes object joined from its encoded
    rows: two whole copies at once beside the image Pillow holds (4 bytes a
    pixel for RGB).  Bands keep the read under 2.5 times its result.
    """
    width, height = img.size
    first = np.asarray(img.crop((0, 0, width, 1)))
    pixels = np.empty((height,) + first.shape[1:], first.dtype)
    rows = max(1, (1 << 20) // max(1, first.nbytes))
    for top in range(0, height, rows):
        bottom = min(height, top + rows)
        pixels[top:bottom] = np.asarray(img.crop((0, top, width, bottom)))
    return pixels


def _from_palette(img):
    """Look a palette image's pixels up directly, at the width the result needs.

    Cheaper than ``convert``: a GIF with a huge screen and one small frame
    would otherwise cost several full-size RGB copies.
    """
    indices = np.asarray(img)
    palette = np.zeros((256, 3), np.uint8)
    entries = np.frombuffer(bytes(img.getpalette("RGB") or b""), np.uint8).reshape(-1, 3)[:256]
    palette[: len(entries)] = entries
    clear = img.info.get("transparency")
    if isinstance(clear, int) and 0 <= clear < 256 and (indices == clear).any():
        alpha = np.full(256, 255, np.uint8)
        alpha[clear] = 0
        return np.dstack([palette[indices], alpha[indices]])
    return palette[indices]


def _check_tiff_strips(img, file_size):
    """Refuse a TIFF whose strips or tiles do not cover the image or the file.

    Pillow decodes the strips a TIFF lists and leaves the other rows black,
    without a word: a truncated file, or a header claiming 89 million rows
    with one strip, would read as a picture.
    """
    tags = img.tag_v2
    # The stored size: Pillow swaps img.size for orientations 5 to 8.
    width = _tiff_ints(tags, 256, img.size[0])[0]
    height = _tiff_ints(tags, 257, img.size[1])[0]
    planes = _tiff_ints(tags, 277, 1)[0] if _tiff_ints(tags, 284, 1)[0] == 2 else 1
    if 322 in tags and 323 in tags:  # tiled
        across = -(-width // max(_tiff_ints(tags, 322)[0], 1))
        down = -(-height // max(_tiff_ints(tags, 323)[0], 1))
        expected, where = across * down * planes, (324, 325)
    else:
        rows = _tiff_ints(tags, 278, height)[0] or height
        expected, where = -(-height // rows) * planes, (273, 279)
    offsets, counts = _tiff_ints(tags, where[0]), _tiff_ints(tags, where[1])
    if len(offsets) < expected or len(counts) < expected:
        raise FormatError(
            f"corrupt TIFF: {len(offsets)} of the {expected} strips or tiles the image needs"
        )
    if any(off + count > file_size for off, count in zip(offsets, counts)):
        raise FormatError("corrupt TIFF: image data runs past the end of the file (truncated)")


# Names of the tags _check_tiff_strips reads, for its messages.
_TIFF_TAGS = {256: "ImageWidth", 257: "ImageLength", 273: "StripOffsets", 277: "SamplesPerPixel", 278: "RowsPerStrip",
              279: "StripByteCounts", 284: "PlanarConfiguration", 322: "TileWidth",
              323: "TileLength", 324: "TileOffsets", 325: "TileByteCounts"}


def _tiff_ints(tags, tag, default=None):
    """A TIFF tag's values as a tuple of non-negative ints, `default` if absent.

    Pillow hands these tags over as the file typed them (text, rationals,
    floats, an empty list) when libtiff decodes the strips.
    """
    if tag not in tags:
        return () if default is None else (default,)
    values = tags[tag]
    values = values if isinstance(values, tuple) else (values,)
    if not values or not all(isinstance(v, int) and v >= 0 for v in values):
        raise FormatError(f"corrupt TIFF: {_TIFF_TAGS[tag]} is not a list of whole numbers")
    return values


def _with_alpha(rgb, alpha):
    """Stack RGB and alpha into RGBA, or return RGB when every pixel is opaque."""
    rgb = np.ascontiguousarray(rgb, np.uint8)
    if alpha is None or (alpha == 255).all():
        return rgb
    return np.ascontiguousarray(np.dstack([rgb, np.asarray(alpha, np.uint8)]))


def _exif_orientation(exif, name):
    """The orientation tag (1 to 8) of raw EXIF data, or 1."""
    if not exif:
        return 1
    from PIL import Image

    def orientation():
        tags = Image.Exif()
        tags.load(exif)
        return tags.get(_EXIF_ORIENTATION, 1)

    return _read_exif(orientation, name)


def _image_orientation(img, name):
    """The EXIF orientation Pillow found in a non-PNG picture, or 1."""
    return _read_exif(lambda: img.getexif().get(_EXIF_ORIENTATION, 1), name)


def _read_exif(read, name):
    """``read()``, Pillow's own warnings about damaged EXIF data said as one of kqcodec's.

    A damaged EXIF block must not make the picture unreadable: its
    orientation is then 1.
    """
    with recorded_warnings() as caught:
        warnings.simplefilter("always")
        try:
            value = read()
        except Exception as exc:  # Pillow raises what the damage makes
            caught.append(warnings.WarningMessage(str(exc) or type(exc).__name__,
                                                  UserWarning, "", 0))
            value = 1
    if caught:
        reason = " ".join(str(caught[0].message).split())
        warnings.warn(f"{name}: damaged EXIF data ({reason}); what it holds may be ignored",
                      KqcodecWarning, stacklevel=3)
    return value


def _orient(pixels, orientation):
    """Apply an EXIF orientation (the eight cases of the TIFF spec)."""
    turn = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }.get(orientation)
    return pixels if turn is None else np.ascontiguousarray(turn(pixels))


#: Formats every current web browser decodes.
_BROWSER_FORMATS = ("PNG", "JPEG", "GIF", "WEBP")


def shown_as_read(path):
    """Whether a web browser shows a picture file as :func:`read_image` reads it.

    A browser renders a color profile, gamma and EXIF orientation as
    :func:`read_image` does, but it animates what kqcodec reads the first
    frame of, may convert CMYK differently, and some browsers do not show
    TIFF or BMP at all: such files need a PNG copy to be compared by eye.

    Parameters
    ----------
    path : path-like
        A picture :func:`read_image` has read.

    Returns
    -------
    bool
        True for a single-frame PNG, JPEG, GIF or WebP in RGB, RGBA, grey or
        palette; False otherwise, also for a file that cannot be opened.
    """
    from PIL import Image

    try:
        with _pixel_limit(None), Image.open(path, formats=_BROWSER_FORMATS) as img:
            return getattr(img, "n_frames", 1) == 1 and img.mode in (
                "RGB", "RGBA", "L", "LA", "P", "1", "I;16", "I")
    except Exception:  # anything unreadable here simply gets a copy
        return False


def pixel_count(path):
    """The number of pixels a picture file's header announces, without decoding it.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    int or None
        Width times height; None for a file whose header cannot be read
        (reading it fully then says why).
    """
    from PIL import Image

    try:
        with _pixel_limit(None), Image.open(path, formats=INPUT_FORMATS) as img:
            width, height = img.size
    except Exception:  # anything unreadable is left for read_picture to report
        return None
    return width * height


def output_format(path):
    """Return the Pillow format name for an output path, by its extension.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str
        ``PNG``, ``JPEG``, ``WEBP``, ``BMP`` or ``TIFF``.

    Raises
    ------
    UsageError
        If the extension is not one kqcodec writes.
    """
    suffix = file_path(path, output=True).suffix.lower()
    if suffix not in OUTPUT_FORMATS:
        names = ", ".join(sorted(OUTPUT_FORMATS))
        raise UsageError(f"{path}: unknown output type {suffix or '(none)'!r}; use one of {names}")
    return OUTPUT_FORMATS[suffix][0]


def write_image(path, pixels, *, force=False, color=None):
    """Write RGB or RGBA pixels in the format the extension of `path` names.

    Parameters
    ----------
    path : path-like
        ``.png``, ``.jpg``/``.jpeg`` (quality 95), ``.webp`` (lossless),
        ``.bmp`` or ``.tif``/``.tiff``.
    pixels : (H, W, 3) or (H, W, 4) uint8 ndarray
    force : bool
        Replace an existing file.
    color : colorprofile.ColorTags, optional
        The pixels' color tags: an ICC profile is embedded in every format
        but BMP (which gives a :class:`colorprofile.ProfileWarning`); a PNG
        also carries ``sRGB``, ``gAMA`` and ``cHRM``.

    Raises
    ------
    UsageError
        For an unknown extension, pixels that are not (H, W, 3|4) uint8,
        transparency in a JPEG or a BMP (Pillow would drop it without a
        word), or a size the format cannot store.
    WriteError
        If writing fails; no partial file remains.
    """
    from PIL import Image

    fmt = output_format(path)
    options = OUTPUT_FORMATS[Path(path).suffix.lower()][1]
    colorprofile.check_tags(color)
    pixels = np.asarray(pixels)
    if (pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in (3, 4)
            or not pixels.size):
        raise UsageError(f"pixels must be (H, W, 3|4) uint8, H and W from 1, not {pixels.shape} "
                         f"{pixels.dtype}")
    pixels = np.ascontiguousarray(pixels)
    if max(pixels.shape[:2]) > _MAX_SIDE[fmt]:
        raise UsageError(
            f"{path}: {fmt} stores at most {_MAX_SIDE[fmt]} pixels a side; this picture is "
            f"{pixels.shape[1]}x{pixels.shape[0]} (write .png)"
        )
    if fmt in ("JPEG", "BMP") and pixels.shape[2] == 4:
        raise UsageError(f"{path}: {fmt} cannot hold transparency; write .png, .webp or .tiff")
    if color is not None and color.icc is not None:
        # A grey PNG's profile cannot go with the RGB pixels written (readers
        # drop it, or fail), nor can one that is not a profile at all.
        pixels, color = colorprofile.rendered(pixels, color, keep=True, name=str(path))
        pixels = np.ascontiguousarray(pixels)
    img = Image.fromarray(pixels)  # (H, W, 3) uint8 is RGB, (H, W, 4) RGBA
    if color:
        options = dict(options, **_color_options(fmt, color, path))
    # Encoded before the temporary file exists: a process killed while it
    # encodes leaves none behind.
    encoded = io.BytesIO()
    try:
        img.save(encoded, format=fmt, **options)
    except OSError as exc:  # Pillow's encoders report their failures so
        raise WriteError(f"{path}: write failed: {exc.strerror or exc}") from None
    with atomic_output(path, force=force) as stream:
        stream.write(encoded.getbuffer())


# A JPEG carries a profile in at most 255 APP2 markers of 65,519 bytes each.
_JPEG_MAX_PROFILE = 255 * 65519


def _color_options(fmt, tags, path):
    """Pillow save options that carry the color tags into `fmt`."""
    if tags.icc is not None:
        if fmt == "BMP":
            warnings.warn(f"{path}: BMP cannot hold the color profile; written without it",
                          colorprofile.ProfileWarning, stacklevel=3)
            return {}
        if fmt == "JPEG" and len(tags.icc) > _JPEG_MAX_PROFILE:
            # Pillow would number the markers past 255 and wrap: readers lose it.
            warnings.warn(f"{path}: the color profile of {len(tags.icc)} bytes is over the "
                          f"{_JPEG_MAX_PROFILE} a JPEG holds; written without it",
                          colorprofile.ProfileWarning, stacklevel=3)
            return {}
        return {"icc_profile": tags.icc}
    if fmt != "PNG":
        # sRGB is what the other formats mean without a profile: a gamma or
        # primaries other than sRGB's are lost, and viewers show other colors.
        if tags.srgb is None and (tags.gamma is not None or tags.chromaticity is not None):
            warnings.warn(f"{path}: {fmt} cannot hold the PNG's gAMA and cHRM; written without "
                          "them (shown as sRGB)", colorprofile.ProfileWarning, stacklevel=3)
        return {}
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    if tags.srgb is not None:
        info.add(b"sRGB", bytes([tags.srgb]))
    else:
        if tags.gamma is not None:
            info.add(b"gAMA", struct.pack(">I", tags.gamma))
        if tags.chromaticity is not None:
            info.add(b"cHRM", struct.pack(">8I", *tags.chromaticity))
    return {"pnginfo": info}


def memory_file(pixels):
    """Uncompressed in-memory picture file of RGB pixels, for libraries that read files.

    Parameters
    ----------
    pixels : (H, W, 3) uint8 ndarray

    Returns
    -------
    io.BytesIO
        A binary PPM, positioned at its start.
    """
    from PIL import Image

    stream = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels, np.uint8)).save(stream, format="PPM")
    stream.seek(0)
    return stream
