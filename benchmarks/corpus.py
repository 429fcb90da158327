"""The pictures a benchmark runs on: ../shared/corpus/public unless given.

Imported by the scripts beside it (``python benchmarks/NAME.py`` puts this
folder on the import path).
"""

from pathlib import Path

DEFAULT_FOLDER = Path(__file__).resolve().parents[1].parent / "shared/corpus/public"
SUFFIXES = {".png", ".jpg", ".jpeg", ".webp", ".gif", ".bmp", ".tif", ".tiff"}


def pictures(paths=()):
    """The pictures among `paths` (files, or folders for the pictures in them), in order.

    Parameters
    ----------
    paths : iterable of Path
        Empty for the pictures of ``DEFAULT_FOLDER``.

    Returns
    -------
    list of Path
        A folder's pictures sorted by name, files as given.
    """
    found = []
    for path in paths or [DEFAULT_FOLDER]:
        found += sorted(p for p in path.iterdir() if p.suffix.lower() in SUFFIXES) \
            if path.is_dir() else [path]
    return found


def add_search_arguments(parser):
    """Add the arguments of the size-search benchmarks: pictures, and budgets as shares.

    Parameters
    ----------
    parser : argparse.ArgumentParser

    Returns
    -------
    callable
        ``args -> list of float``: the budgets parsed, as shares of the k=256 file.
    """
    parser.add_argument("paths", nargs="*", type=Path,
                        help="pictures or folders (default ../shared/corpus/public)")
    parser.add_argument("--budgets", default="0.5,0.33",
                        help="budgets as shares of the k=256 file (default 0.5,0.33)")
    return lambda args: [float(share) for share in args.budgets.split(",")]
