"""Files in, files out: the encoder and decoder of picture files.

:mod:`imageio` reads the pixels, :func:`quantizer.quantize` turns them into a
:class:`PaletteImage` (arrays only), and the palette PNG is written without
ever leaving a partial file.  Decoding reads any PNG back to pixels.
"""

import os
import warnings
from dataclasses import dataclass, field, replace

from . import colorprofile, imageio, pngfile
from .errors import NotSmallerError, TargetError, UsageError, option
from .paletteimage import PaletteImage
from .defaults import DEFAULT_SPEED
from .dither import check_reuse, check_strength
from .quantizer import (check_engine, check_k, check_seed, check_space, check_speed, choose_k,
                        prepare, quantize, remap, shown_psnr)
from .safefile import atomic_output, check_input, check_output, check_png_name
from .search import check_target

__all__ = [
    "check_options",
    "Encoding",
    "PaletteImage",
    "encode",
    "encode_with_palette",
    "histogram_of",
    "decode",
    "read_palette_png",
]


@dataclass(frozen=True, eq=False)
class Encoding(PaletteImage):
    """What :func:`encode` wrote: the :class:`PaletteImage`, its size and quality.

    Attributes
    ----------
    encoded_bytes : int
        Size of the PNG file written.
    k : int or None
        The palette size asked for, or chosen by a target.
    trials : tuple of search.Trial
        With a target: every k the search encoded, in order; else empty.
    data : bytes or None
        The PNG file's bytes.

    The PSNR against the input is :attr:`PaletteImage.psnr`, known without
    decoding anything again (as a viewer shows both, see :func:`encode`).
    """

    encoded_bytes: int = 0
    k: int = None
    trials: tuple = ()
    # Out of the repr: a whole PNG file would flood a notebook.
    data: bytes = field(default=None, repr=False)


def check_options(k, *, target_psnr=None, max_bytes=None, space="rgb", dither=0.0, reuse=0.0,
                  speed=DEFAULT_SPEED, seed=0, engine="kqcodec", max_colors=256,
                  max_pixels=None):
    """Check the options of :func:`encode` that concern no file, before any work.

    Returns
    -------
    k : int or 'auto'
    speed : int

    Raises
    ------
    UsageError
        For a value out of range, or options that do not go together.
    """
    auto = isinstance(k, str) and k == "auto"
    check_seed(seed)
    check_engine(engine)
    imageio.check_pixel_limit(max_pixels)
    if auto:
        check_target(target_psnr, max_bytes)
        check_k(max_colors)
    else:
        k = check_k(k)
        if target_psnr is not None or max_bytes is not None:
            raise UsageError("a target PSNR or size goes with k='auto'")
    check_space(space)
    if check_strength(dither) and auto:
        raise UsageError(f"{option('dither')} goes with a fixed k")
    if check_reuse(reuse) and auto:
        raise UsageError(f"{option('reuse')} goes with a fixed k")
    if check_reuse(reuse) and check_strength(dither):
        # Also where the palette is searched; checked here, before the output.
        raise UsageError(f"{option('reuse')} does not go with {option('dither')}")
    return k, check_speed(speed)


def encode(source, dest, k, *, seed=0, force=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS,
           engine="kqcodec", keep_profile=False, space="rgb", strict=False, dither=0.0,
           speed=DEFAULT_SPEED, target_psnr=None, max_bytes=None, max_colors=256,
           skip_if_larger=False, reuse=0.0):
    """Read a picture, quantize it and write a palette PNG.

    Parameters
    ----------
    source : path-like or bytes
        Any picture :func:`imageio.read_image` reads, or the whole content
        of one (standard input, say).
    dest : path-like or None
        The PNG to write, named ``*.png``, or a character device or FIFO
        (``/dev/stdout`` on a terminal or a pipe; redirected to a file it is
        that file, and needs the name); never the input.  None writes
        nothing: the bytes are in the result's ``data``.
    k : int or 'auto'
        Palette size, 2..256, or ``"auto"`` with `target_psnr` or
        `max_bytes` (see :func:`quantizer.choose_k`).
    seed : int
        See :func:`quantize`.
    force : bool
        Replace an existing `dest`.
    max_pixels : int or None
        Refuse larger inputs.
    engine : {'kqcodec', 'sklearn'}
        See :func:`quantize`; a target always uses kqcodec's own.
    keep_profile : bool
        Quantize the raw values and embed the input's ICC profile as an
        ``iCCP`` chunk.  By default a picture in another profile than sRGB
        is converted to sRGB first and the file gets an ``sRGB`` chunk (see
        :func:`colorprofile.rendered`).
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
        See :func:`quantize`.
    strict : bool
        Refuse a PNG input that breaks any rule; see :func:`imageio.read_image`.
    dither : float
        Error diffusion strength 0..1; see :func:`quantize`.  Only with a
        fixed k: ``k="auto"`` does not dither.
    speed : int
        Effort, in pngquant's sense: 1 (smallest file, slowest) to 10
        (fastest); sets both the palette search and the compression, with
        ``k="auto"`` as well (see :func:`quantizer.choose_k`).
    target_psnr : float, optional
    max_bytes : int, optional
    max_colors : int
        The target of ``k="auto"`` (one of the first two) and the largest
        k it considers, 2..256; the sizes measured include the color
        chunks.
    skip_if_larger : bool
        Write nothing, and raise :class:`NotSmallerError`, when the PNG
        would not be smaller than the input file.
    reuse : float
        Margin in Oklab levels within which a pixel repeats a neighbour's
        entry; see :func:`quantize`.  Only with a fixed k, without `dither`.

    Returns
    -------
    Encoding
        The pixels written, with the file's size, its color tags and the
        PSNR against the input as a viewer shows it (its sRGB rendering; with
        `keep_profile`, the file seen through its profile against the input
        seen through its own).  The file may list the palette
        in another order (see :mod:`layout`); its decoded pixels are the
        same.

    Raises
    ------
    UsageError
        For options that do not go together, or a `dest` not named
        ``*.png``: the file would hold a PNG under another format's name.
    TargetError
        If the target cannot be met; nothing is written.
    NotSmallerError
        With `skip_if_larger`, if the PNG would not be smaller than the
        input; nothing is written.
    """
    k, speed = check_options(k, target_psnr=target_psnr, max_bytes=max_bytes, space=space,
                             dither=dither, reuse=reuse, speed=speed, seed=seed, engine=engine,
                             max_colors=max_colors, max_pixels=max_pixels)
    auto = k == "auto"
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    if not in_memory:
        check_input(source)
    if dest is not None:
        check_png_name(dest, "encode")
        check_output(dest, source=None if in_memory else source, force=force)
    original_bytes = len(source) if in_memory else os.path.getsize(source)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels,
                                        color="keep" if keep_profile else "srgb", strict=strict)
    shown = _shown(tags, source) if keep_profile else None
    if auto:
        try:
            choice = choose_k(pixels, target_psnr=target_psnr, max_bytes=max_bytes,
                              max_colors=max_colors, color=tags or None, space=space, speed=speed,
                              shown=shown)
        except TargetError as exc:
            # The search knows pixels, not files: the message names the picture.
            exc.args = (f"{_name(source)}: {exc.args[0]}",)
            raise
        image, k, trials = choice.image, choice.k, choice.trials

        def produce():
            return choice.data
    else:
        image = replace(quantize(pixels, k, seed=seed, engine=engine, space=space,
                                 dither=dither, speed=speed, reuse=reuse),
                        color=tags or None)
        trials = ()

        def produce():
            return image.to_png(speed=speed)
    # The search measured its answer as a viewer shows it already.
    mse = _mse_of(choice.psnr) if auto and shown is not None else _shown_mse(pixels, image, shown)
    del pixels  # the decoded picture is not needed to write the file
    data = _write(produce, dest, force, skip_if_larger and original_bytes, source)
    return Encoding(image.palette, image.indices, mse=mse, color=image.color,
                    encoded_bytes=len(data), k=k, trials=trials, data=data)


def _write(produce, dest, force, limit, source):
    """Write the bytes `produce()` returns to `dest` (if any); return them.

    Nothing is written when they are not fewer than `limit` (when given).
    The bytes are made before the output's temporary file is created: a
    process killed while it compresses (out of memory, ``kill -9``) leaves
    no temporary file behind, only one killed while it writes.
    """
    data = _smaller(produce(), limit, source)
    if dest is not None:
        with atomic_output(dest, force=force) as stream:
            stream.write(data)
    return data


def _name(source):
    """How messages name the picture: its path, or "the input" for bytes read from stdin."""
    return "the input" if isinstance(source, (bytes, bytearray, memoryview)) else source


def _smaller(data, limit, source):
    if limit and len(data) >= limit:
        raise NotSmallerError(
            f"{_name(source)}: the palette PNG would take {len(data)} bytes, not fewer than the "
            f"input's {limit}; nothing written"
        )
    return data


def _mse_of(psnr):
    return 0.0 if psnr == float("inf") else 255.0**2 / 10 ** (psnr / 10)


def _shown_mse(pixels, image, shown):
    """The error of `image` against `pixels`, both seen through `shown` (see :func:`_shown`)."""
    if shown is None:
        return image.mse
    return _mse_of(shown_psnr(shown(pixels), image, shown))


def _shown(tags, source):
    """What a viewer shows of samples in the profile of `tags`, or None if the samples themselves.

    A file that keeps the input's profile is searched for a target PSNR
    measured as the report measures it: against the input as a viewer
    shows it, the file seen through its profile (the raw values can be
    1-2 dB further apart or closer).
    """
    if tags is None or tags.icc is None:
        return None
    name = _name(source)

    def shown(samples):
        # Reading the picture said what there is to say about its profile.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return colorprofile.rendered(samples, tags, name=name)[0]

    return shown


def histogram_of(source, *, max_pixels=pngfile.DEFAULT_MAX_PIXELS, keep_profile=False,
                 strict=False, with_tags=False):
    """The distinct colors of a picture file and their pixel counts.

    Parameters
    ----------
    source : path-like
    max_pixels, keep_profile, strict
        As for :func:`encode`.
    with_tags : bool
        Also return the color tags the picture's file would carry.

    Returns
    -------
    colors : (U, 3) or (U, 4) uint8 ndarray
    counts : (U,) int64 ndarray
        As :func:`quantizer.prepare` counts them, for
        :func:`quantizer.shared_palette`.
    tags : colorprofile.ColorTags or None
        With `with_tags`: those of :func:`encode` (None without tags).
    """
    check_input(source)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels,
                                        color="keep" if keep_profile else "srgb", strict=strict)
    hist = prepare(pixels)
    return (hist.colors, hist.counts) + ((tags or None,) if with_tags else ())


def encode_with_palette(source, dest, palette, *, force=False,
                        max_pixels=pngfile.DEFAULT_MAX_PIXELS, skip_if_larger=False,
                        keep_profile=False, speed=DEFAULT_SPEED, strict=False):
    """Write a picture as a palette PNG with a palette given in advance.

    Every file written with the same palette has the same PLTE and tRNS
    chunks, byte for byte: entries keep their order, unused ones included.

    Parameters
    ----------
    source : path-like
    dest : path-like or None
        As for :func:`encode`.
    palette : (P, 3) or (P, 4) uint8 ndarray
        From :func:`quantizer.shared_palette`, say.
    force, max_pixels, skip_if_larger, keep_profile, speed, strict
        As for :func:`encode`.

    Returns
    -------
    Encoding
        With the whole palette and each pixel's nearest entry.

    Raises
    ------
    NotSmallerError
        With `skip_if_larger`, if the PNG would not be smaller than the input.
    """
    speed = check_speed(speed)
    check_input(source)
    if dest is not None:
        check_output(dest, source=source, force=force)
    original_bytes = os.path.getsize(source)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels,
                                        color="keep" if keep_profile else "srgb", strict=strict)
    image = replace(remap(pixels, palette), color=tags or None)
    # With the input's profile kept, measured as encode measures it: both
    # seen through the profile (the raw values were 3 dB closer on a
    # ProPhoto picture).
    mse = _shown_mse(pixels, image, _shown(tags, source) if keep_profile else None)
    del pixels
    data = _write(lambda: image.to_png(keep_order=True, speed=speed), dest, force,
                  skip_if_larger and original_bytes, source)
    return Encoding(image.palette, image.indices, mse=mse, color=image.color,
                    encoded_bytes=len(data), k=len(palette), data=data)


def read_palette_png(path, *, max_pixels=pngfile.DEFAULT_MAX_PIXELS, strict=False):
    """Read a palette PNG (color type 3) as its palette and indices.

    Parameters
    ----------
    path : path-like
    max_pixels : int or None
    strict : bool
        Refuse a file that breaks any rule; see :func:`imageio.read_image`.

    Returns
    -------
    PaletteImage
        With (P, 4) RGBA entries (tRNS applied).
    """
    palette, indices = imageio.read_indexed_png(path, max_pixels=max_pixels, strict=strict)
    return PaletteImage(palette, indices)


def decode(source, dest=None, *, force=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS,
           strict=False):
    """Decode a PNG (any tool's, any color type) to pixels, optionally saving them.

    Parameters
    ----------
    source : path-like or bytes
        A PNG file, or its whole content.
    dest : path-like, optional
        Write the pixels here, in the format its extension names.
    force : bool
        Replace an existing `dest`.
    max_pixels : int or None
        Refuse larger pictures, from their header.
    strict : bool
        Refuse a file that breaks any rule of the PNG specification.  By
        default what cannot change a pixel is skipped, as libpng does, with
        one warning naming it.

    Returns
    -------
    (H, W, 3) or (H, W, 4) uint8 ndarray
        RGB, or RGBA when some pixel is not opaque: the samples the PNG
        holds, not converted in color, turned by its EXIF orientation as
        :func:`encode` turns them (H and W are then those shown, not the
        header's).  `dest` carries the PNG's ICC profile (all formats but
        BMP) and, as a PNG, its ``sRGB``, ``gAMA`` and ``cHRM``; not the
        orientation, already applied.

    Raises
    ------
    InputError
        If the file is missing or cannot be opened.
    FormatError
        If the file is not a PNG, is damaged in a way that libpng refuses
        too, breaks a rule with `strict`, or is over `max_pixels`.
    UsageError
        For a `dest` whose extension names no format written, a
        transparent picture to a format without alpha (JPEG, BMP), or bad
        arguments.
    OutputExistsError
        If `dest` exists and `force` is not given.
    WriteError
        If `dest` cannot be written.
    """
    in_memory = isinstance(source, (bytes, bytearray, memoryview))
    if dest is not None:
        imageio.output_format(dest)
        if not in_memory:
            check_input(source)
        check_output(dest, source=None if in_memory else source, force=force)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels, formats=("PNG",),
                                        color="raw", strict=strict)
    if dest is not None:
        imageio.write_image(dest, pixels, force=force, color=tags)
    return pixels
