"""The compiled kernels; everything else about the package is in setup.cfg.

Every ``kqcodec/_kernels/*.pyx`` becomes the extension module of the same
name, built with OpenMP so that ``prange`` loops use every core, and
without floating-point contraction so that results do not depend on the
machine.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

extensions = [
    Extension(
        f"kqcodec._kernels.{source.stem}",
        [str(source)],
        include_dirs=[numpy.get_include()],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        # No fused multiply-add contraction: float kernels (error diffusion)
        # must give the same result whatever the compiler or CPU (x86-64, ARM).
        extra_compile_args=["-O3", "-fopenmp", "-ffp-contract=off"],
        extra_link_args=["-fopenmp"],
        # zlib finds the block boundaries of a deflate stream (layout: parallel deflate).
        libraries=["z"] if source.stem == "layout" else [],
    )
    for source in sorted(Path("kqcodec/_kernels").glob("*.pyx"))
]

setup(ext_modules=cythonize(extensions, language_level=3,
                            compiler_directives={"boundscheck": False, "wraparound": False,
                                                 "initializedcheck": False, "cdivision": True}))
