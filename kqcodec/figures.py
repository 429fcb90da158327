"""The report's figures: the rate-distortion plot and the comparison sheet.

This is the only module that imports matplotlib.  Figures are made with
``matplotlib.figure.Figure`` and saved through its own canvas, so the
caller's pyplot state and backend are never touched.
"""

import io
import warnings
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import imageio
from .defaults import TARGET_PSNR
from .errors import ProfileWarning
from .safefile import atomic_output
from .scan import source_path
from .table import recommended_ks, searched
from .textreport import number

#: Pictures a comparison sheet shows at most: 300 made a sheet of 78,000 pixels
#: by 1,300 that took 43 s and 1.4 GB to draw, and that Pillow refuses to open.
SHEET_PICTURES = 24

__all__ = ["plot_rate_distortion", "compare_sheet"]


def plot_rate_distortion(table, path, *, force=False):
    """Save a rate-distortion figure: bits per pixel against PSNR, a line per picture.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`.
    path : path-like
        PNG (or any format matplotlib saves by extension).
    force : bool
        Replace an existing file.

    Returns
    -------
    bool
        False, and nothing written, when no picture has a point to plot:
        every encoding failed or is exact (PSNR infinite).  Exact
        encodings are left out of the others' lines too.

    Raises
    ------
    OutputExistsError
        If `path` exists and `force` is false.
    WriteError
        If writing fails; nothing is left behind.
    """
    ok = table[(table["status"] == "ok") & np.isfinite(table["psnr"])]
    if ok.empty:
        return False
    fig = Figure(figsize=(8, 5.5), dpi=110)
    ax = fig.add_subplot()
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
    return True


def _save_figure(fig, path, force):
    fmt = Path(path).suffix.lstrip(".").lower() or "png"
    # Drawn before the temporary file exists: a process killed while it
    # draws leaves none behind.
    drawn = io.BytesIO()
    fig.savefig(drawn, format=fmt)
    with atomic_output(path, force=force) as stream:
        stream.write(drawn.getbuffer())


def compare_sheet(table, folder, path, *, out="compressed_outputs", target_psnr=TARGET_PSNR,
                  target_ssimulacra2=None,
                  per_image=4, max_pictures=SHEET_PICTURES, force=False):
    """Save a sheet showing each picture beside its encodings at a few k.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`; the ``encoded_file`` column
        says where each encoding is.
    folder : path-like
        The folder the pictures were read from.
    path : path-like
        The sheet to write (PNG).
    out : path-like
        Where the encodings were written.
    target_psnr, target_ssimulacra2 : float
        The recommended k (see :func:`kqcodec.table.recommend`) is always
        among those shown.
    per_image : int
        Encodings shown per picture (at least 2).
    max_pictures : int
        Pictures shown, the first ones of the table; the sheet's title says
        how many more there are (the report page, ``--html``, shows every
        one at full size).
    force : bool
        Replace an existing file.

    Returns
    -------
    bool
        Whether the sheet was written: not when no picture was encoded.

    Raises
    ------
    OutputExistsError
        If `path` exists and `force` is false.
    WriteError
        If writing fails; nothing is left behind.
    """
    ok = table[table["status"] == "ok"]
    names = list(dict.fromkeys(ok["image"]))
    if not names:
        return False
    recs = recommended_ks(table, target_psnr, target_ssimulacra2=target_ssimulacra2)
    left_out = max(0, len(names) - max_pictures)
    names = names[:max_pictures]
    title = 0.4 * bool(left_out)  # inches above the rows for the title
    fig = Figure(figsize=(2.6 * (per_image + 1), 2.6 * len(names) + title), dpi=100)
    if left_out:
        # Placed in inches from the top: matplotlib's default (a fraction of
        # the height) lands inside the first row of a tall sheet.
        fig.suptitle(f"the first {len(names)} pictures of {len(names) + left_out}", fontsize=9,
                     y=1 - 0.1 / fig.get_figheight(), va="top")
    axes = fig.subplots(len(names), per_image + 1, squeeze=False)
    for row_axes, name in zip(axes, names):
        group = ok[ok["image"] == name]
        entries = {row["k"]: row
                   for _, row in group[~searched(group)].sort_values("k").iterrows()}
        found = group[searched(group, target_psnr)]
        if (target_ssimulacra2 is None and recs.get(name) is not None and len(found)
                and found["k"].iloc[-1] == recs[name]):
            # The searched encoding is the recommended k's; a listed k may
            # be recommended instead (smaller, or the search found none).
            entries[recs[name]] = found.iloc[-1]
        chosen = _pick_ks(sorted(entries), recs.get(name), per_image)
        with warnings.catch_warnings():
            # What the picture's file breaks was said when the report read it.
            warnings.simplefilter("ignore", imageio.KqcodecWarning)
            warnings.simplefilter("ignore", ProfileWarning)
            original = imageio.read_image(source_path(folder, name), max_pixels=None)
        _show(row_axes[0], original, f"{name}\noriginal, {group['original_bytes'].iloc[0]:,} B")
        for ax, k in zip(row_axes[1:], chosen):
            entry = entries[k]
            decoded = imageio.read_image(Path(out) / entry["encoded_file"], max_pixels=None)
            mark = " (recommended)" if k == recs.get(name) else ""
            _show(ax, decoded, f"k={k}{mark}\n{entry['encoded_bytes']:,} B, "
                               f"{number(entry['psnr'])} dB")
        for ax in row_axes[1 + len(chosen):]:
            ax.axis("off")
    # tight_layout places the axes alone: the title's band is kept out of it.
    fig.tight_layout(rect=(0, 0, 1, 1 - title / fig.get_figheight()))
    _save_figure(fig, path, force)
    return True


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
