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
