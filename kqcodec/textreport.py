"""The report as text: the grouped table for a terminal, or CSV, JSON, markdown."""

import json
import math

from .defaults import REPORT_FORMATS, TARGET_PSNR
from .errors import UsageError
from .table import recommend, summary

__all__ = ["FORMATS", "render"]

#: What ``render`` can print.
FORMATS = REPORT_FORMATS

# The terminal table leaves out what only a program needs.
_SHOWN = ["image", "k", "target_psnr", "colors", "bitdepth", "encoded_bytes", "ratio", "bpp", "psnr", "ssim",
          "ssimulacra2", "seconds"]


def _one_line(text):
    """`text` on one line: its line breaks written as ``\\n`` and ``\\r``."""
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _markdown_text(text):
    """A markdown table cell of `text` (None stays an empty cell)."""
    return None if text is None else _one_line(str(text)).replace("|", "\\|")


def render(table, fmt="table", target_psnr=TARGET_PSNR, *, target_ssimulacra2=None):
    """Format the report for the terminal or another program.

    Parameters
    ----------
    table : pandas.DataFrame
        As returned by :func:`kqcodec.report`.
    fmt : {'table', 'markdown', 'csv', 'json'}
        ``table`` is the aligned text grouped by picture, with each picture's
        recommended k and the per-k summary; the others give the full table.
    target_psnr, target_ssimulacra2 : float
        The recommendation's target (see :func:`kqcodec.table.recommend`).

    Returns
    -------
    str

    Raises
    ------
    UsageError
        For a `fmt` not in :data:`FORMATS`.
    """
    if fmt not in FORMATS:
        raise UsageError(f"the report's format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt == "json":
        # JSON has no infinity: pandas writes a lossless encoding's PSNR as
        # null.  Its writer also escapes every "/" of a path and every
        # non-ASCII letter of a name; read back and written again, they are
        # as the user typed them.
        records = json.loads(table.to_json(orient="records"))
        return json.dumps(records, indent=1, ensure_ascii=False)
    if fmt == "markdown":
        # Missing values (pandas.NA in the integer columns) become None, an
        # empty cell: older tabulate releases test cells for truth, which NA refuses.
        cells = table.astype(object).where(table.notna(), None)
        # A "|" in a file name would start a cell, a line break a row.
        for column in ("image", "encoded_file", "error"):
            cells[column] = cells[column].map(_markdown_text)
        return cells.to_markdown(index=False, floatfmt=".3f")
    # The searched rows' column only when a search ran.
    columns = [c for c in _SHOWN if c in table
               and (c != "target_psnr" or table[c].notna().any())]
    if (table["status"] != "ok").any():
        columns += ["status", "error"]
    shown = table[columns]
    recs = recommend(table, target_psnr,
                     target_ssimulacra2=target_ssimulacra2).set_index("image")["note"]
    parts = []
    for name, group in shown.groupby("image", sort=False):
        parts.append(f"== {_one_line(name)}  ({recs.get(name, '')})")
        group = group.drop(columns="image")
        # to_string leaves pandas' <NA> in nullable integer columns (the k,
        # colors and bit depth of a row that failed): '-' as elsewhere.
        for column in group.columns:
            if str(group[column].dtype) == "Int64":
                group[column] = group[column].astype(object).where(group[column].notna(),
                                                                   "-").astype(str)
        text = group.to_string(index=False, float_format=number, na_rep="-")
        parts.append(text)
        parts.append("")
    parts.append("== median over pictures, per k")
    medians = summary(table)
    parts.append(medians.to_string(float_format=number) if len(medians)
                 else "(none: no encoding is ok)")
    return "\n".join(parts) + "\n"


def number(value):
    """A measure as the text table shows it: 3 decimals, 1 from 100 up, ``inf``.

    Parameters
    ----------
    value : float

    Returns
    -------
    str
    """
    if math.isinf(value):
        return "inf"
    return f"{value:.3f}" if abs(value) < 100 else f"{value:.1f}"
