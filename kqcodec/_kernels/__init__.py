"""Compiled kernels: the hot loops of the stages, in Cython.

One ``.pyx`` file per stage, named after the Python module that calls it
(``histogram.pyx`` is called by ``histogram.py`` only).  A kernel holds a
loop and nothing else: the caller validates, allocates the outputs and
chooses the parameters.  Kernels take C-contiguous typed memoryviews, run
without the GIL, and give the same result whatever the number of threads:
``prange`` loops write disjoint outputs, and sums are either integers or
accumulated per fixed chunk and merged in chunk order.  ``setup.py`` builds
every ``.pyx`` here; the tests compare each kernel with a numpy reference.
"""
