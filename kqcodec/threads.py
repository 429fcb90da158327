"""How many threads the libraries kqcodec calls may start: the one module importing threadpoolctl.

scikit-learn brings threadpoolctl; without it nothing is limited.  The
limits are for speed (OpenBLAS's threads spin while kqcodec's thin
products wait) and for the same bytes on any machine (scikit-learn's
k-means sums each OpenMP thread's part of the points, so its centres
depend on how many there are).
"""

import contextlib
import os
import threading

__all__ = ["one_blas_thread", "one_openmp_thread", "one_thread_each"]


_BLAS = []
# Searches in several threads of one process share one limit (OpenBLAS's is
# the process's): the first to start sets it, the last to end restores it.
_BLAS_USERS = {"count": 0, "limiter": None}
_BLAS_LOCK = threading.Lock()


def _release_openblas():
    """Let any thread set OpenBLAS's limit next (threadpoolctl 3.8 gives it to one thread)."""
    try:
        from threadpoolctl import OpenBLASController
    except ImportError:  # pragma: no cover - before threadpoolctl 3 no thread owns it
        return
    release = getattr(OpenBLASController, "clear_controlling_thread", None)
    if release is not None:
        release(force=True)


@contextlib.contextmanager
def _shared_limit(controller):
    with _BLAS_LOCK:
        if _BLAS_USERS["count"] == 0:
            # The thread that set the limit may have ended or be running
            # still: the one setting it now takes over.
            _release_openblas()
            _BLAS_USERS["limiter"] = controller.limit(limits=1, user_api="blas")
        _BLAS_USERS["count"] += 1
    try:
        yield
    finally:
        with _BLAS_LOCK:
            _BLAS_USERS["count"] -= 1
            if _BLAS_USERS["count"] == 0:
                _release_openblas()
                _BLAS_USERS["limiter"].restore_original_limits()
                _release_openblas()
                _BLAS_USERS["limiter"] = None


def one_blas_thread():
    """A context in which BLAS (numpy's matrix products) runs on one thread.

    The palette search's products are thin, (M, 3) by (3, k) at most: a
    second BLAS thread costs more to wake and to spin while it waits than it
    saves.  Measured on two cores: a 0.25 MP encode took 0.2 s less CPU and
    wall time on one thread, a 1.8 MP one 0.3 s.  The products do not split
    their sums between threads, so the results are the same.  Without
    threadpoolctl (scikit-learn brings it) nothing is limited.  Nor when
    ``OPENBLAS_NUM_THREADS`` is 1 (the ``kqcodec`` command sets it before
    numpy loads): OpenBLAS then has one thread already, and importing
    threadpoolctl and finding the libraries would cost a few milliseconds.
    Searches in several threads at once share the limit.

    Returns
    -------
    context manager
    """
    if os.environ.get("OPENBLAS_NUM_THREADS") == "1":
        return contextlib.nullcontext()
    if not _BLAS:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - scikit-learn brings it
            _BLAS.append(None)
        else:
            # Made once: finding the loaded libraries takes about a millisecond.
            _BLAS.append(ThreadpoolController())
    if _BLAS[0] is None:  # pragma: no cover
        return contextlib.nullcontext()
    # OpenBLAS's limit is the whole process's, and threadpoolctl lets one
    # thread at a time set it: searches running at once in a program's
    # threads (or a Dask worker's), each setting and restoring their own,
    # left it at one thread for good.
    return _shared_limit(_BLAS[0])


def one_openmp_thread():
    """A context in which the OpenMP libraries loaded so far run one thread.

    For scikit-learn's KMeans, whose Lloyd iterations add up per-thread
    partial sums: with 1, 2 or 4 threads the same picture gave three
    different palettes.  Call it once scikit-learn is imported, so that
    its own OpenMP library is among those limited.

    Returns
    -------
    context manager
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="openmp")


def one_thread_each():
    """Have every thread pool loaded so far (BLAS, OpenMP) run one thread, for good.

    For worker processes, which run as many at once as there are cores.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn brings it
        return
    threadpool_limits(1)
