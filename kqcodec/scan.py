"""What a report reads and writes, decided before any work.

The pictures of a folder, the names their encodings take, and the checks
that the extra outputs (CSV, figures, page) lose nothing.  No heavy imports:
the command runs these checks before the report starts.
"""

import os
import re
from pathlib import Path

from .defaults import K_RANGE
from .errors import FORCE_OPTION, InputError, OutputExistsError, UsageError, WriteError, option
from .journal import FILENAME, OPTIONS
from .safefile import check_output

__all__ = ["EXTENSIONS", "FIGURE_FORMATS", "PAGE_FORMATS", "find_images", "none_found",
           "plan_outputs",
           "printable", "source_path",
           "free_stem", "check_extra_outputs", "followed"]

#: File name extensions of the pictures a report reads.
EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".jpe", ".webp", ".gif", ".bmp", ".dib",
                        ".tif", ".tiff"})

#: Extensions of the figures --plot and --compare may write.
FIGURE_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg", ".tif", ".tiff", ".webp")

#: Extensions of the page --html writes.
PAGE_FORMATS = (".html", ".htm")


def _resolved_folder(folder):
    """The output folder with its links followed.

    Raises
    ------
    WriteError
        If its links go round in a loop: nothing could be written there.
    """
    try:
        return Path(folder).resolve()
    except (RuntimeError, OSError):  # RuntimeError up to Python 3.12, OSError since
        raise WriteError(f"{folder}: cannot write there: its symbolic links go round in a "
                         "loop") from None


def find_images(folder, *, recursive=False, exclude=None):
    """List the pictures of a folder by extension, sorted; other files are skipped.

    Parameters
    ----------
    folder : path-like
    recursive : bool
        Descend into sub-folders.
    exclude : path-like, optional
        The output folder: where it is inside `folder`, its files are
        never listed (the report's own outputs).  It may hold `folder`
        only when sub-folders are not read: their mirrored outputs could
        land among the pictures.

    Returns
    -------
    list of Path

    Raises
    ------
    InputError
        If `folder` is missing, not a folder, or (or one of its sub-folders,
        with `recursive`) cannot be read.
    UsageError
        If `exclude` is `folder` itself, or holds it and `recursive` is set.
    WriteError
        If `exclude`'s symbolic links go round in a loop.
    """
    folder = Path(folder)
    if not folder.is_dir():
        if folder.exists():
            raise InputError(f"{folder}: not a folder (a report reads the pictures of a folder)")
        raise InputError(f"{folder}: no such folder")
    skip = _resolved_folder(exclude) if exclude is not None else None
    if skip is not None and skip == folder.resolve():
        raise UsageError(f"{exclude}: the output folder must not be the picture folder")
    if skip is not None and folder.resolve().is_relative_to(skip):
        if recursive:
            raise UsageError(f"{exclude}: the output folder must not hold the picture folder "
                             f"with {option('recursive', 'recursive=True')}: its sub-folders' "
                             "outputs could land among the pictures")
        # Outputs go to the output folder itself, beside the picture folder:
        # none of the pictures is one of them.
        skip = None
    return sorted(
        p for p in _listed(folder, recursive)
        if p.is_file() and p.suffix.lower() in EXTENSIONS
        and not (skip is not None and p.resolve().is_relative_to(skip))
    )


def none_found(names, folders, *, recursive=False, exclude=None):
    """The error of inputs that hold no picture, saying where sub-folders hold some.

    Parameters
    ----------
    names : str
        The inputs, as the message names them.
    folders : sequence of path-like
        The folders among them.
    recursive : bool
        Whether their sub-folders were read.
    exclude : path-like, optional
        As for :func:`find_images`.

    Returns
    -------
    InputError
    """
    message = f"{names}: no pictures found (PNG, JPEG, WebP, GIF, BMP, TIFF)"
    if not recursive:
        for folder in folders:
            try:
                below = find_images(folder, recursive=True, exclude=exclude)
            except (InputError, UsageError, WriteError):
                continue
            if below:
                # Pictures in sub-folders only: what a user expects to be read.
                message += (f"; {below[0].parent} holds some: read the sub-folders with "
                            f"{option('recursive', 'recursive=True')}")
                break
    return InputError(message)


def _listed(folder, recursive):
    """Every entry of `folder` (and of its sub-folders, not followed through links).

    A folder that cannot be read is an error, not an empty folder: its
    pictures would be left out of a run that says it is done.
    """
    def unreadable(exc):
        raise InputError(f"{exc.filename}: cannot read the folder: {exc.strerror}") from None

    if not recursive:
        try:
            return [folder / name for name in os.listdir(folder)]
        except OSError as exc:
            unreadable(exc)
    found = []
    for top, folders, files in os.walk(folder, onerror=unreadable):
        found += [Path(top, name) for name in folders + files]
    return found


def printable(name):
    """`name` as text that can be written anywhere, one name for each file.

    A file name that is not UTF-8 (Latin-1 names from old archives) comes
    from the system as a str with surrogates, which no UTF-8 file, JSON
    encoder or font accepts; its stray bytes are written as ``\\xNN``,
    and a backslash as two, as ``ls -b`` shows them, so that no two names
    give the same text.

    Parameters
    ----------
    name : str

    Returns
    -------
    str
        `name` itself when it is UTF-8 without a backslash.
    """
    escaped = name.replace("\\", "\\\\")
    return escaped.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def source_path(folder, name):
    """The picture in `folder` that a table names `name` (see :func:`printable`).

    Parameters
    ----------
    folder : path-like
    name : str
        The ``image`` column: the path relative to `folder`, printable.

    Returns
    -------
    Path
        ``folder / name`` with what :func:`printable` escaped undone.
    """
    def unescaped(match):
        code = match.group(1)
        return "\\" if code == "\\" else chr(0xDC00 + int(code[1:], 16))

    return Path(folder) / re.sub(r"\\(\\|x[89a-f][0-9a-f])", unescaped, name)


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
        Picture name (relative to `folder`, :func:`printable`, as in the
        ``image`` column) to its output stem (a Path).
    """
    taken, stems = set(), {}
    for path in images:
        name = printable(str(Path(path).relative_to(folder)))
        stems[name] = free_stem(Path(name), taken)
    return stems


def free_stem(rel, taken, suffix=""):
    """The first output stem for `rel` not in `taken`, which it joins.

    ``<stem><suffix>``, else ``<stem>-<ext><suffix>``, else
    ``<stem>-<n><suffix>`` for n = 2, 3, ...; compared without case, since
    some file systems ignore it.

    Parameters
    ----------
    rel : Path
        The picture's path relative to its folder.
    taken : set of str
        Lower-cased stems already given out; updated.
    suffix : str
        Text after the stem.

    Returns
    -------
    Path
    """
    # "..png" has the stem ".", which names no file.
    stem = rel.stem if rel.stem not in (".", "..") else rel.stem.replace(".", "_")
    candidates = [rel.with_name(stem + suffix),
                  rel.with_name(f"{stem}-{rel.suffix.lstrip('.').lower()}{suffix}")]
    number = 2
    while str(candidates[0]).lower() in taken:
        candidates.pop(0)
        if not candidates:
            candidates.append(rel.with_name(f"{stem}-{number}{suffix}"))
            number += 1
    taken.add(str(candidates[0]).lower())
    return candidates[0]


def check_extra_outputs(images, *, csv=None, plot=None, compare=None, html=None, force=False,
                        folder=None, out=None):
    """Refuse, before any work, extra outputs that would lose data or cannot be written.

    Parameters
    ----------
    images : sequence of Path
        The pictures the report reads: none may be overwritten.
    csv, plot, compare, html : path-like, optional
    force : bool
        Allow replacing existing files (never an input).
    folder, out : path-like, optional
        The report's picture and output folders, given together: the
        table, its options and the encodings the report writes in `out`
        (``<stem>_k<k>.png`` for the stems of :func:`plan_outputs`) are
        never an extra output.

    Raises
    ------
    UsageError
        For a figure extension matplotlib is not asked to write, a page not
        named ``.html``, or two extra outputs of one name.
    OutputExistsError
        For an existing file without `force`, an input picture, or a file
        the report itself writes; for a page, in its folder of copies too.
    WriteError
        For an output whose folder does not exist.
    """
    for name, path, formats in (("plot", plot, FIGURE_FORMATS),
                                ("compare", compare, FIGURE_FORMATS), ("html", html, PAGE_FORMATS)):
        if path is not None and Path(path).suffix.lower() not in formats:
            raise UsageError(f"{option(name)} {path}: use one of {', '.join(formats)}")
    given = {}
    for name, path in (("csv", csv), ("plot", plot), ("compare", compare), ("html", html)):
        if path is None:
            continue
        same = given.setdefault(followed(path), name)
        if same != name:
            raise UsageError(f"{path}: {option(same)} and {option(name)} would write the same file")
        for image in images:
            check_output(path, source=image, force=True)
        check_output(path, force=force)
        if (out is not None and folder is not None
                and _written_by_report(Path(path), images, folder, out)):
            raise OutputExistsError(f"{path}: the report writes this file itself; "
                                    "choose another name")
        # The folder the name is in: a link there is replaced, not followed.
        if not Path(path).absolute().parent.is_dir():
            raise WriteError(f"{path}: cannot create the output: its folder does not exist")
    if html is not None:
        _check_page_copies(Path(html), images, force)


def _check_page_copies(page, images, force):
    """Refuse a page whose folder of copies (``<stem>_files``) would lose data.

    The page writes there a PNG copy of each picture a browser cannot show,
    ``original-<n>.png``; which ones is known only as it is written.
    """
    copies = page.parent / f"{page.stem}_files"
    where = followed(copies)
    for image in images:
        if where in followed(image).parents:
            raise OutputExistsError(f"{image}: a picture in {copies}, where the page writes "
                                    "its copies; give the page another name")
    if (copies.exists() or copies.is_symlink()) and not copies.is_dir():
        # Only known as the page is written: whether it needs the folder.
        raise OutputExistsError(f"{copies}: not a folder, where the page writes its copies; "
                                "give the page another name")
    if not force and copies.is_dir() and any(copies.glob("original-*.png")):
        raise OutputExistsError(f"{copies}: holds the copies of an earlier page; use "
                                f"{FORCE_OPTION} to replace them")


# <stem>_k<k>.png, and <stem>_k<k>_psnr<DB>.png for the encoding a search chose.
_ENCODING_NAME = re.compile(r"(.*)_k([0-9]+)(?:_psnr[^/]*)?\.png")


def followed(path):
    """`path`, absolute, with its links followed as far as they go.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Path
        As ``Path.resolve()``; for links that go round in a loop, the
        absolute path as given (writing there fails, and says so).
    """
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):  # a loop: RuntimeError up to Python 3.12, OSError since
        return Path(path).absolute()


def _written_by_report(path, images, folder, out):
    """True if `path` is the table, its options or an encoding the report writes in `out`."""
    out = followed(out)
    path = followed(path)
    if path.parent == out and path.name in (FILENAME, OPTIONS):
        return True
    if not path.is_relative_to(out):
        return False
    match = _ENCODING_NAME.fullmatch(path.relative_to(out).as_posix())
    if match is None or int(match.group(2)) not in K_RANGE:
        return False
    stems = {stem.as_posix() for stem in plan_outputs(images, folder).values()}
    return match.group(1) in stems
