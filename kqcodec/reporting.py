"""The size/quality table: for every picture and every k, what it weighs and keeps.

This is the only module that imports pandas, matplotlib and tqdm.  Each
picture is read and its color histogram computed once, then encoded at every
k exactly as ``kqcodec encode`` would, written, decoded back *from the
written file* and measured.  Pictures run in parallel processes, one picture
per process at a time, so memory is bounded by ``jobs`` pictures.
"""

import math
import multiprocessing
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import codec, imageio, metrics, pngfile
from .defaults import REPORT_KS
from .errors import InputError, KqcodecError, OutputExistsError, UsageError, WriteError
from .safefile import atomic_output, check_input, check_output, write_bytes

__all__ = [
    "COLUMNS",
    "DEFAULT_KS",
    "find_images",
    "plan_outputs",
    "report_image",
    "report",
    "recommend",
    "summary",
    "render",
    "check_extra_outputs",
    "save_csv",
    "plot_rate_distortion",
    "compare_sheet",
]

COLUMNS = [
    "image", "width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes",
    "ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds", "status", "error",
]
DEFAULT_KS = REPORT_KS
DEFAULT_TARGET_PSNR = 35.0

# SSIM of a 12 MP photo takes longer than encoding it; beyond this many
# pixels it is computed on the centre crop of this side.
_SSIM_CROP = 1024

_EXTENSIONS = {".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".dib",
               ".tif", ".tiff"}


def find_images(folder, *, recursive=False, exclude=None):
    """List the pictures of a folder by extension, sorted; other files are skipped.

    Parameters
    ----------
    folder : path-like
    recursive : bool
        Descend into sub-folders.
    exclude : path-like, optional
        A folder whose files are never listed (the report's own outputs).

    Returns
    -------
    list of Path

    Raises
    ------
    InputError
        If `folder` is missing or not a folder.
    UsageError
        If `exclude` is `folder` itself.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    skip = Path(exclude).resolve() if exclude is not None else None
    if skip is not None and skip == folder.resolve():
        raise UsageError(f"{exclude}: the output folder must not be the picture folder")
    found = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(
        p for p in found
        if p.is_file() and p.suffix.lower() in _EXTENSIONS
        and not (skip is not None and p.resolve().is_relative_to(skip))
    )


def plan_outputs(images, folder):
    """Output stems, relative to the output folder, one per picture.

    ``<stem>``; when two pictures share a stem (``a.jpg`` and ``a.png``), the
    later ones get ``-<ext>`` and then a number until the name is free.

    Parameters
    ----------
    images : sequence of Path
        As listed by :func:`find_images`.
    folder : path-like

    Returns
    -------
    dict
        Picture name (relative to `folder`, as in the ``image`` column) to
        its output stem (a Path).
    """
    taken, stems = set(), {}
    for path in images:
        rel = Path(path).relative_to(folder)
        stem = rel.with_suffix("")
        candidates = [stem, rel.with_name(f"{rel.stem}-{rel.suffix.lstrip('.').lower()}")]
        number = 2
        while str(candidates[0]).lower() in taken:
            candidates.pop(0)
            if not candidates:
                candidates.append(rel.with_name(f"{rel.stem}-{number}"))
                number += 1
        stems[str(rel)] = candidates[0]
        taken.add(str(candidates[0]).lower())
    return stems


def _error_row(name, k, message, **known):
    row = dict.fromkeys(COLUMNS)
    row.update(known, image=name, k=k, status="error", error=message)
    return row


def report_image(path, ks=DEFAULT_KS, *, out="compressed_outputs", stem=None, name=None,
                 force=False, seed=0, max_pixels=pngfile.DEFAULT_MAX_PIXELS):
    """Encode one picture at every k, write the files, and measure them.

    Parameters
    ----------
    path : path-like
        The picture.
    ks : sequence of int
        Palette sizes, each 2..256.
    out : path-like
        Folder for the encodings, ``<stem>_k<k>.png``; created if missing.
    stem : path-like, optional
        Output stem relative to `out`; the picture's stem by default.
    name : str, optional
        What the ``image`` column says; the file name by default.
    force : bool
        Replace existing encodings whose bytes differ.
    seed : int
    max_pixels : int or None

    Returns
    -------
    pandas.DataFrame
        One row per k with the columns of :data:`COLUMNS`; one error row
        (k missing) if the picture cannot be read.
    """
    path = Path(path)
    name = name or path.name
    stem = Path(stem) if stem is not None else Path(path.stem)
    ks = _check_ks(ks)
    try:
        check_input(path)
        original_bytes = path.stat().st_size
        pixels = imageio.read_image(path, max_pixels=max_pixels)
        hist = codec.prepare(pixels)
    except KqcodecError as exc:
        return _frame([_error_row(name, None, str(exc))])
    height, width = pixels.shape[:2]
    known = dict(width=width, height=height, original_bytes=original_bytes)
    rows = []
    for k in ks:
        dest = Path(out) / f"{stem}_k{k}.png"
        try:
            start = time.perf_counter()
            data = codec.quantize(pixels, k, seed=seed, histogram=hist).to_png()
            _make_folder(dest.parent)
            if dest.exists() and dest.resolve() == path.resolve():
                raise OutputExistsError(f"{dest}: output would be the input; choose another --out")
            write_bytes(dest, data, force=force)
            seconds = time.perf_counter() - start
            rows.append(_measure(name, k, pixels, dest, seconds, known))
        except KqcodecError as exc:
            rows.append(_error_row(name, k, str(exc), **known))
    return _frame(rows)


def _check_ks(ks):
    ks = sorted({codec.check_k(k) for k in ks})
    if not ks:
        raise UsageError("give at least one k")
    return ks


def _make_folder(folder):
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputExistsError(f"{folder}: exists and is not a folder") from None
    except OSError as exc:
        raise WriteError(f"{folder}: cannot create the folder: {exc.strerror}") from None


def _measure(name, k, pixels, dest, seconds, known):
    """Decode the written file with kqcodec's own decoder and fill one row."""
    data = Path(dest).read_bytes()
    header = pngfile.inspect_png(data, max_pixels=None)
    decoded = imageio.read_image(dest, max_pixels=None)
    encoded = len(data)
    area = known["width"] * known["height"]
    return dict(
        known, image=name, k=k, colors=len(header.palette), bitdepth=header.bit_depth,
        encoded_bytes=encoded, ratio=known["original_bytes"] / encoded,
        raw_ratio=area * 3 / encoded, bpp=8 * encoded / area,
        psnr=metrics.psnr(pixels, decoded), ssim=_ssim(pixels, decoded),
        seconds=seconds, status="ok", error="",
    )


def _ssim(reference, test):
    height, width = reference.shape[:2]
    if height * width > _SSIM_CROP * _SSIM_CROP:
        top = max(0, (height - _SSIM_CROP) // 2)
        left = max(0, (width - _SSIM_CROP) // 2)
        window = (slice(top, top + _SSIM_CROP), slice(left, left + _SSIM_CROP))
        reference, test = reference[window], test[window]
    return metrics.ssim(reference, test)


def _frame(rows):
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in ("width", "height", "k", "colors", "bitdepth", "original_bytes",
                   "encoded_bytes"):
        table[column] = table[column].astype("Int64")
    for column in ("ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds"):
        table[column] = table[column].astype(float)
    table["error"] = table["error"].fillna("")
    return table


def _worker_start():
    """Set up a report worker process.

    Ctrl-C is the parent's to handle: it terminates the workers, and SIGTERM
    becomes SystemExit here so that a half-written file is removed on the
    way out.  Each worker uses one BLAS thread: the pool already fills the
    cores, and oversubscription only slows both.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    threadpool_limits(1)


def _exit_on_term(signum, frame):
    raise SystemExit(128 + signum)


def _report_job(job):
    path, kwargs = job
    return report_image(path, **kwargs)


def report(folder, ks=DEFAULT_KS, *, out="compressed_outputs", recursive=False, force=False,
           seed=0, jobs=None, progress=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS):
    """Build the size/quality table of every picture in a folder.

    Parameters
    ----------
    folder : path-like
    ks : sequence of int
        Palette sizes, each 2..256.
    out : path-like
        Where the encodings go (created if missing).
    recursive : bool
        Include pictures in sub-folders (their encodings mirror the tree).
    force : bool
        Replace existing encodings whose bytes differ; without it they are
        kept and their rows say so.
    seed : int
    jobs : int, optional
        Parallel processes; all cores by default.  1 runs in this process.
    progress : bool
        Show a progress bar on stderr.
    max_pixels : int or None

    Returns
    -------
    pandas.DataFrame
        The columns of :data:`COLUMNS`, pictures in name order, k ascending.

    Raises
    ------
    InputError
        If `folder` is missing or holds no pictures.
    """
    folder = Path(folder)
    ks = _check_ks(ks)
    images = find_images(folder, recursive=recursive, exclude=out)
    if not images:
        raise InputError(f"{folder}: no pictures found (PNG, JPEG, WebP, GIF, BMP, TIFF)")
    _make_folder(out)
    stems = plan_outputs(images, folder)
    jobs_list = [
        (path, dict(ks=ks, out=out, stem=stems[str(path.relative_to(folder))],
                    name=str(path.relative_to(folder)), force=force, seed=seed,
                    max_pixels=max_pixels))
        for path in images
    ]
    workers = min(jobs or os.cpu_count() or 1, len(jobs_list))
    bar = _progress(len(jobs_list), progress)
    frames = []
    try:
        if workers <= 1:
            for job in jobs_list:
                frames.append(_report_job(job))
                bar.update()
        else:
            pool = multiprocessing.Pool(workers, initializer=_worker_start)
            try:
                for frame in pool.imap(_report_job, jobs_list):
                    frames.append(frame)
                    bar.update()
            except BaseException:
                pool.terminate()
                raise
            else:
                pool.close()
            finally:
                pool.join()
    finally:
        bar.close()
    table = pd.concat(frames, ignore_index=True)
    # Where each picture's encodings are, for compare_sheet.
    table.attrs["stems"] = {name: str(stem) for name, stem in stems.items()}
    return table


def _progress(total, enabled):
    from tqdm import tqdm

    return tqdm(total=total, unit="image", disable=not enabled, file=sys.stderr,
                desc="report", leave=False)


def recommend(table, target_psnr=DEFAULT_TARGET_PSNR):
    """The smallest k whose PSNR reaches the target, per picture.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`report`.
    target_psnr : float
        In dB.

    Returns
    -------
    pandas.DataFrame
        Columns ``image``, ``k`` (missing when no k reaches the target),
        ``psnr``, ``encoded_bytes`` and ``note``.
    """
    rows = []
    for name, group in table.groupby("image", sort=False):
        ok = group[group["status"] == "ok"].sort_values("k")
        if ok.empty:
            rows.append(dict(image=name, k=pd.NA, psnr=np.nan, encoded_bytes=pd.NA,
                             note="no k could be measured"))
            continue
        good = ok[ok["psnr"] >= target_psnr]
        if good.empty:
            best = ok.loc[ok["psnr"].idxmax()]
            rows.append(dict(image=name, k=pd.NA, psnr=np.nan, encoded_bytes=pd.NA,
                             note=f"no k reaches {target_psnr:g} dB (best: k={best['k']}, "
                                  f"{best['psnr']:.2f} dB)"))
            continue
        pick = good.iloc[0]
        rows.append(dict(image=name, k=pick["k"], psnr=pick["psnr"],
                         encoded_bytes=pick["encoded_bytes"],
                         note=f"k={pick['k']} reaches {target_psnr:g} dB"))
    result = pd.DataFrame(rows, columns=["image", "k", "psnr", "encoded_bytes", "note"])
    result["k"] = result["k"].astype("Int64")
    return result


def summary(table):
    """Medians across pictures, per k: compression ratio, PSNR, bits per pixel.

    Parameters
    ----------
    table : pandas.DataFrame

    Returns
    -------
    pandas.DataFrame
        Indexed by k, columns ``images``, ``median_ratio``, ``median_psnr``,
        ``median_bpp``.
    """
    ok = table[table["status"] == "ok"]
    grouped = ok.groupby("k")
    return pd.DataFrame({
        "images": grouped["image"].count(),
        "median_ratio": grouped["ratio"].median(),
        "median_psnr": grouped["psnr"].median(),
        "median_bpp": grouped["bpp"].median(),
    })


def render(table, fmt="table", target_psnr=DEFAULT_TARGET_PSNR):
    """Format the report for the terminal or another program.

    Parameters
    ----------
    table : pandas.DataFrame
    fmt : {'table', 'markdown', 'csv', 'json'}
        ``table`` is the aligned text grouped by picture, with each picture's
        recommended k and the per-k summary; the others give the full table.
    target_psnr : float

    Returns
    -------
    str
    """
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        # JSON has no infinity: a lossless encoding's PSNR is written as null.
        return table.to_json(orient="records", indent=1)
    if fmt == "markdown":
        return table.to_markdown(index=False, floatfmt=".3f")
    columns = ["image", "k", "colors", "bitdepth", "encoded_bytes", "ratio", "bpp", "psnr", "ssim",
               "seconds"]
    if (table["status"] != "ok").any():
        columns += ["status", "error"]
    shown = table[columns]
    recs = recommend(table, target_psnr).set_index("image")["note"]
    parts = []
    for name, group in shown.groupby("image", sort=False):
        parts.append(f"== {name}  ({recs.get(name, '')})")
        text = group.drop(columns="image").to_string(index=False, float_format=_number,
                                                     na_rep="-")
        parts.append(text)
        parts.append("")
    parts.append("== median over pictures, per k")
    parts.append(summary(table).to_string(float_format=_number))
    return "\n".join(parts) + "\n"


def _number(value):
    if math.isinf(value):
        return "inf"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"


#: Extensions of the figures --plot and --compare may write.
FIGURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")


def check_extra_outputs(images, *, csv=None, plot=None, compare=None, force=False):
    """Refuse, before any work, extra outputs that would lose data or cannot be written.

    Parameters
    ----------
    images : sequence of Path
        The pictures the report reads: none may be overwritten.
    csv, plot, compare : path-like, optional
    force : bool
        Allow replacing existing files (never an input).

    Raises
    ------
    UsageError
        For a figure extension matplotlib is not asked to write.
    OutputExistsError
        For an existing file without `force`, or an input picture.
    """
    for option, path in (("--plot", plot), ("--compare", compare)):
        if path is not None and Path(path).suffix.lower() not in FIGURE_FORMATS:
            raise UsageError(f"{option} {path}: use one of {', '.join(FIGURE_FORMATS)}")
    for path in (csv, plot, compare):
        if path is None:
            continue
        for image in images:
            check_output(path, source=image, force=True)
        check_output(path, force=force)


def save_csv(table, path, *, force=False):
    """Write the full table as CSV, atomically.

    Parameters
    ----------
    table : pandas.DataFrame
    path : path-like
    force : bool
        Replace an existing file.
    """
    with atomic_output(path, force=force) as stream:
        stream.write(table.to_csv(index=False).encode())


def plot_rate_distortion(table, path, *, force=False):
    """Save a rate-distortion figure: bits per pixel against PSNR, a line per picture.

    Parameters
    ----------
    table : pandas.DataFrame
    path : path-like
        PNG (or any format matplotlib saves by extension).
    force : bool
        Replace an existing file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[(table["status"] == "ok") & np.isfinite(table["psnr"])]
    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    for name, group in ok.groupby("image", sort=False):
        group = group.sort_values("k")
        ax.plot(group["bpp"], group["psnr"], marker="o", label=name)
        for _, row in group.iterrows():
            ax.annotate(str(row["k"]), (row["bpp"], row["psnr"]), textcoords="offset points",
                        xytext=(3, 3), fontsize=7)
    ax.set_xlabel("bits per pixel (PNG size x 8 / pixels)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title("kqcodec: size against quality, labelled with k")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    _save_figure(fig, path, force)


def _save_figure(fig, path, force):
    import matplotlib.pyplot as plt

    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    try:
        with atomic_output(path, force=force) as stream:
            fig.savefig(stream, format=fmt)
    finally:
        plt.close(fig)


def compare_sheet(table, folder, path, *, out="compressed_outputs", target_psnr=DEFAULT_TARGET_PSNR,
                  per_image=4, force=False):
    """Save a sheet showing each picture beside its encodings at a few k.

    Parameters
    ----------
    table : pandas.DataFrame
    folder : path-like
        The folder the pictures were read from.
    path : path-like
        The sheet to write (PNG).
    out : path-like
        Where the encodings were written.
    target_psnr : float
        The recommended k (see :func:`recommend`) is always among those shown.
    per_image : int
        Encodings shown per picture (at least 2).
    force : bool
        Replace an existing file.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = table[table["status"] == "ok"]
    names = list(dict.fromkeys(ok["image"]))
    if not names:
        return
    recs = {name: (None if pd.isna(k) else int(k))
            for name, k in recommend(table, target_psnr)[["image", "k"]].itertuples(index=False)}
    stems = table.attrs.get("stems") or {
        name: str(stem) for name, stem in
        plan_outputs(find_images(folder, recursive=True, exclude=out), folder).items()
    }
    fig, axes = plt.subplots(len(names), per_image + 1, figsize=(2.6 * (per_image + 1),
                             2.6 * len(names)), dpi=100, squeeze=False)
    for row_axes, name in zip(axes, names):
        group = ok[ok["image"] == name].sort_values("k")
        chosen = _pick_ks(list(group["k"]), recs.get(name), per_image)
        original = imageio.read_image(Path(folder) / name, max_pixels=None)
        _show(row_axes[0], original, f"{name}\noriginal, {group['original_bytes'].iloc[0]:,} B")
        for ax, k in zip(row_axes[1:], chosen):
            entry = group[group["k"] == k].iloc[0]
            decoded = imageio.read_image(Path(out) / f"{stems[name]}_k{k}.png", max_pixels=None)
            mark = " (recommended)" if k == recs.get(name) else ""
            _show(ax, decoded, f"k={k}{mark}\n{entry['encoded_bytes']:,} B, "
                               f"{_number(entry['psnr'])} dB")
        for ax in row_axes[1 + len(chosen):]:
            ax.axis("off")
    fig.tight_layout()
    _save_figure(fig, path, force)


def _pick_ks(ks, recommended, count):
    """Spread `count` k values over those measured, always including the recommended one."""
    if len(ks) <= count or count < 2:
        return ks[:max(count, 1)] if count < 2 else ks
    picks = {ks[round(i * (len(ks) - 1) / (count - 1))] for i in range(count)}
    if recommended is not None and recommended not in picks:
        picks.discard(min(picks, key=lambda k: abs(k - recommended)))
        picks.add(recommended)
    return sorted(picks)


def _show(ax, pixels, caption):
    # Downsample by striding: a preview, not a resampling.
    step = max(1, max(pixels.shape[:2]) // 400)
    ax.imshow(pixels[::step, ::step], interpolation="nearest")
    ax.set_title(caption, fontsize=7)
    ax.axis("off")
