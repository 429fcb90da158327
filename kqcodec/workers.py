"""Running one job per picture in worker processes, with a progress bar.

Batch encoding goes through :func:`run_jobs`.  Results come back in the
order of the jobs, whatever order the workers finish in, so the output
never depends on the number of workers.  The report starts its own pool
here (:func:`start_pool`) and takes its results as they come.  This is the
only module that imports tqdm.
"""

import contextlib
import multiprocessing
import os
import pickle
import signal
import sys
import threading

from .errors import KqcodecError, UsageError
from .heap import keep_freed_memory
from .threads import one_thread_each

__all__ = ["run_jobs", "check_jobs", "worker_count", "worker_start", "start_pool", "new_track",
           "results_as_done", "closable", "terminate", "stopping_once", "progress_bar", "say"]

# Seconds between the SIGTERMs that terminate() sends to workers still alive.
_RESEND = 0.25

# Seconds between two checks, while run_jobs waits for a result, that the
# worker running its job is alive; and how long a job its worker finished
# before dying is given for its result to arrive.
_POLL = 0.5
_IN_TRANSIT = 5.0

# In a worker of run_jobs: the shared arrays where each job's worker writes
# its process id as it starts the job, and 1 as it finishes it.
_TRACK = None

def check_jobs(jobs):
    """Refuse a number of worker processes that is not None or a positive integer.

    Parameters
    ----------
    jobs : int or None

    Raises
    ------
    UsageError
        For anything else.
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise UsageError(f"jobs must be a positive integer or None, not {jobs!r}")


def worker_count(jobs, tasks):
    """Processes to start: `jobs` (all cores when None), at most one per task.

    Parameters
    ----------
    jobs : int or None
    tasks : int

    Returns
    -------
    int
        At least 1.
    """
    return max(1, min(jobs or os.cpu_count() or 1, tasks))


def worker_start(track=None):
    """Set up a worker process (a ``multiprocessing.Pool`` initializer).

    Ctrl-C is the parent's to handle: it terminates the workers, and SIGTERM
    becomes SystemExit here so that a half-written file is removed on the
    way out.  Each worker uses one BLAS thread: the pool already fills the
    cores, and oversubscription only slows both.

    Parameters
    ----------
    track : tuple of two multiprocessing arrays, optional
        Where :func:`run_jobs`'s jobs say which process runs them (see
        :func:`_tracked`).
    """
    global _TRACK
    _TRACK = track
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_term)
    _end_with_parent()
    keep_freed_memory()
    one_thread_each()


# prctl's option that asks for a signal when the parent ends (linux/prctl.h).
_PR_SET_PDEATHSIG = 1


def _end_with_parent():
    """Have Linux send this worker SIGTERM when its parent process ends.

    A parent killed with SIGKILL (out of memory, ``kill -9``) cannot stop its
    workers: they went on with their pictures, writing into the output
    folder, for a table no one would gather.  SIGTERM ends a worker the usual way (see
    :func:`_exit_on_term`).  Elsewhere than Linux, nothing changes.

    Returns
    -------
    bool
        Whether the signal was asked for.
    """
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover - a libc without prctl
        return False
    # The process that started this one: the pool's under fork, a fork
    # server's otherwise (which ends with the pool's process).
    parent = os.getppid()
    if prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:  # pragma: no cover
        return False
    if os.getppid() != parent:
        # It ended before the request: no signal will come.
        os.kill(os.getpid(), signal.SIGTERM)
    return True


def _exit_on_term(signum, frame):
    # Should this SystemExit be lost (see terminate), the next SIGTERM takes
    # the default action and ends the worker.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    raise SystemExit(128 + signum)


def start_pool(workers, track=None):
    """Start a ``multiprocessing.Pool`` whose processes :func:`worker_start` sets up.

    Parameters
    ----------
    workers : int
        Number of processes.
    track : tuple, optional
        Passed to :func:`worker_start`.

    Returns
    -------
    pool : multiprocessing.pool.Pool
    processes : list of multiprocessing.Process
        Its worker processes, for :func:`terminate`.
    """
    before = set(multiprocessing.active_children())
    pool = multiprocessing.Pool(workers, initializer=worker_start, initargs=(track,))
    return pool, [p for p in multiprocessing.active_children() if p not in before]


def terminate(pool, processes):
    """``pool.terminate()``, sending SIGTERM again to workers that outlive the first.

    One SIGTERM is not always enough, and then ``Pool.terminate()`` waits
    forever for a worker that waits forever for a task (while the pool holds
    the task queue's lock).  A Python signal handler runs between bytecodes:
    a SIGTERM that arrives just before a worker blocks on that lock leaves
    the handler pending until another signal interrupts the wait; and its
    SystemExit, raised inside a weakref callback that garbage collection
    happens to run, is printed and ignored.  The worker's handler unwinds
    what it holds (locks, half-written files); a second SIGTERM runs a
    pending handler, or ends a worker that already lost its SystemExit.

    A worker can still end holding one of the pool's queue locks: its
    SystemExit, raised as it returns from taking the result queue's lock
    and before the ``with`` block that would give it back, or the default
    action of the second SIGTERM.  ``Pool.terminate()`` then waits forever
    to send on that queue: 2 of about 780 pools stopped with jobs in flight,
    in two loops that stopped pools as fast as they could, side by side; none
    of 3,600 once such locks are given back.  Once every worker has
    ended, a lock that stays taken over two checks has no one left to give
    it back, and is given back here.

    Parameters
    ----------
    pool : multiprocessing.pool.Pool
    processes : list of multiprocessing.Process
        Its workers, as :func:`start_pool` returns them.
    """
    finished = threading.Event()
    locks = _queue_locks(pool)

    def resend():
        stranded = set()
        while not finished.wait(_RESEND):
            for process in processes:
                process.terminate()  # nothing once the process is reaped
            if any(process.exitcode is None for process in processes):
                stranded = set()
                continue
            held = {i for i, lock in enumerate(locks) if _taken(lock)}
            for i in held & stranded:
                with contextlib.suppress(ValueError):  # given back meanwhile
                    locks[i].release()
            stranded = held - stranded

    thread = threading.Thread(target=resend, daemon=True)
    thread.start()
    try:
        pool.terminate()
    finally:
        finished.set()
        thread.join()


@contextlib.contextmanager
def stopping_once():
    """A context in which the first Ctrl-C or SIGTERM stops the work, and later ones wait.

    Pressing Ctrl-C twice, or ``timeout -s INT`` (which signals the process,
    then its whole group), delivers a second SIGINT while the first one's
    KeyboardInterrupt is stopping the workers.  Raised inside
    :func:`terminate`, it cut the stop short: the pool's ``join`` then
    raised "Pool is still running", or waited forever for workers left
    waiting for tasks (5 and 1 of 30 batches interrupted so).  Here each
    of those signals runs the handler this process had for it (the
    KeyboardInterrupt, or the command's SystemExit on SIGTERM), except
    while that exception is being handled: the stop is under way, and the
    signal is ignored.

    The exception of a signal can be lost: Python raises it wherever the
    main thread is, and some code there drops every exception (one
    instance: numpy's Cython modules, imported while the report's workers
    already write, register their types with ``collections.abc`` and ignore
    what that raises).  A report then went on to its end and exited 0, all
    its Ctrl-Cs lost.  So a later signal raises again while no stop is
    under way, and a block that ends without an exception after a signal
    whose handler raised raises that exception again as it ends.  A
    handler that raises nothing (one that takes note) is called once per
    signal.  Signals left to their default action or ignored are not
    touched, nor is anything outside the main thread, where Python runs no
    handler.

    Hold it around code that starts, uses and stops a pool.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    signums = (signal.SIGINT, signal.SIGTERM)
    saved = {signum: signal.getsignal(signum) for signum in signums}
    caught = [signum for signum, handler in saved.items() if callable(handler)]
    # The first signal whose handler raised: a handler that only takes note
    # (a caller's own) is called once per signal, as without this block.
    raised = []

    def handler(signum, frame):
        if raised and _stopping():
            return
        try:
            saved[signum](signum, frame)
        except BaseException:
            if not raised:
                raised.append(signum)
            raise

    for signum in caught:
        signal.signal(signum, handler)
    try:
        yield
    finally:
        # Held while the handlers are put back, so that none is left half
        # done: a signal meanwhile is delivered to the restored handler.
        with _held(signums):
            for signum in caught:
                signal.signal(signum, saved[signum])
    # Reached only when the block ended without an exception.
    if raised:
        saved[raised[0]](raised[0], None)


@contextlib.contextmanager
def _held(signums):
    """A block during which `signums` wait, delivered as it ends (where the system allows)."""
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - not POSIX
        yield
        return
    before = signal.pthread_sigmask(signal.SIG_BLOCK, signums)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _stopping():
    """Whether a signal's exception is being handled (by the stop it started) here and now."""
    exc = sys.exc_info()[1]
    while exc is not None:
        # An exception raised while stopping (an OSError handled in the
        # pool's code, say) carries the signal's exception as its context.
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            return True
        exc = exc.__context__
    return False


def _queue_locks(pool):
    """The queue locks a worker takes: the task queue's to read, the result queue's to write.

    The pool's own threads take the others, and give them back themselves.
    """
    inqueue, outqueue = getattr(pool, "_inqueue", None), getattr(pool, "_outqueue", None)
    return [lock for lock in (getattr(inqueue, "_rlock", None), getattr(outqueue, "_wlock", None))
            if lock is not None]


def _taken(lock):
    """Whether `lock` is taken now, by anyone."""
    if lock.acquire(False):
        lock.release()
        return False
    return True


def progress_bar(total, enabled, desc, initial=0):
    """A tqdm bar of pictures on stderr (a no-op one when not `enabled`).

    Parameters
    ----------
    total : int
        Pictures in all.
    enabled : bool
    desc : str
        The bar's label.
    initial : int
        Pictures already done (by an earlier run that this one resumes).

    Returns
    -------
    tqdm.tqdm
    """
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="image", disable=not enabled, file=sys.stderr,
                desc=desc, leave=False)


def _lost(lost, job):
    if lost is None:
        raise KqcodecError("a worker process ended without its result "
                           "(killed: out of memory?)")
    return lost(job)


def say(message):
    """Print a line on stderr without breaking a progress bar."""
    from tqdm import tqdm

    tqdm.write(message, file=sys.stderr)


def new_track(jobs):
    """Shared arrays for :func:`start_pool`: where each of `jobs` jobs says which process ran it."""
    return multiprocessing.RawArray("q", jobs), multiprocessing.RawArray("b", jobs)


def closable(stranded, processes):
    """Whether a pool may be closed and joined, not terminated.

    Not with jobs given up for lost (the pool would wait for their results),
    nor once a worker has died: killed while idle, it may have held the task
    queue's lock, and the others could not take their stop signal.
    """
    return not stranded and all(process.exitcode is None for process in processes)


def results_as_done(pool, function, jobs, track, lost, *, keep_errors=False):
    """Yield ``(i, function(jobs[i]))`` as each job is done, in any order.

    ``multiprocessing.Pool`` replaces a worker that dies (out of memory,
    ``kill -9``), but the job it was running never comes back: waiting for
    it would wait forever.  So while no result comes, every _POLL seconds,
    the jobs whose process has ended are given up: ``(i, lost(jobs[i]))``.
    The pool was started by :func:`start_pool` with `track`, from
    :func:`new_track`.
    A worker's exception is raised here, as ``imap_unordered`` raises it;
    with `keep_errors`, it is yielded in a :class:`_Failed` instead.
    """
    import queue

    started, finished = track
    done = queue.SimpleQueue()
    pending = {}
    for i, job in enumerate(jobs):
        pending[i] = pool.apply_async(
            _tracked, (i, pickle.dumps((function, job), pickle.HIGHEST_PROTOCOL)),
            callback=lambda value, i=i: done.put((i, True, value)),
            error_callback=lambda error, i=i: done.put((i, False, error)))
    while pending:
        try:
            i, ok, value = done.get(timeout=_POLL)
        except queue.Empty:
            alive = {process.pid for process in multiprocessing.active_children()}
            for i in [i for i in pending if started[i] and started[i] not in alive]:
                # A job finished just before its worker died may have its
                # result on the way.
                if finished[i] and pending[i].wait(_IN_TRANSIT) is None and pending[i].ready():
                    continue
                del pending[i]
                yield i, lost(jobs[i])
            continue
        if pending.pop(i, None) is None:
            continue  # given up for lost, then done after all
        if not ok and not keep_errors:
            raise value
        yield i, value if ok else _Failed(value)


def _tracked(i, payload):
    """Run ``function(job)`` of a task of :func:`results_as_done`, saying which process runs it.

    The function and its job come pickled, unpickled only once the process
    has said it runs them: unpickling a job can import modules (0.2 s in a
    new process under spawn), and a worker killed meanwhile would leave a
    job that no process was known to run, waited for forever.
    """
    started, finished = _TRACK
    started[i] = os.getpid()
    function, job = pickle.loads(payload)
    result = function(job)
    finished[i] = 1
    return result


class _Failed:
    """A job's exception, raised where its result is taken (see :func:`results_as_done`)."""

    def __init__(self, error):
        self.error = error


def run_jobs(function, jobs, *, workers=1, progress=False, desc="", lost=None):
    """Yield ``function(job)`` for every job, in order, from worker processes.

    Parameters
    ----------
    function : callable
        A module-level function (it is pickled by name).
    jobs : sequence
        Its arguments, one per call.
    workers : int
        Processes; 1 runs every job in this process.
    progress : bool
        Show a progress bar on stderr, advanced as results come back.
    desc : str
        The bar's label.
    lost : callable, optional
        ``lost(job)`` is yielded for a job whose worker process died
        without a result; without it, that raises :class:`KqcodecError`.

    Yields
    ------
    object
        Each result, in the order of `jobs`, after the bar has advanced.
        Print with :func:`say` meanwhile, so that the bar is redrawn below.

    Raises
    ------
    KqcodecError
        For a job whose worker died, without `lost`.
    """
    bar = progress_bar(len(jobs), progress, desc)
    try:
        if workers <= 1:
            for job in jobs:
                result = function(job)
                bar.update()
                yield result
            return
        pool = None
        done = 0
        # Jobs whose worker died: the pool would wait for their results as it closes.
        stranded = []

        def stand_in(job):
            stranded.append(job)
            return _lost(lost, job)

        try:
            # Inside the block: a Ctrl-C while the workers start terminates them too.
            track = new_track(len(jobs))
            pool, processes = start_pool(workers, track)
            ahead = {}  # results that came before an earlier job's
            for i, result in results_as_done(pool, function, jobs, track, stand_in,
                                             keep_errors=True):
                ahead[i] = result
                while done in ahead:
                    result = ahead.pop(done)
                    if isinstance(result, _Failed):
                        # Where the job's result would have come, the results
                        # before it given first.
                        raise result.error
                    done += 1
                    bar.update()
                    yield result
        except BaseException:
            if pool is not None:
                # A caller that stops after the last result (the generator
                # closed at its last yield) leaves nothing in flight: the
                # idle workers are let go as after the loop.
                if done == len(jobs) and closable(stranded, processes):
                    pool.close()
                else:
                    terminate(pool, processes)
            raise
        else:
            if closable(stranded, processes):
                pool.close()
            else:
                terminate(pool, processes)
        finally:
            if pool is not None:
                pool.join()
    finally:
        bar.close()
