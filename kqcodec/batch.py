"""Encoding many pictures into one folder: ``kqcodec encode IN... --out-dir DIR``.

Inputs are files and folders (their pictures, sub-folders too with
``recursive``).  Each picture becomes ``DIR/<stem><suffix>.png``, mirroring
the sub-folders of a folder input.  Pictures run in worker processes (see
:mod:`workers`); one that fails is reported and the others go on.  With a
shared palette, every picture's histogram is counted first (in parallel),
the sums give one palette, and every file is written with it.
"""

import contextlib
import os
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import codec
from .colorprofile import shown_as_srgb
from .errors import (InputError, KqcodecError, KqcodecWarning, NotSmallerError, OutputKeptError,
                     UsageError, option, recorded_warnings)
from .quantizer import check_space, shared_palette
from .defaults import DEFAULT_SPEED, MAX_PIXELS
from .dither import check_reuse, check_strength
from .safefile import make_folder, remove_left_behind, write_bytes
from .scan import find_images, followed, free_stem, none_found
from .workers import check_jobs, run_jobs, worker_count

__all__ = ["Outcome", "plan_batch", "encode_batch", "summary_line"]


@dataclass(frozen=True)
class Outcome:
    """What happened to one input.

    Attributes
    ----------
    source : str
        The input picture.
    dest : str or None
        The file written (or that would have been).
    status : {'written', 'skipped', 'failed'}
        ``skipped``: the palette PNG would not have been smaller (skip if
        larger); ``failed``: ``message`` says why.
    message : str
        Options it names are said as Python code sets them (see
        :meth:`said`).
    k : int or None
        Palette size used.
    psnr : float or None
    encoded_bytes : int or None
    trials : tuple
        The ks a target search tried (see :class:`search.Trial`).
    warned : tuple of (type, str)
        The warnings the picture gave, category and message, in order:
        :func:`encode_batch` gives them again as it yields the outcome, so
        that they come in input order, not as the workers happen to meet them.
        With a shared palette, empty: the warnings (all of them from
        reading the picture) are given as its colors are counted.
    """

    source: str
    dest: str
    status: str
    message: str = ""
    k: int = None
    psnr: float = None
    encoded_bytes: int = None
    trials: tuple = ()
    error: KqcodecError = field(default=None, repr=False, compare=False)
    warned: tuple = field(default=(), repr=False, compare=False)

    def said(self, spell):
        """The message, each option it names said by `spell` (see :meth:`KqcodecError.spelled`).

        Parameters
        ----------
        spell : callable
            ``spell(name) -> str``.

        Returns
        -------
        str
        """
        if self.error is None:
            return self.message
        return _naming(self.source, self.error.spelled(spell))


def plan_batch(inputs, out_dir, *, recursive=False, suffix=""):
    """Pair every input picture with its output file.

    Parameters
    ----------
    inputs : sequence of path-like
        Files (taken whatever their extension) and folders (their pictures
        by extension, see :data:`scan.EXTENSIONS`).
    out_dir : path-like
        Never searched for pictures; given as an input, it is passed over.
    recursive : bool
        Also take the pictures of the folders' sub-folders.
    suffix : str
        Added to each stem: ``photo.jpg`` -> ``photo<suffix>.png``.

    Returns
    -------
    pairs : list of (Path, Path or None)
        In input order, folders' pictures sorted by name, each picture once
        (a file given twice, or also in a folder given, is encoded the first
        time).  A name already taken by an earlier picture, by one of the
        inputs (a PNG among them in `out_dir`, or a link there leading to
        one), or by a sub-folder the outputs mirror, gets ``-<ext>``, then
        a number: no input is ever an output, even with ``force``.  The
        output is None when the input is missing or cannot be looked at
        (the batch reports it).

    Raises
    ------
    UsageError
        If `inputs` is empty, or holds no picture but `out_dir` itself.
    InputError
        If the inputs hold no picture at all: only folders without
        pictures (a mistyped folder must not pass for a batch done), or
        only missing inputs.
    """
    out_dir, inputs = Path(out_dir), list(inputs)
    found = []  # (picture, its path relative to its folder), or (missing input, None)
    passed = []
    for item in inputs:
        item = Path(item)
        kind = _kind(item)
        if kind == "folder" and item.resolve() == out_dir.resolve():
            # A shell glob run again (``pics/* --out-dir pics/out``) hands
            # over the output folder of the first run.
            passed.append(item)
            continue
        if kind == "folder":
            found += [(path, path.relative_to(item)) for path in
                      find_images(item, recursive=recursive, exclude=out_dir)]
        elif kind == "file":
            found.append((item, Path(item.name)))
        else:
            found.append((item, None))
    # The inputs' own names are taken: a shell glob may hand over both
    # logo.jpg and logo.png from the output folder, and logo.jpg's output
    # must not replace logo.png before (or after) it is read.
    taken = {stem for path, rel in found if rel is not None for stem in _stems_in(path, out_dir)}
    # The sub-folders the outputs mirror are taken too: a folder x.png
    # beside a picture x.jpg needs DIR/x.png as a folder, whichever of the
    # two is written first.
    taken |= {str(folder.with_suffix("")).lower() for _, rel in found if rel is not None
              for folder in rel.parents if folder.suffix.lower() == ".png"}
    sources = {followed(path) for path, rel in found if rel is not None}
    pairs, seen = [], set()
    for path, rel in found:
        if rel is None:
            pairs.append((path, None))
            continue
        if path.resolve() in seen:
            continue
        seen.add(path.resolve())
        dest = _free_name(out_dir, rel, taken, suffix)
        while followed(dest) in sources:
            # A link in DIR leading to an input: writing there would
            # replace the input, so the name is taken like the input's own.
            dest = _free_name(out_dir, rel, taken, suffix)
        pairs.append((path, dest))
    if not inputs:
        raise UsageError("give at least one picture or folder to encode")
    if not pairs and passed:
        # Nothing but the output folder itself, as report's --out FOLDER.
        raise UsageError(f"{out_dir}: the output folder must not be the picture folder")
    if not pairs:
        raise none_found(", ".join(str(item) for item in inputs),
                         [item for item in inputs if Path(item).is_dir()], recursive=recursive,
                         exclude=out_dir)
    if all(dest is None for _, dest in pairs):
        # Nothing to do at all, as for one input missing: said before any work.
        if len(pairs) == 1:
            raise _not_found(pairs[0][0])
        raise InputError(f"{', '.join(str(path) for path, _ in pairs)}: no such file or folder")
    return pairs


def _kind(item):
    """'folder', 'file', or None for an input that is missing or cannot be looked at.

    A name too long, or a folder on the way that cannot be searched, makes
    the picture fail alone, with the reason :func:`_ran` finds, as a
    missing one does.
    """
    try:
        return "folder" if item.is_dir() else "file" if item.exists() else None
    except OSError:
        return None


def _not_found(source):
    """The InputError of an input that is missing, or that cannot be looked at (and why)."""
    try:
        os.stat(source)
    except FileNotFoundError:
        pass
    except OSError as exc:
        return InputError(f"{source}: cannot open: {exc.strerror}")
    return InputError(f"{source}: no such file or folder")


def _free_name(out_dir, rel, taken, suffix):
    """The output file for `rel` in `out_dir`, its stem the next free one (:func:`free_stem`)."""
    stem = free_stem(rel, taken, suffix)
    return out_dir / stem.with_name(stem.name + ".png")


def _stems_in(path, out_dir):
    """The output stems (as :func:`free_stem` keeps them) that would write over the PNG `path`.

    Both as given and with links resolved, so that neither a link given
    as input nor the file it leads to becomes an output.
    """
    if path.suffix.lower() != ".png":
        return set()
    stems = set()
    for file, folder in ((path.absolute(), out_dir.absolute()),
                         (followed(path), followed(out_dir))):
        if folder in file.parents:
            stems.add(str(file.relative_to(folder).with_suffix("")).lower())
    return stems


def _outcome(source, dest, run):
    """Run one encoding; turn its result or expected error into an Outcome."""
    outcome, warned = _recorded(lambda: _ran(source, dest, run))
    return replace(outcome, warned=warned)


def _ran(source, dest, run):
    try:
        if dest is None:
            raise _not_found(source)
        result = run()
    except NotSmallerError as exc:
        return Outcome(str(source), str(dest), "skipped", _naming(source, str(exc)),
                       error=_bare(exc))
    except KqcodecError as exc:
        return Outcome(str(source), None if dest is None else str(dest), "failed",
                       _naming(source, str(exc)), error=_bare(exc))
    return Outcome(str(source), str(dest), "written", "", result.k, result.psnr,
                   result.encoded_bytes, result.trials)


def _recorded(run):
    """``run()`` and the warnings it gave, as (category, message) pairs, instead of showing them.

    A worker process that shows its warnings itself writes them across the
    progress bar, in whatever order the workers meet them.
    """
    with recorded_warnings() as caught:
        value = run()
    return value, tuple((w.category, str(w.message)) for w in caught)


def _warn_again(warned):
    for category, message in warned:
        warnings.warn(message, category, stacklevel=3)


def _bare(error):
    """`error` without its traceback, whose frames hold the picture's arrays.

    A batch keeps every outcome to the end: on one process, each failure's
    pixels and encodings would stay in memory with it (and a TargetError's
    search with its closest encoding).  The copy holds the class and the
    message, as a worker process sends them back.
    """
    copy = type(error).__new__(type(error), *error.args)
    copy.args = error.args
    return copy


def _naming(source, message):
    """An error's message, starting with the picture's name."""
    return message if message.startswith(str(source)) else f"{source}: {message}"


# What a picture whose worker process died without a result fails with.
_KILLED = "ended without a result (killed: out of memory?)"
_DIED = f"the process encoding it {_KILLED}"


def _died_encoding(job):
    """The Outcome of an encode or palette job whose worker process died."""
    source, dest = job[0], job[1]
    remove_left_behind(dest)
    return Outcome(str(source), str(dest), "failed", f"{source}: {_DIED}",
                   error=KqcodecError(_DIED))


def _died_counting(job):
    return KqcodecError(f"{job[0]}: the process counting its colors {_KILLED}"), ()


def _encode_job(job):
    source, dest, options = job
    return _outcome(source, dest, lambda: _again(
        dest, lambda out: codec.encode(source, out, options["k"], **options["encode"])))


def _histogram_job(job):
    source, max_pixels, keep_profile, strict = job

    def counted():
        try:
            return codec.histogram_of(source, max_pixels=max_pixels, keep_profile=keep_profile,
                                      strict=strict, with_tags=True)
        except KqcodecError as exc:
            return exc

    return _recorded(counted)


def _palette_job(job):
    source, dest, palette, options = job
    # The picture's warnings (all of them from reading it) were said when
    # its colors were counted: once is enough.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _outcome(source, dest, lambda: _again(
            dest, lambda out: codec.encode_with_palette(source, out, palette, **options)))


def _again(dest, encode):
    """``encode(dest)``; where `dest` is kept (no ``force``), success if it holds the same bytes.

    A batch run again, after an interruption or as it is, finds the files
    it wrote before: encoding each in memory and finding the same bytes,
    it counts them written, where refusing them would fail every picture
    done and leave only ``force``, which encodes and writes them all again.
    """
    make_folder(Path(dest).parent)
    try:
        return encode(dest)
    except OutputKeptError:
        result = encode(None)
        # Writes nothing where the bytes are the same; refuses other bytes.
        write_bytes(dest, result.data, force=False)
        return result


def _remove_empty_folders(folder):
    """Remove `folder` and the folders in it, if they hold no file at all."""
    for root, _, _ in sorted(os.walk(folder), key=lambda entry: -len(entry[0])):
        with contextlib.suppress(OSError):  # not empty, or gone: left as it is
            os.rmdir(root)


# --shared-palette, as Python sets it.
_SHARED = option("shared_palette", "shared=True")


def encode_batch(inputs, out_dir, k, *, recursive=False, suffix="", jobs=None, progress=False,
                 shared=False, force=False, skip_if_larger=False, max_pixels=MAX_PIXELS, seed=0,
                 engine="kqcodec", target_psnr=None, max_bytes=None, max_colors=256,
                 keep_profile=False, space="rgb", strict=False, dither=0.0,
                 speed=DEFAULT_SPEED, reuse=0.0):
    """Encode many pictures into `out_dir`, yielding one :class:`Outcome` each.

    Parameters
    ----------
    inputs : path-like or sequence of path-like
        Files and folders; see :func:`plan_batch`.
    out_dir : path-like
        Created if missing (and taken away again if the batch writes nothing).
    k : int or 'auto'
        As for :func:`codec.encode`; with `shared`, an int.
    recursive, suffix
        See :func:`plan_batch`.
    jobs : int, optional
        Worker processes; all cores by default.
    progress : bool
        A progress bar on stderr.
    shared : bool
        One palette of k entries for all the pictures (their histograms
        summed); every file then has the same PLTE and tRNS bytes.
    force, skip_if_larger, max_pixels, seed, engine, target_psnr, max_bytes, max_colors
        As for :func:`codec.encode`; only `engine` "kqcodec" goes with `shared`.
    keep_profile, space, strict
        As for :func:`codec.encode`; a shared palette is searched in RGB
        (only `space` "rgb" goes with `shared`).
    dither, speed
        As for :func:`codec.encode`; a shared palette is not dithered (only
        `dither` 0 goes with `shared`) and is searched at the default
        effort, `speed` setting the compression.
    reuse
        As for :func:`codec.encode`; not with `shared`.

    Yields
    ------
    Outcome
        In input order.  Failures of one picture never stop the others.

    Raises
    ------
    UsageError
        For options that do not go together, or with `shared`, an input
        that is a pipe or a device (checked before any work).
    InputError
        If the inputs hold no picture at all (see :func:`plan_batch`).
    OutputExistsError, WriteError
        If `out_dir` is a file, or cannot be created: once, before any work.
    """
    if shared and check_strength(dither):
        raise UsageError(f"{option('dither')} does not go with {_SHARED}")
    if shared and check_reuse(reuse):
        raise UsageError(f"{option('reuse')} does not go with {_SHARED}")
    # The shared search is kqcodec's own, in RGB: other choices would be ignored.
    if shared and check_space(space) != "rgb":
        raise UsageError(f"{option('space')} does not go with {_SHARED}: its palette is "
                         "searched in RGB")
    if shared and engine != "kqcodec":
        raise UsageError(f"{option('engine')} does not go with {_SHARED}: its palette is "
                         "searched by kqcodec's own k-means")
    codec.check_options(k, target_psnr=target_psnr, max_bytes=max_bytes, space=space,
                        dither=dither, reuse=reuse, speed=speed, seed=seed, engine=engine,
                        max_colors=max_colors, max_pixels=max_pixels)
    check_jobs(jobs)
    if isinstance(inputs, (str, os.PathLike)):
        inputs = [inputs]  # one path, not a string of one-letter names
    pairs = plan_batch(inputs, out_dir, recursive=recursive, suffix=suffix)
    for source, dest in pairs if shared else ():
        if dest is not None and not source.is_file():
            # Its colors are counted first, then it is read again to be written.
            raise UsageError(f"{source}: {_SHARED} reads each picture twice, and this one is a "
                             "pipe or a device: save it to a file first")
    # A folder this batch made is taken away again if nothing went into it
    # (every picture failed or was skipped): no empty folder left behind.
    made = not Path(out_dir).exists()
    make_folder(out_dir)
    try:
        workers = worker_count(jobs, len(pairs))
        if not shared:
            options = dict(k=k, encode=dict(
                seed=seed, force=force, max_pixels=max_pixels, engine=engine,
                target_psnr=target_psnr,
                max_bytes=max_bytes, max_colors=max_colors, skip_if_larger=skip_if_larger,
                keep_profile=keep_profile, space=space, strict=strict, dither=dither,
                speed=speed, reuse=reuse))
            for outcome in run_jobs(_encode_job, [(s, d, options) for s, d in pairs],
                                    workers=workers, progress=progress, desc="encode",
                                    lost=_died_encoding):
                _warn_again(outcome.warned)
                yield outcome
            return
        readable = [(s, d) for s, d in pairs if d is not None]
        histograms = []
        for histogram, warned in run_jobs(_histogram_job,
                                          [(s, max_pixels, keep_profile, strict)
                                           for s, _ in readable],
                                          workers=workers, progress=progress, desc="count colors",
                                          lost=_died_counting):
            _warn_again(warned)
            histograms.append(histogram)
        counted = {str(s): h for (s, _), h in zip(readable, histograms)}
        good = [h for h in histograms if not isinstance(h, KqcodecError)]
        if keep_profile and len({None if shown_as_srgb(tags) else tags for _, _, tags in good}) > 1:
            # Each file keeps its own profile: one entry shows as other colors in each.
            warnings.warn("a shared palette for pictures whose own color profiles are kept, and "
                          "differ: each shared entry shows as another color in each file "
                          "(converted to sRGB, they would share colors)", KqcodecWarning,
                          stacklevel=2)
        palette = (shared_palette([(colors, counts) for colors, counts, _ in good], k)
                   if good else None)
        options = dict(force=force, max_pixels=max_pixels, skip_if_larger=skip_if_larger,
                       keep_profile=keep_profile, speed=speed, strict=strict)
        jobs_list = [(s, d, palette, options) for s, d in pairs
                     if d is not None and not isinstance(counted[str(s)], KqcodecError)]
        results = iter(run_jobs(_palette_job, jobs_list, workers=workers, progress=progress,
                                desc="encode", lost=_died_encoding))
        for source, dest in pairs:
            failure = None if dest is None else counted[str(source)]
            if dest is None:
                yield _outcome(source, dest, None)
            elif isinstance(failure, KqcodecError):
                yield Outcome(str(source), str(dest), "failed", _naming(source, str(failure)),
                              error=_bare(failure))
            else:
                yield next(results)
    finally:
        if made:
            _remove_empty_folders(Path(out_dir))


def summary_line(outcomes):
    """One line: how many files were written, skipped and failed.

    Parameters
    ----------
    outcomes : sequence of Outcome

    Returns
    -------
    str
    """
    counts = {status: sum(o.status == status for o in outcomes)
              for status in ("written", "skipped", "failed")}
    return f"{counts['written']} written, {counts['skipped']} skipped, {counts['failed']} failed"
