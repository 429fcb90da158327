"""Time of the encode's stages: CPU of the palette search's parts, or wall time of the pipeline.

Each picture (converted once to an RGB or RGBA PNG, as ``bench.py`` does) is
encoded in-process ``--repeat`` times per k; the CPU time (``process_time``:
every thread of the process) spent inside each stage's function is summed
per encode, and the median over all encodes is printed.  A stage's time
includes the stages it calls (``_lloyd`` includes ``Assignment.move``), and
a function missing from the version measured is left blank.

With ``--baseline DIR`` (another source tree of kqcodec, its kernels built
in place) the two trees run in turn, ``--rounds`` times, each in its own
process, and the table shows ``baseline -> this``.  Times on a shared
machine are noisy: say the load when you report them.

With ``--pipeline``, each encode runs alone in a fresh process instead,
and the table gives the wall time (``perf_counter``) of the stages from
reading to the PNG: importing kqcodec, reading, the histogram, the palette
search, the near-tie pass, spreading the entries to the pixels, the palette
order, the row filters, deflate (summed over the threads it runs on, so it
can exceed the PNG's share of the encode), the whole PNG step, the encode,
the file's bytes and the process's peak resident memory.  The encoder as it
was before its compiled kernels, to compare with: ``git worktree add DIR
ba07bb3``, then ``python setup.py build_ext --inplace`` in DIR.

    python benchmarks/stages.py [PICTURE ...] [-k 16,256] [--repeat 3] [--rounds 2] [--baseline DIR]
    python benchmarks/stages.py --pipeline [PICTURE ...] [-k 256] [--repeat 1] [--rounds 5] \
        [--baseline DIR]
"""
import argparse
import functools
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO.parent / "shared" / "corpus" / "public"
DEFAULT = ["lomiri_Picture_1A_by_freespace.jpg", "mate_Dune.jpg", "seed_image_square.png",
           "skimage_retina.jpg", "skimage_coffee.png"]

# (module, class or None, function, label), in the order of the table.
STAGES = [
    ("quantizer", None, "color_histogram", "histogram"),
    ("quantizer", None, "weighted_kmeans", "palette search"),
    ("kmeans", None, "_bin", "_bin"),
    ("kmeans", None, "_cells", "_cells"),
    ("kmeans", None, "_adaptive_bins", "_adaptive_bins"),
    ("kmeans", None, "divisive_split", "divisive_split"),
    ("kmeans", None, "_lloyd", "_lloyd"),
    ("kmeans", None, "_swap_search", "_swap_search"),
    ("kmeans", None, "_inherit", "_inherit"),
    ("nearest", "Assignment", "move", "move"),
    ("nearest", "Assignment", "_build_ring", "_build_ring"),
]

# The pipeline's stages, wall time, outermost call per thread (see --pipeline).
PIPELINE = [
    ("imageio", None, "read_picture", "read"),
    ("quantizer", None, "prepare", "histogram"),
    ("quantizer", None, "color_histogram", "histogram"),
    ("quantizer", None, "weighted_kmeans", "palette search"),
    ("kmeans", None, "weighted_kmeans", "palette search"),
    ("quantizer", None, "_settled", "near ties"),
    ("histogram", "Histogram", "spread", "spread"),
    ("layout", None, "adjacency_order", "palette order"),
    ("layout", None, "_adaptive", "filters"),
    ("paletteimage", "PaletteImage", "to_png", "PNG"),
]
_DEFLATE = ("zlib_compress", "deflate_compress")


def _timed(function, label, spent):
    """`function`, adding the CPU time of its outermost calls to ``spent[label]``."""
    depth = [0]

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if depth[0]:
            return function(*args, **kwargs)
        depth[0] += 1
        start = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            spent[label] = spent.get(label, 0.0) + time.process_time() - start
            depth[0] -= 1
    return wrapper


def measure(pngs, ks, repeat):
    """{picture k: {stage: [CPU seconds per encode]}} for this process's kqcodec."""
    import importlib

    import kqcodec

    spent = {}
    for module, owner, name, label in STAGES:
        target = importlib.import_module(f"kqcodec.{module}")
        target = getattr(target, owner) if owner else target
        if hasattr(target, name):
            setattr(target, name, _timed(getattr(target, name), label, spent))
    results = {}
    out = Path(tempfile.mkdtemp()) / "out.png"
    for png in pngs:
        for k in ks:
            runs = results.setdefault(f"{Path(png).stem} k={k}", {})
            for _ in range(repeat):
                spent.clear()
                start = time.process_time()
                # To a file: the tree before the compiled kernels has no
                # in-memory encode.
                kqcodec.encode(png, out, k, force=True)
                spent["encode"] = time.process_time() - start
                for label, seconds in spent.items():
                    runs.setdefault(label, []).append(seconds)
    return results


def _wall(function, label, spent, lock, local):
    """`function`, adding the wall time of its outermost call on each thread to ``spent[label]``."""
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if getattr(local, label, False):
            return function(*args, **kwargs)
        setattr(local, label, True)
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            setattr(local, label, False)
            with lock:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - start
    return wrapper


def measure_pipeline(png, k):
    """{stage: wall seconds} of one encode of `png` at `k` in this (fresh) process."""
    import importlib
    import threading
    import types

    start = time.perf_counter()
    import numpy  # noqa: F401

    import kqcodec
    spent = {"import kqcodec": time.perf_counter() - start}
    lock, local = threading.Lock(), threading.local()
    for module, owner, name, label in PIPELINE:
        target = importlib.import_module(f"kqcodec.{module}")
        target = getattr(target, owner) if owner else target
        if hasattr(target, name):
            setattr(target, name, _wall(getattr(target, name), label, spent, lock, local))
    layout = importlib.import_module("kqcodec.layout")
    if getattr(layout, "_libdeflate", None) is not None:
        # Both trees call the deflate module's functions through this name.
        library = layout._libdeflate
        layout._libdeflate = types.SimpleNamespace(**{
            name: _wall(getattr(library, name), "deflate", spent, lock, threading.local())
            if name in _DEFLATE else getattr(library, name)
            for name in dir(library) if not name.startswith("__")})
    start = time.perf_counter()
    kqcodec.encode(png, f"out-{os.getpid()}.png", k, force=True)
    spent["encode"] = time.perf_counter() - start
    spent["bytes"] = os.path.getsize(f"out-{os.getpid()}.png")
    os.remove(f"out-{os.getpid()}.png")
    # VmHWM, not ru_maxrss: the latter keeps the parent's peak across fork and exec.
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    spent["peak MB"] = int(peak.split()[1]) / 1024
    return spent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pictures", nargs="*", type=Path,
                        help=f"pictures (default: {len(DEFAULT)} of ../shared/corpus/public)")
    parser.add_argument("-k", default="16,256", help="palette sizes (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="encodes per picture, k and round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns of each tree with --baseline; of each encode with --pipeline "
                             "(default %(default)s)")
    parser.add_argument("--baseline", type=Path, help="another kqcodec source tree to compare")
    parser.add_argument("--pipeline", action="store_true",
                        help="wall time of the pipeline's stages, one fresh process per encode")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    if args.worker:
        if args.pipeline:
            json.dump(measure_pipeline(args.worker[0], ks[0]), sys.stdout)
        else:
            json.dump(measure(args.worker, ks, args.repeat), sys.stdout)
        return
    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench import prepare

    with tempfile.TemporaryDirectory() as tmp:
        pngs = [str(prepare(p, tmp)[0])
                for p in (args.pictures or [CORPUS / name for name in DEFAULT])]
        trees = {"this": REPO} if args.baseline is None else {"baseline": args.baseline,
                                                              "this": REPO}
        merged = {tree: {} for tree in trees}
        for _ in range(args.rounds if args.baseline or args.pipeline else 1):
            for tree, path in trees.items():
                env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
                if args.pipeline:
                    for png, k, _ in itertools.product(pngs, ks, range(args.repeat)):
                        out = subprocess.run([sys.executable, __file__, "--pipeline", "-k", str(k),
                                              "--worker", png], env=env, cwd=tmp, check=True,
                                             capture_output=True, text=True).stdout
                        case = merged[tree].setdefault(f"{Path(png).stem} k={k}", {})
                        for label, seconds in json.loads(out).items():
                            case.setdefault(label, []).append(seconds)
                    continue
                out = subprocess.run([sys.executable, __file__, "-k", args.k, "--repeat",
                                      str(args.repeat), "--worker", *pngs], env=env, cwd=tmp,
                                     check=True, capture_output=True, text=True).stdout
                for case, runs in json.loads(out).items():
                    for label, seconds in runs.items():
                        merged[tree].setdefault(case, {}).setdefault(label, []).extend(seconds)
    if args.pipeline:
        stages = dict.fromkeys(label for *_, label in PIPELINE if label != "PNG")
        labels = ["import kqcodec", "encode", *stages, "deflate", "PNG", "bytes", "peak MB"]
        print(f"Wall seconds, median of {args.rounds * args.repeat} fresh processes per tree; "
              f"deflate summed over threads; load average {os.getloadavg()[0]:.2f} at the end")
    else:
        labels = ["encode"] + [label for *_, label in STAGES]
        print(f"CPU seconds (process_time), median of the encodes; load average "
              f"{os.getloadavg()[0]:.2f} at the end")
    print("| picture | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for case in merged["this"]:
        cells = []
        for label in labels:
            values = [merged[tree].get(case, {}).get(label) for tree in trees]
            digits = 0 if label in ("bytes", "peak MB") else 3
            cells.append(" -> ".join(f"{statistics.median(v):.{digits}f}" if v else ""
                                     for v in values))
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
