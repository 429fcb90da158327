"""Running the report: every picture of a folder at every k, in parallel, into one table.

Each job, a picture or some of its ks, is encoded, written and measured by
:mod:`kqcodec.imagereport`.  Jobs run in parallel processes (started by
:mod:`kqcodec.workers`), one per process at a time, so memory is bounded by
``jobs`` pictures: a job is a picture, or, when the pictures are too few or
too unequal to keep every process busy to the end, some of a picture's ks
(see :func:`_balanced`).  With a scheduler,
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
import warnings
from pathlib import Path

from . import cluster, imageio, imagereport, journal, pngfile, quantizer
from . import metrics as measures
from .defaults import DEFAULT_SPEED, REPORT_KS
from .dither import check_reuse, check_strength
from .errors import (FORCE_OPTION, FormatError, KqcodecWarning, OutputExistsError,
                     ProfileWarning, UsageError, WriteError, option)
from .rows import COLUMNS, DEFAULT_METRICS, check_metrics, error_row
from .safefile import check_output, file_path, make_folder, remove_left_behind
from .scan import find_images, none_found, plan_outputs
from .workers import (check_jobs, closable, new_track, progress_bar, results_as_done, start_pool,
                      stopping_once, terminate)

__all__ = ["DEFAULT_KS", "report"]

DEFAULT_KS = REPORT_KS

# Jobs per worker that _balanced aims at when it splits pictures into parts:
# the last job to finish then leaves the other workers idle for about a
# third of a worker's share at most.
_PARTS_PER_WORKER = 3
# What the search of a target PSNR costs, counted in ks of the list: it
# estimates the size of many palettes and encodes a few of them.
_SEARCH_COST = 4


def _report_job(job):
    """The rows of a job (a picture, or some of its ks), as dicts.

    A part of a split picture other than its first (``part`` above 0, see
    :func:`_balanced`) reads the picture without a word: the first says
    what there is to say about it.
    """
    path, kwargs = job
    kwargs = dict(kwargs)
    if kwargs.pop("part", 0):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", KqcodecWarning)
            warnings.simplefilter("ignore", ProfileWarning)
            return imagereport.picture_rows(path, **kwargs)
    return imagereport.picture_rows(path, **kwargs)


def report(folder, ks=DEFAULT_KS, *, out="compressed_outputs", recursive=False, force=False,
           seed=0, jobs=None, progress=False, max_pixels=pngfile.DEFAULT_MAX_PIXELS, space="rgb",
           dither=0.0, metrics=DEFAULT_METRICS, strict=False, scheduler=None, resume=False,
           announce=None, speed=DEFAULT_SPEED, target_psnr=None, max_colors=256, reuse=0.0,
           flags=False):
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
    space : {'rgb', 'oklab', 'rgb+oklab', 'perceptual'}
    dither : float
    metrics : sequence of str
    reuse : float
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
    flags : bool
        Say the options an ``error`` cell names as command-line flags
        (``use --force to replace it``), as the command line does; as
        Python code sets them (``force=True``) otherwise.

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
        or measure; for `target_psnr` with `dither`; for a speed, seed,
        pixel limit, dither, reuse or `jobs` out of range; if `scheduler` is
        malformed or given without dask and distributed installed.
    FormatError
        If `resume` finds a ``report.csv`` it cannot read.
    OutputExistsError
        Without `resume` or `force`, if `out` holds a ``report.csv`` or
        ``report.options.json`` that no report wrote; if another report is
        writing its table there.
    """
    folder = file_path(folder)
    ks = imagereport.check_ks(ks)
    target_psnr, max_colors = imagereport.check_search(target_psnr, max_colors, dither, reuse)
    metrics = check_metrics(metrics)
    quantizer.check_space(space)
    dither = check_strength(dither)
    reuse = check_reuse(reuse)
    speed = quantizer.check_speed(speed)
    quantizer.check_seed(seed)
    imageio.check_pixel_limit(max_pixels)
    check_jobs(jobs)
    if scheduler is not None:
        cluster.check_address(scheduler)
        cluster.require()
    images = find_images(folder, recursive=recursive, exclude=out)
    if not images:
        raise none_found(folder, [folder], recursive=recursive, exclude=out)
    make_folder(out)
    # One report at a time writes the table of a folder: two would each append
    # to a file the other replaced, and each end with part of the rows.
    with journal.locked(out):
        store = Path(out) / journal.FILENAME
        # A folder of that name would only fail the table's first write, after the work.
        check_output(store, force=True)
        if not (resume or force):
            _check_ours(Path(out))
        stems = plan_outputs(images, folder)
        names = list(stems)  # in the pictures' order, as the table names them
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
            kept = _kept_rows(store, images, stems, ks, out, metrics, target_psnr)
            found = tables.searched(kept)
            done = set(zip(kept.loc[~found, "image"], kept.loc[~found, "k"]))
            searched = set(kept.loc[found, "image"])
        jobs_list = []
        for path, name in zip(images, names):
            missing = [k for k in ks if (name, k) not in done]
            search = target_psnr is not None and name not in searched
            if missing or search:
                jobs_list.append((path, dict(
                    ks=missing, out=out, stem=stems[name], name=name, force=force, seed=seed,
                    max_pixels=max_pixels, space=space, dither=dither, metrics=metrics,
                    strict=strict, speed=speed, target_psnr=target_psnr if search else None,
                    max_colors=max_colors, reuse=reuse, flags=flags)))
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
                bar = progress_bar(len(images), progress, "report", initial=len(images) - pictures)
                try:
                    with journal.Journal(store, tables.csv_text(kept)) as journal_rows:
                        # The options after the table that holds only rows made
                        # with them: the other way round, a run stopped in
                        # between left the old rows under the new options,
                        # which a resume kept.
                        journal.save_options(Path(out) / journal.OPTIONS, options)
                        for rows in results:
                            name = rows[0]["image"]
                            rows = tables.frame(_once_unread(rows, unread), metrics)
                            journal_rows.append(tables.csv_text(rows, header=False))
                            pending[name] -= 1
                            if not pending[name]:
                                bar.update()
                finally:
                    bar.close()
        else:
            # A resumed run with nothing left to do: the table is the rows that
            # still hold, without those of pictures, ks or targets no longer asked.
            from . import table as tables

            journal.replace(store, tables.csv_text(kept))
            journal.save_options(Path(out) / journal.OPTIONS, options)
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
            parts.append((pixels * len(part),
                          (path, dict(kwargs, ks=part, target_psnr=None, part=i))))
        if kwargs["target_psnr"] is not None:
            parts.append((pixels * _SEARCH_COST, (path, dict(kwargs, ks=[], part=count))))
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


# Options the record leaves out at these values (tables made before the option
# existed resume as they are).
_UNRECORDED = {"reuse": 0.0}


def _check_options(path, options):
    """Refuse to resume a table whose recorded options differ from `options`."""
    recorded = journal.load_options(path)
    if recorded is None:
        return
    changed = [f"{key}={recorded.get(key, _UNRECORDED.get(key))}"
               for key in sorted(set(options) | set(recorded))
               if recorded.get(key, _UNRECORDED.get(key)) != options.get(key, _UNRECORDED.get(key))]
    if changed:
        raise UsageError(f"{path.parent / journal.FILENAME}: its rows were made with "
                         f"{', '.join(changed)}; resume with the same options, or start anew")


def _check_ours(out):
    """Refuse to start anew a table or options file in `out` that no report wrote.

    A report starts its table anew in ``report.csv``, and its options in
    ``report.options.json``, in whatever folder ``--out`` names (``--out .``
    among a user's files): without ``force``, only files of a report.

    Raises
    ------
    OutputExistsError
        For a ``report.csv`` whose first line is not a report's header, or
        a ``report.options.json`` that does not hold a report's options.
    """
    header = ",".join(COLUMNS[:4]).encode()
    try:
        with open(out / journal.FILENAME, "rb") as handle:
            ours = handle.readline(len(header)) == header
    except OSError:  # missing; or the table's own writes say what is wrong
        ours = True
    try:
        options = journal.load_options(out / journal.OPTIONS)
        ours = ours and (options is None or "seed" in options)
    except (FormatError, WriteError):
        ours = False
    if not ours:
        raise OutputExistsError(f"{out}: holds a {journal.FILENAME} or {journal.OPTIONS} that "
                                f"no report wrote; use {FORCE_OPTION} to replace them, or "
                                f"give another {option('out')}")


def _kept_rows(store, images, stems, ks, out, metrics, target_psnr=None):
    """The rows a stopped run left that still hold, as :func:`report` says.

    `stems` maps each picture's name to its output stem, in the pictures'
    order (see :func:`scan.plan_outputs`).  A row whose file is not named
    after its picture's stem now is dropped: a picture added since (``a.jpg``
    beside ``a.png``) can take the stem, and then the file.
    """
    from . import table as tables

    names = list(stems)

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
    for name, k, original, encoded, relative in zip(old["image"], old["k"], old["original_bytes"],
                                                    old["encoded_bytes"], old["encoded_file"]):
        try:
            written = (Path(out) / relative).stat().st_size
        except OSError:
            written = None
        named = f"{stems[name].as_posix()}_k{int(k)}"
        keep.append(sizes.get(name) == original and written == encoded
                    and (relative == f"{named}.png"
                         or (relative.startswith(f"{named}_psnr") and relative.endswith(".png"))))
    # Positions, not a mask: an empty list would select no columns.
    return old.iloc[[i for i, held in enumerate(keep) if held]].reset_index(drop=True)


class _LocalEngine:
    """Pictures in local processes, or in this one: the default engine.

    The worker processes start, with the jobs handed to them, when
    :meth:`run` is called rather than when its first result is asked for:
    what the caller does meanwhile overlaps their work.
    """

    def __init__(self, jobs, metrics=()):
        self.jobs, self.metrics = jobs, metrics
        self._pool = self._processes = None
        self._stranded = False
        self._signals = None

    def __enter__(self):
        # A second Ctrl-C must not cut short the stop of the workers.
        self._signals = stopping_once()
        self._signals.__enter__()
        return self.run

    def __exit__(self, exc_type, exc, traceback):
        signals, self._signals = self._signals, None
        try:
            if self._pool is not None:
                # After an error or a Ctrl-C the jobs in flight are stopped;
                # otherwise they are all done.
                if exc_type is None and closable(self._stranded, self._processes):
                    self._pool.close()
                else:
                    terminate(self._pool, self._processes)
                self._pool.join()
                self._pool = self._processes = None
        except BaseException as error:
            signals.__exit__(type(error), error, error.__traceback__)
            raise
        # With the block's exception, if any: without one, a Ctrl-C whose
        # exception was lost is raised here (see stopping_once).
        return signals.__exit__(exc_type, exc, traceback)

    def run(self, jobs_list):
        """Start the jobs; return an iterator of each job's rows as it is done, in any order."""
        workers = min(self.jobs or os.cpu_count() or 1, len(jobs_list))
        if workers <= 1:
            return (_report_job(job) for job in jobs_list)
        if multiprocessing.get_start_method() == "fork":
            # Imported once here, the measures' libraries are shared by the
            # forked workers instead of being imported by each.
            measures.preload(self.metrics)
        track = new_track(len(jobs_list))
        self._pool, self._processes = start_pool(workers, track)
        return (rows for _, rows in results_as_done(self._pool, _report_job, jobs_list, track,
                                                    self._lost))

    def _lost(self, job):
        """The rows of a job whose worker process died (killed: out of memory?)."""
        # The pool would wait for the lost job's result as it closes.
        self._stranded = True
        remove_left_behind(*imagereport.encodings_of(job[1]))
        return [error_row(job[1]["name"], None, "the process measuring it ended without a "
                                                "result (killed: out of memory?)")]


class _DaskEngine:
    """Pictures as tasks on a Dask cluster, with paths made absolute for the workers."""

    def __init__(self, scheduler, jobs, folder, out, sample, announce):
        self.scheduler, self.jobs, self.announce = scheduler, jobs, announce
        self.folder, self.out = Path(folder).absolute(), Path(out).absolute()
        self._given_out = str(out)
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
            else:
                result = [self._as_given(row, jobs_list[index][0]) for row in result]
            yield result

    def _as_given(self, row, path):
        """`row` with its error naming files as given, as the local engine's do."""
        if not row.get("error"):
            return row
        error = row["error"].replace(str(Path(path).absolute()), str(path))
        return dict(row, error=error.replace(str(self.out), self._given_out))
