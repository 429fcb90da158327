"""The report as a table: its columns, the recommended k, medians per k, CSV.

This is the only module that imports pandas.  A row is one picture at one
k; a picture that cannot be read has a single row with ``k`` missing.
"""

import numpy as np
import pandas as pd

from .defaults import TARGET_PSNR
from .safefile import atomic_output

__all__ = ["COLUMNS", "frame", "error_row", "concat", "recommend", "recommended_ks", "summary", "save_csv"]

COLUMNS = [
    "image", "width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes",
    "ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds", "encoded_file", "status", "error",
]

_INTEGERS = ("width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes")
_FLOATS = ("ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds")
_TEXTS = ("encoded_file", "error")


def error_row(name, k, message, **known):
    """One row for a picture or a k that failed.

    Parameters
    ----------
    name : str
        The ``image`` column.
    k : int or None
        None when the picture itself could not be read.
    message : str
        The one-line reason, the ``error`` column.
    **known
        Columns already known (size of the picture, its output file).

    Returns
    -------
    dict
    """
    row = dict.fromkeys(COLUMNS)
    row.update(known, image=name, k=k, status="error", error=message)
    return row


def frame(rows):
    """The table of a list of rows, with the column types of :data:`COLUMNS`.

    Parameters
    ----------
    rows : list of dict
        Keys among :data:`COLUMNS`; missing ones are empty.

    Returns
    -------
    pandas.DataFrame
        Integer columns are nullable ``Int64``, measures ``float64``,
        ``encoded_file`` and ``error`` strings ('' when empty).
    """
    table = pd.DataFrame(rows, columns=COLUMNS)
    for column in _INTEGERS:
        table[column] = table[column].astype("Int64")
    for column in _FLOATS:
        table[column] = table[column].astype(float)
    for column in _TEXTS:
        table[column] = table[column].fillna("")
    return table


def concat(frames):
    """One table from the tables of several pictures, in the order given.

    Parameters
    ----------
    frames : list of pandas.DataFrame
        As made by :func:`frame`; at least one.

    Returns
    -------
    pandas.DataFrame
    """
    return pd.concat(frames, ignore_index=True)


def recommend(table, target_psnr=TARGET_PSNR):
    """The smallest k whose PSNR reaches the target, per picture.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`.
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


def recommended_ks(table, target_psnr=TARGET_PSNR):
    """The recommended k of each picture, as plain Python values.

    Parameters
    ----------
    table : pandas.DataFrame
    target_psnr : float
        In dB.

    Returns
    -------
    dict
        Picture name to its k (int), or None when no k reaches the target.
    """
    recs = recommend(table, target_psnr)
    return {name: (None if pd.isna(k) else int(k))
            for name, k in recs[["image", "k"]].itertuples(index=False)}


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


def save_csv(table, path, *, force=False):
    """Write the full table as CSV, atomically.

    Parameters
    ----------
    table : pandas.DataFrame
    path : path-like
    force : bool
        Replace an existing file.

    Raises
    ------
    OutputExistsError
        If `path` exists and `force` is false.
    WriteError
        If writing fails; nothing is left behind.
    """
    with atomic_output(path, force=force) as stream:
        stream.write(table.to_csv(index=False).encode())
