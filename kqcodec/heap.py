"""glibc malloc's options for a process that allocates and frees the same large arrays.

An encode allocates arrays of a few sizes (the pixels, the indices, their
filtered rows, the compressed bands), frees them and allocates them again,
and a report's worker does so picture after picture.  By default glibc maps
every block of 128 KB or more afresh and unmaps it when freed (raising that
threshold only after the first few), and gives the free top of the heap
back to the system: each page then costs a page fault when it is touched
again, and on this project's virtual machines a fault costs several
microseconds.  With these options the heap keeps what it reached.
"""

__all__ = ["keep_freed_memory"]

# mallopt's parameters (malloc.h): blocks below _MMAP_FROM come from the
# heap, and the heap keeps up to _TRIM_FROM of free memory at its top,
# growing by _TOP_PAD more than asked.
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_TRIM_FROM = 512 << 20
_TOP_PAD = 64 << 20
_MMAP_FROM = 32 << 20


def keep_freed_memory():
    """Have glibc's malloc keep the memory this process frees, for its next arrays.

    For the command line's own process and the worker processes, never on
    import: a program that uses kqcodec as a library keeps its own malloc
    options.  In a report of test_pictures/ the two workers took about
    100,000 page faults (0.5-0.6 s of system time on two cores), against
    34,000 (0.3 s) with these options, for the same files; a single encode
    of a 1.8 MP photo, 17,000 against 11,600.  The peak memory is about the
    same (the heap keeps what it reached: +5 MB on a 6 MP photo at k = 256);
    the memory is not given back until the process ends.  Elsewhere than
    glibc, nothing changes.

    Returns
    -------
    bool
        Whether the options were set.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        return False
    return all([mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM), mallopt(_M_TRIM_THRESHOLD, _TRIM_FROM),
                mallopt(_M_TOP_PAD, _TOP_PAD)])
