"""The start-up floor of a whole-process encode, against pngquant on the same small picture.

    python benchmarks/startup.py [PICTURE] [-k 256] [--repeat 10]

A Python tool pays for the interpreter and for numpy before it reads a byte;
pngquant, a C program, starts in milliseconds.  On small pictures that sets
a floor under kqcodec's time ratio to pngquant that no kernel can lower.
For PICTURE (default ``skimage_logo.png`` of ../shared/corpus/public, 0.25 MP,
converted to PNG first so that both tools read the same file) this prints the
best wall time over ``--repeat`` runs of each command, in rotating order:
Python doing nothing, Python importing numpy (a required library), Python
importing what ``kqcodec encode`` imports, the whole ``kqcodec encode`` and
pngquant ``--nofs`` (when installed), and each time as a multiple of
pngquant's.  Best of N, so that other work on the machine moves it less.

``--targets`` prints instead the start-up and main-job targets: the median
wall and CPU time (user + system, worker processes included) over
``--repeat`` runs of ``kqcodec report test_pictures/`` (a fresh output folder
each run) and of ``kqcodec encode test_pictures/skimage_coffee.png -k 256``
(0.24 MP), and whether ``kqcodec --help`` imports numpy.  With ``--baseline
PYTHON``, the Python of another environment where kqcodec is installed (one
at another commit, say) runs the same commands, alternating with this one
run by run, so that both see the same load.  Each command runs once first to
write the bytecode caches (``PYTHONDONTWRITEBYTECODE`` is dropped for them).

    python benchmarks/startup.py --targets [--repeat 7] [--baseline PYTHON]
"""

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PICTURE = REPO.parent / "shared/corpus/public/skimage_logo.png"
TEST_PICTURES = REPO / "test_pictures"
# The targets: wall seconds of the report of test_pictures/ and of one
# encode of a 0.25 MP photo, whole process.
REPORT_TARGET, ENCODE_TARGET = 3.0, 0.35
# Children write their bytecode caches, as an installed package has them.
ENV = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}


def best_wall(commands, repeat):
    """The best wall time of each command over `repeat` rounds, commands rotating within a round."""
    best = {name: float("inf") for name in commands}
    for _ in range(repeat):
        for name, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def timed(argv, cwd):
    """Wall and CPU seconds (user + system of the process and its workers) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   cwd=cwd, env=ENV)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def help_imports_numpy(python):
    code = ("import sys\nfrom kqcodec.cli import main\ntry:\n    main(['--help'])\n"
            "except SystemExit:\n    pass\nprint('numpy' in sys.modules)")
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True,
                         env=ENV).stdout
    return out.splitlines()[-1] == "True"


def targets(pythons, repeat):
    """Median wall and CPU of the report and of the encode for each Python, runs alternating."""
    jobs = {
        "report": lambda work: ["-m", "kqcodec", "report", str(TEST_PICTURES), "--out",
                                str(work / "out"), "--quiet"],
        "encode": lambda work: ["-m", "kqcodec", "encode", str(TEST_PICTURES / "skimage_coffee.png"),
                                str(work / "o.png"), "-k", "256", "--force"],
    }
    runs = {(name, job): [] for name in pythons for job in jobs}
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        for round_ in range(repeat + 1):
            for job, args in jobs.items():
                for name, python in pythons.items():
                    shutil.rmtree(work / "out", ignore_errors=True)
                    result = timed([python, *args(work)], work)
                    if round_:  # the first round writes the bytecode caches
                        runs[name, job].append(result)
    medians = {key: tuple(statistics.median(r[i] for r in values) for i in (0, 1))
               for key, values in runs.items()}
    return medians, {name: help_imports_numpy(python) for name, python in pythons.items()}


def commit_of(python):
    """The commit of the checkout `python` imports kqcodec from, '+' if modified; '?' if none."""
    code = "import kqcodec, os; print(os.path.dirname(os.path.dirname(kqcodec.__file__)))"
    root = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True,
                          cwd=tempfile.gettempdir(), env=ENV).stdout.strip()
    head = subprocess.run(["git", "-C", root, "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True)
    if head.returncode:
        return "?"
    dirty = subprocess.run(["git", "-C", root, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True).stdout.strip()
    return head.stdout.strip() + ("+" if dirty else "")


def print_targets(pythons, repeat):
    load = os.getloadavg()[0]
    medians, numpy_on_help = targets(pythons, repeat)
    names = list(pythons)
    print(", ".join(f"{name}: kqcodec at {commit_of(python)}" for name, python in pythons.items()))
    print(f"median of {repeat} runs, {' and '.join(names)} alternating; "
          f"1-minute load average before: {load:.2f}, after: {os.getloadavg()[0]:.2f}\n")
    print("| what | target | " + " | ".join(f"{n}: wall | {n}: CPU" for n in names) + " |")
    print("|---|---|" + "---|---|" * len(names))
    for job, what, target in (
            ("report", "`kqcodec report test_pictures/` (4 pictures, 8 ks)", REPORT_TARGET),
            ("encode", "`kqcodec encode skimage_coffee.png OUT.png -k 256` (0.24 MP)",
             ENCODE_TARGET)):
        cells = " | ".join(f"{medians[n, job][0]:.2f} s | {medians[n, job][1]:.2f} s" for n in names)
        print(f"| {what} | <= {target} s wall | {cells} |")
    cells = " | ".join(f"{'yes' if numpy_on_help[n] else 'no'} | -" for n in names)
    print(f"| `kqcodec --help` imports numpy | no | {cells} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("picture", nargs="?", type=Path, default=DEFAULT_PICTURE)
    parser.add_argument("-k", type=int, default=256, help="palette size (default 256)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs of each command (default 10; 7 with --targets)")
    parser.add_argument("--targets", action="store_true",
                        help="time the report of test_pictures/ and a 0.25 MP encode instead")
    parser.add_argument("--baseline", metavar="PYTHON",
                        help="with --targets, also run another environment's Python, alternating")
    args = parser.parse_args(argv)
    if args.targets:
        pythons = {"this": sys.executable}
        if args.baseline:
            pythons["baseline"] = args.baseline
        print_targets(pythons, args.repeat or 7)
        return
    args.repeat = args.repeat or 10
    with tempfile.TemporaryDirectory() as work:
        src, out = Path(work) / "in.png", Path(work) / "out.png"
        with Image.open(args.picture) as image:
            image.save(src)
            pixels = image.width * image.height
        python = sys.executable
        commands = {
            "python, nothing": [python, "-c", "pass"],
            "python, import numpy": [python, "-c", "import numpy"],
            "python, kqcodec encode's imports": [python, "-c", "import kqcodec.codec, kqcodec.quantizer"],
            f"kqcodec encode -k {args.k}": [python, "-m", "kqcodec", "encode", str(src), str(out),
                                            "-k", str(args.k), "--force"],
        }
        pngquant = shutil.which("pngquant")
        if pngquant:
            commands[f"pngquant --nofs {args.k}"] = [pngquant, "--nofs", "--force", "-o", str(out),
                                                      str(args.k), str(src)]
        best = best_wall(commands, args.repeat)
    anchor = best.get(f"pngquant --nofs {args.k}")
    print(f"{args.picture.name}: {pixels / 1e6:.2f} MP, best of {args.repeat} runs\n")
    print("| command | wall time | / pngquant |")
    print("|---|---|---|")
    for name, seconds in best.items():
        ratio = f"{seconds / anchor:.2f}" if anchor else "-"
        print(f"| {name} | {seconds * 1000:.0f} ms | {ratio} |")


if __name__ == "__main__":
    main()
