"""Build of the compiled kernels; the metadata lives in setup.cfg."""

from Cython.Build import cythonize
from setuptools import Extension, setup

setup(ext_modules=cythonize([Extension("kqcodec._unfilter", ["kqcodec/_unfilter.pyx"])]))
