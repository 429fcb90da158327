"""What `kqcodec report` spends its CPU on, part by part, and the wall time that leaves at best.

    python benchmarks/report_cost.py [FOLDER] [--rounds 3] [--workers 2]

The jobs that ``report FOLDER`` (default ``test_pictures/``, default ks and
measures) gives its ``--workers`` processes run here one after the other, in
this process, ``--rounds`` times; the CPU time of each part is summed over
the jobs, and the round of least total is printed.  Deflate is timed call by
call on the thread that runs it (the layouts are compressed on two threads),
and split three ways: the layout written, the other compressions at the
final level (other layouts compressed whole to find the smallest, and the
samples that rank the layouts; their bytes are thrown away), and the fast
trials.  The palette search is ``quantize``; "layouts" is the rest of
writing the PNG bytes (packing, row filters, palette order).

The parent process's own share is measured apart, in fresh processes (best
of ``--rounds``): the imports it makes before it starts the workers
(kqcodec's report, scikit-image's SSIM with SciPy, which the workers then
share), and pandas, which it imports while they work.  From these the last
lines give a floor of the wall time on two cores: the parent's imports, then
the jobs' CPU shared perfectly between the two workers, with nothing else
running (no tail, no table, no other process).  Every figure is CPU time:
on a shared machine it moves less than wall time, but say the load.
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# What the parent imports before it forks the workers, and what it imports after.
BEFORE_FORK = ("import kqcodec.cli, kqcodec.reporting\n"
               "from skimage.metrics import structural_similarity")
AFTER_FORK = "import pandas"
ENV = dict({key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"},
           OPENBLAS_NUM_THREADS="1")


def import_cpu(code, rounds):
    """Least CPU seconds (user + system) of a fresh Python running `code`, over `rounds` runs."""
    best = float("inf")
    for _ in range(rounds + 1):  # the first run writes the bytecode caches
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, env=ENV)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        best = min(best, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return best


class Meter:
    """Wraps kqcodec's functions to sum the CPU time spent in each part of a job."""

    def __init__(self):
        from kqcodec import imageio, imagereport, layout, metrics, paletteimage, pngread, quantizer

        self.spent = {}
        self.layout = layout
        self._calls = []
        self._inside = []  # the part running on the main thread
        self._wrap(quantizer, "quantize", "palette search (quantize)")
        self._wrap(quantizer, "prepare", "read pictures, count colors")
        self._wrap(imageio, "read_picture", "read pictures, count colors")
        self._wrap(imageio, "read_image", "decode the written files")
        self._wrap(pngread, "read_header", "decode the written files")
        self._wrap(metrics.Reference, "ssim", "SSIM (scikit-image)")
        self._wrap(metrics, "psnr", "PSNR")
        self._wrap(imagereport, "write_bytes", "write the files")
        self._wrap(paletteimage.PaletteImage, "to_png", "png", time.process_time)
        compress, image_data, trial = layout.compress, layout.image_data, layout._trial
        in_trial = []

        def timed_compress(data, level):
            start = time.thread_time()
            stream = compress(data, level)
            self._calls.append((bool(in_trial), len(stream), time.thread_time() - start))
            return stream

        def tagged_trial(*args, **kwargs):
            in_trial.append(True)
            try:
                return trial(*args, **kwargs)
            finally:
                in_trial.pop()

        def split_image_data(*args, **kwargs):
            first = len(self._calls)
            result = image_data(*args, **kwargs)
            calls, kept = self._calls[first:], len(result[2])
            final = [c for c in calls if not c[0]]
            # (Two bands joined, from 512 KB of data on, are not timed apart.)
            written = next((c for c in final if c[1] == kept), (False, kept, 0.0))
            self._add("deflate: the layout written", written[2])
            self._add("deflate: other layouts and samples, same level (not written)",
                      sum(c[2] for c in final) - written[2])
            self._add("deflate: trials", sum(c[2] for c in calls if c[0]))
            return result

        layout.compress, layout.image_data = timed_compress, split_image_data
        layout._trial = tagged_trial

    def _add(self, label, seconds):
        self.spent[label] = self.spent.get(label, 0.0) + seconds

    def _wrap(self, owner, name, label, clock=time.thread_time):
        """Time `owner.name` into `label`, unless it runs inside another part (decoding reads)."""
        function = getattr(owner, name)

        def wrapper(*args, **kwargs):
            if self._inside:
                return function(*args, **kwargs)
            self._inside.append(label)
            start = clock()
            try:
                return function(*args, **kwargs)
            finally:
                self._add(label, clock() - start)
                self._inside.pop()

        setattr(owner, name, wrapper)


def jobs_cpu(folder, workers, rounds):
    """{part: CPU seconds} of the report's jobs, run in this process: the round of least total."""
    from threadpoolctl import threadpool_limits

    from kqcodec import metrics, reporting, scan
    from kqcodec import workers as pool
    from kqcodec.defaults import DEFAULT_SPEED, REPORT_KS, REPORT_METRICS

    metrics.preload(REPORT_METRICS)
    # As in the workers: one thread for BLAS and OpenMP, and malloc's options
    # (absent from older trees).
    threadpool_limits(1)
    getattr(pool, "_keep_freed_memory", lambda: None)()
    meter = Meter()
    best = {}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            out = Path(tmp) / "out"
            shutil.rmtree(out, ignore_errors=True)
            images = scan.find_images(folder)
            stems = scan.plan_outputs(images, folder)
            jobs = [(path, dict(ks=list(REPORT_KS), out=out, stem=stems[path.name], name=path.name,
                                force=False, seed=0, max_pixels=None, space="rgb", dither=0.0,
                                metrics=tuple(REPORT_METRICS), strict=False, speed=DEFAULT_SPEED,
                                target_psnr=None, max_colors=256, reuse=0.0))
                    for path in images]
            meter.spent.clear()
            start = time.process_time()
            for job in reporting._balanced(jobs, workers):
                reporting._report_job(job)
            spent = dict(meter.spent, total=time.process_time() - start)
            png = spent.pop("png")
            deflate = sum(v for k, v in spent.items() if k.startswith("deflate"))
            spent["layouts, filters, palette order"] = png - deflate
            spent["rest of the jobs"] = 2 * spent["total"] - sum(spent.values())
            if not best or spent["total"] < best["total"]:
                best = spent
    return best, len(images), len(jobs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folder", nargs="?", type=Path, default=REPO / "test_pictures")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many (default 3)")
    parser.add_argument("--workers", type=int, default=2,
                        help="the processes the jobs are split for (default 2)")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    before_fork = import_cpu(BEFORE_FORK, args.rounds)
    with_pandas = import_cpu(BEFORE_FORK + "\n" + AFTER_FORK, args.rounds)
    spent, pictures, _ = jobs_cpu(args.folder, args.workers, args.rounds)
    total = spent.pop("total")
    print(f"`kqcodec report {args.folder.name}/`: {pictures} pictures, jobs split for "
          f"{args.workers} workers; CPU seconds, the least of {args.rounds} rounds; 1-minute load "
          f"average {load:.2f} before, {os.getloadavg()[0]:.2f} after\n")
    print("| part | CPU s | share of the jobs |")
    print("|---|---|---|")
    for label, seconds in sorted(spent.items(), key=lambda item: -item[1]):
        print(f"| {label} | {seconds:.3f} | {seconds / total:.0%} |")
    print(f"| **the jobs** | **{total:.3f}** | 100% |")
    print(f"| parent: imports before the workers start | {before_fork:.3f} | |")
    print(f"| parent: pandas, while they work | {with_pandas - before_fork:.3f} | |")
    others = spent["deflate: other layouts and samples, same level (not written)"]
    floor = before_fork + total / args.workers
    print(f"\nFloor of the wall time on {args.workers} cores (imports, then the jobs shared "
          f"perfectly): {floor:.2f} s; without that other deflate: "
          f"{floor - others / args.workers:.2f} s")


if __name__ == "__main__":
    main()
