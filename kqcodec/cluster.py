"""The Dask engine: a report's pictures as tasks on the workers of a Dask cluster.

This is the only module that imports dask and distributed, and only when a
report is asked to run on a scheduler: the default engine (local processes)
never loads them.  One task reads, encodes and measures one picture and
returns its rows; the client submits a bounded window of tasks and hands
back each result as it completes, so it holds rows and a few futures, never
pixels and never a million futures at once.  A worker that dies mid-picture
is replaced (by its nanny or the cluster's manager) and Dask runs the task
again on a live worker; the result reaches the client once.
"""

import contextlib
import logging
import os
import socket

from .errors import InputError, UsageError

__all__ = ["LOCAL", "WorkerLost", "check_address", "require", "open_client", "dashboard",
           "check_paths", "run"]

#: The scheduler address that starts a LocalCluster on this machine.
LOCAL = "local"

# The scheduler spends about a millisecond per task and a picture takes
# a fraction of a second or more: a few queued tasks per worker thread
# keep every worker busy while the client holds few futures.
_QUEUED_PER_THREAD = 4

# How long to wait for the scheduler to answer and for a first worker.
_CONNECT_TIMEOUT = 30

_MISSING_EXTRA = "the Dask engine needs the dask extra: pip install 'kqcodec[dask]'"


class WorkerLost:
    """The result of a task that killed its worker each time Dask ran it.

    Parameters
    ----------
    message : str
        One line saying so.
    """

    def __init__(self, message):
        self.message = message


def check_address(scheduler):
    """Return a scheduler address after checking its form, without connecting.

    Parameters
    ----------
    scheduler : str
        ``local``, or an address such as ``tcp://10.0.0.5:8786``.

    Returns
    -------
    str

    Raises
    ------
    UsageError
        If `scheduler` is neither ``local`` nor ``PROTOCOL://HOST:PORT``.
    """
    if scheduler != LOCAL and "://" not in scheduler:
        raise UsageError(f"{scheduler!r}: give a Dask scheduler address such as "
                         f"tcp://HOST:8786, or {LOCAL!r}")
    return scheduler


def require():
    """Check that dask and distributed can be imported, before any work.

    Raises
    ------
    UsageError
        If they cannot: the ``dask`` extra is not installed.
    """
    _distributed()


def _distributed():
    try:
        import distributed
    except ImportError:
        raise UsageError(_MISSING_EXTRA) from None
    return distributed


def _probe(distributed, scheduler):
    """Fail at once if nothing listens at a TCP scheduler address.

    Dask retries a refused connection until its timeout, so a mistyped
    port or a scheduler not started would keep the user waiting 30 s for
    an answer the first attempt already had.  Other protocols (TLS, UCX,
    websockets) are left to Dask.

    Raises
    ------
    InputError
        If the host is unknown or refuses the connection.
    """
    protocol, location = distributed.comm.addressing.parse_address(scheduler)
    if protocol != "tcp":
        return
    try:
        host, port = distributed.comm.addressing.parse_host_port(location)
        socket.create_connection((host, port), timeout=_CONNECT_TIMEOUT).close()
    except socket.gaierror:
        raise InputError(f"{scheduler}: cannot reach the Dask scheduler: unknown host") from None
    except ConnectionRefusedError:
        raise InputError(f"{scheduler}: cannot reach the Dask scheduler: "
                         "connection refused (is it running?)") from None
    except (OSError, ValueError):
        return  # a timeout or another failure: Dask tries, and says why


@contextlib.contextmanager
def open_client(scheduler, *, workers=None):
    """Connect to a Dask scheduler, or start a LocalCluster, for the time of a block.

    Parameters
    ----------
    scheduler : str
        ``local`` starts a ``distributed.LocalCluster`` of `workers` single-
        threaded worker processes, closed on leaving the block; anything else
        is the address of a running scheduler, which is left running.
    workers : int, optional
        Worker processes of a local cluster; all cores by default.

    Yields
    ------
    distributed.Client
        With at least one worker.

    Raises
    ------
    UsageError
        If dask or distributed is not installed, or the address is malformed.
    InputError
        If the scheduler cannot be reached or no worker joins it in time.
    """
    check_address(scheduler)
    distributed = _distributed()
    cluster = None
    try:
        if scheduler == LOCAL:
            # One thread per process: the codec holds the GIL for part of its
            # work, and processes are what the local engine uses too.
            cluster = distributed.LocalCluster(
                n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                dashboard_address=":0", silence_logs=logging.ERROR)
            client = distributed.Client(cluster)
        else:
            _probe(distributed, scheduler)
            client = distributed.Client(scheduler, timeout=_CONNECT_TIMEOUT)
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise InputError(f"{scheduler}: cannot reach the Dask scheduler: {exc}") from None
    try:
        try:
            client.wait_for_workers(1, timeout=_CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            raise InputError(f"{scheduler}: no Dask worker joined within "
                             f"{_CONNECT_TIMEOUT} s") from None
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def dashboard(client):
    """The address of the cluster's dashboard, or None when it serves none.

    Parameters
    ----------
    client : distributed.Client

    Returns
    -------
    str or None
    """
    services = client.scheduler_info().get("services", {})
    return client.dashboard_link if "dashboard" in services else None


def _first_missing(paths):
    """On a worker: the first of `paths` that is not there, or None."""
    for path, kind in paths:
        if not (os.path.isdir(path) if kind == "folder" else os.path.isfile(path)):
            return path
    return None


def check_paths(client, folder, out, sample):
    """Check, before any work, that every worker sees the pictures and the output folder.

    Parameters
    ----------
    client : distributed.Client
    folder, out : path-like
        Absolute paths of the picture folder and the output folder.
    sample : path-like
        One picture of `folder`: a worker that only sees an empty folder
        (an unmounted mount point) fails too.

    Raises
    ------
    InputError
        Naming the first path a worker does not see and how many workers
        do not.
    """
    wanted = [(str(folder), "folder"), (str(sample), "file"), (str(out), "folder")]
    missing = {worker: path for worker, path in client.run(_first_missing, wanted).items()
               if path is not None}
    if missing:
        worker, path = sorted(missing.items())[0]
        raise InputError(
            f"{path}: not found by {len(missing)} of {len(client.nthreads())} Dask workers "
            f"(e.g. {worker}); the pictures and the output folder must be on storage every "
            f"worker sees")


def run(client, function, calls):
    """Run ``function(*call)`` for every call on the cluster; yield results as they come.

    Parameters
    ----------
    client : distributed.Client
    function : callable
        Importable by the workers (a module-level function of kqcodec).
    calls : iterable of tuple
        Positional arguments of each task; consumed as tasks are submitted.

    Yields
    ------
    (int, object)
        The call's position in `calls` and its result, or a :class:`WorkerLost`
        when the task killed its worker as many times as the scheduler's
        ``allowed-failures`` allows (a picture too large for a worker's memory).

    Raises
    ------
    Exception
        Whatever a task raised other than losing its worker: that is a bug,
        and keeps its traceback.
    """
    distributed = _distributed()
    window = max(_QUEUED_PER_THREAD * sum(client.nthreads().values()), 8)
    pending = enumerate(calls)
    position = {}
    finished = distributed.as_completed()

    def submit_one():
        for index, args in pending:
            future = client.submit(function, *args, pure=False)
            position[future.key] = index
            finished.add(future)
            return

    for _ in range(window):
        submit_one()
    for future in finished:
        index = position.pop(future.key)
        if future.status == "error" and isinstance(future.exception(), distributed.KilledWorker):
            result = WorkerLost("the Dask workers running this picture died each time "
                                "it was tried (out of memory?)")
        else:
            result = future.result()
        # Forget the future so that the cluster forgets the result.
        future.release()
        submit_one()
        yield index, result
