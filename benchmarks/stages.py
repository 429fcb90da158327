"""CPU time of the encode's stages: histogram, palette search and its parts.

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

    python benchmarks/stages.py [PICTURE ...] [-k 16,256] [--repeat 3] [--rounds 2] [--baseline DIR]
"""
import argparse
import functools
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
    for png in pngs:
        for k in ks:
            runs = results.setdefault(f"{Path(png).stem} k={k}", {})
            for _ in range(repeat):
                spent.clear()
                start = time.process_time()
                kqcodec.encode(png, None, k)
                spent["encode"] = time.process_time() - start
                for label, seconds in spent.items():
                    runs.setdefault(label, []).append(seconds)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pictures", nargs="*", type=Path,
                        help=f"pictures (default: {len(DEFAULT)} of ../shared/corpus/public)")
    parser.add_argument("-k", default="16,256", help="palette sizes (default %(default)s)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="encodes per picture, k and round (default %(default)s)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="turns of each tree with --baseline (default %(default)s)")
    parser.add_argument("--baseline", type=Path, help="another kqcodec source tree to compare")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    if args.worker:
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
        for _ in range(args.rounds if args.baseline else 1):
            for tree, path in trees.items():
                env = dict(os.environ, PYTHONPATH=str(Path(path).resolve()))
                out = subprocess.run([sys.executable, __file__, "-k", args.k, "--repeat",
                                      str(args.repeat), "--worker", *pngs], env=env, cwd=tmp,
                                     check=True, capture_output=True, text=True).stdout
                for case, runs in json.loads(out).items():
                    for label, seconds in runs.items():
                        merged[tree].setdefault(case, {}).setdefault(label, []).extend(seconds)
    labels = ["encode"] + [label for *_, label in STAGES]
    print(f"CPU seconds (process_time), median of the encodes; load average "
          f"{os.getloadavg()[0]:.2f} at the end")
    print("| picture | " + " | ".join(labels) + " |")
    print("|---" * (len(labels) + 1) + "|")
    for case in merged["this"]:
        cells = []
        for label in labels:
            values = [merged[tree].get(case, {}).get(label) for tree in trees]
            cells.append(" -> ".join(f"{statistics.median(v):.3f}" if v else "" for v in values))
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
