"""The report as a table: its columns, the recommended k, medians per k, CSV.

This is the only module that imports pandas.  A row is one picture at one
k; a picture that cannot be read has a single row with ``k`` missing.
"""

import numpy as np
import pandas as pd

from .defaults import METRICS, REPORT_METRICS, TARGET_PSNR
from .errors import UsageError
from .safefile import atomic_output

__all__ = ["COLUMNS", "METRICS", "DEFAULT_METRICS", "columns", "check_metrics", "frame",
           "error_row", "concat", "recommend", "recommended_ks", "summary", "save_csv",
           "csv_text", "read_csv", "in_order", "done_rows"]

COLUMNS = [
    "image", "width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes",
    "ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds", "encoded_file", "status", "error",
]

DEFAULT_METRICS = REPORT_METRICS

_INTEGERS = ("width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes")
_FLOATS = ("ratio", "raw_ratio", "bpp", "psnr", "ssim", "ssimulacra2", "seconds")


def columns(metrics=DEFAULT_METRICS):
    """The columns of a report computing `metrics`: :data:`COLUMNS`, plus
    ``ssimulacra2`` after ``ssim`` when it is among them.

    Parameters
    ----------
    metrics : sequence of str

    Returns
    -------
    list of str
    """
    if "ssimulacra2" not in metrics:
        return list(COLUMNS)
    at = COLUMNS.index("ssim") + 1
    return COLUMNS[:at] + ["ssimulacra2"] + COLUMNS[at:]


def check_metrics(metrics):
    """Return `metrics` as a tuple in the order of :data:`METRICS`.

    Parameters
    ----------
    metrics : sequence of str

    Returns
    -------
    tuple of str

    Raises
    ------
    UsageError
        For an unknown measure, or none.
    """
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = sorted(set(metrics) - set(METRICS))
    if unknown:
        raise UsageError(f"unknown measure {', '.join(unknown)}; use {', '.join(METRICS)}")
    if not metrics:
        raise UsageError("give at least one measure")
    return tuple(m for m in METRICS if m in metrics)
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


def frame(rows, metrics=DEFAULT_METRICS):
    """The table of a list of rows, with the column types of :data:`COLUMNS`.

    Parameters
    ----------
    rows : list of dict
        Keys among :data:`COLUMNS`; missing ones are empty.
    metrics : sequence of str
        The measures computed: see :func:`columns`.

    Returns
    -------
    pandas.DataFrame
        Integer columns are nullable ``Int64``, measures ``float64``,
        ``encoded_file`` and ``error`` strings ('' when empty).
    """
    table = pd.DataFrame(rows, columns=columns(metrics))
    for column in _INTEGERS:
        table[column] = table[column].astype("Int64")
    for column in _FLOATS:
        if column in table:
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


def _target(target_psnr, target_ssimulacra2):
    """The measure a recommendation uses, its threshold, and how to write them."""
    if target_ssimulacra2 is not None:
        return "ssimulacra2", float(target_ssimulacra2), "SSIMULACRA2 {:g}", "{:.1f}"
    return "psnr", float(target_psnr), "{:g} dB", "{:.2f} dB"


def recommend(table, target_psnr=TARGET_PSNR, *, target_ssimulacra2=None):
    """The smallest k whose PSNR (or SSIMULACRA2) reaches the target, per picture.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`.
    target_psnr : float
        In dB.
    target_ssimulacra2 : float, optional
        Recommend by this SSIMULACRA2 score instead of PSNR; the table must
        have the ``ssimulacra2`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``image``, ``k`` (missing when no k reaches the target),
        ``psnr`` (``ssimulacra2`` with that target), ``encoded_bytes`` and
        ``note``.

    Raises
    ------
    UsageError
        If the table lacks the measure the target names.
    """
    column, target, reach, value = _target(target_psnr, target_ssimulacra2)
    if column not in table:
        raise UsageError(f"the table has no {column} column to recommend a k by")
    goal = reach.format(target)
    rows = []
    for name, group in table.groupby("image", sort=False):
        ok = group[(group["status"] == "ok") & group[column].notna()].sort_values("k")
        if ok.empty:
            rows.append({"image": name, "k": pd.NA, column: np.nan, "encoded_bytes": pd.NA,
                         "note": "no k could be measured"})
            continue
        good = ok[ok[column] >= target]
        if good.empty:
            best = ok.loc[ok[column].idxmax()]
            rows.append({"image": name, "k": pd.NA, column: np.nan, "encoded_bytes": pd.NA,
                         "note": f"no k reaches {goal} (best: k={best['k']}, "
                                 f"{value.format(best[column])})"})
            continue
        pick = good.iloc[0]
        rows.append({"image": name, "k": pick["k"], column: pick[column],
                     "encoded_bytes": pick["encoded_bytes"],
                     "note": f"k={pick['k']} reaches {goal}"})
    result = pd.DataFrame(rows, columns=["image", "k", column, "encoded_bytes", "note"])
    result["k"] = result["k"].astype("Int64")
    return result


def recommended_ks(table, target_psnr=TARGET_PSNR, *, target_ssimulacra2=None):
    """The recommended k of each picture, as plain Python values.

    Parameters
    ----------
    table : pandas.DataFrame
    target_psnr : float
        In dB.
    target_ssimulacra2 : float, optional
        See :func:`recommend`.

    Returns
    -------
    dict
        Picture name to its k (int), or None when no k reaches the target.
    """
    recs = recommend(table, target_psnr, target_ssimulacra2=target_ssimulacra2)
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
        ``median_bpp``, and ``median_ssimulacra2`` when the table has it.
    """
    ok = table[table["status"] == "ok"]
    grouped = ok.groupby("k")
    medians = pd.DataFrame({
        "images": grouped["image"].count(),
        "median_ratio": grouped["ratio"].median(),
        "median_psnr": grouped["psnr"].median(),
        "median_bpp": grouped["bpp"].median(),
    })
    if "ssimulacra2" in table:
        medians["median_ssimulacra2"] = grouped["ssimulacra2"].median()
    return medians


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
        stream.write(csv_text(table).encode())


def csv_text(table, *, header=True):
    """The table as CSV text, floats written so that they read back exactly.

    Parameters
    ----------
    table : pandas.DataFrame
    header : bool
        Start with the line of column names.

    Returns
    -------
    str
    """
    return table.to_csv(index=False, header=header)


def read_csv(source, metrics=DEFAULT_METRICS):
    """A table saved by :func:`csv_text`, with the column types of :func:`frame`.

    Parameters
    ----------
    source : path-like or file object
    metrics : sequence of str
        The measures the table holds: see :func:`columns`.

    Returns
    -------
    pandas.DataFrame
        Equal to the table that was saved.

    Raises
    ------
    ValueError
        If the text is not CSV with the columns of ``columns(metrics)``.
    """
    # Read as text and let Python parse the numbers: float() gives back
    # exactly the float to_csv wrote, whatever pandas' own parser would.
    try:
        table = pd.read_csv(source, dtype=str, keep_default_na=False)
    except pd.errors.ParserError as exc:
        raise ValueError(str(exc)) from None
    expected = columns(metrics)
    if list(table.columns) != expected:
        raise ValueError(f"its columns are not {', '.join(expected)}")
    for column in _INTEGERS + _FLOATS:
        if column in table:
            table[column] = table[column].replace("", "nan").astype(float)
    return frame(table, metrics)


def in_order(table, names):
    """The rows sorted as a report gives them: pictures in `names` order, k ascending.

    Parameters
    ----------
    table : pandas.DataFrame
    names : sequence of str
        Picture names, as in the ``image`` column.

    Returns
    -------
    pandas.DataFrame
        A picture's row without k (it could not be read) comes first.
    """
    order = table["image"].map({name: i for i, name in enumerate(names)})
    table = table.assign(_order=order).sort_values(["_order", "k"], kind="stable",
                                                   na_position="first")
    return table.drop(columns="_order").reset_index(drop=True)


def done_rows(table, names, ks):
    """The rows that need no new work: succeeded, for one of `names` and `ks`.

    Parameters
    ----------
    table : pandas.DataFrame
    names : sequence of str
    ks : sequence of int

    Returns
    -------
    pandas.DataFrame
        At most one row per (picture, k), the last one given.
    """
    done = table[(table["status"] == "ok") & table["image"].isin(list(names))
                 & table["k"].isin(list(ks))]
    return done.drop_duplicates(["image", "k"], keep="last").reset_index(drop=True)
