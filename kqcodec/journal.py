"""The report's table on disk, written as it grows, so that a stopped run can resume.

A report keeps its table in ``report.csv`` in the output folder.  The file
starts as the header (and, on a resumed run, the rows kept from before), then
the rows of each finished job (a picture, or some of its ks) are appended in
one write and flushed, so a crash, a Ctrl-C or a killed process loses only the
jobs in flight.  At the end the file is replaced, atomically, by the table in
its final order.

This module moves bytes; what a row holds is :mod:`kqcodec.table`'s business.
Only the process that gathers the results writes here, so a picture's rows are
appended once however often a task was retried.
"""

import contextlib
import json
import os
import time
from pathlib import Path

from .errors import FormatError, OutputExistsError, WriteError, option
from .safefile import atomic_output

__all__ = ["FILENAME", "OPTIONS", "locked", "recover", "replace", "save_options", "load_options",
           "Journal"]

#: Name of the table in the output folder.
FILENAME = "report.csv"

#: Name of the file, beside the table, that records the options its rows were made with.
OPTIONS = "report.options.json"

# Appends are flushed at once (a killed process loses nothing written) and
# forced to disk at most this often: a machine that loses power loses at
# most this many seconds of rows, whose encodings a resumed run finds
# identical and keeps.
_SYNC_SECONDS = 1.0


@contextlib.contextmanager
def locked(folder):
    """Hold the output folder's report lock for the time of a block.

    An advisory lock (``flock``) on the folder itself, so that no file is
    left behind: the system releases it when the process ends, however it
    ends.  Where the platform or the file system has no such locks, the
    block runs without one.

    Parameters
    ----------
    folder : path-like
        An existing folder.

    Raises
    ------
    OutputExistsError
        If another process holds it: another report is writing its table
        there.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not on POSIX systems
        yield
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield  # the table's own writes will say what is wrong
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputExistsError(f"{folder}: another report is writing its table there; "
                                    f"wait for it to end, or give another {option('out')}"
                                    ) from None
        except OSError:
            pass  # a file system without locks
        yield
    finally:
        os.close(fd)


def _last_row_end(data):
    """The offset just past the last newline of `data` (CSV bytes) that ends a row.

    A newline inside a quoted cell (a file name may hold one) ends no row:
    before it, an odd number of quotes is open (a quote inside a cell is
    written twice, which keeps the count's parity).
    """
    end, position, quoted = 0, 0, False
    for line in data.split(b"\n")[:-1]:
        position += len(line) + 1
        quoted ^= line.count(b'"') % 2 == 1
        if not quoted:
            end = position
    return end


def recover(path):
    """The complete lines of a table a stopped run left, or None if there is none.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    str or None
        The text up to its last newline outside a quoted cell: a row cut
        short by a crash is dropped (even where the cut falls just after a
        line break inside a quoted file name), since its picture will be
        done again.

    Raises
    ------
    FormatError
        If it is not UTF-8 text, or holds text without a complete line.
    WriteError
        If the file exists but cannot be read.
    """
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WriteError(f"{path}: cannot read the table to resume: {exc.strerror}") from None
    end = _last_row_end(data)
    if data and not end:
        # The table starts with its header line, written whole: text without
        # one complete line is not a table this program left.
        raise FormatError(f"{path}: cannot resume from this table: it holds no complete line")
    try:
        return data[:end].decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError(f"{path}: cannot resume from this table: it is not UTF-8 text") from None


def replace(path, text):
    """Replace the table by `text`, atomically.

    Parameters
    ----------
    path : path-like
    text : str

    Raises
    ------
    WriteError
        If writing fails; the previous file is then untouched.
    """
    with atomic_output(path, force=True) as stream:
        stream.write(text.encode("utf-8"))


def save_options(path, options):
    """Record, atomically, the options a table's rows are made with.

    Parameters
    ----------
    path : path-like
    options : dict
        JSON-serialisable values (str, int, float, bool, None).

    Raises
    ------
    WriteError
        If writing fails; the previous file is then untouched.
    """
    replace(path, json.dumps(options, sort_keys=True, indent=1) + "\n")


def load_options(path):
    """The options a stopped run recorded, or None if it recorded none.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    dict or None

    Raises
    ------
    FormatError
        If the file exists but does not hold a JSON object.
    WriteError
        If it exists but cannot be read.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WriteError(f"{path}: cannot read the options to resume: {exc.strerror}") from None
    try:
        options = json.loads(text)
    except ValueError:
        options = None
    if not isinstance(options, dict):
        raise FormatError(f"{path}: cannot resume: not the options of a report")
    return options


class Journal:
    """A table file open for appending rows, started anew from `head`.

    Parameters
    ----------
    path : path-like
    head : str
        The CSV header and any rows kept from a previous run; replaces
        whatever `path` held, atomically.

    Raises
    ------
    WriteError
        If the file cannot be written.
    """

    def __init__(self, path, head):
        self.path = Path(path)
        replace(self.path, head)
        try:
            self._file = open(self.path, "ab")
        except OSError as exc:
            raise WriteError(f"{self.path}: cannot append to the table: {exc.strerror}") from None
        self._synced = time.monotonic()

    def append(self, text):
        """Append rows, as CSV lines without header, in one write.

        Parameters
        ----------
        text : str

        Raises
        ------
        WriteError
        """
        try:
            self._file.write(text.encode("utf-8"))
            self._file.flush()
            if time.monotonic() - self._synced >= _SYNC_SECONDS:
                os.fsync(self._file.fileno())
                self._synced = time.monotonic()
        except OSError as exc:
            raise WriteError(f"{self.path}: cannot append to the table: {exc.strerror}") from None

    def close(self):
        """Force what was appended to disk and close the file.

        Raises
        ------
        WriteError
            If that fails (the file is closed all the same).
        """
        if self._file.closed:
            return
        error = None
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:
            error = exc
        try:
            # Closing flushes again what a full disk refused: it fails the
            # same way, and closes the file all the same.
            self._file.close()
        except OSError as exc:
            error = error or exc
        if error is not None:
            raise WriteError(f"{self.path}: cannot write the table: {error.strerror}") from None

    def __enter__(self):
        return self

    def __exit__(self, kind, value, traceback):
        try:
            self.close()
        except WriteError:
            if kind is None:
                raise
            # The error already on its way (a failed append, say) is the one to tell.
