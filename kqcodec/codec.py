"""Files in, files out: the encoder and decoder of picture files.

:mod:`imageio` reads the pixels, :func:`quantizer.quantize` turns them into a
:class:`PaletteImage` (arrays only), and the palette PNG is written without
ever leaving a partial file.  Decoding reads any PNG back to pixels.
"""

from dataclasses import dataclass, replace

from . import imageio, pngfile
from .paletteimage import PaletteImage
from .defaults import DEFAULT_SPEED
from .dither import check_strength
from .quantizer import check_k, check_space, check_speed, quantize
from .safefile import check_input, check_output

__all__ = [
    "Encoding",
    "PaletteImage",
    "encode",
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

    The PSNR against the input is :attr:`PaletteImage.psnr`, known without
    decoding anything again.
    """

    encoded_bytes: int = 0


def encode(source, dest, k, *, seed=0, force=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS,
           engine="kqcodec", keep_profile=False, space="rgb", strict=False, dither=0.0,
           speed=DEFAULT_SPEED):
    """Read a picture, quantize it to k colors and write a palette PNG.

    Parameters
    ----------
    source : path-like
        Any picture :func:`imageio.read_image` reads.
    dest : path-like
        The PNG to write; never the input.
    k : int
        Palette size, 2..256.
    seed : int
        See :func:`quantize`.
    force : bool
        Replace an existing `dest`.
    max_pixels : int or None
        Refuse larger inputs.
    engine : {'kqcodec', 'sklearn'}
        See :func:`quantize`.
    keep_profile : bool
        Quantize the raw values and embed the input's ICC profile as an
        ``iCCP`` chunk.  By default a picture in another profile than sRGB
        is converted to sRGB first and the file gets an ``sRGB`` chunk (see
        :func:`colorprofile.rendered`).
    space : {'rgb', 'oklab'}
        See :func:`quantize`.
    strict : bool
        Refuse a PNG input that breaks any rule; see :func:`imageio.read_image`.
    dither : float
        Error diffusion strength 0..1; see :func:`quantize`.
    speed : int
        Effort, in pngquant's sense: 1 (smallest file, slowest) to 10
        (fastest); sets both the palette search and the compression.

    Returns
    -------
    Encoding
        The pixels written, with the file's size, its color tags and the
        PSNR against the input as quantized (its sRGB rendering by default,
        the raw values with `keep_profile`).  The file may list the palette in another order (see
        :mod:`layout`); its decoded pixels are the same.
    """
    k = check_k(k)
    check_space(space)
    check_strength(dither)
    speed = check_speed(speed)
    check_input(source)
    check_output(dest, source=source, force=force)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels,
                                        color="keep" if keep_profile else "srgb",
                                        strict=strict)
    image = quantize(pixels, k, seed=seed, engine=engine, space=space, dither=dither,
                     speed=speed)
    image = replace(image, color=tags or None)
    size = image.save(dest, force=force, speed=speed)
    return Encoding(image.palette, image.indices, mse=image.mse, color=image.color,
                    encoded_bytes=size)


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
    source : path-like
        A PNG file.
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
        holds, not converted.  `dest` carries the PNG's ICC profile (all
        formats but BMP) and, as a PNG, its ``sRGB``, ``gAMA`` and ``cHRM``.

    Raises
    ------
    FormatError
        If the file is not a PNG, is damaged in a way that libpng refuses
        too, breaks a rule with `strict`, or is over `max_pixels`.
    """
    if dest is not None:
        imageio.output_format(dest)
        check_input(source)
        check_output(dest, source=source, force=force)
    pixels, tags = imageio.read_picture(source, max_pixels=max_pixels, formats=("PNG",),
                                        color="raw", strict=strict)
    if dest is not None:
        imageio.write_image(dest, pixels, force=force, color=tags)
    return pixels
