"""The report as one interactive HTML page, to choose k by looking at the pictures.

The page is self-contained: its CSS and JavaScript (``assets/report.css``
and ``assets/report.js``, written for it, plain DOM) are inlined and it
loads nothing from the network.  The table goes in once, as a JSON blob the
script renders from.  Pictures are never inlined: the page links the
encodings in ``--out`` and the original pictures by relative, URL-encoded
paths, so the page, ``--out`` and the picture folder can be moved together.
An original a browser would not show as kqcodec read it (TIFF, BMP, an
animation, CMYK) gets a PNG copy of the pixels kqcodec compared against, in
the folder ``<page stem>_files`` beside the page.
"""

import html
import json
import math
import os
import warnings
from collections import Counter
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from . import __version__, imageio
from .defaults import TARGET_PSNR
from .errors import ProfileWarning
from .safefile import atomic_output
from .scan import source_path
from .table import recommend, recommended_ks, searched

__all__ = ["write_page", "page_data"]

# Measures keep 4 significant digits: enough to rank encodings, and it keeps
# the data of 1,000 pictures at 8 k each near half a megabyte.
_DIGITS = 4


def write_page(table, path, *, folder, out="compressed_outputs", target_psnr=TARGET_PSNR,
               target_ssimulacra2=None, force=False):
    """Write the interactive report page.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`; every column is shown, and
        every numeric column can be plotted.
    path : path-like
        The page, ``.html``.
    folder : path-like
        The folder the pictures were read from.
    out : path-like
        Where the encodings were written.
    target_psnr : float
        In dB; the recommended k of each picture is marked.
    target_ssimulacra2 : float, optional
        Recommend by this SSIMULACRA2 score instead (the table must have the
        ``ssimulacra2`` column).
    force : bool
        Replace an existing page (and the copies beside it).

    Raises
    ------
    OutputExistsError
        If the page exists and `force` is false.
    WriteError
        If writing fails; no partial page is left.
    """
    path = Path(path)
    data = page_data(table, path.parent, folder=folder, out=out, target_psnr=target_psnr,
                     target_ssimulacra2=target_ssimulacra2,
                     copies=path.parent / f"{path.stem}_files", force=force)
    title = f"kqcodec report: {Path(folder).resolve().name or folder}"
    text = _render(title, data)
    with atomic_output(path, force=force) as stream:
        stream.write(text.encode("utf-8"))


def page_data(table, page_folder, *, folder, out, target_psnr=TARGET_PSNR,
              target_ssimulacra2=None, copies=None, force=False):
    """The JSON-ready content of the page, compact enough for 1,000 pictures.

    Each column is stored once, in the smallest of a few forms: once per
    picture when constant within each picture (its size); one sequence
    shared by most pictures, with the others apart (k, colors); per row
    otherwise; measures as integers with a per-column count of decimals
    (4 significant digits at the column's median magnitude); text as the
    length it shares with the picture's name plus a coded remainder (the
    encodings' file names).

    Parameters
    ----------
    table : pandas.DataFrame
        Rows of one picture may be anywhere, but are stored best together.
    page_folder : path-like
        Where the page will be: links are relative to it.
    folder, out : path-like
        The pictures' folder and the encodings' folder.
    target_psnr : float
    target_ssimulacra2 : float, optional
        As for :func:`write_page`.
    copies : path-like, optional
        Folder for PNG copies of originals a browser would not show as
        kqcodec read them; without it every original is linked as it is.
    force : bool
        Replace existing copies, and remove those of an earlier page that
        this one does not link.

    Returns
    -------
    dict
        Keys ``version``, ``target`` (the column and value the recommended
        k reaches, and whether a search chose it: then the recommended row
        is the searched one), ``n_rows``, ``names`` (the
        pictures, in order of first row), ``runs`` (``[picture, count]``
        for each run of consecutive rows of one picture), ``recommended``
        (k or None per picture), ``recommended_searched`` (per picture,
        whether that k's row is the searched one, not the list's),
        ``originals`` (URL of `folder`),
        ``copies`` (picture index to the URL of its copy), ``encodings``
        (URL of `out`), ``columns`` (name and kind: ``int``, ``float`` or
        ``text``), ``store`` (their values) and ``medians`` (per k, every
        numeric column that varies within a picture, searched rows left
        out).

    Raises
    ------
    WriteError
        If a copy cannot be written.
    """
    page_folder = Path(page_folder).resolve()
    names = list(dict.fromkeys(table["image"]))
    index = {name: i for i, name in enumerate(names)}
    row_picture = [index[name] for name in table["image"]]
    runs = []
    for picture in row_picture:
        if runs and runs[-1][0] == picture:
            runs[-1][1] += 1
        else:
            runs.append([picture, 1])
    recs = recommended_ks(table, target_psnr, target_ssimulacra2=target_ssimulacra2)
    # Whose recommended row is the searched one: a listed k may be
    # recommended although the picture was searched too (see table.recommend).
    chosen = recommend(table, target_psnr, target_ssimulacra2=target_ssimulacra2)
    by_search = set(chosen.loc[chosen["searched"].astype(bool), "image"])
    target = (dict(column="psnr", value=target_psnr, unit=" dB",
                   searched=bool(searched(table, target_psnr).any()))
              if target_ssimulacra2 is None
              else dict(column="ssimulacra2", value=target_ssimulacra2, unit="", searched=False))
    copied = {}
    if copies is not None:
        # A picture that could not be read has nothing to show; one whose
        # encodings were kept (not written anew) was read.
        shown = set(table.loc[table["status"] != "error", "image"])
        for i, name in enumerate(names):
            if name not in shown:
                continue
            source = source_path(folder, name)
            # A name that is not the file's own (not UTF-8, see
            # scan.printable) cannot lead a browser to it: a copy can.
            if source.exists() and (source != Path(folder) / name
                                    or not imageio.shown_as_read(source)):
                dest = _viewable_copy(source, Path(copies) / f"original-{i}.png", force)
                copied[str(i)] = _url(dest, page_folder)
        if force:
            # An earlier page's copies that this one does not link: its pictures
            # differ, and a copy left there would pass for one of this page's.
            linked = {f"original-{i}.png" for i in copied}
            for stale in sorted(Path(copies).glob("original-*.png")):
                if stale.name not in linked and stale.is_file():
                    stale.unlink()
    columns, store = [], {}
    for column in table.columns:
        kind = _kind(table[column])
        columns.append(dict(name=column, kind=kind))
        store[column] = ({"names": 1} if column == "image"
                         else _store(table[column], row_picture, names, kind,
                                     column in _OF_THE_PICTURE))
    numeric = [c["name"] for c in columns
               if c["kind"] != "text" and c["name"] not in _OF_THE_PICTURE]
    return dict(
        version=__version__, target=target, n_rows=len(table), names=names,
        runs=runs, recommended=[recs.get(name) for name in names],
        recommended_searched=[name in by_search for name in names],
        originals=_url(Path(folder), page_folder), copies=copied,
        encodings=_url(Path(out), page_folder), columns=columns, store=store,
        medians=_medians(table, numeric),
    )


def _viewable_copy(source, dest, force):
    # The pixels the report measured, with the color tags its encodings carry.
    with warnings.catch_warnings():
        # What the picture's file breaks was said when the report read it.
        warnings.simplefilter("ignore", imageio.KqcodecWarning)
        warnings.simplefilter("ignore", ProfileWarning)
        pixels, tags = imageio.read_picture(source, max_pixels=None)
    dest.parent.mkdir(parents=True, exist_ok=True)
    imageio.write_image(dest, pixels, force=force, color=tags or None)
    return dest


def _url(path, page_folder):
    """A relative URL from the page to `path`, every unsafe byte %-encoded."""
    relative = Path(os.path.relpath(Path(path).resolve(), page_folder)).as_posix()
    return quote(relative, safe="/")


def _kind(series):
    if series.dtype.kind in "iu" or str(series.dtype) == "Int64":
        return "int"
    if series.dtype.kind == "f":
        return "float"
    return "text"


def _decimals(values):
    """Decimals that give 4 significant digits at the values' median magnitude."""
    finite = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v) and v != 0]
    if not finite:
        return 0
    magnitude = math.floor(math.log10(sorted(finite)[len(finite) // 2]))
    return min(max(_DIGITS - 1 - magnitude, 0), 9)


def _value(value, kind, decimals=0):
    # Missing values come as None, NaN or pandas' NA, which has no truth value.
    if value is None or (isinstance(value, float) and math.isnan(value)) or str(value) == "<NA>":
        return None
    if kind == "int":
        return int(value)
    if kind == "float":
        value = float(value)
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"  # JSON has no infinity
        return round(value * 10**decimals)
    return str(value)


# Columns that describe the picture, not an encoding of it: stored once per
# picture, and neither charted nor in the medians.  Another column is stored
# so only when the rows show it constant within pictures (one k per picture
# shows every column so, the measures too), and is charted all the same.
_OF_THE_PICTURE = {"width", "height", "original_bytes"}


def _store(series, row_picture, names, kind, of_the_picture=False):
    raw = series.tolist()
    if kind == "float":
        raw = [None if v is None else float(v) for v in raw]
    decimals = _decimals(raw) if kind == "float" else 0
    values = [_value(v, kind, decimals) for v in raw]
    extra = {"decimals": decimals} if kind == "float" else {}
    own = [[] for _ in names]
    for picture, value in zip(row_picture, values):
        own[picture].append(value)
    if ((of_the_picture or any(len(group) > 1 for group in own))
            and all(len(set(map(json.dumps, group))) <= 1 for group in own)):
        # Stored once per picture; still a measure of the encodings unless
        # it describes the picture (bit depth 8 at every k is a measure).
        described = {"described": 1} if of_the_picture else {}
        return {"picture": [group[0] if group else None for group in own], **described, **extra}
    if kind != "text":
        # The k, colors and bit depth columns repeat one sequence per picture.
        sequence, count = Counter(tuple(group) for group in own).most_common(1)[0]
        if count * 2 > len(own):
            other = {str(p): group for p, group in enumerate(own) if tuple(group) != sequence}
            return {"each": list(sequence), "other": other, **extra}
        return {"row": values, **extra}
    # File names are their picture's name, less the extension, plus a few
    # characters: the part shared with the name, as a length, and a coded
    # remainder ("_k16.png"), the same for every picture.
    shared = [len(os.path.commonprefix([v for v in group if v is not None] + [name]))
              for group, name in zip(own, names)]
    rests = [None if v is None else v[shared[p]:] for p, v in zip(row_picture, values)]
    vocabulary = list(dict.fromkeys(r for r in rests if r is not None))
    code = {rest: i for i, rest in enumerate(vocabulary)}
    return {"shared": shared, "words": vocabulary,
            "codes": [-1 if r is None else code[r] for r in rests]}


def _medians(table, numeric):
    ok = table[(table["status"] == "ok") & table["k"].notna() & ~searched(table)]
    numeric = [name for name in numeric if name not in ("k", "target_psnr")]
    grouped = ok.groupby("k")
    result = {"columns": ["k", "images"] + numeric, "rows": []}
    for k, group in grouped:
        row = [int(k), len(group)]
        for name in numeric:
            values = group[name].dropna().astype(float)
            median = float(values.median()) if len(values) else None
            if median is not None and not math.isfinite(median):
                median = str(median)
            elif median is not None and (median.is_integer() or group[name].dtype.kind in "iu"
                                         or str(group[name].dtype) == "Int64"):
                median = round(median)  # a count of bytes or colors, whole
            elif median is not None:
                median = float(f"{median:.{_DIGITS}g}")
            row.append(median)
        result["rows"].append(row)
    return result


def _json(data):
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # Inside <script> only "</" and "<!--" matter; "<" only occurs in strings,
    # where \u003c is the same character to JSON.parse.
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _asset(name):
    return resources.files(__package__).joinpath("assets", name).read_text(encoding="utf-8")


def _render(title, data):
    return _PAGE.format(
        title=html.escape(title), heading=html.escape(title),
        css=_asset("report.css"), js=_asset("report.js"), data=_json(data),
    )


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src 'self' file: data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<link rel="icon" href="data:,">
<title>{title}</title>
<style>
{css}
</style>
</head>
<body>
<header><h1>{heading}</h1><p id="summary"></p></header>
<noscript><p>This page needs JavaScript to show the report.</p></noscript>
<main id="app"></main>
<script type="application/json" id="report-data">{data}</script>
<script>
{js}
</script>
</body>
</html>
"""
