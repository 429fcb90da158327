"""Palette PNG files: writing them.

This is the only module that imports pypng, which frames the chunks; the
bytes of the image data come from :mod:`layout`.  Reading any PNG is
:mod:`pngread`'s job.

References are to the PNG specification, https://www.w3.org/TR/png/.
"""

import struct
import zlib

import numpy as np
import png

from . import layout
from .colorprofile import check_tags
from .defaults import DEFAULT_SPEED, MAX_PIXELS, SPEEDS
from .errors import UsageError
from .layout import bit_depth_for

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "bit_depth_for",
    "written_bit_depth",
    "write_palette_png",
    "check_speed",
    "checked_image",
    "estimated_size",
    "color_chunks",
]

#: Pillow's default decompression-bomb threshold, about 89.5 megapixels.
DEFAULT_MAX_PIXELS = MAX_PIXELS

SIGNATURE = png.signature


def check_speed(speed):
    """Return `speed` as an int if it is an effort level (1..10).

    Parameters
    ----------
    speed : int

    Returns
    -------
    int

    Raises
    ------
    UsageError
        For anything but an integer from 1 to 10.
    """
    if isinstance(speed, bool) or not isinstance(speed, (int, np.integer)) or speed not in SPEEDS:
        raise UsageError(f"speed must be an integer from 1 to 10, not {speed!r}")
    return int(speed)


def write_palette_png(stream, indices, palette, *, color=None, speed=DEFAULT_SPEED,
                      keep_order=False, plan=None):
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
    speed : int
        Compression effort, 1 (smallest) to 10 (fastest); see
        :func:`layout.final_level`.
    keep_order : bool
        Write the palette exactly as given, unused entries included, so
        that pictures sharing a palette share their PLTE and tRNS bytes.
    plan : tuple, optional
        The ``plan`` of :func:`estimated_size` of the same picture, speed
        and `keep_order`, whose trial the image data then reuses (see
        :func:`layout.image_data`); the bytes are the same.

    Raises
    ------
    UsageError
        If the palette size is out of range, its values are not 0..255, an
        index is not below P (pypng would write such a file without
        complaint), `speed` is not 1..10, or `plan` cannot be this
        picture's (see :func:`layout.image_data`).
    """
    speed = check_speed(speed)
    indices, palette = checked_image(indices, palette)
    order, depth, data = layout.image_data(indices, palette, speed=speed, keep_order=keep_order,
                                           plan=plan)
    png.write_chunks(stream, _chunks(indices.shape, palette[order], depth, color, data))


def estimated_size(indices, palette, *, color=None, speed=DEFAULT_SPEED, keep_order=False,
                   gains=None):
    """Estimate the bytes :func:`write_palette_png` would write, from fast compressions alone.

    The chunks are counted exactly, the image data as
    :func:`layout.estimated_size` estimates it (most often within a few percent;
    further off on files of a few kilobytes).

    Parameters
    ----------
    indices, palette, color, speed, keep_order
        As for :func:`write_palette_png`.
    gains : dict, optional
        As for :func:`layout.estimated_size`.

    Returns
    -------
    layout.Estimate
        Its ``size`` the estimated bytes of the file, chunks included;
        ``level``, ``layout``, ``plan`` and ``one_thread`` those of the image data.

    Raises
    ------
    UsageError
        As :func:`write_palette_png`.
    """
    speed = check_speed(speed)
    indices, palette = checked_image(indices, palette)
    data = layout.estimated_size(indices, palette, speed=speed, keep_order=keep_order,
                                 gains=gains)
    framing = len(SIGNATURE) + sum(12 + len(body)
                                    for _, body in _chunks(indices.shape, palette, 8, color, b""))
    return data._replace(size=framing + data.size)


def checked_image(indices, palette):
    """The indices and the palette as uint8, checked as :func:`write_palette_png` says.

    Parameters
    ----------
    indices : (H, W) integer ndarray
    palette : (P, 3) or (P, 4) integer ndarray, values 0..255

    Returns
    -------
    indices : (H, W) uint8 ndarray
    palette : (P, 3) or (P, 4) uint8 ndarray

    Raises
    ------
    UsageError
        If they are not so, or an index is not below P.
    """
    palette = np.asarray(palette)
    if palette.dtype != np.uint8:
        # A cast would wrap 300 to 44 and -1 to 255 without a word.
        if palette.dtype.kind not in "ui" or (
                palette.size and not 0 <= palette.min() <= palette.max() <= 255):
            values = (f" from {palette.min()} to {palette.max()}"
                      if palette.size and palette.dtype.kind in "uif" else "")
            raise UsageError(f"palette values must be integers from 0 to 255, "
                             f"not {palette.dtype}{values}")
        palette = palette.astype(np.uint8)
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
    return indices.astype(np.uint8, copy=False), palette


def _chunks(shape, palette, depth, color, data):
    """The file's chunks, as (type, body), around the image data `data` of bit depth `depth`."""
    height, width = shape
    chunks = [
        (b"IHDR", struct.pack(">IIBBBBB", width, height, depth, 3, 0, 0, 0)),
    ]
    chunks += color_chunks(color)
    chunks.append((b"PLTE", palette[:, :3].tobytes()))
    if palette.shape[1] == 4 and (palette[:, 3] < 255).any():
        last = np.flatnonzero(palette[:, 3] < 255)[-1]
        chunks.append((b"tRNS", palette[: last + 1, 3].tobytes()))
    chunks.append((b"IDAT", data))
    chunks.append((b"IEND", b""))
    return chunks


def written_bit_depth(data):
    """The bit depth in the header of a file :func:`write_palette_png` wrote.

    It is the smallest that holds the palette, or 8 when one byte per index
    compressed better (see :mod:`layout`).

    Parameters
    ----------
    data : bytes
        The PNG file.

    Returns
    -------
    int
    """
    # IHDR comes first: the signature, its length and type, width and height.
    return data[len(SIGNATURE) + 16]


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

    Raises
    ------
    UsageError
        If `tags` is neither a ColorTags nor None.
    """
    if not check_tags(tags):
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
