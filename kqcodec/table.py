"""The report as a table: the recommended k, medians per k, CSV.

This is the only module that imports pandas.  A row is one picture at one
k; a picture that cannot be read has a single row with ``k`` missing.  The
columns, the measures and the rows as dicts are defined in
:mod:`kqcodec.rows`, which needs no pandas.
"""

import numpy as np
import pandas as pd

from .defaults import TARGET_PSNR
from .errors import UsageError
from .rows import COLUMNS, DEFAULT_METRICS, METRICS, check_metrics, columns, error_row
from .safefile import atomic_output

__all__ = ["COLUMNS", "METRICS", "DEFAULT_METRICS", "columns", "check_metrics", "frame",
           "error_row", "concat", "searched", "recommend", "recommended_ks", "summary",
           "save_csv", "csv_text", "read_csv", "in_order", "done_rows"]

_INTEGERS = ("width", "height", "k", "colors", "bitdepth", "original_bytes", "encoded_bytes")
_FLOATS = ("target_psnr", "ratio", "raw_ratio", "bpp", "psnr", "ssim", "ssimulacra2", "seconds")
_TEXTS = ("encoded_file", "error")


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


def searched(table, target_psnr=None):
    """Which rows hold the k a PSNR search chose, rather than a k of the list.

    Parameters
    ----------
    table : pandas.DataFrame
    target_psnr : float, optional
        Only the rows of a search for this target.

    Returns
    -------
    pandas.Series of bool
        All false for a table without the ``target_psnr`` column (one made
        before it existed).
    """
    if "target_psnr" not in table:
        return pd.Series(False, index=table.index)
    if target_psnr is not None:
        return table["target_psnr"] == target_psnr
    return table["target_psnr"].notna()


def recommend(table, target_psnr=TARGET_PSNR, *, target_ssimulacra2=None):
    """The smallest k whose PSNR (or SSIMULACRA2) reaches the target, per picture.

    A picture with a searched row for `target_psnr` (see
    :func:`kqcodec.report`) is recommended that row's k: the search tried
    every k up to its bound, and that k reaches the target while k - 1, as
    the search encoded it, does not.  A k of the list that reaches the
    target is recommended instead when it is smaller, or when the search
    found none (each k of the list is encoded apart, and can come out a
    little better than the search's own encoding of it).  Otherwise the
    smallest k of the list that reaches the target is recommended.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`.
    target_psnr : float
        In dB.
    target_ssimulacra2 : float, optional
        Recommend by this SSIMULACRA2 score instead of PSNR, among the ks of
        the list; the table must have the ``ssimulacra2`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``image``, ``k`` (missing when no k reaches the target),
        ``psnr`` (``ssimulacra2`` with that target), ``encoded_bytes``,
        ``searched`` (True when the k comes from a search) and ``note``.

    Raises
    ------
    UsageError
        If the table lacks the measure the target names.
    """
    column, target, reach, value = _target(target_psnr, target_ssimulacra2)
    if column not in table:
        raise UsageError(f"the table has no {column} column to recommend a k by")
    goal = reach.format(target)
    usable = (table["status"] == "ok") & table[column].notna()
    found = searched(table, target) & (target_ssimulacra2 is None)
    rows = []
    for name, group in table[usable & ~searched(table)].groupby("image", sort=False):
        rows.append(_from_list(name, group, column, target, goal, value))
    by_name = {row["image"]: row for row in rows}
    for name, group in table[usable & found].groupby("image", sort=False):
        chosen = _from_search(name, group.iloc[-1], column, target, goal, value)
        listed = by_name.get(name)
        if (listed is not None and not pd.isna(listed["k"])
                and (pd.isna(chosen["k"]) or listed["k"] < chosen["k"])):
            # A listed k, encoded apart from the search, reached the target
            # below the k the search found (its own encodings of those ks
            # fell short), or where the search did not go.
            found_k = (f"k={chosen['k']}" if not pd.isna(chosen["k"])
                       else f"none up to k={group.iloc[-1]['k']}")
            chosen = dict(listed, note=f"{listed['note']} (a listed k; the search found {found_k})")
        by_name[name] = chosen
    missing = {"k": pd.NA, column: np.nan, "encoded_bytes": pd.NA, "searched": False,
               "note": "no k could be measured"}
    result = pd.DataFrame([by_name.get(name, dict(missing, image=name))
                           for name in dict.fromkeys(table["image"])],
                          columns=["image", "k", column, "encoded_bytes", "searched", "note"])
    result["k"] = result["k"].astype("Int64")
    return result


def _from_list(name, ok, column, target, goal, value):
    ok = ok.sort_values("k")
    good = ok[ok[column] >= target]
    if good.empty:
        best = ok.loc[ok[column].idxmax()]
        return {"image": name, "k": pd.NA, column: np.nan, "encoded_bytes": pd.NA,
                "searched": False,
                "note": f"no k reaches {goal} (best: k={best['k']}, {value.format(best[column])})"}
    pick = good.iloc[0]
    return {"image": name, "k": pick["k"], column: pick[column],
            "encoded_bytes": pick["encoded_bytes"], "searched": False,
            "note": f"k={pick['k']} reaches {goal}"}


def _from_search(name, row, column, target, goal, value):
    k = row["k"]
    if row[column] < target:
        # The search wrote its largest palette to show how far it falls short.
        return {"image": name, "k": pd.NA, column: np.nan, "encoded_bytes": pd.NA,
                "searched": True,
                "note": f"searched: no k up to {k} reaches {goal} "
                        f"(k={k}: {value.format(row[column])})"}
    below = f", k={k - 1} does not" if k > 2 else ""
    return {"image": name, "k": k, column: row[column], "encoded_bytes": row["encoded_bytes"],
            "searched": True,
            "note": f"searched: k={k} reaches {goal}{below}; {value.format(row[column])}, "
                    f"{row['encoded_bytes']:,} bytes"}


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
        Searched rows are left out: their k differs from picture to picture.
    """
    ok = table[(table["status"] == "ok") & ~searched(table)]
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
        A picture's row without k (it could not be read) comes first; a
        searched row comes after the row of the list at the same k.
    """
    order = table["image"].map({name: i for i, name in enumerate(names)})
    table = table.assign(_order=order).sort_values(["_order", "k", "target_psnr"],
                                                   kind="stable", na_position="first")
    return table.drop(columns="_order").reset_index(drop=True)


def done_rows(table, names, ks, target_psnr=None):
    """The rows that need no new work: succeeded, for one of `names` and `ks`.

    Parameters
    ----------
    table : pandas.DataFrame
    names : sequence of str
    ks : sequence of int
    target_psnr : float, optional
        The target of the PSNR search: its searched rows are kept too,
        those of any other target dropped.

    Returns
    -------
    pandas.DataFrame
        At most one row per (picture, k) of the list and one searched row
        per picture, the last one given.
    """
    ok = table[(table["status"] == "ok") & table["image"].isin(list(names))]
    listed = ok[ok["k"].isin(list(ks)) & ~searched(ok)].drop_duplicates(["image", "k"],
                                                                          keep="last")
    found = ok[searched(ok, target_psnr)] if target_psnr is not None else ok.iloc[:0]
    found = found.drop_duplicates("image", keep="last")
    return pd.concat([listed, found]).sort_index().reset_index(drop=True)
