"""kqcodec: k-means color quantization to true palette PNGs.

>>> import kqcodec
>>> image = kqcodec.encode("photo.jpg", "photo16.png", k=16)   # doctest: +SKIP
>>> pixels = kqcodec.decode("photo16.png")                      # doctest: +SKIP

The public names are loaded on first use, so that ``kqcodec --help`` starts
without importing numpy, Pillow or pandas.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "encode": "codec",
    "decode": "codec",
    "quantize": "quantizer",
    "choose_k": "quantizer",
    "shared_palette": "quantizer",
    "remap": "quantizer",
    "read_palette_png": "codec",
    "PaletteImage": "paletteimage",
    "Encoding": "codec",
    "read_image": "imageio",
    "read_picture": "imageio",
    "write_image": "imageio",
    "psnr": "metrics",
    "ssim": "metrics",
    "ssimulacra2": "metrics",
    "report": "reporting",
    "report_image": "imagereport",
    "KqcodecError": "errors",
    "UsageError": "errors",
    "FormatError": "errors",
    "InputError": "errors",
    "OutputExistsError": "errors",
    "OutputKeptError": "errors",
    "WriteError": "errors",
    "TargetError": "errors",
    "NotSmallerError": "errors",
    "KqcodecWarning": "errors",
    "ProfileWarning": "errors",
    "prepare": "quantizer",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'kqcodec' has no attribute {name!r}")


def __dir__():
    return __all__
