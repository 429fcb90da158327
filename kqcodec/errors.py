"""The one exception family of kqcodec, with the exit code each maps to.

Expected failures (a corrupt file, a missing input, an output that already
exists) raise a subclass of :class:`KqcodecError`.  The command line turns
them into one line on stderr and the ``exit_code`` below; any other exception
is a bug and keeps its traceback.  The codes follow BSD ``sysexits.h`` so that
scripts can tell the classes apart.  What was read in a reduced way, but
read, gives a warning of the two classes at the end instead.
"""

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
    "as_flag",
    "FORCE_OPTION",
    "MAX_PIXELS_OPTION",
]


#: The options several modules' messages name, as Python code sets them
#: (see :class:`KqcodecError`).
FORCE_OPTION = {"force": "force=True"}
MAX_PIXELS_OPTION = {"max_pixels": "max_pixels"}


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

    Parameters
    ----------
    message : str
        One line.  An option the caller can change is written ``{name}``
        in it (``{max_pixels}``), `name` a key of `options`.
    options : dict of str to str, optional
        Each option the message names, by its name on the command line with
        ``_`` for ``-`` (``shared_palette`` for ``--shared-palette``), and
        how Python code sets it (``"shared=True"``).

    Notes
    -----
    ``str(error)`` says each option as Python code sets it, since the
    library's callers are Python code; the command line says it as a flag
    (see :meth:`spelled`).  The message and options survive pickling, so a
    worker process's error can still be said either way.
    """

    exit_code = 1

    def __init__(self, message="", options=None):
        super().__init__(message)
        self.options = dict(options or {})

    def __str__(self):
        return self.spelled(self.options.__getitem__)

    def spelled(self, spell):
        """The message, with each option it names said by `spell`.

        Parameters
        ----------
        spell : callable
            ``spell(name) -> str``, `name` a key of ``options``.

        Returns
        -------
        str
        """
        text = str(self.args[0]) if self.args else ""
        for name in self.options:
            text = text.replace("{" + name + "}", spell(name))
        return text


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
        return type(self), self.args, {"options": self.options}


class KqcodecWarning(UserWarning):
    """Something was read in a reduced way (only the first frame, for one)."""


class ProfileWarning(UserWarning):
    """A color profile could not be used; the raw values were."""
