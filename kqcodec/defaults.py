"""Defaults shared by the command line and the library.

Kept apart, with no imports, so that ``kqcodec --help`` can show them
without loading numpy, Pillow or pandas.
"""

#: Pillow's own decompression-bomb threshold, about 89.5 megapixels.
MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3

#: Palette sizes kqcodec allows.
K_RANGE = range(2, 257)

#: The palette sizes a report tries when none are given.
REPORT_KS = (2, 4, 8, 16, 32, 64, 128, 256)

#: The PSNR, in dB, a report's recommended k must reach.
TARGET_PSNR = 35.0

#: The measures a report can compute, and those it computes unless asked.
#: SSIMULACRA2 is left out by default: it takes about as long as encoding.
METRICS = ("psnr", "ssim", "ssimulacra2")
REPORT_METRICS = ("psnr", "ssim")

#: Color spaces the palette search can measure distances in; ``perceptual``
#: is Oklab with each pixel weighted by how visible its error is.
SPACES = ("rgb", "oklab", "rgb+oklab", "perceptual")

#: Effort levels, in pngquant's sense: 1 = smallest files and slowest, 10 = fastest.
SPEEDS = range(1, 11)

#: The effort level used when none is given.
DEFAULT_SPEED = 4

#: Palette search engines: kqcodec's own, and scikit-learn's for comparison.
ENGINES = ("kqcodec", "sklearn")

#: What a report can print: the grouped table, or the full table as markdown, CSV, JSON.
REPORT_FORMATS = ("table", "markdown", "csv", "json")
