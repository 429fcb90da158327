"""The result of quantization: a palette and one index per pixel."""

import io
from dataclasses import dataclass

import numpy as np

from . import colorprofile, pngfile
from .defaults import DEFAULT_SPEED
from .safefile import atomic_output, check_output, check_png_name

__all__ = ["PaletteImage"]


@dataclass(frozen=True, eq=False)
class PaletteImage:
    """An image as a palette and one index per pixel.

    Attributes
    ----------
    palette : (P, 3) or (P, 4) uint8 ndarray
        RGB entries, or straight (not premultiplied) RGBA entries.
    indices : (H, W) uint8 ndarray
        Palette entry of every pixel; every value is below P.
    mse : float or None
        Mean squared error against the picture it was made from, over every
        pixel and channel as :func:`metrics.psnr` compares them; None when
        unknown (an image read from a file).
    color : colorprofile.ColorTags or None
        How the colors are to be shown (an ``sRGB`` chunk, an ICC profile,
        ``gAMA``/``cHRM``), written with the file; None writes no such chunk.
    """

    palette: np.ndarray
    indices: np.ndarray
    mse: float = None
    color: object = None

    @property
    def psnr(self):
        """PSNR in dB against the picture it was made from (``inf`` if exact, None if unknown)."""
        if self.mse is None:
            return None
        return float("inf") if self.mse == 0 else float(10 * np.log10(255.0**2 / self.mse))

    def to_pixels(self):
        """Return the decoded pixels, ``palette[indices]``.

        Returns
        -------
        (H, W, C) uint8 ndarray
            C = 3 or 4, as the palette.

        Raises
        ------
        UsageError
            As :meth:`to_png`, for a palette or indices it would not write
            (a negative index would otherwise wrap around).
        """
        indices, palette = pngfile.checked_image(self.indices, self.palette)
        return palette[indices]

    def save(self, path, *, force=False, speed=DEFAULT_SPEED, keep_order=False):
        """Write the image as a palette PNG; see :func:`pngfile.write_palette_png`.

        Parameters
        ----------
        path : path-like
        force : bool
            Replace an existing file.
        speed : int
            Compression effort, 1 (smallest file) to 10 (fastest).
        keep_order : bool
            Write the palette exactly as given (pictures sharing a palette
            share their PLTE and tRNS bytes): only the row filters are chosen.

        Returns
        -------
        int
            The size of the file written, in bytes.

        Raises
        ------
        UsageError
            If `path` does not end in ``.png``, or for a palette or indices
            :meth:`to_png` would not write.
        OutputExistsError
            If `path` exists without `force`, or is a folder.
        WriteError
            If writing fails; nothing is left behind.
        """
        check_png_name(path, "save")
        check_output(path, force=force)
        # Made before the temporary file exists: a process killed while it
        # compresses leaves none behind.
        data = self.to_png(speed=speed, keep_order=keep_order)
        with atomic_output(path, force=force) as stream:
            stream.write(data)
        return len(data)

    def to_pil(self):
        """Return a Pillow mode ``P`` image with this palette and transparency.

        Returns
        -------
        PIL.Image.Image
            ``convert("RGBA")`` gives ``palette[indices]``; ``save`` writes
            the transparency too, and the ICC profile of :attr:`color` if
            it has one (see :func:`imageio.to_pil`).

        Raises
        ------
        UsageError
            As :meth:`to_png`, for a palette or indices it would not write.
        """
        from . import imageio  # Pillow stays inside imageio

        indices, palette = pngfile.checked_image(self.indices, self.palette)
        color = colorprofile.check_tags(self.color)
        icc = None if color is None else color.icc
        return imageio.to_pil(palette, indices, icc)

    def to_png(self, *, speed=DEFAULT_SPEED, keep_order=False, plan=None):
        """Return the palette PNG file as bytes.

        Parameters
        ----------
        speed : int
            Deflate and layout effort, 1 (smallest) to 10 (fastest), as for
            :meth:`save`.
        keep_order : bool
            Keep the palette's order (as for :meth:`save`).
        plan : tuple, optional
            The ``plan`` of :meth:`estimated_png_size` at the same speed,
            whose trial compression is then not made again (the bytes are
            the same); not with `keep_order`, whose palette order such a
            plan does not keep.

        Returns
        -------
        bytes
            The whole file, signature to IEND.

        Raises
        ------
        UsageError
            As :meth:`save`; for a `plan` that cannot be this picture's, or
            one reordering the palette with `keep_order`.
        """
        stream = io.BytesIO()
        pngfile.write_palette_png(stream, self.indices, self.palette, color=self.color,
                                  speed=speed, keep_order=keep_order, plan=plan)
        return stream.getvalue()

    def estimated_png_size(self, *, speed=DEFAULT_SPEED, gains=None):
        """Estimate the length of :meth:`to_png` from its fast trial compression.

        Parameters
        ----------
        speed : int
            As for :meth:`to_png`.
        gains : dict, optional
            The final deflate level's gain over the trial's, by level and
            layout, kept from earlier estimates at the same bit depth (see
            :func:`layout.estimated_size`); filled in as measured.

        Returns
        -------
        layout.Estimate
            ``size``: estimated bytes, most often within a few percent,
            further off on files of a few kilobytes (see
            :func:`pngfile.estimated_size`); ``level``: the deflate level
            :meth:`to_png` compresses the image data at; ``layout``: the
            layout estimated; ``plan``: for :meth:`to_png`; ``one_thread``:
            whether :meth:`to_png` with that plan compresses on one thread.
        """
        return pngfile.estimated_size(self.indices, self.palette, color=self.color, speed=speed,
                                      gains=gains)
