"""Where the time of a target search goes, against one encode at k = 256.

For every picture of FOLDER (default ../shared/corpus/public) prints the CPU
time of the parts of ``encode -k 256`` (read, color histogram, k-means,
compression) and, for each target, of every k the search encodes: its
k-means (cold or warm, from which k), its size estimate and its compression
when the search needed its size; for a size budget, also the time of the
two compressions an exact answer needs (the answer and k + 1) alone.
Times are CPU seconds of this process (compression runs on two threads,
both counted), so that other work on a shared machine changes them less
than wall time.  ``--unguided`` runs the size searches without size
estimates, compressing every k they try, for comparison.

``--wall N`` measures what a user waits for instead: the whole-process wall
time of ``kqcodec encode PICTURE OUT -k 256`` and of ``kqcodec encode
PICTURE OUT -k auto --max-bytes B`` (B the budget's share of the first
command's file), each run N times, alternately, after one untimed run of
each; the medians and their ratio.  With ``--floor`` a third process is
timed in the same rounds: an oracle that knows the search's answer k and
does only what an exact answer needs (read, color histogram, k-means at k,
then at k + 1 from it, compression of k and of k + 1, or only its estimate
where the search did not compress it, and the file written); its ratio to
the encode is the least a search can cost.  The last lines give the median
and largest ratio over the pictures, per goal.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import kqcodec
from kqcodec import imageio, paletteimage, quantizer, search

from corpus import pictures


class Recorder:
    """Times every k-means and every compression while installed."""

    def __init__(self):
        self.events = []
        self._quantize = quantizer._quantize
        self._to_png = paletteimage.PaletteImage.to_png
        self._estimate = paletteimage.PaletteImage.estimated_png_size

    def __enter__(self):
        recorder = self

        def timed_quantize(hist, k, **kwargs):
            start = time.process_time()
            result = recorder._quantize(hist, k, **kwargs)
            warm = "warm" if kwargs.get("init") is not None else "cold"
            recorder.events.append((f"k-means {k} {warm}", time.process_time() - start))
            return result

        def timed_to_png(image, **kwargs):
            start = time.process_time()
            data = recorder._to_png(image, **kwargs)
            recorder.events.append((f"deflate {len(image.palette)}", time.process_time() - start))
            return data

        def timed_estimate(image, **kwargs):
            start = time.process_time()
            result = recorder._estimate(image, **kwargs)
            recorder.events.append((f"estimate {len(image.palette)}", time.process_time() - start))
            return result

        quantizer._quantize = timed_quantize
        paletteimage.PaletteImage.to_png = timed_to_png
        paletteimage.PaletteImage.estimated_png_size = timed_estimate
        return self

    def __exit__(self, *exc):
        quantizer._quantize = self._quantize
        paletteimage.PaletteImage.to_png = self._to_png
        paletteimage.PaletteImage.estimated_png_size = self._estimate


def unguided(encode_at, **options):
    """search.find_k without size estimates, for comparison."""
    return search.find_k(encode_at, **{**options, "estimate_size": None})


def cpu(function):
    start = time.process_time()
    result = function()
    return result, time.process_time() - start


def run_cli(args, env):
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "kqcodec", "encode", *map(str, args), "--force"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def oracle(path, k, compress_above, out):
    """What an exact size search that knows its answer k must do: k, k + 1 and their files."""
    pixels = imageio.read_image(path)
    hist = quantizer.prepare(pixels)
    image, labels = quantizer._quantize(hist, k)
    above, _ = quantizer._quantize(hist, k + 1, init=labels)
    data = image.to_png()
    if compress_above:
        above.to_png()
    else:
        above.estimated_png_size()
    Path(out).write_bytes(data)


def run_oracle(path, k, compress_above, out, env):
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--oracle", str(path), str(k),
                    str(int(compress_above)), str(out)], check=True, env=env)
    return time.perf_counter() - start


def wall(path, budget_share, runs, floor=None):
    """Median whole-process wall times of encode -k 256 and of the size search, and their ratio.

    `floor`: (k, whether k + 1 was compressed) of the search's answer, to
    time the oracle too.
    """
    # Without the environment's PYTHONDONTWRITEBYTECODE, kqcodec's modules
    # are compiled once (the untimed runs), not at every start.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as work:
        out = Path(work) / "out.png"
        run_cli([path, out, "-k", "256"], env)
        budget = int(out.stat().st_size * budget_share)
        search = [path, out, "-k", "auto", "--max-bytes", budget]
        run_cli(search, env)
        if floor:
            run_oracle(path, *floor, out, env)
        fixed, searched, least = [], [], []
        for _ in range(runs):
            fixed.append(run_cli([path, out, "-k", "256"], env))
            searched.append(run_cli(search, env))
            if floor:
                least.append(run_oracle(path, *floor, out, env))
    fixed, searched = statistics.median(fixed), statistics.median(searched)
    print(f"wall, whole process (median of {runs}, alternated): encode -k 256 {fixed:.2f} s, "
          f"-k auto --max-bytes {budget} {searched:.2f} s: {searched / fixed:.2f}x")
    ratios = {"max_bytes, wall": searched / fixed}
    if floor:
        least = statistics.median(least)
        print(f"  the oracle at k={floor[0]} ({'compressing' if floor[1] else 'estimating'} "
              f"k+1): {least:.2f} s: {least / fixed:.2f}x")
        ratios["max_bytes, wall floor"] = least / fixed
    return ratios


def picture(path, targets, budget_share, runs=0, floor=False):
    pixels, read = cpu(lambda: imageio.read_image(path, max_pixels=None))
    hist, counted = cpu(lambda: quantizer.prepare(pixels))
    with Recorder() as rec:
        image, quantized = cpu(lambda: quantizer.quantize(pixels, 256, histogram=hist))
        data, deflated = cpu(lambda: image.to_png())
    encode = read + counted + quantized + deflated
    print(f"## {path.name}: {pixels.shape[1]}x{pixels.shape[0]}, {len(hist.colors)} colors")
    print(f"encode k=256: read {read:.2f} s, histogram {counted:.2f} s, k-means {quantized:.2f} s, "
          f"deflate {deflated:.2f} s; total {encode:.2f} s CPU, {len(data)} bytes")
    goals = [dict(target_psnr=t) for t in targets]
    goals.append(dict(max_bytes=int(len(data) * budget_share)))
    ratios, answer_k, tried = {}, None, ""
    for goal in goals:
        with Recorder() as rec:
            try:
                choice, searched = cpu(lambda: quantizer.choose_k(pixels, histogram=hist, **goal))
                answer = f"k={choice.k}"
            except kqcodec.TargetError as exc:
                searched, answer = sum(t for _, t in rec.events), f"out of reach ({exc})"
        total = read + counted + searched
        parts = ", ".join(f"{name} {seconds:.2f}" for name, seconds in rec.events)
        kmeans = sum(t for name, t in rec.events if name.startswith("k-means"))
        deflate = sum(t for name, t in rec.events if name.startswith("deflate"))
        estimate = sum(t for name, t in rec.events if name.startswith("estimate"))
        name, value = next(iter(goal.items()))
        ratios[name if name == "max_bytes" else f"{name}={value:g}"] = total / encode
        print(f"{name}={value:.10g}: {answer}; search {total / encode:.2f}x the encode "
              f"(k-means {kmeans:.2f} s, deflate {deflate:.2f} s, estimates {estimate:.2f} s): "
              f"{parts}")
        if "max_bytes" in goal and answer.startswith("k="):
            # What no exact size search can avoid: compressing the answer
            # and its neighbour above at the final level.
            colors = {t.k: t.colors for t in choice.trials}
            above = {t.k: t.size for t in choice.trials}.get(choice.k + 1)
            answer_k = (choice.k, above is not None) if choice.k < 256 else None
            tried = (f"k={choice.k}: {sum(t.size is None for t in choice.trials)} estimated, "
                    f"{sum(t.size is not None for t in choice.trials)} compressed")
            ends = {f"deflate {colors[k]}" for k in (choice.k, choice.k + 1) if k in colors}
            spent = sum(t for name, t in rec.events if name in ends)
            print(f"  the compressions at k={choice.k} and k+1 alone: {spent:.2f} s, "
                  f"{spent / encode:.2f}x the encode")
    if runs:
        ratios.update(wall(path, budget_share, runs, answer_k if floor else None))
    print()
    sys.stdout.flush()
    return ratios, tried


def table(rows, budget_share, most=2.5):
    """The size searches picture by picture, as a markdown table, and how many stay within `most`."""
    columns = [("max_bytes", "CPU"), ("max_bytes, wall", "wall"),
               ("max_bytes, wall floor", "oracle, wall")]
    print(f"\nBudget {budget_share:g} of the k = 256 file: search / encode k = 256")
    print("| picture | answer, ks tried | " + " | ".join(c for _, c in columns) + " |")
    print("|---|---|" + "---|" * len(columns))
    for name, searched, ratios in rows:
        cells = [f"{ratios[goal]:.2f}" if goal in ratios else "" for goal, _ in columns]
        print(f"| {name} | {searched} | " + " | ".join(cells) + " |")
    walls = [ratios["max_bytes, wall"] for _, _, ratios in rows if "max_bytes, wall" in ratios]
    print(f"\nwall time within {most}x one encode: {sum(r <= most for r in walls)} of {len(walls)}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path,
                        help="pictures or folders (default ../shared/corpus/public)")
    parser.add_argument("--targets", default="35,38,41", help="PSNR targets, dB (default 35,38,41; empty: the budget only)")
    parser.add_argument("--budget", type=float, default=0.5,
                        help="size budget as a share of the k=256 file (default 0.5)")
    parser.add_argument("--wall", type=int, default=0, metavar="N",
                        help="also time the two commands N times each as whole processes "
                             "(default 0: not)")
    parser.add_argument("--floor", action="store_true",
                        help="with --wall, also time an oracle that knows the answer "
                             "(the least an exact search can cost)")
    parser.add_argument("--oracle", nargs=4, metavar=("PICTURE", "K", "COMPRESS", "OUT"),
                        help=argparse.SUPPRESS)
    parser.add_argument("--unguided", action="store_true",
                        help="size searches without size estimates: every k tried is compressed")
    args = parser.parse_args(argv)
    if args.oracle:
        picture_path, k, compress_above, out = args.oracle
        oracle(Path(picture_path), int(k), compress_above == "1", out)
        return
    if args.unguided:
        quantizer.find_k = unguided
    paths = pictures(args.paths)
    targets = [float(t) for t in args.targets.split(",") if t]
    results, rows = {}, []
    for path in paths:
        ratios, searched = picture(path, targets, args.budget, args.wall, args.floor)
        for goal, ratio in ratios.items():
            results.setdefault(goal, []).append((ratio, path.name))
        rows.append((path.name, searched, ratios))
    if args.wall:
        table(rows, args.budget)
    if len(paths) > 1:
        for goal, ratios in results.items():
            largest = max(ratios)
            kind = "wall" if "wall" in goal else "CPU"
            print(f"{goal}: search / encode k=256 ({kind}) over {len(ratios)} pictures: median "
                  f"{statistics.median(r for r, _ in ratios):.2f}, largest {largest[0]:.2f} "
                  f"({largest[1]})")


if __name__ == "__main__":
    main()
