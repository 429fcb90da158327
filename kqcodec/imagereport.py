"""One picture of the report: encoded at each k, written, decoded back, measured.

A worker of :mod:`kqcodec.reporting` runs :func:`picture_rows` for each job
it is given.  The picture is read and its color histogram computed once,
then encoded at every k exactly as ``kqcodec encode`` would, written,
decoded back *from the written file* and measured: the table's figures are
those of the files a user gets.  Rows are plain dicts (:mod:`kqcodec.rows`),
so that a worker never imports pandas.
"""

import time
from dataclasses import replace
from pathlib import Path

from . import imageio, pngfile, pngread, quantizer
from . import metrics as measures
from .defaults import DEFAULT_SPEED, REPORT_KS
from .dither import check_reuse, check_strength
from .errors import KqcodecError, OutputExistsError, TargetError, UsageError, option
from .rows import DEFAULT_METRICS, check_metrics, error_row
from .safefile import check_input, file_path, make_folder, write_bytes
from .scan import printable
from .search import check_target

__all__ = ["report_image", "picture_rows", "check_ks", "check_search"]

# SSIM and SSIMULACRA2 of a 12 MP photo take longer than encoding it (the
# SSIMULACRA2 port: 80 s and 6 GB); beyond this many pixels they are computed
# on the centre crop of this side.
_CROP = 1024


def report_image(path, ks=REPORT_KS, *, out="compressed_outputs", stem=None, name=None,
                 force=False, seed=0, max_pixels=pngfile.DEFAULT_MAX_PIXELS, space="rgb",
                 dither=0.0, metrics=DEFAULT_METRICS, strict=False, speed=DEFAULT_SPEED,
                 target_psnr=None, max_colors=256, reuse=0.0):
    """Encode one picture at every k, write the files, and measure them.

    Parameters
    ----------
    path : path-like
        The picture.
    ks : sequence of int
        Palette sizes, each 2..256; may be empty with `target_psnr`.
    out : path-like
        Folder for the encodings, ``<stem>_k<k>.png``; created if missing.
    stem : path-like, optional
        Output stem relative to `out` (inside it: not absolute, no ``..``);
        the picture's stem by default.
    name : str, optional
        What the ``image`` column says; the file name by default.
    force : bool
        Replace existing encodings whose bytes differ.
    seed : int
    max_pixels : int or None
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
        Where the palette search measures distances (see :func:`kqcodec.quantize`).
    dither : float
        Error diffusion strength 0..1 (see :func:`kqcodec.quantize`).
    reuse : float
        Margin, in Oklab levels, within which a pixel repeats a neighbour's
        entry (see :func:`kqcodec.quantize`); 0 for none.  Not with
        `dither` nor with `target_psnr`.
    metrics : collection of str
        Measures to compute, of ``psnr``, ``ssim``, ``ssimulacra2``: the
        ``psnr`` and ``ssim`` columns of those not asked stay empty, and the
        ``ssimulacra2`` column is there only when asked.
    strict : bool
        Refuse a PNG that breaks any rule; see :func:`imageio.read_image`.
    speed : int
        Effort, 1 (smallest files) to 10 (fastest), as for ``encode``; the
        search of `target_psnr` too, as ``encode -k auto --speed`` does.
    target_psnr : float, optional
        Also search every k from 2 to `max_colors` for the smallest whose
        file reaches this PSNR, and add its row (see :func:`report`).
    max_colors : int
        The largest k the search considers, 2..256.

    Returns
    -------
    pandas.DataFrame
        One row per k with the columns of :func:`kqcodec.table.columns`,
        then the searched row; one error row (k missing) if the picture
        cannot be read.

    Raises
    ------
    UsageError
        If a k is outside 2..256, or none is given without `target_psnr`;
        for an unknown space or measure; for `target_psnr` with `dither`
        or `reuse`; for a speed, seed, pixel limit, dither or reuse out of
        range; for a `stem` outside `out`.
    """
    from . import table as tables

    metrics = check_metrics(metrics)
    return tables.frame(picture_rows(path, ks, out=out, stem=stem, name=name, force=force,
                                      seed=seed, max_pixels=max_pixels, space=space,
                                      dither=dither, metrics=metrics, strict=strict, speed=speed,
                                      target_psnr=target_psnr, max_colors=max_colors,
                                      reuse=reuse), metrics)


# An encoding that would land on its own picture (an output folder that
# holds the pictures through a link, say).
_AN_INPUT = f"{{dest}}: output would be the input; choose another {option('out')}"


def _is_the_input(dest, path):
    """True if the encoding `dest` is the picture `path` itself.

    False for a name the system refuses (longer than it allows, say):
    writing it says why, in the picture's row.
    """
    try:
        return dest.exists() and dest.resolve() == path.resolve()
    except OSError:
        return False


def picture_rows(path, ks, *, out, stem, name, force, seed, max_pixels, space, dither, metrics,
                  strict, speed, target_psnr, max_colors, reuse, flags=False):
    """The rows of :func:`report_image`, as dicts."""
    path = file_path(path)
    name = name or printable(path.name)
    stem = Path(stem) if stem is not None else Path(printable(path.stem))
    if stem.is_absolute() or ".." in stem.parts or stem.name in ("", "."):
        raise UsageError(f"stem {str(stem)!r}: a name inside out, without '..'")
    target_psnr, max_colors = check_search(target_psnr, max_colors, dither, reuse)
    ks = check_ks(ks, empty=target_psnr is not None)
    metrics = check_metrics(metrics)
    quantizer.check_space(space)
    dither = check_strength(dither)
    check_reuse(reuse)
    quantizer.check_speed(speed)
    quantizer.check_seed(seed)
    imageio.check_pixel_limit(max_pixels)
    try:
        check_input(path)
        original_bytes = path.stat().st_size
        # The sRGB rendering, as encode quantizes it and a viewer shows it.
        pixels, tags = imageio.read_picture(path, max_pixels=max_pixels, strict=strict)
        hist = quantizer.prepare(pixels)
    except KqcodecError as exc:
        return [error_row(name, None, exc, flags=flags)]
    height, width = pixels.shape[:2]
    known = dict(width=width, height=height, original_bytes=original_bytes)
    original = _Original(pixels)
    rows = []
    for k in ks:
        relative = encoding_name(stem, k)
        dest = Path(out) / relative
        try:
            start = time.perf_counter()
            image = quantizer.quantize(pixels, k, seed=seed, histogram=hist, space=space,
                                       dither=dither, speed=speed, reuse=reuse)
            data = replace(image, color=tags or None).to_png(speed=speed)
            make_folder(dest.parent)
            if _is_the_input(dest, path):
                raise OutputExistsError(_AN_INPUT.format(dest=dest))
            write_bytes(dest, data, force=force)
            seconds = time.perf_counter() - start
            rows.append(dict(_measure(original, dest, known, metrics), image=name, k=k,
                             seconds=seconds, encoded_file=relative, status="ok", error=""))
        except KqcodecError as exc:
            rows.append(error_row(name, k, exc, flags=flags, **known))
    if target_psnr is not None:
        rows.append(_searched_row(path, original, hist, tags, target_psnr, max_colors, space,
                                  out=out, stem=stem, name=name, known=known, metrics=metrics,
                                  force=force, speed=speed, flags=flags))
    return rows


def _searched_row(path, original, hist, tags, target, max_colors, space, *, out, stem, name,
                  known, metrics, force, speed, flags):
    """The row of the k the PSNR search chooses, its file as ``encode -k auto`` writes it.

    Out of reach, the row is the search's largest palette: its PSNR says how
    far it falls short.
    """
    start = time.perf_counter()
    try:
        choice = quantizer.choose_k(original.pixels, target_psnr=target, max_colors=max_colors,
                                    histogram=hist, color=tags or None, space=space, speed=speed)
    except TargetError as exc:
        choice = exc.closest
    relative = encoding_name(stem, choice.k, target)
    dest = Path(out) / relative
    try:
        make_folder(dest.parent)
        if _is_the_input(dest, path):
            raise OutputExistsError(_AN_INPUT.format(dest=dest))
        write_bytes(dest, choice.data, force=force)
    except KqcodecError as exc:
        return error_row(name, choice.k, exc, flags=flags, target_psnr=target, **known)
    return dict(_measure(original, dest, known, metrics), image=name, k=choice.k,
                target_psnr=target, seconds=time.perf_counter() - start,
                encoded_file=relative, status="ok", error="")


def encoding_name(stem, k, target_psnr=None):
    """The name, relative to the report's ``out``, of a picture's encoding at `k`.

    Parameters
    ----------
    stem : path-like
        The picture's name without its extension, relative to the folder.
    k : int
    target_psnr : float, optional
        The PSNR target whose search chose `k`.

    Returns
    -------
    str
        ``<stem>_k<k>.png``, or ``<stem>_k<k>_psnr<target>.png``.
    """
    target = "" if target_psnr is None else f"_psnr{target_psnr:g}"
    return f"{Path(stem).as_posix()}_k{k}{target}.png"


def encodings_of(job):
    """Every file a report job (`picture_rows` keywords) may write, as paths.

    For the search's file, whose k is not known before it ends, one name
    per k it may choose.
    """
    out, stem = Path(job["out"]), job["stem"]
    names = [encoding_name(stem, k) for k in job["ks"]]
    if job.get("target_psnr") is not None:
        names += [encoding_name(stem, k, job["target_psnr"])
                  for k in range(2, job.get("max_colors", 256) + 1)]
    return [out / name for name in names]


def check_ks(ks, empty=False):
    """The palette sizes asked, sorted and without repeats.

    Parameters
    ----------
    ks : int or iterable of int
    empty : bool
        Whether none at all may be asked (a report with a target only).

    Returns
    -------
    list of int

    Raises
    ------
    UsageError
        If a k is outside 2..256 or not an integer, or none is given
        without `empty`.
    """
    if isinstance(ks, int) or (hasattr(ks, "ndim") and ks.ndim == 0):
        ks = [ks]  # report(folder, 16): one k
    try:
        ks = sorted({quantizer.check_k(k) for k in ks})
    except TypeError:
        raise UsageError(f"ks must be palette sizes from 2 to 256, not {ks!r}") from None
    if not ks and not empty:
        raise UsageError("give at least one k")
    return ks


def check_search(target_psnr, max_colors, dither, reuse):
    """Check the options of a report's search for a target PSNR, before any work.

    Parameters
    ----------
    target_psnr : float or None
    max_colors : int
    dither, reuse : float

    Returns
    -------
    (float or None, int)
        The target and the largest k, normalised.

    Raises
    ------
    UsageError
        For values out of range, `reuse` with `dither`, or a target with
        either of them.
    """
    if check_strength(dither) and check_reuse(reuse):
        raise UsageError(f"{option('reuse')} does not go with {option('dither')}")
    if target_psnr is not None:
        target_psnr = check_target(target_psnr)[0]
        if check_strength(dither):
            raise UsageError("the search for a target PSNR does not dither: "
                             "give one or the other")
        if check_reuse(reuse):
            raise UsageError("the search for a target PSNR does not reuse neighbours' entries: "
                             "give one or the other")
    return target_psnr, quantizer.check_k(max_colors)


def _measure(original, dest, known, metrics):
    """Decode the written file with kqcodec's own decoder and measure it against an _Original."""
    data = Path(dest).read_bytes()
    # Decoded once: read_image checks the whole file strictly, the header
    # is read from the chunks alone.
    decoded = imageio.read_image(dest, max_pixels=None, strict=True)
    header = pngread.read_header(data, max_pixels=None)
    encoded = len(data)
    area = known["width"] * known["height"]
    return dict(
        known, colors=len(header.palette), bitdepth=header.bit_depth,
        encoded_bytes=encoded, ratio=known["original_bytes"] / encoded,
        raw_ratio=area * 3 / encoded, bpp=8 * encoded / area,
        **original.scores(decoded, metrics),
    )


class _Original:
    """A picture, and what its measures need of it computed once for all its ks."""

    def __init__(self, pixels):
        self.pixels = pixels
        self.crop = measures.Reference(_centre(pixels))

    def scores(self, decoded, metrics):
        """The `metrics` of a decoding of the picture, as a dict."""
        decoded_crop = _centre(decoded)
        scores = {}
        if "psnr" in metrics:
            scores["psnr"] = measures.psnr(self.pixels, decoded)
        if "ssim" in metrics:
            scores["ssim"] = self.crop.ssim(decoded_crop)
        if "ssimulacra2" in metrics:
            scores["ssimulacra2"] = measures.ssimulacra2(self.crop.pixels, decoded_crop)
        return scores


def _centre(pixels):
    height, width = pixels.shape[:2]
    if height * width <= _CROP * _CROP:
        return pixels
    top = max(0, (height - _CROP) // 2)
    left = max(0, (width - _CROP) // 2)
    return pixels[top:top + _CROP, left:left + _CROP]
