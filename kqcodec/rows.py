"""The report's rows as plain dicts: their columns, the measures, a row for a failure.

Worker processes make rows and nothing more, so this module imports no
pandas: a report's workers start before the parent loads it, and never
load it themselves.  :mod:`kqcodec.table` makes tables of these rows.
"""

from .defaults import METRICS, REPORT_METRICS
from .errors import KqcodecError, OutputKeptError, UsageError, as_flag
from .scan import printable

__all__ = ["COLUMNS", "METRICS", "DEFAULT_METRICS", "columns", "check_metrics", "error_row"]

COLUMNS = [
    "image", "width", "height", "k", "target_psnr", "colors", "bitdepth", "original_bytes",
    "encoded_bytes", "ratio", "raw_ratio", "bpp", "psnr", "ssim", "seconds", "encoded_file",
    "status", "error",
]

DEFAULT_METRICS = REPORT_METRICS


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


def error_row(name, k, error, *, flags=False, **known):
    """One row for a picture or a k that failed.

    Parameters
    ----------
    name : str
        The ``image`` column.
    k : int or None
        None when the picture itself could not be read.
    error : KqcodecError or str
        What went wrong; its one-line message is the ``error`` column (with
        the stray bytes of a file name that is not UTF-8 written as
        ``\\xNN``, see :func:`scan.printable`).  The
        ``status`` is ``kept`` for an :class:`OutputKeptError` (another file
        of that name was there, and is kept), ``error`` otherwise.
    flags : bool
        Say the options the message names as command-line flags
        (``--force``), not as Python code sets them (``force=True``).
    **known
        Columns already known (size of the picture, its output file).

    Returns
    -------
    dict
    """
    row = dict.fromkeys(COLUMNS)
    status = "kept" if isinstance(error, OutputKeptError) else "error"
    message = error.spelled(as_flag) if flags and isinstance(error, KqcodecError) else str(error)
    row.update(known, image=name, k=k, status=status, error=printable(message))
    return row
