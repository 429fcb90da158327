"""The SHA-256 of many encodings, to compare the bytes two machines write.

    python benchmarks/fingerprints.py [PICTURE|FOLDER ...] [--largest MB] > this-machine.txt

kqcodec promises the same bytes for the same input and options on any
machine.  Run this on each (another processor, another architecture,
another BLAS or numpy) and ``diff`` the outputs: every line but the first
(which names the machine) should be the same.  For each picture of up to
`--largest` MB (default 3) in the folder (default ../shared/corpus/public)
it encodes, with the file's bytes hashed:

* RGB palettes at k = 16, 64 and 256 (the default speed);
* k = 64 in the ``oklab`` and ``rgb+oklab`` spaces, and k = 256 dithered;
* the two searches of ``-k auto``: ``--target-psnr 38``, and
  ``--max-bytes`` half the k = 256 file.

Each line gives the picture, the options and the first 16 hex digits of
the hash; the last line is the hash of all the lines above it.
"""

import argparse
import hashlib
import platform
import sys
import time
from pathlib import Path

import numpy as np

import kqcodec
from kqcodec.errors import TargetError

from corpus import pictures

VARIANTS = (
    ("-k 16", dict(k=16)),
    ("-k 64", dict(k=64)),
    ("-k 256", dict(k=256)),
    ("-k 64 --space oklab", dict(k=64, space="oklab")),
    ("-k 64 --space rgb+oklab", dict(k=64, space="rgb+oklab")),
    ("-k 256 --dither", dict(k=256, dither=1.0)),
    ("-k auto --target-psnr 38", dict(k="auto", target_psnr=38.0)),
)


def fingerprint(data):
    return hashlib.sha256(data).hexdigest()[:16]


def lines_for(path):
    """Yield (options, fingerprint) for every encoding of one picture."""
    half = None
    for options, kwargs in VARIANTS:
        try:
            data = kqcodec.encode(path, None, **kwargs).data
        except TargetError as exc:
            yield options, f"unreachable: {exc}"
            continue
        if options == "-k 256":
            half = len(data) // 2
        yield options, fingerprint(data)
    try:
        data = kqcodec.encode(path, None, k="auto", max_bytes=half).data
        yield f"-k auto --max-bytes {half}", fingerprint(data)
    except TargetError as exc:
        yield f"-k auto --max-bytes {half}", f"unreachable: {exc}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="pictures or folders (default ../shared/corpus/public)")
    parser.add_argument("--largest", type=float, default=3.0, metavar="MB",
                        help="leave out files larger than this (default 3)")
    args = parser.parse_args(argv)
    chosen = [p for p in pictures(args.paths) if p.stat().st_size <= args.largest * 1e6]
    print(f"# {platform.machine()}, Python {platform.python_version()}, numpy {np.__version__}, "
          f"kqcodec {kqcodec.__version__}")
    everything = hashlib.sha256()
    for path in chosen:
        start = time.perf_counter()
        for options, value in lines_for(path):
            line = f"{path.name}  {options}  {value}"
            everything.update(line.encode() + b"\n")
            print(line, flush=True)
        print(f"  {path.name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
    print(f"all  {everything.hexdigest()[:16]}")


if __name__ == "__main__":
    main()
