"""Running the report: every picture at every k, encoded, written, decoded back, measured.

This is the only module that imports tqdm and runs worker processes.  Each
picture is read and its color histogram computed once, then encoded at every
k exactly as ``kqcodec encode`` would, written, decoded back *from the
written file* and measured.  Jobs run in parallel processes, one per process
at a time, so memory is bounded by ``jobs`` pictures: a job is a picture, or,
when the pictures are too few or too unequal to keep every process busy to
the end, some of a picture's ks (see :func:`_balanced`).  With a scheduler,
each picture is a task on a Dask cluster (:mod:`kqcodec.cluster`).  The rows
of each finished job are appended to the table file at once
(:mod:`kqcodec.journal`), which makes a stopped run resumable, and become a
table in :mod:`kqcodec.table`.

Jobs return their rows as plain dicts (:mod:`kqcodec.rows`): pandas is
imported by :mod:`kqcodec.table` alone, in the parent, once the worker
processes have started.  Its import (about 0.2 s) then overlaps their work
rather than delaying it, and the workers, forked without it, never pay for it.
"""

import contextlib
import io
import math
import multiprocessing
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

from . import cluster, imageio, journal, pngfile, pngread, quantizer
from . import metrics as measures
from .defaults import DEFAULT_SPEED, REPORT_KS
from .dither import check_reuse, check_strength
from .errors import (FormatError, InputError, KqcodecError, OutputExistsError, TargetError,
                     UsageError, WriteError)
from .rows import DEFAULT_METRICS, check_metrics, error_row
from .safefile import check_input, write_bytes
from .scan import find_images, plan_outputs
from .search import check_target
from .workers import start_pool, terminate

__all__ = ["DEFAULT_KS", "report_image", "report"]

DEFAULT_KS = REPORT_KS

# SSIM and SSIMULACRA2 of a 12 MP photo take longer than encoding it (the
# SSIMULACRA2 port: 80 s and 6 GB); beyond this many pixels they are computed
# on the centre crop of this side.
_CROP = 1024

# Jobs per worker that _balanced aims at when it splits pictures into parts:
# the last job to finish then leaves the other workers idle for about a
# third of a worker's share at most.
_PARTS_PER_WORKER = 3
# What the search of a target PSNR costs, counted in ks of the list: it
# estimates the size of many palettes and encodes a few of them.
_SEARCH_COST = 4


def report_image(path, ks=DEFAULT_KS, *, out="compressed_outputs", stem=None, name=None,
                 force=False, seed=0, max_pixels=pngfile.DEFAULT_MAX_PIXELS, space="rgb",
                 dither=0.0, metrics=DEFAULT_METRICS, strict=False, speed=DEFAULT_SPEED,
                 target_psnr=None, max_colors=256, reuse=0.0):
    """Encode one picture at every k, write the files, and measure them.

    Parameters
    ----------
    path : path-like
        The picture.
    ks : sequence of int
        Palette sizes, each 2..256; may be empty with `target_psnr`.
    out : path-like
        Folder for the encodings, ``<stem>_k<k>.png``; created if missing.
    stem : path-like, optional
        Output stem relative to `out`; the picture's stem by default.
    name : str, optional
        What the ``image`` column says; the file name by default.
    force : bool
        Replace existing encodings whose bytes differ.
    seed : int
    max_pixels : int or None
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
        Where the palette search measures distances (see :func:`kqcodec.quantize`).
    dither : float
        Error diffusion strength 0..1 (see :func:`kqcodec.quantize`).
    reuse : float
        Margin, in Oklab levels, within which a pixel repeats a neighbour's
        entry (see :func:`kqcodec.quantize`); 0 for none.  Not with
        `dither` nor with `target_psnr`.
        Measures to compute, of ``psnr``, ``ssim``, ``ssimulacra2``: the
        ``psnr`` and ``ssim`` columns of those not asked stay empty, and the
        ``ssimulacra2`` column is there only when asked.
    strict : bool
        Refuse a PNG that breaks any rule; see :func:`imageio.read_image`.
    speed : int
        Effort, 1 (smallest files) to 10 (fastest), as for ``encode``; the
        search of `target_psnr` too, as ``encode -k auto --speed`` does.
    target_psnr : float, optional
        Also search every k from 2 to `max_colors` for the smallest whose
        file reaches this PSNR, and add its row (see :func:`report`).
    max_colors : int
        The largest k the search considers, 2..256.

    Returns
    -------
    pandas.DataFrame
        One row per k with the columns of :func:`kqcodec.table.columns`,
        then the searched row; one error row (k missing) if the picture
        cannot be read.

    Raises
    ------
    UsageError
        If a k is outside 2..256, or none is given without `target_psnr`;
        for an unknown space or measure; for `target_psnr` with `dither`
        or `reuse`.
    """
    from . import table as tables

    metrics = check_metrics(metrics)
    return tables.frame(_picture_rows(path, ks, out=out, stem=stem, name=name, force=force,
                                      seed=seed, max_pixels=max_pixels, space=space,
                                      dither=dither, metrics=metrics, strict=strict, speed=speed,
                                      target_psnr=target_psnr, max_colors=max_colors,
                                      reuse=reuse), metrics)


def _picture_rows(path, ks, *, out, stem, name, force, seed, max_pixels, space, dither, metrics,
                  strict, speed, target_psnr, max_colors, reuse):
    """The rows of :func:`report_image`, as dicts."""
    path = Path(path)
    name = name or path.name
    stem = Path(stem) if stem is not None else Path(path.stem)
    target_psnr, max_colors = _check_search(target_psnr, max_colors, dither, reuse)
    ks = _check_ks(ks, empty=target_psnr is not None)
    metrics = check_metrics(metrics)
    quantizer.check_space(space)
    dither = check_strength(dither)
    try:
        check_input(path)
        original_bytes = path.stat().st_size
        # The sRGB rendering, as encode quantizes it and a viewer shows it.
        pixels, tags = imageio.read_picture(path, max_pixels=max_pixels, strict=strict)
        hist = quantizer.prepare(pixels)
    except KqcodecError as exc:
        return [error_row(name, None, exc)]
    height, width = pixels.shape[:2]
    known = dict(width=width, height=height, original_bytes=original_bytes)
    original = _Original(pixels)
    rows = []
    for k in ks:
        relative = f"{stem.as_posix()}_k{k}.png"
        dest = Path(out) / relative
        try:
            start = time.perf_counter()
            image = quantizer.quantize(pixels, k, seed=seed, histogram=hist, space=space,
                                       dither=dither, speed=speed, reuse=reuse)
            data = replace(image, color=tags or None).to_png(speed=speed)
            _make_folder(dest.parent)
            if dest.exists() and dest.resolve() == path.resolve():
                raise OutputExistsError(f"{dest}: output would be the input; choose another --out")
            write_bytes(dest, data, force=force)
            seconds = time.perf_counter() - start
            rows.append(dict(_measure(original, dest, known, metrics), image=name, k=k,
                             seconds=seconds, encoded_file=relative, status="ok", error=""))
        except KqcodecError as exc:
            rows.append(error_row(name, k, exc, **known))
    if target_psnr is not None:
        rows.append(_searched_row(path, original, hist, tags, target_psnr, max_colors, space,
                                  out=out, stem=stem, name=name, known=known, metrics=metrics,
                                  force=force, speed=speed))
    return rows


def _searched_row(path, original, hist, tags, target, max_colors, space, *, out, stem, name,
                  known, metrics, force, speed):
    """The row of the k the PSNR search chooses, its file as ``encode -k auto`` writes it.

    Out of reach, the row is the search's largest palette: its PSNR says how
    far it falls short.
    """
    start = time.perf_counter()
    try:
        choice = quantizer.choose_k(original.pixels, target_psnr=target, max_colors=max_colors,
                                    histogram=hist, color=tags or None, space=space, speed=speed)
    except TargetError as exc:
        choice = exc.closest
    relative = f"{stem.as_posix()}_k{choice.k}_psnr{target:g}.png"
    dest = Path(out) / relative
    try:
        _make_folder(dest.parent)
        if dest.exists() and dest.resolve() == path.resolve():
            raise OutputExistsError(f"{dest}: output would be the input; choose another --out")
        write_bytes(dest, choice.data, force=force)
    except KqcodecError as exc:
        return error_row(name, choice.k, exc, target_psnr=target, **known)
    return dict(_measure(original, dest, known, metrics), image=name, k=choice.k,
                target_psnr=target, seconds=time.perf_counter() - start,
                encoded_file=relative, status="ok", error="")


def _check_ks(ks, empty=False):
    ks = sorted({quantizer.check_k(k) for k in ks})
    if not ks and not empty:
        raise UsageError("give at least one k")
    return ks


def _check_search(target_psnr, max_colors, dither, reuse):
    if check_strength(dither) and check_reuse(reuse):
        raise UsageError("--reuse does not go with --dither")
    if target_psnr is not None:
        target_psnr = check_target(target_psnr)[0]
        if check_strength(dither):
            raise UsageError("the search for a target PSNR does not dither: "
                             "give one or the other")
        if check_reuse(reuse):
            raise UsageError("the search for a target PSNR does not reuse neighbours' entries: "
                             "give one or the other")
    return target_psnr, quantizer.check_k(max_colors)


def _make_folder(folder):
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputExistsError(f"{folder}: exists and is not a folder") from None
    except OSError as exc:
        raise WriteError(f"{folder}: cannot create the folder: {exc.strerror}") from None


def _measure(original, dest, known, metrics):
    """Decode the written file with kqcodec's own decoder and measure it against an _Original."""
    data = Path(dest).read_bytes()
    # Decoded once: read_image checks the whole file strictly, the header
    # is read from the chunks alone.
    decoded = imageio.read_image(dest, max_pixels=None, strict=True)
    header = pngread.read_header(data, max_pixels=None)
    encoded = len(data)
    area = known["width"] * known["height"]
    return dict(
        known, colors=len(header.palette), bitdepth=header.bit_depth,
        encoded_bytes=encoded, ratio=known["original_bytes"] / encoded,
        raw_ratio=area * 3 / encoded, bpp=8 * encoded / area,
        **original.scores(decoded, metrics),
    )


class _Original:
    """A picture, and what its measures need of it computed once for all its ks."""

    def __init__(self, pixels):
        self.pixels = pixels
        self.crop = measures.Reference(_centre(pixels))

    def scores(self, decoded, metrics):
        """The `metrics` of a decoding of the picture, as a dict."""
        decoded_crop = _centre(decoded)
        scores = {}
        if "psnr" in metrics:
            scores["psnr"] = measures.psnr(self.pixels, decoded)
        if "ssim" in metrics:
            scores["ssim"] = self.crop.ssim(decoded_crop)
        if "ssimulacra2" in metrics:
            scores["ssimulacra2"] = measures.ssimulacra2(self.crop.pixels, decoded_crop)
        return scores


def _centre(pixels):
    height, width = pixels.shape[:2]
    if height * width <= _CROP * _CROP:
        return pixels
    top = max(0, (height - _CROP) // 2)
    left = max(0, (width - _CROP) // 2)
    return pixels[top:top + _CROP, left:left + _CROP]


def _report_job(job):
    """The rows of a job (a picture, or some of its ks), as dicts."""
    path, kwargs = job
    return _picture_rows(path, **kwargs)


def report(folder, ks=DEFAULT_KS, *, out="compressed_outputs", recursive=False, force=False,
           seed=0, jobs=None, progress=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS, space="rgb",
           dither=0.0, metrics=DEFAULT_METRICS, strict=False, scheduler=None, resume=False,
           announce=None, speed=DEFAULT_SPEED, target_psnr=None, max_colors=256, reuse=0.0):
    """Build the size/quality table of every picture in a folder.

    The table is kept in ``report.csv`` in `out` as it grows: the rows of
    each finished job (a picture, or some of its ks when the pictures are
    fewer than the processes can share evenly) are appended, so a stopped
    run loses only the jobs in flight, and `resume` continues it.  At the
    end the file holds the returned table, whatever the jobs were.

    Parameters
    ----------
    folder : path-like
    ks : sequence of int
        Palette sizes, each 2..256.
    out : path-like
        Where the encodings and ``report.csv`` go (created if missing).
    recursive : bool
        Include pictures in sub-folders (their encodings mirror the tree).
    force : bool
        Replace existing encodings whose bytes differ; without it they are
        kept and their rows say so.
    seed : int
    jobs : int, optional
        Parallel processes, or the worker processes of ``scheduler='local'``;
        all cores by default.  1 runs in this process.
    progress : bool
        Show a progress bar on stderr.
    max_pixels : int or None
    space, dither, metrics, reuse
        See :func:`report_image`.
    strict : bool
        Refuse PNG pictures that break any rule; see :func:`imageio.read_image`.
    scheduler : str, optional
        Run one task per picture on a Dask cluster: the address of a running
        scheduler (``tcp://HOST:PORT``) or ``'local'`` for a LocalCluster on
        this machine.  `folder` and `out` must be on storage every worker
        sees.  Needs the ``dask`` extra.
    resume : bool
        Keep the rows of ``report.csv`` that a stopped run left (those that
        succeeded, for a picture of the same size, whose encoding is still
        there with the size the row gives) and do only the (picture, k)
        pairs missing, and the searches for `target_psnr` missing (a
        searched row for another target is dropped).  Without it the file
        is started anew.
    announce : callable, optional
        Called once with a one-line message for the user (the Dask
        dashboard's address); by default it is printed on stderr when
        `progress` is true.
    speed : int
        Effort, 1 (smallest files) to 10 (fastest), as for ``encode``.
    target_psnr : float, optional
        Also find, for each picture, the smallest k from 2 to `max_colors`
        whose file reaches this PSNR, by the search of ``encode -k auto``
        (at `speed`, without dithering), and write that file as
        ``<stem>_k<k>_psnr<target>.png``.  Its row carries the target in the
        ``target_psnr`` column (empty on the rows of `ks`): that k reaches
        the target and k - 1, as the search encoded it, does not.  When no
        k reaches it, the row is of `max_colors` colors, below the target.
        :func:`kqcodec.table.recommend` recommends the searched k.
    max_colors : int
        The largest k the search considers, 2..256.

    Returns
    -------
    pandas.DataFrame
        The columns of :func:`kqcodec.table.columns`, pictures in name order,
        k ascending (a searched row after the row of the list at the same
        k); ``encoded_file`` is each encoding's path relative to `out`.

    Raises
    ------
    InputError
        If `folder` is missing or holds no pictures; with `scheduler`, if the
        cluster cannot be reached or a worker does not see `folder` or `out`.
    UsageError
        If a k is outside 2..256, or `out` is `folder`; for an unknown space
        or measure; for `target_psnr` with `dither`; if `scheduler` is
        malformed or given without dask and distributed installed.
    FormatError
        If `resume` finds a ``report.csv`` it cannot read.
    """
    folder = Path(folder)
    ks = _check_ks(ks)
    target_psnr, max_colors = _check_search(target_psnr, max_colors, dither, reuse)
    metrics = check_metrics(metrics)
    quantizer.check_space(space)
    dither = check_strength(dither)
    reuse = check_reuse(reuse)
    speed = quantizer.check_speed(speed)
    if scheduler is not None:
        cluster.check_address(scheduler)
        cluster.require()
    images = find_images(folder, recursive=recursive, exclude=out)
    if not images:
        raise InputError(f"{folder}: no pictures found (PNG, JPEG, WebP, GIF, BMP, TIFF)")
    _make_folder(out)
    stems = plan_outputs(images, folder)
    names = [str(path.relative_to(folder)) for path in images]
    store = Path(out) / journal.FILENAME
    # What the rows depend on besides the picture and k: a resumed run must
    # not mix rows made with other options into one table.  (The target of
    # a search is not among them: rows of another target are dropped.)
    options = dict(seed=seed, space=space, dither=dither, speed=speed, max_pixels=max_pixels,
                   strict=strict, metrics=list(metrics), max_colors=max_colors)
    if reuse:  # absent when off: tables made before the option still resume
        options["reuse"] = reuse
    kept, done, searched = None, set(), set()
    if resume:
        from . import table as tables

        _check_options(Path(out) / journal.OPTIONS, options)
        kept = _kept_rows(store, images, names, ks, out, metrics, target_psnr)
        found = tables.searched(kept)
        done = set(zip(kept.loc[~found, "image"], kept.loc[~found, "k"]))
        searched = set(kept.loc[found, "image"])
    journal.save_options(Path(out) / journal.OPTIONS, options)
    jobs_list = []
    for path, name in zip(images, names):
        missing = [k for k in ks if (name, k) not in done]
        search = target_psnr is not None and name not in searched
        if missing or search:
            jobs_list.append((path, dict(ks=missing, out=out, stem=stems[name], name=name,
                                         force=force, seed=seed, max_pixels=max_pixels, space=space,
                                         dither=dither, metrics=metrics, strict=strict,
                                         speed=speed, target_psnr=target_psnr if search else None,
                                         max_colors=max_colors, reuse=reuse)))
    if announce is None and progress:
        announce = _announce
    if jobs_list:
        pictures = len(jobs_list)
        if scheduler is None:
            jobs_list = _balanced(jobs_list, jobs or os.cpu_count() or 1)
        engine = (_LocalEngine(jobs, metrics) if scheduler is None else
                  _DaskEngine(scheduler, jobs, folder, out, jobs_list[0][0], announce))
        # Parts of a picture still to come; the bar counts whole pictures.
        pending = {}
        for _, kwargs in jobs_list:
            pending[kwargs["name"]] = pending.get(kwargs["name"], 0) + 1
        unread = set()
        # The engine checks what it needs (a cluster, paths its workers see)
        # before the table file is started anew.
        with engine as run_jobs, contextlib.closing(run_jobs(jobs_list)) as results:
            # The local workers are at work already: pandas loads meanwhile.
            from . import table as tables

            if kept is None:
                kept = tables.frame([], metrics)
            bar = _progress(len(images), progress, initial=len(images) - pictures)
            try:
                with journal.Journal(store, tables.csv_text(kept)) as journal_rows:
                    for rows in results:
                        name = rows[0]["image"]
                        rows = tables.frame(_once_unread(rows, unread), metrics)
                        journal_rows.append(tables.csv_text(rows, header=False))
                        pending[name] -= 1
                        if not pending[name]:
                            bar.update()
            finally:
                bar.close()
    from . import table as tables

    table = tables.in_order(tables.read_csv(store, metrics), names)
    journal.replace(store, tables.csv_text(table))
    return table


def _balanced(jobs_list, workers):
    """The jobs of one picture each, split into parts so that `workers` processes end together.

    A picture costs about its pixels times its ks.  Four pictures on two
    processes, one of them a small icon, leave one process encoding two
    large pictures while the other waits; a picture whose cost is above a
    share (the total over :data:`_PARTS_PER_WORKER` jobs per process) is
    split into parts of interleaved ks (the search of a target PSNR being
    a part of its own), and the largest jobs go first.  Each part reads the
    picture and counts its colors anew: a few percent of the time of one k.
    The encodings do not depend on the parts, since each k is encoded from
    the picture alone.

    Parameters
    ----------
    jobs_list : list of (Path, dict)
        One job per picture: its path and the keyword arguments of
        :func:`report_image`.
    workers : int
        Processes that run the jobs; 1 keeps `jobs_list` as it is.

    Returns
    -------
    list of (Path, dict)
        The jobs, those of a split picture with a share of its ``ks`` and,
        in one of them, its ``target_psnr``.
    """
    if workers <= 1 or not jobs_list:
        return jobs_list
    costs = []
    for path, kwargs in jobs_list:
        units = len(kwargs["ks"]) + (_SEARCH_COST if kwargs["target_psnr"] is not None else 0)
        costs.append((imageio.pixel_count(path) or 1) * units)
    share = sum(costs) / (workers * _PARTS_PER_WORKER)
    parts = []
    for (path, kwargs), cost in zip(jobs_list, costs):
        ks = kwargs["ks"]
        count = min(len(ks), math.ceil(cost / share))
        if count <= 1:
            parts.append((cost, (path, kwargs)))
            continue
        pixels = cost / (len(ks) + (_SEARCH_COST if kwargs["target_psnr"] is not None else 0))
        for i in range(count):
            part = ks[i::count]
            parts.append((pixels * len(part), (path, dict(kwargs, ks=part, target_psnr=None))))
        if kwargs["target_psnr"] is not None:
            parts.append((pixels * _SEARCH_COST, (path, dict(kwargs, ks=[]))))
    parts.sort(key=lambda part: -part[0])  # stable: ties keep the pictures' order
    return [job for _, job in parts]


def _once_unread(rows, unread):
    """`rows` without the row saying its picture cannot be read, if an earlier part said so.

    Every part of a split picture that cannot be read gives that row; the
    table keeps one.  `unread`, the pictures already given it, is updated.
    """
    kept = []
    for row in rows:
        if row["k"] is None:
            if row["image"] in unread:
                continue
            unread.add(row["image"])
        kept.append(row)
    return kept


def _announce(message):
    print(f"kqcodec: {message}", file=sys.stderr)


def _check_options(path, options):
    """Refuse to resume a table whose recorded options differ from `options`."""
    recorded = journal.load_options(path)
    if recorded is None:
        return
    changed = [f"{key}={recorded.get(key)}" for key in sorted(set(options) | set(recorded))
               if recorded.get(key) != options.get(key)]
    if changed:
        raise UsageError(f"{path.parent / journal.FILENAME}: its rows were made with "
                         f"{', '.join(changed)}; resume with the same options, or start anew")


def _kept_rows(store, images, names, ks, out, metrics, target_psnr=None):
    """The rows a stopped run left that still hold, as :func:`report` says."""
    from . import table as tables

    text = journal.recover(store)
    if not text:
        return tables.frame([], metrics)
    try:
        old = tables.done_rows(tables.read_csv(io.StringIO(text), metrics), names, ks,
                               target_psnr)
    except ValueError as exc:
        raise FormatError(f"{store}: cannot resume from this table: "
                          f"{str(exc).splitlines()[0]}") from None
    sizes = {}
    for path, name in zip(images, names):
        with contextlib.suppress(OSError):
            sizes[name] = path.stat().st_size
    keep = []
    for name, original, encoded, relative in zip(old["image"], old["original_bytes"],
                                                 old["encoded_bytes"], old["encoded_file"]):
        try:
            written = (Path(out) / relative).stat().st_size
        except OSError:
            written = None
        keep.append(sizes.get(name) == original and written == encoded)
    return old[keep].reset_index(drop=True)


class _LocalEngine:
    """Pictures in local processes, or in this one: the default engine.

    The worker processes start, with the jobs handed to them, when
    :meth:`run` is called rather than when its first result is asked for:
    what the caller does meanwhile overlaps their work.
    """

    def __init__(self, jobs, metrics=()):
        self.jobs, self.metrics = jobs, metrics
        self._pool = self._processes = None

    def __enter__(self):
        return self.run

    def __exit__(self, exc_type, exc, traceback):
        if self._pool is not None:
            # After an error or a Ctrl-C the jobs in flight are stopped;
            # otherwise they are all done.
            if exc_type is None:
                self._pool.close()
            else:
                terminate(self._pool, self._processes)
            self._pool.join()
            self._pool = self._processes = None
        return False

    def run(self, jobs_list):
        """Start the jobs; return an iterator of each job's rows as it is done, in any order."""
        workers = min(self.jobs or os.cpu_count() or 1, len(jobs_list))
        if workers <= 1:
            return (_report_job(job) for job in jobs_list)
        if multiprocessing.get_start_method() == "fork":
            # Imported once here, the measures' libraries are shared by the
            # forked workers instead of being imported by each.
            measures.preload(self.metrics)
        self._pool, self._processes = start_pool(workers)
        return (rows for rows in self._pool.imap_unordered(_report_job, jobs_list))


class _DaskEngine:
    """Pictures as tasks on a Dask cluster, with paths made absolute for the workers."""

    def __init__(self, scheduler, jobs, folder, out, sample, announce):
        self.scheduler, self.jobs, self.announce = scheduler, jobs, announce
        self.folder, self.out = Path(folder).absolute(), Path(out).absolute()
        self.sample = Path(sample).absolute()
        self._session = self._client = None

    def __enter__(self):
        self._session = cluster.open_client(self.scheduler, workers=self.jobs)
        self._client = self._session.__enter__()
        try:
            cluster.check_paths(self._client, self.folder, self.out, self.sample)
            link = cluster.dashboard(self._client)
            if link and self.announce:
                self.announce(f"Dask dashboard: {link}")
        except BaseException as exc:
            self._session.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self.run

    def __exit__(self, *exc):
        return self._session.__exit__(*exc)

    def run(self, jobs_list):
        """Yield each picture's rows as its task completes."""
        calls = (((str(Path(path).absolute()), dict(kwargs, out=str(self.out))),)
                 for path, kwargs in jobs_list)
        for index, result in cluster.run(self._client, _report_job, calls):
            if isinstance(result, cluster.WorkerLost):
                result = [error_row(jobs_list[index][1]["name"], None, result.message)]
            yield result


def _progress(total, enabled, initial=0):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="image", disable=not enabled, file=sys.stderr,
                desc="report", leave=False)


