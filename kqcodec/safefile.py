"""Writing an output so that nothing is ever lost or left half-written.

The bytes go to a temporary file beside the destination, are flushed and
fsync'ed, and only then take the destination's name.  Without ``force`` the
final step is a hard link, which fails rather than replace a file that
appeared meanwhile.  On any failure the temporary file is removed and the
destination is untouched.
"""

import contextlib
import errno
import os
import re
import stat
from pathlib import Path

from .errors import (FORCE_OPTION, InputError, OutputExistsError, OutputKeptError, UsageError,
                     WriteError)

__all__ = ["file_path", "check_input", "check_output", "check_png_name", "make_folder",
           "is_stream", "atomic_output", "write_bytes", "remove_left_behind"]

# The end of the temporary files atomic_output writes beside the destination.
_TMP = ".tmp"


def file_path(value, *, output=False):
    """`value` as a Path, checked as every file name kqcodec takes is (see :func:`_as_path`).

    Parameters
    ----------
    value : path-like
    output : bool
        Whether it names an output, which may not end in a separator.

    Returns
    -------
    Path

    Raises
    ------
    UsageError
        If `value` is no file name, is empty, holds NUL, or, as an
        `output`, ends in a separator.
    """
    return _as_path(value, output)


def _as_path(value, output=False):
    """`value` as a Path; a UsageError, not pathlib's TypeError, for anything else.

    Also for names that Path would take as another: the empty one ('.'),
    one holding NUL (the system's calls refuse it with a ValueError), and,
    for an `output`, one ending in a separator (Path drops it: ``out.png/``
    wrote ``out.png``).
    """
    try:
        path = Path(value)
    except TypeError:
        raise UsageError(f"expected a file name (str or path-like), not {type(value).__name__}"
                         ) from None
    name = os.fspath(value)
    if not name:
        raise UsageError("an empty file name")
    if "\0" in name:
        raise UsageError(f"{name!r}: a file name holding a NUL character")
    if output and name.endswith(os.sep):
        raise UsageError(f"{name}: names a folder; give the file to write")
    return path


def check_input(path):
    """Return `path` as a Path after checking that it is a readable file.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    Path

    Raises
    ------
    InputError
        If the path does not exist, is a directory, or cannot be opened.
    UsageError
        If `path` is not a file name (a file object, say).
    """
    path = _as_path(path)
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot open: {exc.strerror}") from None
    return path


def check_output(dest, *, source=None, force=False):
    """Refuse a destination that would lose data, before any work is done.

    Parameters
    ----------
    dest : path-like
        Where the output will go.
    source : path-like, optional
        The input; the output may never be the same file, even with `force`
        (a symlink or hard link to the input counts as the same file).
    force : bool
        Allow replacing an existing regular file.

    Returns
    -------
    Path
        `dest`.

    Raises
    ------
    OutputExistsError
        If `dest` is the input, exists without `force`, or is a directory or
        block device.
    WriteError
        If `dest` cannot even be examined.
    UsageError
        If `dest` is not a file name, or ends in a separator.
    """
    dest = _as_path(dest, output=True)
    try:
        st = os.stat(dest)
    except (FileNotFoundError, OSError) as exc:
        if not (isinstance(exc, FileNotFoundError) or exc.errno == errno.ELOOP):
            raise WriteError(f"{dest}: cannot check the output: {exc.strerror}") from None
        if os.path.islink(dest) and not force:
            # A link that leads nowhere (or round in a loop) still takes the name.
            raise OutputKeptError(f"{dest}: already exists, a symbolic link that leads nowhere "
                                  f"(use {FORCE_OPTION} to replace it)") from None
        if not isinstance(exc, FileNotFoundError) and not os.path.islink(dest):
            raise WriteError(f"{dest}: cannot check the output: {exc.strerror}") from None
        return dest
    if source is not None and os.path.exists(source) and os.path.samefile(source, dest):
        raise OutputExistsError(f"{dest}: output is the input file; choose another name")
    if stat.S_ISDIR(st.st_mode):
        raise OutputExistsError(f"{dest}: is a directory; give a file name")
    if stat.S_ISREG(st.st_mode):
        if not force:
            raise OutputKeptError(f"{dest}: already exists (use {FORCE_OPTION} to replace it)")
    elif not (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
        raise OutputExistsError(f"{dest}: is not a regular file")
    return dest


def check_png_name(dest, writer):
    """Refuse a file name that does not say PNG for what `writer` writes as a PNG.

    A user who names the output ``photo.jpg`` expects a JPEG, and would get
    a PNG under a JPEG's name.  Streams (``/dev/stdout``) have no say.

    Parameters
    ----------
    dest : path-like
    writer : str
        What writes it, for the message (``encode``).

    Raises
    ------
    UsageError
        If `dest` does not end in ``.png`` (in any case) and is not a stream.
    """
    if _as_path(dest).suffix.lower() != ".png" and not is_stream(dest):
        raise UsageError(f"{dest}: {writer} writes a PNG; give the output a .png name")


def make_folder(folder):
    """Create `folder` and its parents where missing.

    Parameters
    ----------
    folder : path-like

    Raises
    ------
    OutputExistsError
        If `folder` exists and is not a folder.
    WriteError
        If it cannot be created (no permission, or a parent that is a file).
    """
    try:
        _as_path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        if os.path.islink(folder) and not os.path.exists(folder):
            raise WriteError(f"{folder}: cannot write there: a symbolic link that leads nowhere "
                             "or round in a loop") from None
        raise OutputExistsError(f"{folder}: exists and is not a folder") from None
    except OSError as exc:
        raise WriteError(f"{folder}: cannot create the folder: {exc.strerror}") from None


def is_stream(path):
    """True for an existing character device or FIFO, which is written in place.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    bool
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)


@contextlib.contextmanager
def atomic_output(dest, *, force=False):
    """Open a binary file that becomes `dest` only if the block succeeds.

    Parameters
    ----------
    dest : path-like
        The final name.  A character device or FIFO (``/dev/stdout``) is
        written directly, since it cannot be renamed over.
    force : bool
        Replace an existing regular file.

    Yields
    ------
    file object
        Opened for binary writing.

    Raises
    ------
    WriteError
        If creating, writing, syncing or renaming fails (disk full, file too
        large, I/O error, missing folder).  The destination is then absent or
        byte-identical to what it was, and no temporary file remains.
    OutputExistsError
        If `dest` exists and `force` is false.
    UsageError
        If `dest` is not a file name, or ends in a separator.
    """
    dest = _as_path(dest, output=True)
    if is_stream(dest):
        try:
            with open(dest, "wb") as stream:
                yield stream
                stream.flush()
        except OSError as exc:
            raise WriteError(f"{dest}: write failed: {exc.strerror or exc}") from None
        return

    # A short prefix of the name keeps the temporary name legal when the
    # destination's own name is near the 255-byte limit.  The random part
    # comes from os.urandom, as secrets.token_hex would take it, without
    # importing secrets (hmac and OpenSSL's hashes: 10 ms of every start).
    tmp = dest.with_name(f".{dest.name[:64]}.{os.urandom(4).hex()}{_TMP}")
    try:
        # O_EXCL: never reuse a file someone else created; mode 0o666 lets
        # the umask decide the final permissions as for any new file.
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise WriteError(f"{dest}: cannot create the output: {exc.strerror}") from None
    except BaseException:
        # A signal's exception (Ctrl-C, a worker's SIGTERM) raised as the
        # call returned, the file made (the likely way one was left behind
        # in 1 of 80 runs of a test stopping a batch with two Ctrl-Cs).
        _remove(tmp)
        raise
    try:
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        _publish(tmp, dest, force)
    except OSError as exc:
        _remove(tmp)
        raise WriteError(f"{dest}: write failed: {exc.strerror or exc}") from None
    except BaseException:
        _remove(tmp)
        raise


def remove_left_behind(*dests):
    """Remove the temporary files of `dests` that a killed process left (see :func:`atomic_output`).

    Only for destinations no other process is writing: a batch's output
    or a report's encodings whose worker process was killed (SIGKILL
    leaves no way to clean up).  Each folder is listed once.

    Parameters
    ----------
    *dests : path-like

    Returns
    -------
    list of Path
        The files removed.
    """
    patterns = {}
    for dest in map(_as_path, dests):
        patterns.setdefault(dest.parent, set()).add(
            re.escape(f".{dest.name[:64]}.") + "[0-9a-f]{8}" + re.escape(_TMP))
    removed = []
    for folder, names in patterns.items():
        pattern = re.compile("|".join(sorted(names)))
        with contextlib.suppress(OSError):
            for entry in os.scandir(folder):
                if pattern.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                    _remove(Path(entry.path), quiet=True)
                    removed.append(Path(entry.path))
    return removed


def _publish(tmp, dest, force):
    """Give `tmp` the name `dest`; without `force`, never replace a file."""
    if force:
        os.replace(tmp, dest)
    else:
        try:
            os.link(tmp, dest)
        except FileExistsError:
            raise OutputKeptError(f"{dest}: already exists (use {FORCE_OPTION} to replace it)"
                                  ) from None
        except OSError:
            # Some file systems have no hard links; fall back to a check.
            if os.path.lexists(dest):
                raise OutputKeptError(f"{dest}: already exists (use {FORCE_OPTION} to replace "
                                      "it)") from None
            os.replace(tmp, dest)
            return
        # The output is complete under its name: a leftover temporary name
        # is not worth reporting a failure for.
        _remove(tmp, quiet=True)
    _sync_dir(dest.parent)


def _sync_dir(folder):
    """Make the rename durable; not every platform can fsync a folder."""
    try:
        fd = os.open(folder if str(folder) else ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove(path, quiet=False):
    with contextlib.suppress(OSError if quiet else FileNotFoundError):
        os.unlink(path)


def write_bytes(dest, data, *, force=False):
    """Write `data` to `dest` atomically, unless `dest` already holds exactly it.

    Parameters
    ----------
    dest : path-like
    data : bytes
    force : bool
        Replace a `dest` whose content differs.

    Returns
    -------
    bool
        True if the file was written, False if it already held `data`.

    Raises
    ------
    OutputExistsError
        If `dest` exists with other content and `force` is false.
    WriteError
        If writing fails.
    """
    dest = _as_path(dest)
    try:
        if dest.is_file() and dest.stat().st_size == len(data) and dest.read_bytes() == data:
            return False
    except OSError as exc:
        if exc.errno == errno.ENAMETOOLONG:
            raise WriteError(f"{dest}: cannot create the output: {exc.strerror}") from None
        raise WriteError(f"{dest}: cannot read the existing file: {exc.strerror}") from None
    check_output(dest, force=force)
    try:
        with atomic_output(dest, force=force) as stream:
            stream.write(data)
    except OutputExistsError:
        # Another process published the file meanwhile (a retried task and
        # the attempt it replaced): the same bytes are no conflict.
        if _holds(dest, data):
            return False
        raise
    return True


def _holds(path, data):
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except OSError:
        return False
