"""The one exception family of kqcodec, with the exit code each maps to.

Expected failures (a corrupt file, a missing input, an output that already
exists) raise a subclass of :class:`KqcodecError`.  The command line turns
them into one line on stderr and the ``exit_code`` below; any other exception
is a bug and keeps its traceback.  The codes follow BSD ``sysexits.h`` so that
scripts can tell the classes apart.  What was read in a reduced way, but
read, gives a warning of the two classes at the end instead.
"""

import contextlib
import re
import threading
import warnings

__all__ = [
    "KqcodecError",
    "UsageError",
    "FormatError",
    "InputError",
    "OutputExistsError",
    "OutputKeptError",
    "WriteError",
    "NotSmallerError",
    "TargetError",
    "KqcodecWarning",
    "ProfileWarning",
    "recorded_warnings",
    "as_flag",
    "option",
    "FORCE_OPTION",
    "MAX_PIXELS_OPTION",
]


# An option named in a message: NUL, its name, US, how Python sets it, NUL.
# No file name holds a NUL, so no path in a message is ever taken for one.
_OPTION = re.compile("\0([^\0\x1f]*)\x1f([^\0]*)\0")


def option(name, python=None):
    """The placeholder of an option in a message (see :class:`KqcodecError`).

    Parameters
    ----------
    name : str
        The option's name on the command line, with ``_`` for ``-``
        (``shared_palette`` for ``--shared-palette``).
    python : str, optional
        How Python code sets it (``"shared=True"``); `name` if None.

    Returns
    -------
    str
    """
    return f"\0{name}\x1f{python or name}\0"


#: Options several modules' messages name.
FORCE_OPTION = option("force", "force=True")
MAX_PIXELS_OPTION = option("max_pixels")


def as_flag(option):
    """How the command line says an option a message names: ``max_pixels`` -> ``--max-pixels``.

    Parameters
    ----------
    option : str

    Returns
    -------
    str
    """
    return "--" + option.replace("_", "-")


class KqcodecError(Exception):
    """Base class of every error kqcodec raises on purpose.

    Notes
    -----
    A message may name an option the caller can change, written with
    :func:`option` (``f"raise it with {option('max_pixels')}"``).
    ``str(error)`` says it as Python code sets it, since the library's
    callers are Python code; the command line says it as a flag (see
    :meth:`spelled`).  The placeholder is part of the message, so it
    survives pickling: a worker process's error can still be said either way.
    """

    exit_code = 1

    def __repr__(self):
        return f"{type(self).__name__}({str(self)!r})"

    def __str__(self):
        if len(self.args) != 1 or not isinstance(self.args[0], str):
            return super().__str__()
        return _OPTION.sub(lambda match: match.group(2), self.args[0])

    def spelled(self, spell):
        """The message, with each option it names said by `spell`.

        Parameters
        ----------
        spell : callable
            ``spell(name) -> str``, `name` as given to :func:`option`.

        Returns
        -------
        str
        """
        if len(self.args) != 1 or not isinstance(self.args[0], str):
            return super().__str__()
        return _OPTION.sub(lambda match: spell(match.group(1)), self.args[0])


class UsageError(KqcodecError, ValueError):
    """A parameter is out of range or options contradict each other (exit 2)."""

    exit_code = 2


class FormatError(KqcodecError):
    """The input is not a readable image, breaks its format, or is refused (exit 65)."""

    exit_code = 65


class InputError(KqcodecError):
    """The input is missing or cannot be opened (exit 66)."""

    exit_code = 66


class OutputExistsError(KqcodecError):
    """The output exists and ``force`` was not given, or it is the input (exit 73)."""

    exit_code = 73


class OutputKeptError(OutputExistsError):
    """The output is a file that exists, and ``force`` was not given: it is kept (exit 73).

    A class of its own, apart from the outputs that can never be written
    (the input itself, a folder), so that a caller can tell a file kept on
    purpose, which ``force`` would replace, from a mistake.
    """


class WriteError(KqcodecError):
    """Writing the output failed; nothing was left behind (exit 74)."""

    exit_code = 74


class NotSmallerError(KqcodecError):
    """The palette PNG would not be smaller than the input, so it was not written (exit 98).

    pngquant's code for the same outcome, so that scripts written for it
    keep working.
    """

    exit_code = 98


class TargetError(KqcodecError):
    """No palette size meets the quality or size asked for; nothing written (exit 99).

    pngquant's code for the same outcome.

    Attributes
    ----------
    closest : search.Choice or None
        What the search found nearest the target (the largest palette for a
        PSNR, the smallest for a size), for a caller that shows it; None
        once the error has crossed a process boundary.
    """

    exit_code = 99
    _closest = None

    @property
    def closest(self):
        # Made on demand: the encoding is compressed only for a caller that asks.
        return self._closest() if self._closest is not None else None

    def __reduce__(self):
        # The encodings stay in the process that made them.
        return type(self), self.args


class KqcodecWarning(UserWarning):
    """Something was read in a reduced way (only the first frame, for one)."""


class ProfileWarning(UserWarning):
    """A color profile could not be used; the raw values were."""


# catch_warnings swaps process-wide state: two threads inside at once can
# leave it pointing at one's finished list, and every later warning lost.
_RECORDING = threading.RLock()


@contextlib.contextmanager
def recorded_warnings():
    """``warnings.catch_warnings(record=True)``, one thread of this process at a time.

    Yields
    ------
    list of warnings.WarningMessage
        The warnings given inside the block (the filters still apply).
    """
    with _RECORDING, warnings.catch_warnings(record=True) as caught:
        yield caught
